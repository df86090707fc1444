package compute

import (
	"math"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
)

// Tolerance for elementwise ops: float64 math on both sides, float32 output.
const elemTol = 1e-6

func gelu64(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func TestElementwise(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	const n, f = 5, 37
	a := randVec(rng, n*f, 6)
	b := randVec(rng, n*f, 3)
	at := func() *Tensor { return f32("a", append([]float32(nil), a...), n, f) }
	bt := func() *Tensor { return f32("b", append([]float32(nil), b...), n, f) }
	each := func(fn func(x, y float64) float64) []float64 {
		w := make([]float64, len(a))
		for i := range a {
			w[i] = fn(float64(a[i]), float64(b[i]))
		}
		return w
	}

	t.Run("add", func(t *testing.T) {
		dst := poisoned("dst", n, f)
		if err := r.Add(dst, at(), bt()); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "add", dst.F32, each(func(x, y float64) float64 { return x + y }), elemTol)
		x := at() // dst aliasing a, as residual adds do
		if err := r.Add(x, x, bt()); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "add in place", x.F32, each(func(x, y float64) float64 { return x + y }), elemTol)
	})
	t.Run("addbias", func(t *testing.T) {
		x := at()
		bias := randVec(rng, f, 1)
		if err := r.AddBias(x, f32("bias", bias, f)); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, len(a))
		for i := range want {
			want[i] = float64(a[i]) + float64(bias[i%f])
		}
		checkClose(t, "addbias", x.F32, want, elemTol)
	})
	t.Run("scale", func(t *testing.T) {
		x := at()
		if err := r.Scale(x, -0.37); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "scale", x.F32, each(func(x, _ float64) float64 { return x * float64(float32(-0.37)) }), elemTol)
	})
	t.Run("softcap", func(t *testing.T) {
		x := at()
		const c = 2.5
		if err := r.Softcap(x, c); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "softcap", x.F32, each(func(x, _ float64) float64 { return c * math.Tanh(x/c) }), elemTol)
		for _, v := range x.F32 {
			if math.Abs(float64(v)) > c {
				t.Fatalf("softcap %v output %v beyond the cap", c, v)
			}
		}
	})
	t.Run("swiglu", func(t *testing.T) {
		dst := poisoned("dst", n, f)
		if err := r.SwiGLU(dst, at(), bt()); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "swiglu", dst.F32, each(func(g, u float64) float64 { return g / (1 + math.Exp(-g)) * u }), elemTol)
	})
	t.Run("geglu", func(t *testing.T) {
		dst := poisoned("dst", n, f)
		if err := r.GeGLU(dst, at(), bt()); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "geglu", dst.F32, each(func(g, u float64) float64 { return gelu64(g) * u }), elemTol)
	})
	t.Run("gelu", func(t *testing.T) {
		x := at()
		if err := r.GELU(x); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "gelu", x.F32, each(func(x, _ float64) float64 { return gelu64(x) }), elemTol)
		// Hand values of the tanh approximation.
		for _, c := range []struct{ x, want float64 }{{0, 0}, {1, 0.8411919906082768}, {-1, -0.15880800939172324}, {3, 2.9963625834436774}} {
			if got := GELUTanh(float32(c.x)); math.Abs(float64(got)-c.want) > 1e-6 {
				t.Fatalf("GELUTanh(%v) = %v, want %v", c.x, got, c.want)
			}
		}
	})
	t.Run("softmax", func(t *testing.T) {
		x := at()
		x.F32[3] = 80 // large values must not overflow: the max is subtracted
		x.F32[4] = 85
		in := append([]float32(nil), x.F32...)
		if err := r.Softmax(x); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, len(in))
		for i := range n {
			row := in[i*f : (i+1)*f]
			m := math.Inf(-1)
			for _, v := range row {
				m = max(m, float64(v))
			}
			var s, total float64
			for _, v := range row {
				s += math.Exp(float64(v) - m)
			}
			for j, v := range row {
				want[i*f+j] = math.Exp(float64(v)-m) / s
				total += float64(x.F32[i*f+j])
			}
			if math.Abs(total-1) > 1e-5 {
				t.Fatalf("softmax row %d sums to %v", i, total)
			}
		}
		checkClose(t, "softmax", x.F32, want, elemTol)
	})
	t.Run("softmax all masked", func(t *testing.T) {
		inf := float32(math.Inf(-1))
		x := f32("x", []float32{inf, inf, inf, 1, inf, 1}, 2, 3)
		if err := r.Softmax(x); err != nil {
			t.Fatal(err)
		}
		checkClose(t, "softmax masked", x.F32, []float64{0, 0, 0, 0.5, 0, 0.5}, elemTol)
	})
}

func TestCopyColumns(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	// Split a fused QKV [n, q+k+v] into its parts, and write a part back.
	const n, nq, nk, nv = 5, 24, 8, 9
	qkv := f32("qkv", randVec(rng, n*(nq+nk+nv), 1), n, nq+nk+nv)
	parts := []struct {
		name      string
		col, cols int
	}{{"q", 0, nq}, {"k", nq, nk}, {"v", nq + nk, nv}}
	for _, p := range parts {
		dst := poisoned(p.name, n, p.cols)
		if err := r.Copy(dst, qkv, 0, p.col, p.cols); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, n*p.cols)
		for i := range n {
			for j := range p.cols {
				want[i*p.cols+j] = float64(qkv.F32[i*(nq+nk+nv)+p.col+j])
			}
		}
		checkClose(t, "copy "+p.name, dst.F32, want, 0)
	}
	// Into the middle of a wider destination: other columns stay.
	wide := f32("wide", make([]float32, n*20), n, 20)
	if err := r.Copy(wide, qkv, 7, nq, nk); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		for j := range 20 {
			want := float32(0)
			if j >= 7 && j < 7+nk {
				want = qkv.F32[i*(nq+nk+nv)+nq+j-7]
			}
			if got := wide.F32[i*20+j]; got != want {
				t.Fatalf("wide[%d, %d] = %v, want %v", i, j, got, want)
			}
		}
	}
	wantErr(t, r.Copy(poisoned("d", n, 8), qkv, 0, 36, 8), "columns [36, 44) outside src")
	wantErr(t, r.Copy(poisoned("d", n, 8), qkv, 1, 0, 8), "columns [1, 9) outside dst")
	wantErr(t, r.Copy(poisoned("d", n+1, 8), qkv, 0, 0, 8), "5 rows", "6")
	wantErr(t, r.Copy(poisoned("d", n, 8), qkv, 0, -1, 8), "outside src")
}

func TestElementwiseErrors(t *testing.T) {
	r := NewReference()
	x := f32("x", make([]float32, 5*37), 5, 37)
	y := f32("y", make([]float32, 37*5), 37, 5)
	wantErr(t, r.Add(poisoned("dst", 5, 37), x, y), "add", "x F32[5 37]", "y F32[37 5]")
	wantErr(t, r.Add(poisoned("dst", 5, 36), x, x), "dst F32[5 36]")
	wantErr(t, r.SwiGLU(poisoned("dst", 5, 37), x, y), "swiglu")
	wantErr(t, r.GeGLU(poisoned("dst", 5, 37), y, x), "geglu")
	wantErr(t, r.AddBias(x, f32("b", make([]float32, 36), 36)), "addbias", "b F32[36]")
	wantErr(t, r.Softcap(x, 0), "cap 0")
	wantErr(t, r.Softcap(x, -1), "cap -1")
	q := &Tensor{Name: "q", Type: ggml.Q8_0, Shape: []int{1, 32}, Raw: make([]byte, 34)}
	wantErr(t, r.Softmax(q), "must be F32")
	wantErr(t, r.GELU(q), "must be F32")
}

func TestArgmaxRows(t *testing.T) {
	r := NewReference()
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	rows := [][]float32{
		{1, 3, 2, 3},                // tie: the lower index
		{-inf, -inf, -inf, -inf},    // nothing finite
		{nan, -2, nan, -1},          // NaN skipped
		{nan, nan, nan, nan},        // only NaN
		{-inf, -5, inf, 7},          // +Inf wins
		{-3.5, -3.5, -3.5, -3.4999}, // last one is larger
	}
	want := []int32{1, -1, 3, -1, 2, 3}
	x, err := r.NewTensor("x", ggml.F32, len(rows), 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range rows {
		copy(x.F32[i*4:], row)
	}
	got := make([]int32, len(rows))
	if err := r.ArgmaxRows(x, got); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d %v: argmax %d, want %d", i, rows[i], got[i], want[i])
		}
	}
	if err := r.ArgmaxRows(x, make([]int32, 5)); err == nil {
		t.Error("argmax with 5 dst slots for 6 rows: no error")
	}
}
