package cpu

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
)

// TestQuantizeRounding checks the activation quantizers on hand-made blocks
// whose products land exactly on .5: llama.cpp rounds them to even.
func TestQuantizeRounding(t *testing.T) {
	// amax = 127 makes 127/amax exactly 1, so q = round_half_even(x).
	x := make([]float32, qk8)
	copy(x, []float32{127, 2.5, 3.5, -2.5, -0.5, 0.5, 1.5, -1.5, 0.49, -126.5})
	want := []int8{127, 2, 4, -2, 0, 0, 2, -2, 0, -126}
	q := make([]byte, q8_0Len)
	quantizeQ8_0(q, x)
	if d := binary.LittleEndian.Uint16(q); d != ggml.FP32ToFP16(1) {
		t.Errorf("Q8_0 d = %#04x, want f16(1) = %#04x", d, ggml.FP32ToFP16(1))
	}
	for i, w := range want {
		if got := int8(q[2+i]); got != w {
			t.Errorf("Q8_0 q[%d] for x = %g: %d, want %d", i, x[i], got, w)
		}
	}

	q1 := make([]byte, q8_1Len)
	quantizeQ8_1(q1, x)
	var sum int32
	for _, v := range q1[4:] {
		sum += int32(int8(v))
	}
	if s := binary.LittleEndian.Uint16(q1[2:]); s != ggml.FP32ToFP16(float32(sum)) {
		t.Errorf("Q8_1 s = %#04x, want f16(d·Σq) = f16(%d) = %#04x", s, sum, ggml.FP32ToFP16(float32(sum)))
	}

	// Q8_K: the element of largest magnitude keeps its sign (the first one
	// wins a tie), iscale = -127/max, q clamped to 127.
	xk := make([]float32, qkK)
	xk[3], xk[10], xk[20], xk[21] = -4, 4, 1, -3 // max = -4, iscale = 31.75
	qk := make([]byte, q8KLen)
	quantizeQ8_K(qk, xk)
	if d := math.Float32frombits(binary.LittleEndian.Uint32(qk)); d != 1/float32(31.75) {
		t.Errorf("Q8_K d = %g, want 1/31.75", d)
	}
	for i, w := range map[int]int8{3: -127, 10: 127, 20: 32, 21: -95} { // 31.75, -95.25
		if got := int8(qk[4+i]); got != w {
			t.Errorf("Q8_K q[%d] for x = %g: %d, want %d", i, xk[i], got, w)
		}
	}
	if bs := int16(binary.LittleEndian.Uint16(qk[4+qkK:])); bs != 0 {
		t.Errorf("Q8_K bsums[0] = %d, want -127+127 = 0", bs)
	}
	if bs := int16(binary.LittleEndian.Uint16(qk[4+qkK+2:])); bs != 32-95 {
		t.Errorf("Q8_K bsums[1] = %d, want %d", bs, 32-95)
	}
}

// TestQuantizeAsm checks that the AVX2 loads write exactly the bytes of
// the Go quantizers, on random rows and on blocks with .5 ties, zeros and
// extreme magnitudes.
func TestQuantizeAsm(t *testing.T) {
	if !asmSupported() {
		t.Skip("no assembly kernels on this CPU/build (needs amd64 with AVX2, FMA and F16C)")
	}
	rng := newRNG(t)
	const k = 256 * 4
	x := randomActivations(rng, k)
	clear(x[256:512])      // an all-zero Q8_K super-block
	x[600], x[700] = -9, 9 // a tie in magnitude: the first one sets the sign
	ties := x[64:96]       // amax 127: ties at .5
	for i := range ties {
		ties[i] = float32(rng.IntN(253)-126) + 0.5
	}
	ties[0] = 127
	copy(x[96:128], []float32{1e-30, -3e-39, 65504, 70000, -1e6, 1e-8})
	asm := kernels(true)
	for _, typ := range []ggml.Type{ggml.Q8_0, ggml.Q4_1, ggml.Q4_K, ggml.F16} {
		kn := asm[typ]
		want := quantizeRow(t, kn, x)
		xr := xrowFor(t, kn, x)
		if !bytes.Equal(xr.q, want) {
			for i := range want {
				if xr.q[i] != want[i] {
					t.Errorf("%s: activations quantized by the assembly load differ from %s's Go quantizer at byte %d: %#02x, want %#02x", typ, kn.x, i, xr.q[i], want[i])
					break
				}
			}
		}
		if typ == ggml.Q8_0 {
			for b := range k / qk8 {
				var s int32
				for _, v := range want[b*q8_0Len+2 : (b+1)*q8_0Len] {
					s += int32(int8(v))
				}
				if xr.sums[b] != s {
					t.Errorf("Q8_0 block %d: sum of quants %d, want %d", b, xr.sums[b], s)
				}
			}
		}
	}
}
