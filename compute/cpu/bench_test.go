package cpu

import (
	"testing"
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
