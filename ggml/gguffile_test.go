package ggml

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// This file is a deliberately minimal GGUF v2/v3 tensor-table reader, used
// only to cross-check dequantization against the golden model files. The
// real reader lives in package gguf; ggml must not depend on it.

type testTensor struct {
	name   string
	dims   []uint64
	typ    Type
	offset uint64 // relative to the data section
}

type testGGUF struct {
	data    []byte
	tensors map[string]testTensor
	dataOff uint64
}

// elems is the number of elements of tt.
func (tt testTensor) elems() int {
	n := 1
	for _, d := range tt.dims {
		n *= int(d)
	}
	return n
}

// bytesOf returns the raw bytes of tensor tt.
func (g *testGGUF) bytesOf(tt testTensor) ([]byte, error) {
	size, err := tt.typ.RowSize(int64(tt.elems()))
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", tt.name, err)
	}
	start := g.dataOff + tt.offset
	if start+uint64(size) > uint64(len(g.data)) {
		return nil, fmt.Errorf("tensor %s: bytes [%d, %d) past end of file (%d)", tt.name, start, start+uint64(size), len(g.data))
	}
	return g.data[start : start+uint64(size)], nil
}

// dequantTensor reads and dequantizes tensor name.
func (g *testGGUF) dequantTensor(t *testing.T, name string) (testTensor, []float32) {
	t.Helper()
	tt, ok := g.tensors[name]
	if !ok {
		t.Fatalf("no tensor %q", name)
	}
	raw, err := g.bytesOf(tt)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, tt.elems())
	if err := Dequantize(tt.typ, raw, out); err != nil {
		t.Fatalf("tensor %s: %v", name, err)
	}
	return tt, out
}

func readTestGGUF(path string) (*testGGUF, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(data)
	var hdr struct {
		Magic   [4]byte
		Version uint32
		NTensor uint64
		NKV     uint64
	}
	if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
		return nil, err
	}
	if string(hdr.Magic[:]) != "GGUF" || hdr.Version < 2 {
		return nil, fmt.Errorf("%s: not GGUF v2+ (magic %q version %d)", path, hdr.Magic[:], hdr.Version)
	}
	u32 := func() uint32 { var v uint32; binary.Read(r, binary.LittleEndian, &v); return v }
	u64 := func() uint64 { var v uint64; binary.Read(r, binary.LittleEndian, &v); return v }
	str := func() (string, error) {
		n := u64()
		if n > uint64(r.Len()) {
			return "", fmt.Errorf("string length %d past end", n)
		}
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return string(b), err
	}
	scalarSize := map[uint32]int64{0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
	var skipValue func(vt uint32) error
	skipValue = func(vt uint32) error {
		switch vt {
		case 8:
			_, err := str()
			return err
		case 9:
			et := u32()
			n := u64()
			if sz, ok := scalarSize[et]; ok {
				_, err := r.Seek(int64(n)*sz, io.SeekCurrent)
				return err
			}
			for range n {
				if err := skipValue(et); err != nil {
					return err
				}
			}
			return nil
		}
		sz, ok := scalarSize[vt]
		if !ok {
			return fmt.Errorf("unknown GGUF value type %d", vt)
		}
		_, err := r.Seek(sz, io.SeekCurrent)
		return err
	}
	align := uint64(32)
	for range hdr.NKV {
		key, err := str()
		if err != nil {
			return nil, err
		}
		vt := u32()
		if key == "general.alignment" && vt == 4 {
			align = uint64(u32())
			continue
		}
		if err := skipValue(vt); err != nil {
			return nil, fmt.Errorf("%s: key %s: %w", path, key, err)
		}
	}
	g := &testGGUF{data: data, tensors: map[string]testTensor{}}
	for range hdr.NTensor {
		name, err := str()
		if err != nil {
			return nil, err
		}
		nd := u32()
		tt := testTensor{name: name}
		for range nd {
			tt.dims = append(tt.dims, u64())
		}
		tt.typ = Type(u32())
		tt.offset = u64()
		g.tensors[name] = tt
	}
	pos := uint64(len(data) - r.Len())
	g.dataOff = (pos + align - 1) / align * align
	return g, nil
}

// sharedDir finds ../shared relative to the module root (the directory with
// go.mod), or skips the test.
func sharedDir(t *testing.T) string {
	t.Helper()
	return shareddata.Dir(t)
}

// openGolden opens ../shared/testdata/golden/<c>/model.gguf or skips.
func openGolden(t *testing.T, c string) *testGGUF {
	t.Helper()
	path := filepath.Join(sharedDir(t), "testdata", "golden", c, "model.gguf")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("golden model missing: %s", path)
	}
	g, err := readTestGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
