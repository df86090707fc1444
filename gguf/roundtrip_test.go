package gguf

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/ggml"
)

// testKVs is metadata covering every value type, empty and nested arrays.
func testKVs() []KV {
	return []KV{
		{"general.architecture", Value{TypeString, "llama"}},
		{"t.uint8", Value{TypeUint8, uint8(200)}},
		{"t.int8", Value{TypeInt8, int8(-100)}},
		{"t.uint16", Value{TypeUint16, uint16(60000)}},
		{"t.int16", Value{TypeInt16, int16(-30000)}},
		{"t.uint32", Value{TypeUint32, uint32(4000000000)}},
		{"t.int32", Value{TypeInt32, int32(-2000000000)}},
		{"t.float32", Value{TypeFloat32, float32(3.25)}},
		{"t.bool.true", Value{TypeBool, true}},
		{"t.bool.false", Value{TypeBool, false}},
		{"t.string", Value{TypeString, "héllo\x00wörld ▁"}},
		{"t.string.empty", Value{TypeString, ""}},
		{"t.uint64", Value{TypeUint64, uint64(math.MaxUint64)}},
		{"t.int64", Value{TypeInt64, int64(math.MinInt64)}},
		{"t.float64", Value{TypeFloat64, 1e300}},
		{"a.uint8", Value{TypeArray, Array{TypeUint8, []uint8{0, 1, 255}}}},
		{"a.int8", Value{TypeArray, Array{TypeInt8, []int8{-128, 0, 127}}}},
		{"a.uint16", Value{TypeArray, Array{TypeUint16, []uint16{1, 65535}}}},
		{"a.int16", Value{TypeArray, Array{TypeInt16, []int16{-32768, 32767}}}},
		{"a.uint32", Value{TypeArray, Array{TypeUint32, []uint32{7, math.MaxUint32}}}},
		{"a.int32", Value{TypeArray, Array{TypeInt32, []int32{-1, 2, 3}}}},
		{"a.float32", Value{TypeArray, Array{TypeFloat32, []float32{-1.5, 0, float32(math.Inf(1))}}}},
		{"a.bool", Value{TypeArray, Array{TypeBool, []bool{true, false, true}}}},
		{"a.string", Value{TypeArray, Array{TypeString, []string{"<unk>", "", "▁the", "\xff\xfe"}}}},
		{"a.uint64", Value{TypeArray, Array{TypeUint64, []uint64{math.MaxUint64, 0}}}},
		{"a.int64", Value{TypeArray, Array{TypeInt64, []int64{math.MinInt64, math.MaxInt64}}}},
		{"a.float64", Value{TypeArray, Array{TypeFloat64, []float64{math.Pi, -0.5}}}},
		{"a.empty", Value{TypeArray, Array{TypeString, []string{}}}},
		{"a.nested", Value{TypeArray, Array{TypeArray, []Array{
			{TypeString, []string{"a", "b"}},
			{TypeInt32, []int32{1}},
			{TypeArray, []Array{{TypeFloat64, []float64{2.5}}, {TypeUint8, []uint8{}}}},
		}}}},
	}
}

type testTensor struct {
	name string
	typ  ggml.Type
	dims []uint64
}

// testTensors covers plain, block-quantized, K-quant and known-but-unsupported
// types, with awkward (non-power-of-two) shapes.
var testTensors = []testTensor{
	{"token_embd.weight", ggml.F32, []uint64{7, 3}},
	{"norm.weight", ggml.F16, []uint64{5}},
	{"blk.0.attn_q.weight", ggml.Q4_0, []uint64{64, 3}},
	{"blk.0.ffn_up.weight", ggml.Q8_0, []uint64{32, 3, 2}},
	{"blk.0.ffn_down.weight", ggml.Q4_K, []uint64{256, 1, 1, 2}},
	{"iq.weight", ggml.IQ2_XXS, []uint64{256}},
	{"mxfp4.weight", ggml.MXFP4, []uint64{32, 5}},
	{"empty", ggml.F32, []uint64{0, 4}},
	{"bf16", ggml.BF16, []uint64{3}},
}

// buildTestFile writes testKVs and testTensors with random data.
func buildTestFile(t *testing.T, rng *rand.Rand, alignment uint64) (raw []byte, kvs []KV, data map[string][]byte) {
	t.Helper()
	w := NewWriter()
	kvs = testKVs()
	for i, kv := range kvs {
		if err := w.Set(kv.Key, kv.Value.V); err != nil {
			t.Fatal(err)
		}
		if i == 3 && alignment != DefaultAlignment {
			if err := w.SetAlignment(alignment); err != nil {
				t.Fatal(err)
			}
			kvs = append(kvs[:4:4], append([]KV{{KeyAlignment, Value{TypeUint32, uint32(alignment)}}}, kvs[4:]...)...)
		}
	}
	data = map[string][]byte{}
	for _, tt := range testTensors {
		n := TensorInfo{Dims: tt.dims}
		size, err := tt.typ.RowSize(n.Elems())
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		data[tt.name] = b
		if err := w.AddTensor(tt.name, tt.typ, tt.dims, b); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes(), kvs, data
}

func TestRoundTrip(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, alignment := range []uint64{32, 64, 1, 4096} {
		raw, kvs, data := buildTestFile(t, rng, alignment)
		f, err := Parse(raw)
		if err != nil {
			t.Fatalf("alignment %d: %v", alignment, err)
		}
		if f.Version != 3 || f.Alignment != alignment {
			t.Errorf("version %d alignment %d, want 3 and %d", f.Version, f.Alignment, alignment)
		}
		if !reflect.DeepEqual(f.KVs, kvs) {
			for i := range max(len(f.KVs), len(kvs)) {
				if i >= len(f.KVs) || i >= len(kvs) || !reflect.DeepEqual(f.KVs[i], kvs[i]) {
					t.Errorf("alignment %d: first differing KV #%d", alignment, i)
					break
				}
			}
		}
		if len(f.Tensors) != len(testTensors) {
			t.Fatalf("%d tensors, want %d", len(f.Tensors), len(testTensors))
		}
		if f.DataOffset%int64(alignment) != 0 {
			t.Errorf("data offset %d not aligned to %d", f.DataOffset, alignment)
		}
		for i, tt := range testTensors {
			ti := &f.Tensors[i]
			if ti.Name != tt.name || ti.Type != tt.typ || !reflect.DeepEqual(ti.Dims, tt.dims) {
				t.Errorf("tensor #%d: got %s %s %v, want %s %s %v", i, ti.Name, ti.Type, ti.Dims, tt.name, tt.typ, tt.dims)
			}
			if ti.Offset%alignment != 0 {
				t.Errorf("tensor %s: offset %d not aligned to %d", ti.Name, ti.Offset, alignment)
			}
			got, err := f.TensorData(ti)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data[tt.name]) {
				t.Errorf("alignment %d: tensor %s: data differs", alignment, tt.name)
			}
		}
		// Writing what was read gives the same bytes.
		w := NewWriter()
		for _, kv := range f.KVs {
			if err := w.Set(kv.Key, kv.Value); err != nil {
				t.Fatal(err)
			}
		}
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			b, _ := f.TensorData(ti)
			if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, b); err != nil {
				t.Fatal(err)
			}
		}
		var again bytes.Buffer
		if _, err := w.WriteTo(&again); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), raw) {
			t.Errorf("alignment %d: rewriting the parsed file changed its bytes", alignment)
		}
	}
}

func TestSpecialFloats(t *testing.T) {
	nan32 := math.Float32frombits(0x7fc00123)
	nan64 := math.Float64frombits(0x7ff8000000000abc)
	negZero := math.Copysign(0, -1)
	w := NewWriter()
	for _, kv := range []struct {
		k string
		v any
	}{{"nan32", nan32}, {"nan64", nan64}, {"negzero", negZero}, {"inf", float32(math.Inf(-1))}} {
		if err := w.Set(kv.k, kv.v); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.Lookup("nan32")
	if math.Float32bits(v.V.(float32)) != 0x7fc00123 {
		t.Errorf("nan32 bits %#x", math.Float32bits(v.V.(float32)))
	}
	v, _ = f.Lookup("nan64")
	if math.Float64bits(v.V.(float64)) != 0x7ff8000000000abc {
		t.Errorf("nan64 bits %#x", math.Float64bits(v.V.(float64)))
	}
	v, _ = f.Lookup("negzero")
	if x := v.V.(float64); x != 0 || !math.Signbit(x) {
		t.Errorf("negzero = %v", x)
	}
	if x, err := f.GetFloat32("inf"); err != nil || !math.IsInf(float64(x), -1) {
		t.Errorf("inf = %v, %v", x, err)
	}
}

func TestWriteFileOpen(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	raw, kvs, data := buildTestFile(t, rng, 64)
	w := NewWriter()
	for _, kv := range kvs {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range testTensors {
		if err := w.AddTensor(tt.name, tt.typ, tt.dims, data[tt.name]); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "x.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, raw) {
		t.Error("WriteFile wrote different bytes from WriteTo")
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Alignment != 64 || len(f.Tensors) != len(testTensors) {
		t.Errorf("alignment %d, %d tensors", f.Alignment, len(f.Tensors))
	}
	ti, ok := f.Tensor("blk.0.ffn_up.weight")
	if !ok {
		t.Fatal("tensor blk.0.ffn_up.weight missing")
	}
	b, err := f.TensorData(ti)
	if err != nil || !bytes.Equal(b, data[ti.Name]) {
		t.Errorf("mapped tensor data differs (%v)", err)
	}
}

func TestOpenEmptyAndMissing(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.gguf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(empty); err == nil {
		t.Error("Open of an empty file succeeded")
	}
	if _, err := Open(filepath.Join(dir, "missing.gguf")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	// A stub naming itself must not loop forever.
	loop := filepath.Join(dir, "loop.gguf")
	if err := os.WriteFile(loop, []byte("loop.gguf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(loop); err == nil {
		t.Error("Open of a self-referencing link stub succeeded")
	}
}

func TestLinkStub(t *testing.T) {
	dir := t.TempDir()
	w := NewWriter()
	if err := w.Set("general.architecture", "llama"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(filepath.Join(dir, "models", "real.gguf")); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	stub := filepath.Join(sub, "stub.gguf")
	if err := os.WriteFile(stub, []byte("../models/real.gguf"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(stub)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if a, err := f.Architecture(); err != nil || a != "llama" {
		t.Errorf("architecture %q, %v", a, err)
	}
}
