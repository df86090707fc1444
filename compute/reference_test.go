package compute

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/ggml"
)

// newRNG returns a generator with a fresh seed, logged so a failure can be replayed.
func newRNG(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// randVec returns n values uniform in [-scale, scale).
func randVec(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((2*rng.Float64() - 1) * scale)
	}
	return v
}

// f32 makes an F32 tensor over data (not copied).
func f32(name string, data []float32, shape ...int) *Tensor {
	return &Tensor{Name: name, Type: ggml.F32, Shape: shape, F32: data}
}

// poisoned makes an F32 tensor filled with NaN, so elements an op forgets to
// write fail the comparison.
func poisoned(name string, shape ...int) *Tensor {
	t := f32(name, nil, shape...)
	t.F32 = make([]float32, t.Elems())
	for i := range t.F32 {
		t.F32[i] = float32(math.NaN())
	}
	return t
}

// checkClose fails unless |got[i] - want[i]| <= tol * max(1, |want[i]|) for
// every i (a relative error with an absolute floor at 1). NaN never passes.
func checkClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, -1
	for i := range got {
		e := math.Abs(float64(got[i])-want[i]) / max(1, math.Abs(want[i]))
		if math.IsNaN(e) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
		if e > worst {
			worst, at = e, i
		}
	}
	if worst > tol {
		t.Fatalf("%s[%d] = %v, want %v: relative error %.3g > %.3g", what, at, got[at], want[at], worst, tol)
	}
	t.Logf("%s: max relative error %.3g (tolerance %.3g)", what, worst, tol)
}

// wantErr fails unless err is non-nil and mentions every fragment.
func wantErr(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

func TestReferenceMemory(t *testing.T) {
	r := NewReference()
	if r.Name() != "reference" {
		t.Fatalf("Name() = %q", r.Name())
	}
	x, err := r.NewTensor("x", ggml.F32, 3, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.F32) != 15 || x.Raw != nil {
		t.Fatalf("F32 tensor [3 5]: %d floats, raw %v", len(x.F32), x.Raw)
	}
	src := randVec(newRNG(t), 15, 1)
	if err := r.Write(x, src); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 15)
	if err := r.Read(x, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != src[i] {
			t.Fatalf("read back [%d] = %v, wrote %v", i, got[i], src[i])
		}
	}
	wantErr(t, r.Write(x, make([]float32, 14)), "15", "14")
	wantErr(t, r.Read(x, make([]float32, 16)), "15", "16")

	q, err := r.NewTensor("q", ggml.Q4_0, 3, 64)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Raw) != 3*2*18 || q.F32 != nil {
		t.Fatalf("Q4_0 [3 64]: %d bytes, want %d", len(q.Raw), 3*2*18)
	}
	wantErr(t, r.Read(q, make([]float32, 192)), "must be F32")
	_, err = r.NewTensor("bad", ggml.Q4_0, 3, 40)
	wantErr(t, err, "bad", "40")
	_, err = r.NewTensor("neg", ggml.F32, 3, -1)
	wantErr(t, err, "negative")
	_, err = r.NewTensor("noshape", ggml.F32)
	wantErr(t, err, "empty shape")

	r.Free(x)
	if x.F32 != nil {
		t.Fatal("Free left storage behind")
	}
	wantErr(t, r.Read(x, got), "holds 0 floats")
}

func TestReferenceUpload(t *testing.T) {
	r := NewReference()
	vals := randVec(newRNG(t), 6, 3)
	data := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	w, err := r.Upload("w", ggml.F32, []int{2, 3}, data)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if w.F32[i] != v {
			t.Fatalf("F32 upload [%d] = %v, want %v", i, w.F32[i], v)
		}
	}
	_, err = r.Upload("w", ggml.F32, []int{2, 3}, data[:20])
	wantErr(t, err, "24 bytes", "20")

	raw := make([]byte, 2*34)
	q, err := r.Upload("wq", ggml.Q8_0, []int{2, 32}, raw)
	if err != nil {
		t.Fatal(err)
	}
	if &q.Raw[0] != &raw[0] {
		t.Fatal("quantized upload copied the data; it should keep the caller's bytes")
	}
	_, err = r.Upload("wq", ggml.Q8_0, []int{2, 32}, raw[:67])
	wantErr(t, err, "wq", "68 bytes", "67")
	_, err = r.Upload("wi", ggml.IQ2_XXS, []int{1, 256}, make([]byte, 66))
	wantErr(t, err, "not supported")
}

func TestStorageMismatch(t *testing.T) {
	// The shape is the truth: storage of another length is an error, never
	// silently reinterpreted.
	r := NewReference()
	x := f32("x", make([]float32, 10), 2, 4)
	wantErr(t, r.Scale(x, 2), "x", "holds 10 floats", "8 elements")
	wantErr(t, r.GELU(nil), "nil")
	q := &Tensor{Name: "wq", Type: ggml.Q8_0, Shape: []int{2, 32}, Raw: make([]byte, 60)}
	dst := poisoned("dst", 1, 2)
	wantErr(t, r.MatMul(dst, f32("x", make([]float32, 32), 1, 32), q), "wq", "60 bytes", "68")
}
