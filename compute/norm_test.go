package compute

import (
	"math"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
)

// Tolerance for the norms: the op and the test both work in float64, so only
// the final float32 rounding (2^-24 relative) separates them.
const normTol = 1e-6

func TestRMSNorm(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	for _, tc := range []struct {
		name    string
		shape   []int
		weights bool
		eps     float32
	}{
		{"2d", []int{5, 37}, true, 1e-5},
		{"no weight", []int{3, 70}, false, 1e-6},
		{"per head 3d", []int{4, 3, 19}, true, 1e-6},
		{"one element", []int{1, 1}, true, 1e-5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := f32("x", nil, tc.shape...)
			x.F32 = randVec(rng, x.Elems(), 2)
			d := x.Cols()
			var w *Tensor
			if tc.weights {
				w = f32("w", randVec(rng, d, 1.5), d)
			}
			dst := poisoned("dst", tc.shape...)
			if err := r.RMSNorm(dst, x, w, tc.eps); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, x.Elems())
			for i := range x.Rows() {
				row := x.F32[i*d : (i+1)*d]
				var ss float64
				for _, v := range row {
					ss += float64(v) * float64(v)
				}
				rms := math.Sqrt(ss/float64(d) + float64(tc.eps))
				for j, v := range row {
					want[i*d+j] = float64(v) / rms
					if w != nil {
						want[i*d+j] *= float64(w.F32[j])
					}
				}
			}
			checkClose(t, "rmsnorm", dst.F32, want, normTol)

			// In place gives the same values.
			if err := r.RMSNorm(x, x, w, tc.eps); err != nil {
				t.Fatal(err)
			}
			checkClose(t, "rmsnorm in place", x.F32, want, normTol)
		})
	}
}

func TestLayerNorm(t *testing.T) {
	rng := newRNG(t)
	r := NewReference()
	for _, tc := range []struct {
		name      string
		n, d      int
		w, b      bool
		offset    float64
		eps       float32
		f16Weight bool
	}{
		{"weight and bias", 5, 37, true, true, 0.3, 1e-5, false},
		{"none", 2, 70, false, false, -4, 1e-5, false},
		{"weight only f16", 3, 33, true, false, 10, 1e-6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := f32("x", randVec(rng, tc.n*tc.d, 2), tc.n, tc.d)
			for i := range x.F32 {
				x.F32[i] += float32(tc.offset) // a mean far from zero exercises the centring
			}
			var w, b *Tensor
			var wv, bv []float32
			if tc.w {
				wv = randVec(rng, tc.d, 1.5)
				w = f32("w", wv, tc.d)
				if tc.f16Weight {
					raw := make([]byte, 2*tc.d)
					for i, v := range wv {
						h := ggml.FP32ToFP16(v)
						raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
						wv[i] = ggml.FP16ToFP32(h)
					}
					w = &Tensor{Name: "w16", Type: ggml.F16, Shape: []int{tc.d}, Raw: raw}
				}
			}
			if tc.b {
				bv = randVec(rng, tc.d, 1)
				b = f32("b", bv, tc.d)
			}
			dst := poisoned("dst", tc.n, tc.d)
			if err := r.LayerNorm(dst, x, w, b, tc.eps); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, tc.n*tc.d)
			for i := range tc.n {
				row := x.F32[i*tc.d : (i+1)*tc.d]
				var mean float64
				for _, v := range row {
					mean += float64(v)
				}
				mean /= float64(tc.d)
				var vr float64
				for _, v := range row {
					vr += (float64(v) - mean) * (float64(v) - mean)
				}
				vr /= float64(tc.d)
				for j, v := range row {
					y := (float64(v) - mean) / math.Sqrt(vr+float64(tc.eps))
					if wv != nil {
						y *= float64(wv[j])
					}
					if bv != nil {
						y += float64(bv[j])
					}
					want[i*tc.d+j] = y
				}
			}
			checkClose(t, "layernorm", dst.F32, want, normTol)
		})
	}
}

func TestNormErrors(t *testing.T) {
	r := NewReference()
	x := f32("x", make([]float32, 5*64), 5, 64)
	dst := f32("dst", make([]float32, 5*64), 5, 64)
	wantErr(t, r.RMSNorm(dst, x, f32("w", make([]float32, 32), 32), 1e-5), "rmsnorm", "x F32[5 64]", "w F32[32]")
	wantErr(t, r.RMSNorm(f32("dst", make([]float32, 4*64), 4, 64), x, nil, 1e-5), "rmsnorm", "dst F32[4 64]")
	wantErr(t, r.RMSNorm(dst, x, f32("w", make([]float32, 64), 1, 64), 1e-5), "w F32[1 64]")
	wantErr(t, r.RMSNorm(dst, x, nil, -1e-5), "eps -1e-05")
	wantErr(t, r.LayerNorm(dst, x, nil, f32("b", make([]float32, 63), 63), 1e-5), "layernorm", "b F32[63]")
	q := &Tensor{Name: "xq", Type: ggml.Q8_0, Shape: []int{5, 64}, Raw: make([]byte, 5*68)}
	wantErr(t, r.LayerNorm(dst, q, nil, nil, 1e-5), "x xq Q8_0[5 64] must be F32")
}
