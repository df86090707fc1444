package cpu

import (
	"fmt"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// BenchmarkVecDot measures one thread's row loop on a 64 × 4096 weight
// that stays in L2, so it reports kernel speed rather than memory speed
// (MB/s counts weight bytes). The pure-Go loop runs as type/go.
func BenchmarkVecDot(b *testing.B) {
	const rows, k = 64, 4096
	rng := newRNG(b)
	asm := kernels(true)
	pure := goKernels()
	for _, typ := range dotTypes {
		variants := []struct {
			name string
			kn   *kernel
		}{{"go", pure[typ]}}
		if asm[typ].asm != "" {
			variants = append(variants, struct {
				name string
				kn   *kernel
			}{"asm", asm[typ]})
		}
		w := randomWeights(rng, typ, rows, k)
		src := randomActivations(rng, k)
		for _, v := range variants {
			b.Run(typ.String()+"/"+v.name, func(b *testing.B) {
				x := xrowFor(b, v.kn, src)
				dst := make([]float32, rows)
				b.SetBytes(int64(len(w)))
				for b.Loop() {
					v.kn.rows(dst, w, len(w)/rows, x, k)
				}
			})
		}
	}
}

// BenchmarkMatMul multiplies by a weight of TinyLlama's ffn_up shape
// (w [m=5632, k=2048], GGUF ne [2048 5632]) on every thread, for one
// activation row (decode) and 32 (a prompt chunk). It cycles through
// copies of the weight totalling over 96 MiB, three times the L3 cache, so
// weights come from memory as in a real model; MB/s counts weight bytes.
func BenchmarkMatMul(b *testing.B) {
	const m, k = 5632, 2048
	rng := newRNG(b)
	be := New(0)
	defer be.Close()
	for _, typ := range dotTypes {
		var raw []byte
		var ws []*compute.Tensor
		for _, n := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/n=%d", typ, n), func(b *testing.B) {
				if ws == nil { // made on first use, so filtered runs skip it
					raw = randomWeights(rng, typ, m, k)
					for range max(2, (96<<20)/len(raw)+1) {
						w, err := be.Upload("w", typ, []int{m, k}, append([]byte(nil), raw...))
						if err != nil {
							b.Fatal(err)
						}
						ws = append(ws, w)
					}
				}
				x := newF32(b, be.Reference, randomActivations(rng, n*k), n, k)
				dst := newF32(b, be.Reference, nil, n, m)
				b.SetBytes(int64(len(raw)))
				i := 0
				for b.Loop() {
					if err := be.MatMul(dst, x, ws[i%len(ws)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// nopTask does nothing: BenchmarkPool measures dispatch alone.
type nopTask struct{}

func (nopTask) do(lo, hi int) {}

// BenchmarkPool is the cost of handing an op to the workers and waiting
// for them, back to back (the workers are still polling).
func BenchmarkPool(b *testing.B) {
	p := newPool(2)
	defer p.close()
	for b.Loop() {
		p.run(2, 1, nopTask{})
	}
}

// BenchmarkDecodeLike runs a decode-like sequence on both threads: per
// "layer" an RMSNorm, a 2048×2048 and two 256×2048 Q4_0 matmuls for one
// token, and another RMSNorm, ten times. The weights (3 MB) stay in L3, so
// it shows the per-op overhead (pool dispatch, quantization) that a real
// decode step pays around every matmul.
func BenchmarkDecodeLike(b *testing.B) {
	rng := newRNG(b)
	be := New(0)
	defer be.Close()
	const d = 2048
	wq, err := be.Upload("wq", ggml.Q4_0, []int{d, d}, randomWeights(rng, ggml.Q4_0, d, d))
	if err != nil {
		b.Fatal(err)
	}
	wk, err := be.Upload("wk", ggml.Q4_0, []int{256, d}, randomWeights(rng, ggml.Q4_0, 256, d))
	if err != nil {
		b.Fatal(err)
	}
	x := newF32(b, be.Reference, randomActivations(rng, d), 1, d)
	y := newF32(b, be.Reference, nil, 1, d)
	z := newF32(b, be.Reference, nil, 1, 256)
	for b.Loop() {
		for range 10 {
			must(b, be.RMSNorm(y, x, nil, 1e-5))
			must(b, be.MatMul(y, x, wq))
			must(b, be.MatMul(z, x, wk))
			must(b, be.MatMul(z, x, wk))
			must(b, be.RMSNorm(y, x, nil, 1e-5))
		}
	}
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
