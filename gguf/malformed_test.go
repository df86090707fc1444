package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
)

// raw assembles GGUF bytes by hand, for files the Writer refuses to make.
type raw struct{ bytes.Buffer }

func (r *raw) u8(v uint8) *raw { r.WriteByte(v); return r }
func (r *raw) u32(v uint32) *raw {
	r.Write(binary.LittleEndian.AppendUint32(nil, v))
	return r
}
func (r *raw) u64(v uint64) *raw {
	r.Write(binary.LittleEndian.AppendUint64(nil, v))
	return r
}
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.WriteString(s); return r }

// header starts a file: magic, version, tensor and KV counts.
func header(version uint32, nTensors, nKV uint64) *raw {
	r := &raw{}
	r.WriteString("GGUF")
	return r.u32(version).u64(nTensors).u64(nKV)
}

// tensor appends a tensor info.
func (r *raw) tensor(name string, typ ggml.Type, offset uint64, dims ...uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(uint32(typ)).u64(offset)
}

// data pads with zeros to a multiple of a, then appends n data bytes.
func (r *raw) data(a, n int) *raw {
	for r.Len()%a != 0 {
		r.WriteByte(0)
	}
	r.Write(make([]byte, n))
	return r
}

func TestParseV2(t *testing.T) {
	r := header(2, 2, 3)
	r.str("general.architecture").u32(uint32(TypeString)).str("llama")
	r.str("llama.context_length").u32(uint32(TypeUint32)).u32(256)
	r.str("tokenizer.ggml.tokens").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(2).str("a").str("bc")
	r.tensor("w", ggml.F32, 0, 3)
	r.tensor("v", ggml.F16, 32, 2, 2)
	r.data(32, 32)
	r.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f, err := Parse(r.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 {
		t.Errorf("version %d, want 2", f.Version)
	}
	if n, err := f.GetUint32("llama.context_length"); err != nil || n != 256 {
		t.Errorf("context length %d, %v", n, err)
	}
	if toks, err := f.GetStrings("tokenizer.ggml.tokens"); err != nil || len(toks) != 2 || toks[1] != "bc" {
		t.Errorf("tokens %q, %v", toks, err)
	}
	v, _ := f.Tensor("v")
	b, err := f.TensorData(v)
	if err != nil || !bytes.Equal(b, []byte{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("tensor v data %v, %v", b, err)
	}
}

func TestParseMalformed(t *testing.T) {
	kv := func(r *raw, key string, typ ValueType) *raw { return r.str(key).u32(uint32(typ)) }
	nested := func(depth int) []byte {
		r := header(3, 0, 1)
		kv(r, "deep", TypeArray)
		for i := 0; i < depth-1; i++ {
			r.u32(uint32(TypeArray)).u64(1)
		}
		r.u32(uint32(TypeUint8)).u64(1).u8(7)
		return r.Bytes()
	}
	if _, err := Parse(nested(maxDepth)); err != nil {
		t.Fatalf("arrays nested %d deep: %v", maxDepth, err)
	}
	oneTensor := func(typ ggml.Type, offset uint64, dataLen int, dims ...uint64) []byte {
		return header(3, 1, 0).tensor("blk.0.w", typ, offset, dims...).data(32, dataLen).Bytes()
	}
	cases := []struct {
		name string
		data []byte
		want string // a substring the error must contain
	}{
		{"empty", nil, "too short"},
		{"short magic", []byte("GGU"), "too short"},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), "bad magic"},
		{"no version", []byte("GGUF\x03\x00"), "version"},
		{"version 1", header(1, 0, 0).Bytes(), "version 1"},
		{"version 4", header(4, 0, 0).Bytes(), "version 4"},
		{"version 0", header(0, 0, 0).Bytes(), "version 0"},
		{"big endian", header(0x03000000, 0, 0).Bytes(), "big-endian"},
		{"no counts", header(3, 0, 0).Bytes()[:12], "tensor count"},
		{"huge tensor count", header(3, 1<<62, 0).Bytes(), "tensor count"},
		{"huge kv count", header(3, 0, 1<<62).Bytes(), "metadata count"},
		{"kv count past end", header(3, 0, 2).str("a").u32(uint32(TypeUint8)).u8(1).Bytes(), "metadata"},
		{"huge key length", header(3, 0, 1).u64(1 << 62).u64(0).Bytes(), "key needs"},
		{"empty key", kv(header(3, 0, 1), "", TypeUint8).u8(1).Bytes(), "empty key"},
		{"unknown value type", kv(header(3, 0, 1), "k", 13).u64(0).Bytes(), "unknown value type id 13"},
		{"truncated uint32", kv(header(3, 0, 1), "k", TypeUint32).u8(1).Bytes(), "uint32"},
		{"huge string", kv(header(3, 0, 1), "k", TypeString).u64(math.MaxUint64).Bytes(), "string needs"},
		{"bool 2", kv(header(3, 0, 1), "k", TypeBool).u8(2).Bytes(), "bool byte is 2"},
		{"bool array 7", kv(header(3, 0, 1), "k", TypeArray).u32(uint32(TypeBool)).u64(2).u8(1).u8(7).Bytes(), "bool byte is 7"},
		{"huge uint8 array", kv(header(3, 0, 1), "k", TypeArray).u32(uint32(TypeUint8)).u64(1 << 40).u64(0).Bytes(), "array of uint8 count"},
		{"huge string array", kv(header(3, 0, 1), "k", TypeArray).u32(uint32(TypeString)).u64(1 << 30).u64(0).u64(0).Bytes(), "array of string count"},
		{"huge nested array", kv(header(3, 0, 1), "k", TypeArray).u32(uint32(TypeArray)).u64(1 << 30).u64(0).Bytes(), "array of array count"},
		{"string array element too long", kv(header(3, 0, 1), "tokens", TypeArray).u32(uint32(TypeString)).u64(2).str("a").u64(100).Bytes(), "string array element 1"},
		{"unknown array element type", kv(header(3, 0, 1), "k", TypeArray).u32(99).u64(0).Bytes(), "element type id 99"},
		{"array too deep", nested(maxDepth + 1), "nested more than"},
		{"duplicate key", kv(kv(header(3, 0, 2), "k", TypeUint8).u8(1), "k", TypeUint8).u8(2).Bytes(), `duplicate key "k"`},
		{"alignment zero", kv(header(3, 0, 1), KeyAlignment, TypeUint32).u32(0).Bytes(), "power of two"},
		{"alignment 48", kv(header(3, 0, 1), KeyAlignment, TypeUint32).u32(48).Bytes(), "power of two"},
		{"alignment uint64", kv(header(3, 0, 1), KeyAlignment, TypeUint64).u64(64).Bytes(), "want uint32"},
		{"tensor count past end", header(3, 2, 0).tensor("a", ggml.F32, 0, 1).u64(0).u64(0).u64(0).u64(0).Bytes(), "tensor #1"},
		{"empty tensor name", header(3, 1, 0).tensor("", ggml.F32, 0, 1).data(32, 4).Bytes(), "empty tensor name"},
		{"zero dims", oneTensor(ggml.F32, 0, 4), "blk.0.w: 0 dimensions"},
		{"five dims", oneTensor(ggml.F32, 0, 4, 1, 1, 1, 1, 1), "blk.0.w: 5 dimensions"},
		{"huge dim count", header(3, 1, 0).str("blk.0.w").u32(1<<31).data(32, 64).Bytes(), "blk.0.w: 2147483648 dimensions"},
		{"truncated dims", header(3, 1, 0).str("blk.0.w").u32(3).u64(4).u64(4).Bytes(), "blk.0.w: at offset"},
		{"unknown type", oneTensor(ggml.Type(99), 0, 4, 1), "blk.0.w: unknown GGML type id 99"},
		{"retired type 4", oneTensor(ggml.Type(4), 0, 4, 32), "blk.0.w: unknown GGML type id 4"},
		{"elements overflow", oneTensor(ggml.F32, 0, 4, 1<<32, 1<<32), "blk.0.w: shape [4294967296 4294967296] overflows"},
		{"bytes overflow", oneTensor(ggml.F64, 0, 4, 1<<31, 1<<31), "blk.0.w: F64: shape [2147483648 2147483648] overflows"},
		{"dim max uint64", oneTensor(ggml.F32, 0, 4, math.MaxUint64), "blk.0.w: shape"},
		{"partial block", oneTensor(ggml.Q4_0, 0, 18, 31), "blk.0.w: Q4_0: shape [31]"},
		{"misaligned offset", oneTensor(ggml.F32, 4, 16, 2), "blk.0.w: offset 4 is not a multiple of the alignment 32"},
		{"data past end", oneTensor(ggml.F32, 0, 15, 4), "blk.0.w: data [0, 16) runs past the end"},
		{"offset past end", oneTensor(ggml.F32, 1<<40, 16, 4), "blk.0.w: data"},
		{"offset overflow", oneTensor(ggml.F32, math.MaxUint64&^31, 16, 4), "blk.0.w: data"},
		{"no data section", header(3, 1, 0).tensor("blk.0.w", ggml.F32, 0, 1).Bytes(), "tensor blk.0.w: data section starts at offset 64, past the end"},
		{"duplicate tensor", header(3, 2, 0).tensor("a", ggml.F32, 0, 1).tensor("a", ggml.F32, 32, 1).data(32, 64).Bytes(), "tensor a: duplicate"},
		{"overlapping tensors", header(3, 2, 0).tensor("a", ggml.F32, 0, 16).tensor("b", ggml.F32, 32, 8).data(32, 96).Bytes(), "tensor b: data [32, 64) overlaps tensor a at [0, 64)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			if err == nil {
				t.Fatalf("Parse succeeded (%d KVs, %d tensors), want an error containing %q", len(f.KVs), len(f.Tensors), c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

// TestParseTruncated checks that every prefix of a valid file that cuts
// into the metadata or the tensor data is an error.
func TestParseTruncated(t *testing.T) {
	w := NewWriter()
	mustSet(t, w, "general.architecture", "llama")
	mustSet(t, w, "tokens", []string{"<unk>", "<s>", "hello"})
	mustSet(t, w, "nested", Array{TypeArray, []Array{{TypeInt16, []int16{1, 2}}}})
	if err := w.AddTensor("a", ggml.Q8_0, []uint64{32, 2}, make([]byte, 68)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", ggml.F32, []uint64{3}, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	f, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.Tensor("b")
	end := int(f.DataOffset) + int(b.Offset) + int(b.Size)
	for n := 0; n < end; n++ {
		if _, err := Parse(full[:n]); err == nil {
			t.Errorf("prefix of %d of %d bytes parsed without error", n, len(full))
		}
	}
	// The trailing padding after the last tensor is optional.
	if _, err := Parse(full[:end]); err != nil {
		t.Errorf("file without trailing padding: %v", err)
	}
}

func mustSet(t *testing.T, w *Writer, key string, v any) {
	t.Helper()
	if err := w.Set(key, v); err != nil {
		t.Fatal(err)
	}
}

func TestGetters(t *testing.T) {
	w := NewWriter()
	mustSet(t, w, "u8", uint8(7))
	mustSet(t, w, "i32", int32(-3))
	mustSet(t, w, "i32pos", int32(12))
	mustSet(t, w, "u64", uint64(1<<40))
	mustSet(t, w, "u64small", uint64(5))
	mustSet(t, w, "u64huge", uint64(math.MaxUint64))
	mustSet(t, w, "f32", float32(0.5))
	mustSet(t, w, "f64", 1e-5)
	mustSet(t, w, "s", "text")
	mustSet(t, w, "b", true)
	mustSet(t, w, "strs", []string{"x", "y"})
	mustSet(t, w, "f64s", []float64{1.5, -2})
	mustSet(t, w, "u32s", []uint32{1, 2, math.MaxInt32})
	mustSet(t, w, "u32s.big", []uint32{1, math.MaxInt32 + 1})
	mustSet(t, w, "i64s.neg", []int64{math.MinInt32, -1})
	mustSet(t, w, "i64s.low", []int64{math.MinInt32 - 1})
	mustSet(t, w, "u8s", []uint8{0, 255})
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}

	check := func(name string, got any, err error, want any) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !equalAny(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// failure checks that err is non-nil and mentions each of parts.
	failure := func(name string, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %q does not mention %q", name, err, p)
			}
		}
	}

	u, err := f.GetUint32("u8")
	check("GetUint32(u8)", u, err, uint32(7))
	u, err = f.GetUint32("i32pos")
	check("GetUint32(i32pos)", u, err, uint32(12))
	u, err = f.GetUint32("u64small")
	check("GetUint32(u64small)", u, err, uint32(5))
	_, err = f.GetUint32("i32")
	failure("GetUint32(i32)", err, "i32", "-3", "uint32")
	_, err = f.GetUint32("u64")
	failure("GetUint32(u64)", err, "u64", "uint32")
	_, err = f.GetUint32("s")
	failure("GetUint32(s)", err, "key s", "want uint32", "found string")
	if !errors.Is(err, ErrWrongType) {
		t.Errorf("GetUint32(s) error %v does not wrap ErrWrongType", err)
	}
	_, err = f.GetUint32("missing")
	failure("GetUint32(missing)", err, "missing")
	if !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("GetUint32(missing) error %v does not wrap ErrKeyNotFound", err)
	}

	i, err := f.GetInt64("i32")
	check("GetInt64(i32)", i, err, int64(-3))
	i, err = f.GetInt64("u64")
	check("GetInt64(u64)", i, err, int64(1<<40))
	_, err = f.GetInt64("u64huge")
	failure("GetInt64(u64huge)", err, "u64huge", "int64")
	_, err = f.GetInt64("f32")
	failure("GetInt64(f32)", err, "f32", "want int64", "found float32")

	x, err := f.GetFloat32("f32")
	check("GetFloat32(f32)", x, err, float32(0.5))
	x, err = f.GetFloat32("f64")
	check("GetFloat32(f64)", x, err, float32(1e-5))
	_, err = f.GetFloat32("u8")
	failure("GetFloat32(u8)", err, "u8", "want float32", "found uint8")

	s, err := f.GetString("s")
	check("GetString", s, err, "text")
	_, err = f.GetString("strs")
	failure("GetString(strs)", err, "strs", "want string", "found array of string")
	b, err := f.GetBool("b")
	check("GetBool", b, err, true)
	_, err = f.GetBool("u8")
	failure("GetBool(u8)", err, "u8", "want bool")

	ss, err := f.GetStrings("strs")
	check("GetStrings", ss, err, []string{"x", "y"})
	ss[0] = "changed"
	if again, _ := f.GetStrings("strs"); again[0] != "x" {
		t.Error("GetStrings returned the file's own slice")
	}
	_, err = f.GetStrings("u32s")
	failure("GetStrings(u32s)", err, "u32s", "want array of string", "found array of uint32")
	_, err = f.GetStrings("s")
	failure("GetStrings(s)", err, "want array of string", "found string")

	fs, err := f.GetFloat32s("f64s")
	check("GetFloat32s(f64s)", fs, err, []float32{1.5, -2})
	_, err = f.GetFloat32s("strs")
	failure("GetFloat32s(strs)", err, "strs", "array of float32", "array of string")

	is, err := f.GetInt32s("u32s")
	check("GetInt32s(u32s)", is, err, []int32{1, 2, math.MaxInt32})
	is, err = f.GetInt32s("i64s.neg")
	check("GetInt32s(i64s.neg)", is, err, []int32{math.MinInt32, -1})
	is, err = f.GetInt32s("u8s")
	check("GetInt32s(u8s)", is, err, []int32{0, 255})
	_, err = f.GetInt32s("u32s.big")
	failure("GetInt32s(u32s.big)", err, "u32s.big", "element 1", "2147483648")
	_, err = f.GetInt32s("i64s.low")
	failure("GetInt32s(i64s.low)", err, "element 0", "-2147483649")
	_, err = f.GetInt32s("f64s")
	failure("GetInt32s(f64s)", err, "f64s", "array of float64")

	u, err = f.GetUint32Or("missing", 9)
	check("GetUint32Or(missing)", u, err, uint32(9))
	u, err = f.GetUint32Or("u8", 9)
	check("GetUint32Or(u8)", u, err, uint32(7))
	_, err = f.GetUint32Or("s", 9)
	failure("GetUint32Or(s)", err, "key s")
	s, err = f.GetStringOr("missing", "def")
	check("GetStringOr(missing)", s, err, "def")
	_, err = f.GetStringOr("u8", "def")
	failure("GetStringOr(u8)", err, "u8")
	x, err = f.GetFloat32Or("missing", 1e-6)
	check("GetFloat32Or(missing)", x, err, float32(1e-6))
	_, err = f.GetFloat32Or("s", 1)
	failure("GetFloat32Or(s)", err, "key s")
	b, err = f.GetBoolOr("missing", true)
	check("GetBoolOr(missing)", b, err, true)
	_, err = f.GetBoolOr("s", true)
	failure("GetBoolOr(s)", err, "key s")
	i, err = f.GetInt64Or("missing", -7)
	check("GetInt64Or(missing)", i, err, int64(-7))
	if _, err := f.Architecture(); !errors.Is(err, ErrKeyNotFound) || !strings.Contains(err.Error(), "general.architecture") {
		t.Errorf("Architecture without the key: %v", err)
	}
}

func equalAny(a, b any) bool {
	switch x := a.(type) {
	case []string:
		return slicesEqual(x, b.([]string))
	case []float32:
		return slicesEqual(x, b.([]float32))
	case []int32:
		return slicesEqual(x, b.([]int32))
	}
	return a == b
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWriterErrors(t *testing.T) {
	tooDeep := Array{TypeUint8, []uint8{1}}
	for i := 0; i < maxDepth; i++ {
		tooDeep = Array{TypeArray, []Array{tooDeep}}
	}
	sets := []struct {
		name string
		key  string
		v    any
		want string
	}{
		{"int", "k", 3, "sized integer"},
		{"uint", "k", uint(3), "sized integer"},
		{"[]int", "k", []int{3}, "sized integer"},
		{"map", "k", map[string]int{}, "unsupported Go type"},
		{"nil", "k", nil, "unsupported Go type"},
		{"empty key", "", uint8(1), "empty key"},
		{"array mismatch", "k", Array{TypeString, []int32{1}}, "array of string holds a Go []int32"},
		{"array untyped", "k", Array{TypeString, nil}, "want a typed slice"},
		{"array bad elem", "k", Array{ValueType(42), []int32{1}}, "unknown element type"},
		{"nested mismatch", "k", Array{TypeArray, []Array{{TypeBool, []string{"x"}}}}, "element 0"},
		{"too deep", "k", tooDeep, "nested more than"},
		{"value mismatch", "k", Value{TypeUint32, int32(1)}, "uint32 holds a Go int32"},
		{"alignment wrong type", KeyAlignment, uint64(64), "want uint32"},
		{"alignment not power of two", KeyAlignment, uint32(24), "power of two"},
	}
	for _, c := range sets {
		w := NewWriter()
		err := w.Set(c.key, c.v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Set %s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	w := NewWriter()
	for _, a := range []uint64{0, 3, 48, 1 << 32} {
		if err := w.SetAlignment(a); err == nil {
			t.Errorf("SetAlignment(%d) succeeded", a)
		}
	}
	adds := []struct {
		name string
		tn   string
		typ  ggml.Type
		dims []uint64
		n    int
		want string
	}{
		{"empty name", "", ggml.F32, []uint64{1}, 4, "empty tensor name"},
		{"wrong length", "w", ggml.F32, []uint64{3, 2}, 20, "w: F32 shape [3 2] takes 24 bytes, data has 20"},
		{"unknown type", "w", ggml.Type(77), []uint64{1}, 4, "w: unknown GGML type id 77"},
		{"no dims", "w", ggml.F32, nil, 0, "w: 0 dimensions"},
		{"five dims", "w", ggml.F32, []uint64{1, 1, 1, 1, 1}, 4, "w: 5 dimensions"},
		{"partial block", "w", ggml.Q8_0, []uint64{16}, 34, "not a multiple of the block size 32"},
		{"overflow", "w", ggml.F32, []uint64{1 << 62, 4}, 0, "overflows"},
	}
	for _, c := range adds {
		w := NewWriter()
		err := w.AddTensor(c.tn, c.typ, c.dims, make([]byte, c.n))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddTensor %s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	w = NewWriter()
	if err := w.AddTensor("w", ggml.F32, []uint64{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("w", ggml.F32, []uint64{1}, make([]byte, 4)); err == nil || !strings.Contains(err.Error(), "w: duplicate") {
		t.Errorf("duplicate AddTensor: %v", err)
	}
}

func TestWriterSetReplaces(t *testing.T) {
	w := NewWriter()
	mustSet(t, w, "a", uint32(1))
	mustSet(t, w, "b", "x")
	mustSet(t, w, "a", "now a string")
	if err := w.SetAlignment(128); err != nil {
		t.Fatal(err)
	}
	if err := w.SetAlignment(32); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range f.KVs {
		keys = append(keys, kv.Key)
	}
	if strings.Join(keys, ",") != "a,b,"+KeyAlignment {
		t.Errorf("keys %v, want [a b %s]", keys, KeyAlignment)
	}
	if s, err := f.GetString("a"); err != nil || s != "now a string" {
		t.Errorf("a = %q, %v", s, err)
	}
	if f.Alignment != 32 {
		t.Errorf("alignment %d, want 32 after setting it back", f.Alignment)
	}
	// Without a custom alignment no general.alignment key is written.
	w = NewWriter()
	if err := w.SetAlignment(32); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if f, err := Parse(buf.Bytes()); err != nil || len(f.KVs) != 0 {
		t.Errorf("default alignment wrote %d KVs (%v)", len(f.KVs), err)
	}
}

func TestValueString(t *testing.T) {
	cases := []struct {
		v    Value
		want string
	}{
		{Value{TypeString, "a\"b"}, `"a\"b"`},
		{Value{TypeFloat32, float32(0.1)}, "0.1"},
		{Value{TypeInt8, int8(-3)}, "-3"},
		{Value{TypeBool, true}, "true"},
		{Value{TypeArray, Array{TypeString, []string{"<unk>", "<s>", "</s>"}}}, `[string x 3] ["<unk>", "<s>", "</s>"]`},
		{Value{TypeArray, Array{TypeInt32, make([]int32, 10)}}, `[int32 x 10] [0, 0, 0, 0, 0, 0, 0, 0, ...]`},
		{Value{TypeArray, Array{TypeUint8, []uint8{}}}, `[uint8 x 0] []`},
		{Value{TypeArray, Array{TypeArray, []Array{{TypeBool, []bool{true}}}}}, `[array x 1] [[bool x 1] [true]]`},
	}
	for _, c := range cases {
		if got := c.v.String(); got != c.want {
			t.Errorf("String() = %s, want %s", got, c.want)
		}
	}
	if got := (Value{TypeArray, Array{TypeInt32, []int32{1, 2, 3}}}).Format(2); got != "[int32 x 3] [1, 2, ...]" {
		t.Errorf("Format(2) = %s", got)
	}
	if got := (Value{TypeArray, Array{TypeInt32, []int32{1, 2, 3}}}).Format(0); got != "[int32 x 3] [...]" {
		t.Errorf("Format(0) = %s", got)
	}
	if got := ValueType(99).String(); got != "type(99)" {
		t.Errorf("ValueType(99) = %s", got)
	}
}
