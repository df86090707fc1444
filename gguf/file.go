// Package gguf reads and writes GGUF files (versions 2 and 3): the
// metadata key/value pairs, the tensor table, and zero-copy access to the
// tensor data through a read-only memory mapping.
//
// The reader treats every file as untrusted: counts and lengths are checked
// against the bytes left before anything is allocated for them, and every
// tensor is checked (known type, sane shape, aligned, inside the file, not
// overlapping another) before Parse or Open returns.
package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rocmforge/rocmforge/ggml"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that overrides DefaultAlignment (uint32).
const KeyAlignment = "general.alignment"

// MaxDims is the most dimensions a tensor may have (GGML_MAX_DIMS).
const MaxDims = 4

// maxAlignment bounds general.alignment; it is stored as a uint32.
const maxAlignment = 1 << 31

// File is a parsed GGUF file. Its tensor data is not copied: TensorData
// returns slices of the mapping (or of the bytes given to Parse), valid
// until Close. Its methods may be called from many goroutines at once, but
// not concurrently with Close.
type File struct {
	// Version is the GGUF version, 2 or 3.
	Version uint32
	// Alignment is the tensor data alignment (general.alignment or 32).
	Alignment uint64
	// DataOffset is where the tensor data section starts, in bytes from the
	// start of the file, a multiple of Alignment. Tensor offsets are
	// relative to it. A file without tensors may end before the padding; its
	// DataOffset is then the file size.
	DataOffset int64
	// KVs are the metadata pairs in file order.
	KVs []KV
	// Tensors are the tensor descriptions in file order.
	Tensors []TensorInfo

	data    []byte       // the whole file
	unmap   func() error // releases data; nil when data is ordinary memory
	closed  bool
	kvIndex map[string]int
	tIndex  map[string]int
}

// Parse parses a GGUF file held in memory. The File refers to data (tensor
// data is not copied), so data must not change while the File is in use.
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

// Open maps the GGUF file at path read-only and parses it. When the file
// cannot be mapped it is read into memory instead. Call Close to release it.
//
// A symbolic link that git checked out as a plain file (core.symlinks=false
// stores the link target as the file's text) is followed like a real one.
func Open(path string) (*File, error) {
	for hops := 0; ; hops++ {
		data, unmap, err := mapFile(path)
		if err != nil {
			return nil, fmt.Errorf("gguf: %w", err)
		}
		if target, ok := linkStub(path, data); ok && hops < maxLinkHops {
			if unmap != nil {
				unmap()
			}
			path = target
			continue
		}
		f, err := parse(data)
		if err != nil {
			if unmap != nil {
				unmap()
			}
			return nil, fmt.Errorf("gguf: %s: %w", path, err)
		}
		f.unmap = unmap
		return f, nil
	}
}

// maxLinkHops bounds how many link stubs Open follows, so a cycle ends.
const maxLinkHops = 8

// linkStub reports whether data is a short relative path to a .gguf file
// rather than GGUF bytes, and returns that path resolved against path's directory.
func linkStub(path string, data []byte) (string, bool) {
	if len(data) == 0 || len(data) > 1024 || bytes.HasPrefix(data, []byte(Magic)) {
		return "", false
	}
	target := strings.TrimRight(string(data), "\r\n")
	if !strings.HasSuffix(target, ".gguf") || strings.ContainsAny(target, "\x00\n") || filepath.IsAbs(target) {
		return "", false
	}
	return filepath.Join(filepath.Dir(path), filepath.FromSlash(target)), true
}

// readWhole is the fallback when mapping fails (an empty file, a pipe, or a
// platform without mmap).
func readWhole(path string) ([]byte, func() error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return data, nil, nil
}

// Close releases the file's mapping. Slices returned by TensorData must not
// be used afterwards. Close is safe to call more than once.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var err error
	if f.unmap != nil {
		err = f.unmap()
		f.unmap = nil
	}
	f.data = nil
	if err != nil {
		return fmt.Errorf("gguf: unmapping file: %w", err)
	}
	return nil
}

// Size is the size of the whole file in bytes (0 after Close).
func (f *File) Size() int64 { return int64(len(f.data)) }

// Lookup returns the value of a metadata key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KVs[i].Value, true
}

// Tensor returns the tensor with the given name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// TensorData returns the bytes of a tensor, as a slice of the file's
// mapping (no copy). The slice is read-only: writing to a mapped file's
// bytes faults. It is valid until Close.
func (f *File) TensorData(ti *TensorInfo) ([]byte, error) {
	if f.closed {
		return nil, fmt.Errorf("gguf: tensor %s: file is closed", ti.Name)
	}
	start := uint64(f.DataOffset) + ti.Offset
	// The bounds were checked at parse time for the file's own tensors;
	// check again for a TensorInfo the caller built or changed.
	if ti.Size < 0 || ti.Offset > uint64(len(f.data)) || start > uint64(len(f.data)) || uint64(ti.Size) > uint64(len(f.data))-start {
		return nil, fmt.Errorf("gguf: tensor %s: bytes [%d, +%d) of the data section are outside the %d-byte file", ti.Name, ti.Offset, ti.Size, len(f.data))
	}
	end := start + uint64(ti.Size)
	return f.data[start:end:end], nil
}

// Architecture returns general.architecture ("llama", "qwen2", ...).
func (f *File) Architecture() (string, error) { return f.GetString("general.architecture") }

func parse(data []byte) (*File, error) {
	d := &decoder{b: data}
	if len(data) < 4 {
		return nil, fmt.Errorf("file is %d bytes, too short for the GGUF magic", len(data))
	}
	if string(data[:4]) != Magic {
		return nil, fmt.Errorf("bad magic %q, want %q: not a GGUF file", data[:4], Magic)
	}
	d.pos = 4
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, errors.New("GGUF version 1 is not supported (only 2 and 3)")
	case version&0xffff == 0 && version != 0 && bits.ReverseBytes32(version) <= 3:
		return nil, fmt.Errorf("GGUF version %d stored big-endian: big-endian files are not supported", bits.ReverseBytes32(version))
	default:
		return nil, fmt.Errorf("unsupported GGUF version %d (only 2 and 3)", version)
	}
	nTensors, err := d.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := d.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// A KV takes at least a key length, a type and one byte of value.
	if err := d.fits(nKV, 8+4+1, "metadata"); err != nil {
		return nil, err
	}
	// A tensor info takes at least a name length, n_dims, one dim, a type and an offset.
	if err := d.fits(nTensors, 8+4+8+4+8, "tensor"); err != nil {
		return nil, err
	}

	f := &File{
		Version:   version,
		Alignment: DefaultAlignment,
		data:      data,
		KVs:       make([]KV, 0, nKV),
		kvIndex:   make(map[string]int, nKV),
	}
	for i := uint64(0); i < nKV; i++ {
		kv, err := readKV(d)
		if err != nil {
			return nil, fmt.Errorf("metadata #%d: %w", i, err)
		}
		if _, dup := f.kvIndex[kv.Key]; dup {
			return nil, fmt.Errorf("metadata #%d: duplicate key %q", i, kv.Key)
		}
		f.kvIndex[kv.Key] = len(f.KVs)
		f.KVs = append(f.KVs, kv)
	}
	if err := f.readAlignment(); err != nil {
		return nil, err
	}

	if err := d.fits(nTensors, 8+4+8+4+8, "tensor"); err != nil {
		return nil, err
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	f.tIndex = make(map[string]int, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		ti, err := readTensorInfo(d)
		if err != nil {
			return nil, fmt.Errorf("tensor #%d: %w", i, err)
		}
		if _, dup := f.tIndex[ti.Name]; dup {
			return nil, fmt.Errorf("tensor %s: duplicate tensor name", ti.Name)
		}
		f.tIndex[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}

	// pos < len(data) <= MaxInt and Alignment <= 2^31, so this cannot overflow.
	f.DataOffset = int64(alignUp(uint64(d.pos), f.Alignment))
	if len(f.Tensors) == 0 && f.DataOffset > int64(len(data)) {
		// Vocabulary-only files often end right after the metadata, unpadded.
		f.DataOffset = int64(len(data))
	}
	if err := f.checkTensors(); err != nil {
		return nil, err
	}
	return f, nil
}

func readKV(d *decoder) (KV, error) {
	key, err := d.str("key")
	if err != nil {
		return KV{}, err
	}
	if key == "" {
		return KV{}, fmt.Errorf("at offset %d: empty key", d.pos-8)
	}
	t, err := d.u32("value type")
	if err != nil {
		return KV{}, fmt.Errorf("key %q: %w", key, err)
	}
	v, err := d.value(ValueType(t), 0)
	if err != nil {
		return KV{}, fmt.Errorf("key %q: %w", key, err)
	}
	return KV{Key: key, Value: v}, nil
}

// readAlignment applies general.alignment; like llama.cpp it must be a uint32.
func (f *File) readAlignment() error {
	v, ok := f.Lookup(KeyAlignment)
	if !ok {
		return nil
	}
	a, ok := v.V.(uint32)
	if !ok || v.Type != TypeUint32 {
		return fmt.Errorf("key %s: type %s, want uint32", KeyAlignment, v.Type)
	}
	if err := checkAlignment(uint64(a)); err != nil {
		return fmt.Errorf("key %s: %w", KeyAlignment, err)
	}
	f.Alignment = uint64(a)
	return nil
}

func checkAlignment(a uint64) error {
	if a == 0 || a&(a-1) != 0 || a > maxAlignment {
		return fmt.Errorf("alignment %d is not a power of two in [1, %d]", a, uint64(maxAlignment))
	}
	return nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

func readTensorInfo(d *decoder) (TensorInfo, error) {
	name, err := d.str("tensor name")
	if err != nil {
		return TensorInfo{}, err
	}
	if name == "" {
		return TensorInfo{}, fmt.Errorf("at offset %d: empty tensor name", d.pos-8)
	}
	ti := TensorInfo{Name: name}
	nDims, err := d.u32("dimension count")
	if err != nil {
		return ti, fmt.Errorf("tensor %s: %w", name, err)
	}
	if nDims == 0 || nDims > MaxDims {
		return ti, fmt.Errorf("tensor %s: %d dimensions, want 1 to %d", name, nDims, MaxDims)
	}
	ti.Dims = make([]uint64, nDims)
	for j := range ti.Dims {
		if ti.Dims[j], err = d.u64("dimension"); err != nil {
			return ti, fmt.Errorf("tensor %s: %w", name, err)
		}
	}
	t, err := d.u32("tensor type")
	if err != nil {
		return ti, fmt.Errorf("tensor %s: %w", name, err)
	}
	ti.Type = ggml.Type(t)
	if ti.Offset, err = d.u64("tensor offset"); err != nil {
		return ti, fmt.Errorf("tensor %s: %w", name, err)
	}
	if ti.Size, err = tensorSize(ti.Type, ti.Dims); err != nil {
		return ti, fmt.Errorf("tensor %s: %w", name, err)
	}
	return ti, nil
}

// tensorSize checks a tensor's type and shape and returns its size in bytes.
func tensorSize(t ggml.Type, dims []uint64) (int64, error) {
	if !t.Known() {
		return 0, fmt.Errorf("unknown GGML type id %d", uint32(t))
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return 0, fmt.Errorf("%d dimensions, want 1 to %d", len(dims), MaxDims)
	}
	elems := uint64(1)
	for _, n := range dims {
		hi, lo := bits.Mul64(elems, n)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("shape %v overflows int64 elements", dims)
		}
		elems = lo
	}
	if bs := uint64(t.BlockSize()); dims[0]%bs != 0 {
		return 0, fmt.Errorf("%s: shape %v: ne[0]=%d is not a multiple of the block size %d", t, dims, dims[0], bs)
	}
	// Bytes per row times rows; each step checked because a block can be
	// larger than the elements it holds (e.g. 34 bytes per 32 for Q8_0).
	row := dims[0] / uint64(t.BlockSize()) * uint64(t.TypeSize())
	size := row
	for _, n := range dims[1:] {
		hi, lo := bits.Mul64(size, n)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("%s: shape %v overflows int64 bytes", t, dims)
		}
		size = lo
	}
	return int64(size), nil
}

// checkTensors checks that each tensor is aligned, inside the data section,
// and overlaps no other.
func (f *File) checkTensors() error {
	if len(f.Tensors) == 0 {
		return nil
	}
	if f.DataOffset > int64(len(f.data)) {
		return fmt.Errorf("tensor %s: data section starts at offset %d, past the end of the %d-byte file (file truncated?)", f.Tensors[0].Name, f.DataOffset, len(f.data))
	}
	dataLen := uint64(int64(len(f.data)) - f.DataOffset)
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if ti.Offset%f.Alignment != 0 {
			return fmt.Errorf("tensor %s: offset %d is not a multiple of the alignment %d", ti.Name, ti.Offset, f.Alignment)
		}
		if ti.Offset > dataLen || uint64(ti.Size) > dataLen-ti.Offset {
			return fmt.Errorf("tensor %s: data [%d, %d) runs past the end of the %d-byte data section (file truncated?)",
				ti.Name, ti.Offset, ti.Offset+uint64(ti.Size), dataLen)
		}
	}
	// Empty tensors occupy no bytes, so they cannot overlap anything.
	order := make([]int, 0, len(f.Tensors))
	for i := range f.Tensors {
		if f.Tensors[i].Size > 0 {
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool { return f.Tensors[order[a]].Offset < f.Tensors[order[b]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if cur.Offset < prev.Offset+uint64(prev.Size) {
			return fmt.Errorf("tensor %s: data [%d, %d) overlaps tensor %s at [%d, %d)",
				cur.Name, cur.Offset, cur.Offset+uint64(cur.Size), prev.Name, prev.Offset, prev.Offset+uint64(prev.Size))
		}
	}
	return nil
}
