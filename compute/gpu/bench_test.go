package gpu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/ggml"
)

// benchWeight is an [m, k] weight of typ: a 16-row band quantized from
// random values, repeated (quantizing whole 4096-wide matrices in Go would
// dominate the benchmark's set-up; the kernel's speed does not depend on
// the values).
func benchWeight(tb testing.TB, typ ggml.Type, m, k int) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	const band = 16
	vals := randVec(rng, band*k, 1)
	raw, err := ggml.Quantize(typ, vals)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, 0, len(raw)*(m/band))
	for range m / band {
		out = append(out, raw...)
	}
	return out
}

// BenchmarkMatVec times y = W·x for one token on 4096x4096 and 11008x4096
// weights, reporting GB/s of weight bytes (each byte is read once). Enough
// copies of the weight rotate to exceed the L2 cache several times, and the
// launches replay from a captured graph, so the figure is the kernel's, not
// the host's launch cost.
func BenchmarkMatVec(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	types := []ggml.Type{ggml.F32, ggml.F16, ggml.BF16, ggml.Q8_0, ggml.Q4_0, ggml.Q4_K, ggml.Q6_K,
		ggml.Q4_1, ggml.Q5_0, ggml.Q5_1, ggml.Q5_K}
	for _, typ := range types {
		for _, sz := range [][2]int{{4096, 4096}, {11008, 4096}} {
			for _, n := range []int{1, 8} {
				if n == 8 && sz[0] != 4096 {
					continue
				}
				bm.Run(fmt.Sprintf("%s/%dx%d/n%d", typ, sz[0], sz[1], n), func(bm *testing.B) {
					benchMatMul(bm, b, typ, sz[0], sz[1], n)
				})
			}
		}
	}
}

// BenchmarkMatMulPrefill is a 4096x4096 weight times batches of 9 to 512
// tokens, through the float kernels (tiled, or matrix-vector up to 8) and
// through the cuBLAS path (dequantize to f16, convert, GEMM): where the
// cuBLAS path starts to win sets defaultBLASMinTokens.
func BenchmarkMatMulPrefill(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	for _, typ := range []ggml.Type{ggml.F16, ggml.Q4_0, ggml.Q4_K, ggml.Q8_0} {
		for _, n := range []int{8, 12, 16, 24, 32, 64, 512} {
			for _, path := range []string{"kernel", "cublas"} {
				if path == "cublas" && b.blas.h == 0 {
					continue
				}
				bm.Run(fmt.Sprintf("%s/4096x4096/n%d/%s", typ, n, path), func(bm *testing.B) {
					on := 0
					if path == "cublas" {
						on = 1
					}
					defer withBLASMin(b, on)()
					benchMatMul(bm, b, typ, 4096, 4096, n)
				})
			}
		}
	}
}

func benchMatMul(bm *testing.B, b *Backend, typ ggml.Type, m, k, n int) {
	data := benchWeight(bm, typ, m, k)
	const rotate = 160 << 20 // bytes of weights cycled through: 3x the 50 MB L2
	copies := max(2, (rotate+len(data)-1)/len(data))
	ws := make([]*compute.Tensor, copies)
	for i := range ws {
		w, err := b.Upload("w", typ, []int{m, k}, data)
		if err != nil {
			bm.Fatal(err)
		}
		defer b.Free(w)
		ws[i] = w
	}
	x, err := b.NewTensor("x", ggml.F32, n, k)
	if err != nil {
		bm.Fatal(err)
	}
	defer b.Free(x)
	rng := rand.New(rand.NewPCG(3, 4))
	if err := b.Write(x, randVec(rng, n*k, 1)); err != nil {
		bm.Fatal(err)
	}
	y, err := b.NewTensor("y", ggml.F32, n, m)
	if err != nil {
		bm.Fatal(err)
	}
	defer b.Free(y)
	// One call first: the cuBLAS path sizes its scratch buffers outside the
	// capture.
	if err := b.MatMul(y, x, ws[0]); err != nil {
		bm.Fatal(err)
	}
	if err := b.sync(); err != nil {
		bm.Fatal(err)
	}
	g, err := b.capture(func() error {
		for _, w := range ws {
			if err := b.MatMul(y, x, w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		bm.Fatal(err)
	}
	defer b.destroy(g)
	_, kname, _, _ := b.matmulKernel(ws[0].Dev.(*devBuf).layout, n, m, k)
	if b.useBLAS(n) {
		kname = "cuBLAS"
	}
	timeGPU(bm, b, func() error { return b.replay(g) })
	sec := bm.Elapsed().Seconds()
	calls := float64(bm.N * copies)
	bm.ReportMetric(float64(len(data))*calls/sec/1e9, "GB/s")
	bm.ReportMetric(sec/calls*1e6, "µs/call")
	bm.ReportMetric(2*float64(m)*float64(k)*float64(n)*calls/sec/1e12, "TFLOP/s")
	bm.Logf("%s: %d weight copies, kernel %s", typ, copies, kname)
}

// timeGPU times bm.N calls of call on b's stream: one untimed warm-up call
// and a sync first, then the calls between a timer reset and a sync, the
// timer stopped after (Elapsed is then the calls' device time).
func timeGPU(bm *testing.B, b *Backend, call func() error) {
	bm.Helper()
	if err := call(); err != nil {
		bm.Fatal(err)
	}
	if err := b.sync(); err != nil {
		bm.Fatal(err)
	}
	bm.ResetTimer()
	for range bm.N {
		if err := call(); err != nil {
			bm.Fatal(err)
		}
	}
	if err := b.sync(); err != nil {
		bm.Fatal(err)
	}
	bm.StopTimer()
}

// BenchmarkMatVecLaunch is the same 4096x4096 Q4_0 product launched op by
// op (no graph): the host's launch cost, which bounds decode without graphs.
func BenchmarkMatVecLaunch(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	const m, k = 4096, 4096
	w, err := b.Upload("w", ggml.Q4_0, []int{m, k}, benchWeight(bm, ggml.Q4_0, m, k))
	if err != nil {
		bm.Fatal(err)
	}
	defer b.Free(w)
	x, _ := b.NewTensor("x", ggml.F32, 1, k)
	y, _ := b.NewTensor("y", ggml.F32, 1, m)
	defer b.Free(x)
	defer b.Free(y)
	if err := b.Write(x, randVec(rand.New(rand.NewPCG(5, 6)), k, 1)); err != nil {
		bm.Fatal(err)
	}
	bm.ResetTimer()
	for range bm.N {
		if err := b.MatMul(y, x, w); err != nil {
			bm.Fatal(err)
		}
	}
	if err := b.sync(); err != nil {
		bm.Fatal(err)
	}
}

// BenchmarkCopyCeiling is a 1 GiB device-to-device copy, reported as GB/s of
// bytes read plus written: the memory ceiling the matvec figures compare to.
func BenchmarkCopyCeiling(bm *testing.B) {
	b := testBackend(bm)
	const size = 1 << 30
	if err := b.enter(); err != nil {
		bm.Fatal(err)
	}
	src, err1 := b.drv.MemAlloc(size)
	dst, err2 := b.drv.MemAlloc(size)
	b.leave()
	if err1 != nil || err2 != nil {
		bm.Fatal(err1, err2)
	}
	defer func() {
		if b.enter() == nil {
			b.drv.MemFree(src)
			b.drv.MemFree(dst)
			b.leave()
		}
	}()
	copyOnce := func(s, d cuda.DevicePtr) {
		if err := b.enter(); err != nil {
			bm.Fatal(err)
		}
		defer b.leave()
		if err := b.drv.MemcpyDtoDAsync(d, s, size, b.stream); err != nil {
			bm.Fatal(err)
		}
	}
	timeGPU(bm, b, func() error { copyOnce(src, dst); return nil })
	bm.ReportMetric(2*size*float64(bm.N)/bm.Elapsed().Seconds()/1e9, "GB/s")
}

// BenchmarkLaunchOverhead is the host cost of one small op (Scale on 64
// floats): checks, context binding and cuLaunchKernel through purego. The
// device work is negligible, so ns/op is the per-op host cost that bounds
// an un-graphed decode step.
func BenchmarkLaunchOverhead(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func() { b.syncEachOp = true }()
	x, err := b.NewTensor("x", ggml.F32, 64)
	if err != nil {
		bm.Fatal(err)
	}
	defer b.Free(x)
	bm.ResetTimer()
	for range bm.N {
		if err := b.Scale(x, 1); err != nil {
			bm.Fatal(err)
		}
	}
	if err := b.sync(); err != nil {
		bm.Fatal(err)
	}
}

// BenchmarkAttentionPrefill is one layer's attention over a 512-token prompt
// (causal, one sequence, 16-slot blocks) in the 7B (32 heads of 128) and
// TinyLlama (32 query heads, 4 KV heads of 64) shapes, with the tiled
// kernel and with one block per (row, head): multiplied by the layer count,
// the share of a pp512 step that attention takes.
func BenchmarkAttentionPrefill(bm *testing.B) {
	b := testBackend(bm)
	b.syncEachOp = false
	defer func(on bool) { b.syncEachOp, b.attTileOn = true, on }(b.attTileOn)
	for _, sh := range []struct {
		name              string
		heads, kvHeads, d int
	}{{"7b", 32, 32, 128}, {"tiny", 32, 4, 64}} {
		for _, tiled := range []bool{true, false} {
			bm.Run(fmt.Sprintf("%s/n512/tiled=%v", sh.name, tiled), func(bm *testing.B) {
				b.attTileOn = tiled
				const n, bs = 512, 16
				p := compute.AttnParams{NHead: sh.heads, NKVHead: sh.kvHeads, HeadDim: sh.d, HeadDimV: sh.d,
					Causal: true, Scale: 0.1}
				rng := rand.New(rand.NewPCG(7, 8))
				kc := sh.kvHeads * sh.d
				newT := func(rows, cols int) *compute.Tensor {
					x, err := b.NewTensor("t", ggml.F32, rows, cols)
					if err != nil {
						bm.Fatal(err)
					}
					bm.Cleanup(func() { b.Free(x) })
					if err := b.Write(x, randVec(rng, rows*cols, 1)); err != nil {
						bm.Fatal(err)
					}
					return x
				}
				pool := compute.KVPool{K: newT(n, kc), V: newT(n, kc), BlockSize: bs}
				q := newT(n, sh.heads*sh.d)
				out := newT(n, sh.heads*sh.d)
				blocks := make([]int32, n/bs)
				for i := range blocks {
					blocks[i] = int32(len(blocks) - 1 - i)
				}
				pos := make([]int32, n)
				for i := range pos {
					pos[i] = int32(i)
				}
				seqs := []compute.SeqAttn{{QStart: 0, QLen: n, CtxLen: n, Blocks: blocks}}
				timeGPU(bm, b, func() error { return b.Attention(out, q, pool, pos, seqs, p) })
				bm.ReportMetric(bm.Elapsed().Seconds()/float64(bm.N)*1e3, "ms/call")
			})
		}
	}
}
