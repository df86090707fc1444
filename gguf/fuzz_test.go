package gguf

import (
	"bytes"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
)

// fuzzSeeds are small valid files made by the Writer; FuzzParse also gets
// their truncations. The committed corpus in testdata/fuzz/FuzzParse holds
// the same kind of files plus inputs the fuzzer found.
func fuzzSeeds(t testing.TB) [][]byte {
	t.Helper()
	var seeds [][]byte
	add := func(w *Writer) {
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	set := func(w *Writer, key string, v any) {
		if err := w.Set(key, v); err != nil {
			t.Fatal(err)
		}
	}
	tensor := func(w *Writer, name string, typ ggml.Type, dims ...uint64) {
		ti := TensorInfo{Dims: dims}
		n, err := typ.RowSize(ti.Elems())
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if err := w.AddTensor(name, typ, dims, data); err != nil {
			t.Fatal(err)
		}
	}

	// Metadata only, every scalar type.
	w := NewWriter()
	set(w, "general.architecture", "llama")
	set(w, "u8", uint8(1))
	set(w, "i8", int8(-1))
	set(w, "u16", uint16(2))
	set(w, "i16", int16(-2))
	set(w, "u32", uint32(3))
	set(w, "i32", int32(-3))
	set(w, "f32", float32(0.5))
	set(w, "b", true)
	set(w, "u64", uint64(4))
	set(w, "i64", int64(-4))
	set(w, "f64", 0.25)
	add(w)

	// Arrays, nested arrays, and a custom alignment with two tensors.
	w = NewWriter()
	set(w, "tokenizer.ggml.tokens", []string{"<unk>", "<s>", "a"})
	set(w, "tokenizer.ggml.scores", []float32{0, -1, -2})
	set(w, "tokenizer.ggml.token_type", []int32{2, 3, 1})
	set(w, "flags", []bool{true, false})
	set(w, "nested", Array{TypeArray, []Array{{TypeUint16, []uint16{1, 2}}, {TypeString, []string{"x"}}}})
	if err := w.SetAlignment(64); err != nil {
		t.Fatal(err)
	}
	tensor(w, "a", ggml.F32, 3, 2)
	tensor(w, "b", ggml.Q8_0, 32)
	add(w)

	// Tensors of several types, default alignment.
	w = NewWriter()
	set(w, "general.architecture", "test")
	tensor(w, "f16", ggml.F16, 5)
	tensor(w, "q4k", ggml.Q4_K, 256)
	tensor(w, "iq4nl", ggml.IQ4_NL, 32, 1, 1, 2)
	tensor(w, "empty", ggml.F32, 0)
	add(w)

	// The same as version 2.
	v2 := bytes.Clone(seeds[len(seeds)-1])
	v2[4] = 2
	seeds = append(seeds, v2)
	return seeds
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
		for _, n := range []int{0, 4, 8, 23, 24, len(s) / 3, len(s) / 2, len(s) - 1} {
			if n >= 0 && n < len(s) {
				f.Add(s[:n])
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		if file.Version != 2 && file.Version != 3 {
			t.Fatalf("version %d accepted", file.Version)
		}
		if file.DataOffset < 0 || file.DataOffset > int64(len(data)) {
			t.Fatalf("data offset %d outside the %d-byte file", file.DataOffset, len(data))
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			if ti.Offset%file.Alignment != 0 {
				t.Fatalf("tensor %s: offset %d not aligned to %d", ti.Name, ti.Offset, file.Alignment)
			}
			b, err := file.TensorData(ti)
			if err != nil {
				t.Fatalf("tensor %s: %v", ti.Name, err)
			}
			if int64(len(b)) != ti.Size {
				t.Fatalf("tensor %s: %d bytes, want %d", ti.Name, len(b), ti.Size)
			}
			_ = ti.Elems()
		}
		for _, kv := range file.KVs {
			_ = kv.Value.Format(4)
		}
		// Whatever parses can be written back, and writing is a fixed point.
		first := rewrite(t, file)
		again, err := Parse(first)
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if len(again.KVs) != len(file.KVs) || len(again.Tensors) != len(file.Tensors) || again.Alignment != file.Alignment {
			t.Fatalf("rewrite changed counts: %d KVs, %d tensors, alignment %d; want %d, %d, %d",
				len(again.KVs), len(again.Tensors), again.Alignment, len(file.KVs), len(file.Tensors), file.Alignment)
		}
		if second := rewrite(t, again); !bytes.Equal(first, second) {
			t.Fatal("writing the rewritten file changed its bytes")
		}
		if err := file.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// rewrite writes f's metadata and tensors with a Writer.
func rewrite(t *testing.T, f *File) []byte {
	t.Helper()
	w := NewWriter()
	for _, kv := range f.KVs {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatalf("Set %s: %v", kv.Key, err)
		}
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		b, err := f.TensorData(ti)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, b); err != nil {
			t.Fatalf("AddTensor: %v", err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
