package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/rocmforge/rocmforge/ggml"
)

// Writer builds a GGUF v3 file: metadata in insertion order, then tensors
// in the order they were added, each padded to the alignment.
type Writer struct {
	kvs       []KV
	kvIndex   map[string]int
	alignment uint64
	tensors   []writerTensor
	tIndex    map[string]int
}

type writerTensor struct {
	info TensorInfo
	data []byte
}

// NewWriter returns an empty Writer with the default alignment of 32.
func NewWriter() *Writer {
	return &Writer{
		kvIndex:   map[string]int{},
		alignment: DefaultAlignment,
		tIndex:    map[string]int{},
	}
}

// Set sets a metadata key. v may be any Go scalar a GGUF value holds
// (uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32,
// float64, bool, string), a typed slice of one of them, an Array (for
// nested arrays), or a Value. Setting a key again replaces its value and
// keeps its position. Setting general.alignment (a uint32) also sets the
// alignment, as SetAlignment does. Slices are kept, not copied, until WriteTo.
func (w *Writer) Set(key string, v any) error {
	if key == "" {
		return errors.New("gguf: Set: empty key")
	}
	val, err := toValue(v)
	if err != nil {
		return fmt.Errorf("gguf: Set %s: %w", key, err)
	}
	if key == KeyAlignment {
		a, ok := val.V.(uint32)
		if !ok {
			return fmt.Errorf("gguf: Set %s: want uint32, got %s", key, val.Type)
		}
		if err := checkAlignment(uint64(a)); err != nil {
			return fmt.Errorf("gguf: Set %s: %w", key, err)
		}
		w.alignment = uint64(a)
	}
	if i, ok := w.kvIndex[key]; ok {
		w.kvs[i].Value = val
		return nil
	}
	w.kvIndex[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: val})
	return nil
}

// toValue converts what Set accepts into a checked Value.
func toValue(v any) (Value, error) {
	var val Value
	switch x := v.(type) {
	case Value:
		val = x
	case Array:
		val = Value{Type: TypeArray, V: x}
	case int, uint, uintptr, []int, []uint:
		return Value{}, fmt.Errorf("%T has no fixed size in GGUF; use a sized integer type such as int32 or uint64", v)
	default:
		if t, ok := scalarType(v); ok {
			val = Value{Type: t, V: v}
		} else if t, ok := sliceElemType(v); ok {
			val = Value{Type: TypeArray, V: Array{Elem: t, V: v}}
		} else {
			return Value{}, fmt.Errorf("unsupported Go type %T", v)
		}
	}
	if err := val.check(); err != nil {
		return Value{}, err
	}
	return val, nil
}

// SetAlignment sets the tensor data alignment, a power of two. It is
// recorded as general.alignment (uint32) unless it is the default 32 and
// the key was never set.
func (w *Writer) SetAlignment(a uint64) error {
	if err := checkAlignment(a); err != nil {
		return fmt.Errorf("gguf: SetAlignment: %w", err)
	}
	if _, set := w.kvIndex[KeyAlignment]; set || a != DefaultAlignment {
		return w.Set(KeyAlignment, uint32(a))
	}
	w.alignment = a
	return nil
}

// AddTensor adds a tensor. dims is the shape in GGUF order (ne[0] first),
// and data must hold exactly the bytes that shape takes in type t. The
// Writer keeps data without copying it until WriteTo.
func (w *Writer) AddTensor(name string, t ggml.Type, dims []uint64, data []byte) error {
	if name == "" {
		return errors.New("gguf: AddTensor: empty tensor name")
	}
	if _, dup := w.tIndex[name]; dup {
		return fmt.Errorf("gguf: AddTensor %s: duplicate tensor name", name)
	}
	size, err := tensorSize(t, dims)
	if err != nil {
		return fmt.Errorf("gguf: AddTensor %s: %w", name, err)
	}
	// tensorSize has checked the shape (so Elems cannot overflow); the type
	// table's RowSize is the definition of how many bytes it takes.
	info := TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: t, Size: size}
	if want, err := t.RowSize(info.Elems()); err != nil || want != size {
		return fmt.Errorf("gguf: AddTensor %s: %s shape %v: %d bytes but RowSize says %d (%v)", name, t, dims, size, want, err)
	}
	if int64(len(data)) != size {
		return fmt.Errorf("gguf: AddTensor %s: %s shape %v takes %d bytes, data has %d", name, t, dims, size, len(data))
	}
	w.tIndex[name] = len(w.tensors)
	w.tensors = append(w.tensors, writerTensor{
		info: info,
		data: data,
	})
	return nil
}

// WriteTo writes the file to out and returns the number of bytes written.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	cw := &countingWriter{w: out}
	bw := bufio.NewWriterSize(cw, 1<<16)
	e := &encoder{w: bw}

	e.bytes([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	var off uint64
	for i := range w.tensors {
		ti := &w.tensors[i].info
		off = alignUp(off, w.alignment)
		ti.Offset = off
		off += uint64(ti.Size)
		e.str(ti.Name)
		e.u32(uint32(len(ti.Dims)))
		for _, d := range ti.Dims {
			e.u64(d)
		}
		e.u32(uint32(ti.Type))
		e.u64(ti.Offset)
	}
	e.pad(w.alignment)
	for _, t := range w.tensors {
		e.bytes(t.data)
		e.pad(w.alignment)
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	return cw.n, e.err
}

// WriteFile writes the file to path, removing it again if writing fails.
func (w *Writer) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	_, err = w.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("gguf: writing %s: %w", path, err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes little-endian GGUF primitives, remembering the first
// error so that callers can write a whole file and check once.
type encoder struct {
	w   *bufio.Writer
	n   uint64 // bytes written, for padding
	err error
	buf [8]byte
}

func (e *encoder) bytes(b []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(b)
	e.n += uint64(len(b))
}

func (e *encoder) u8(v uint8) { e.bytes([]byte{v}) }

func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.bytes(e.buf[:2])
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.bytes(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.bytes(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err != nil {
		return
	}
	_, e.err = e.w.WriteString(s)
	e.n += uint64(len(s))
}

func (e *encoder) boolean(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

var zeros [64]byte

func (e *encoder) pad(a uint64) {
	for n := alignUp(e.n, a) - e.n; n > 0; {
		k := min(n, uint64(len(zeros)))
		e.bytes(zeros[:k])
		n -= k
	}
}

// value writes v's payload (not its type id). Set has checked v, so the
// type switch always matches.
func (e *encoder) value(v Value) {
	switch x := v.V.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.boolean(x)
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case Array:
		e.array(x)
	default:
		if e.err == nil {
			e.err = fmt.Errorf("gguf: cannot encode Go %T", v.V)
		}
	}
}

func (e *encoder) array(a Array) {
	e.u32(uint32(a.Elem))
	e.u64(uint64(a.Len()))
	switch s := a.V.(type) {
	case []uint8:
		e.bytes(s)
	case []int8:
		for _, x := range s {
			e.u8(uint8(x))
		}
	case []uint16:
		for _, x := range s {
			e.u16(x)
		}
	case []int16:
		for _, x := range s {
			e.u16(uint16(x))
		}
	case []uint32:
		for _, x := range s {
			e.u32(x)
		}
	case []int32:
		for _, x := range s {
			e.u32(uint32(x))
		}
	case []float32:
		for _, x := range s {
			e.u32(math.Float32bits(x))
		}
	case []bool:
		for _, x := range s {
			e.boolean(x)
		}
	case []string:
		for _, x := range s {
			e.str(x)
		}
	case []uint64:
		for _, x := range s {
			e.u64(x)
		}
	case []int64:
		for _, x := range s {
			e.u64(uint64(x))
		}
	case []float64:
		for _, x := range s {
			e.u64(math.Float64bits(x))
		}
	case []Array:
		for _, x := range s {
			e.array(x)
		}
	default:
		if e.err == nil {
			e.err = fmt.Errorf("gguf: cannot encode array of Go %T", a.V)
		}
	}
}
