package gpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// The checks below mirror the reference backend's (compute/*.go), message
// for message, where compute exports no Check function for the op.

func checkSameShape(op, roleA string, a *compute.Tensor, roleB string, b *compute.Tensor) error {
	if !slices.Equal(a.Shape, b.Shape) {
		return fmt.Errorf("%s: %s %s but %s %s (shapes must be equal)", op, roleA, a, roleB, b)
	}
	return nil
}

// binary checks an elementwise op over three F32 tensors of equal shape.
func (b *Backend) binary(op string, dst *compute.Tensor, roleA string, a *compute.Tensor, roleB string, bb *compute.Tensor) (d, x, y *devBuf, err error) {
	if x, err = b.f32Buf(op, roleA, a); err != nil {
		return
	}
	if y, err = b.f32Buf(op, roleB, bb); err != nil {
		return
	}
	if d, err = b.f32Buf(op, "dst", dst); err != nil {
		return
	}
	if err = checkSameShape(op, roleA, a, roleB, bb); err != nil {
		return
	}
	err = checkSameShape(op, roleA, a, "dst", dst)
	return
}

// elementwise launches a grid-stride kernel whose arguments are already set.
func (b *Backend) elementwise(k kernel, n int) error {
	return b.launch(k, b.gridFor(int64(n), 256), cuda.Dim3{X: 256}, 0)
}

// Add implements compute.Backend: dst = a + b; dst may alias a or b.
func (b *Backend) Add(dst, x, y *compute.Tensor) error {
	if b.feeding() {
		return nil
	}
	d, xb, yb, err := b.binary("add", dst, "a", x, "b", y)
	if err != nil {
		return err
	}
	n := dst.Elems()
	if n == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	b.args.reset().ptr(d.ptr).ptr(xb.ptr).ptr(yb.ptr).i64(int64(n))
	return b.elementwise(b.k.add, n)
}

// SwiGLU implements compute.Backend: dst = silu(gate) * up.
func (b *Backend) SwiGLU(dst, gate, up *compute.Tensor) error {
	return b.glu("swiglu", b.k.swiglu, dst, gate, up)
}

// GeGLU implements compute.Backend: dst = gelu_tanh(gate) * up.
func (b *Backend) GeGLU(dst, gate, up *compute.Tensor) error {
	return b.glu("geglu", b.k.geglu, dst, gate, up)
}

func (b *Backend) glu(op string, k kernel, dst, gate, up *compute.Tensor) error {
	if b.feeding() {
		return nil
	}
	d, g, u, err := b.binary(op, dst, "gate", gate, "up", up)
	if err != nil {
		return err
	}
	n := dst.Elems()
	if n == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if op == "swiglu" {
		// For a decode step, the q8 blocks of the result too (the down
		// projection's input).
		rows, cols := dst.Rows(), dst.Cols()
		if q, qd := b.q8Emit(rows, cols); q != 0 {
			blocks := int64(n / 32)
			b.args.reset().ptr(d.ptr).ptr(g.ptr).ptr(u.ptr).ptr(q).ptr(qd).i64(blocks)
			if err := b.launch(b.k.all["swiglu_q8_f32"], cuda.Dim3{X: uint32((blocks + 7) / 8)}, cuda.Dim3{X: 256}, 0); err != nil {
				return err
			}
			b.q8Mark(d.ptr, rows, cols)
			return nil
		}
		// For a batched step, the result rounded to f16 for the batched
		// down projection.
		if h := b.h16Emit(rows, cols); h != 0 {
			b.args.reset().ptr(d.ptr).ptr(g.ptr).ptr(u.ptr).ptr(h).i64(int64(n))
			if err := b.elementwise(b.k.all["swiglu_h_f32"], n); err != nil {
				return err
			}
			b.h16Mark(d.ptr, rows, cols)
			return nil
		}
	}
	b.args.reset().ptr(d.ptr).ptr(g.ptr).ptr(u.ptr).i64(int64(n))
	return b.elementwise(k, n)
}

// unary runs an in-place kernel (x, [float], n) over an F32 tensor.
func (b *Backend) unary(op string, k kernel, x *compute.Tensor, withScalar bool, s float32) error {
	if b.feeding() {
		return nil
	}
	xb, err := b.f32Buf(op, "x", x)
	if err != nil {
		return err
	}
	n := x.Elems()
	if n == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	b.args.reset().ptr(xb.ptr)
	if withScalar {
		b.args.f32(s)
	}
	b.args.i64(int64(n))
	return b.elementwise(k, n)
}

// Scale implements compute.Backend: x *= s.
func (b *Backend) Scale(x *compute.Tensor, s float32) error {
	return b.unary("scale", b.k.scale, x, true, s)
}

// Softcap implements compute.Backend: x = c*tanh(x/c), c > 0.
func (b *Backend) Softcap(x *compute.Tensor, c float32) error {
	if _, err := b.f32Buf("softcap", "x", x); err != nil {
		return err
	}
	if !(c > 0) || math.IsInf(float64(c), 0) {
		return fmt.Errorf("softcap: cap %v must be positive and finite", c)
	}
	return b.unary("softcap", b.k.softcap, x, true, c)
}

// GELU implements compute.Backend: x = gelu_tanh(x).
func (b *Backend) GELU(x *compute.Tensor) error {
	return b.unary("gelu", b.k.gelu, x, false, 0)
}

// AddBias implements compute.Backend: x[..., m] += b[m]; b of any type.
func (b *Backend) AddBias(x, bias *compute.Tensor) error {
	if b.feeding() {
		return nil
	}
	const op = "addbias"
	xb, err := b.f32Buf(op, "x", x)
	if err != nil {
		return err
	}
	bp, err := b.vecBuf(op, "b", bias, x.Cols(), func() string { return "x " + x.String() })
	if err != nil {
		return err
	}
	n := x.Elems()
	if n == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	b.args.reset().ptr(xb.ptr).ptr(bp).i64(int64(n)).i32(x.Cols())
	return b.elementwise(b.k.addbias, n)
}

// rowThreads picks a block size for one-block-per-row kernels.
func (b *Backend) rowThreads(cols int) int {
	t := b.warp
	for t < cols && t < 1024 {
		t *= 2
	}
	return min(t, 1024)
}

// Softmax implements compute.Backend: each row in place.
func (b *Backend) Softmax(x *compute.Tensor) error {
	if b.feeding() {
		return nil
	}
	xb, err := b.f32Buf("softmax", "x", x)
	if err != nil {
		return err
	}
	rows, cols := x.Rows(), x.Cols()
	if rows == 0 || cols == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	b.args.reset().ptr(xb.ptr).i32(cols)
	return b.launch(b.k.softmax, cuda.Dim3{X: uint32(rows)}, cuda.Dim3{X: uint32(b.rowThreads(cols))}, 0)
}

// normArgs checks the arguments of RMSNorm and LayerNorm as the reference does.
func (b *Backend) normArgs(op string, dst, x, w, bias *compute.Tensor, eps float32) (d, xb *devBuf, wp, bp cuda.DevicePtr, err error) {
	if !(eps >= 0) || math.IsInf(float64(eps), 0) {
		err = fmt.Errorf("%s: eps %v must be finite and >= 0", op, eps)
		return
	}
	if xb, err = b.f32Buf(op, "x", x); err != nil {
		return
	}
	if d, err = b.f32Buf(op, "dst", dst); err != nil {
		return
	}
	if err = checkSameShape(op, "x", x, "dst", dst); err != nil {
		return
	}
	against := func() string { return "x " + x.String() }
	if w != nil {
		if wp, err = b.vecBuf(op, "w", w, x.Cols(), against); err != nil {
			return
		}
	}
	if bias != nil {
		if bp, err = b.vecBuf(op, "b", bias, x.Cols(), against); err != nil {
			return
		}
	}
	return
}

// RMSNorm implements compute.Backend: each row x / sqrt(mean(x²) + eps) * w.
func (b *Backend) RMSNorm(dst, x, w *compute.Tensor, eps float32) error {
	if b.feeding() {
		return nil
	}
	d, xb, wp, _, err := b.normArgs("rmsnorm", dst, x, w, nil, eps)
	if err != nil {
		return err
	}
	rows, cols := x.Rows(), x.Cols()
	if rows == 0 || cols == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	q, qd := b.q8Emit(rows, cols)
	h := b.h16Emit(rows, cols)
	b.args.reset().ptr(d.ptr).ptr(xb.ptr).ptr(wp).i32(cols).f32(eps).ptr(q).ptr(qd).ptr(h)
	if err := b.launch(b.k.rmsnorm, cuda.Dim3{X: uint32(rows)}, cuda.Dim3{X: uint32(b.rowThreads(cols))}, 0); err != nil {
		return err
	}
	if q != 0 {
		b.q8Mark(d.ptr, rows, cols)
	}
	if h != 0 {
		b.h16Mark(d.ptr, rows, cols)
	}
	return nil
}

// AddRMSNorm is x += a followed by RMSNorm(dst, x, w, eps) (the residual
// add of a block and the next norm), with the same result as the two ops.
// One kernel instead of two: 1.3-3.7 % more decode tokens/s on the H100
// (docs/perf.md); ROCMFORGE_GPU_FUSE=0 runs the two ops instead. dst must
// not share storage with x or a.
func (b *Backend) AddRMSNorm(dst, x, a, w *compute.Tensor, eps float32) error {
	if b.feeding() {
		return nil
	}
	d, xb, wp, _, err := b.normArgs("add_rmsnorm", dst, x, w, nil, eps)
	if err != nil {
		return err
	}
	ab, err := b.f32Buf("add_rmsnorm", "a", a)
	if err != nil {
		return err
	}
	if err := checkSameShape("add_rmsnorm", "x", x, "a", a); err != nil {
		return err
	}
	if d == xb || d == ab {
		return fmt.Errorf("add_rmsnorm: dst %s shares storage with x %s or a %s", dst, x, a)
	}
	if !b.fuseOn {
		if err := b.Add(x, x, a); err != nil {
			return err
		}
		return b.RMSNorm(dst, x, w, eps)
	}
	rows, cols := x.Rows(), x.Cols()
	if rows == 0 || cols == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	q, qd := b.q8Emit(rows, cols)
	h := b.h16Emit(rows, cols)
	b.args.reset().ptr(d.ptr).ptr(xb.ptr).ptr(ab.ptr).ptr(wp).i32(cols).f32(eps).ptr(q).ptr(qd).ptr(h)
	if err := b.launch(b.k.addRMSNorm, cuda.Dim3{X: uint32(rows)}, cuda.Dim3{X: uint32(b.rowThreads(cols))}, 0); err != nil {
		return err
	}
	if q != 0 {
		b.q8Mark(d.ptr, rows, cols)
	}
	if h != 0 {
		b.h16Mark(d.ptr, rows, cols)
	}
	return nil
}

// LayerNorm implements compute.Backend: (x - mean) / sqrt(var + eps) * w + b.
func (b *Backend) LayerNorm(dst, x, w, bias *compute.Tensor, eps float32) error {
	if b.feeding() {
		return nil
	}
	d, xb, wp, bp, err := b.normArgs("layernorm", dst, x, w, bias, eps)
	if err != nil {
		return err
	}
	rows, cols := x.Rows(), x.Cols()
	if rows == 0 || cols == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	b.args.reset().ptr(d.ptr).ptr(xb.ptr).ptr(wp).ptr(bp).i32(cols).f32(eps)
	return b.launch(b.k.layernorm, cuda.Dim3{X: uint32(rows)}, cuda.Dim3{X: uint32(b.rowThreads(cols))}, 0)
}

// Copy implements compute.Backend: dst[:, dstCol:+cols] = src[:, srcCol:+cols]
// over equal row counts, with memmove semantics when dst and src share storage.
func (b *Backend) Copy(dst, src *compute.Tensor, dstCol, srcCol, cols int) error {
	if b.feeding() {
		return nil
	}
	const op = "copy"
	sb, err := b.f32Buf(op, "src", src)
	if err != nil {
		return err
	}
	db, err := b.f32Buf(op, "dst", dst)
	if err != nil {
		return err
	}
	if src.Rows() != dst.Rows() {
		return fmt.Errorf("%s: src %s has %d rows but dst %s has %d", op, src, src.Rows(), dst, dst.Rows())
	}
	if cols < 0 || srcCol < 0 || srcCol+cols > src.Cols() {
		return fmt.Errorf("%s: columns [%d, %d) outside src %s", op, srcCol, srcCol+cols, src)
	}
	if dstCol < 0 || dstCol+cols > dst.Cols() {
		return fmt.Errorf("%s: columns [%d, %d) outside dst %s", op, dstCol, dstCol+cols, dst)
	}
	rows := src.Rows()
	if rows == 0 || cols == 0 {
		return nil
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	grid := uint32(min(rows, 65535))
	if sb == db && src.Cols() != dst.Cols() {
		// Rows of different strides in one buffer can overlap each other:
		// one block walks them in order, as the reference does.
		grid = 1
	}
	b.args.reset().ptr(db.ptr).ptr(sb.ptr).i32(rows).i32(dst.Cols()).i32(src.Cols()).i32(dstCol).i32(srcCol).i32(cols)
	return b.launch(b.k.copyCols, cuda.Dim3{X: grid}, cuda.Dim3{X: uint32(b.rowThreads(cols))}, 0)
}

// Embedding implements compute.Backend: row i of dst is row ids[i] of the
// table, dequantized from the table's type.
func (b *Backend) Embedding(dst, table *compute.Tensor, ids []int32) error {
	if err := compute.CheckEmbedding(dst, table, ids); err != nil {
		return err
	}
	tb, err := b.buf("embedding", "table", table)
	if err != nil {
		return err
	}
	db, err := b.f32Buf("embedding", "dst", dst)
	if err != nil {
		return err
	}
	k, ok := b.k.all["embedding_"+tb.layout]
	if !ok {
		return fmt.Errorf("embedding: table %s: no GPU kernel for type %s", table, table.Type)
	}
	n, d := len(ids), table.Cols()
	if n == 0 || d == 0 {
		return nil
	}
	if b.feeding() {
		return b.stagePut(true, ids)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.stagePut(true, ids); err != nil {
		return fmt.Errorf("embedding: %w", err)
	}
	rb, _ := table.Type.RowSize(int64(d))
	b.args.reset().ptr(db.ptr).ptr(tb.ptr).ptr(tb.aux).i64(rb).ptr(b.stage.ptrs[0]).i32(n).i32(d)
	grid := cuda.Dim3{X: uint32((d + 255) / 256), Y: uint32(min(n, 65535))}
	return b.launch(k, grid, cuda.Dim3{X: 256}, 0)
}

// RoPE implements compute.Backend: rotary embedding of x [n, heads, hd] in
// place, token i at position pos[i], bit-compatible with compute.RoPECache.
func (b *Backend) RoPE(x *compute.Tensor, pos []int32, p compute.RoPEParams) error {
	return b.rope(x, nil, pos, p)
}

// RoPEPair implements compute.RoPEPairer: RoPE of q and of k, one launch.
func (b *Backend) RoPEPair(q, k *compute.Tensor, pos []int32, p compute.RoPEParams) error {
	if err := compute.CheckRoPE(k, pos, p); err != nil {
		return err
	}
	if len(q.Shape) == 3 && k.Shape[2] != q.Shape[2] {
		return fmt.Errorf("rope: q %s and k %s have different head sizes", q, k)
	}
	return b.rope(q, k, pos, p)
}

// rope rotates x and, when x2 is not nil, x2 (same tokens and head size).
func (b *Backend) rope(x, x2 *compute.Tensor, pos []int32, p compute.RoPEParams) error {
	r, err := b.ropeArgs(x, x2, pos, p)
	if err != nil || r.n == 0 || r.heads+r.heads2 == 0 {
		return err
	}
	if b.feeding() {
		return b.stagePut(true, pos)
	}
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	if err := b.stagePut(true, pos); err != nil {
		return fmt.Errorf("rope: %w", err)
	}
	// Head chunks of ~256 rotary pairs: several blocks for a decode step.
	total := r.heads + r.heads2
	hpb := max(1, min(total, 256/max(1, p.NRot/2)))
	chunks := (total + hpb - 1) / hpb
	r.put(b.args.reset(), b.stage.ptrs[0], hpb)
	return b.launch(b.k.rope, cuda.Dim3{X: uint32(r.n), Y: uint32(chunks)}, cuda.Dim3{X: uint32(b.rowThreads(hpb * p.NRot / 2))}, 4*p.NRot)
}

// ropeCall is a checked rope_f32 launch: the tensors and the constants.
type ropeCall struct {
	x, x2, ff            cuda.DevicePtr
	n, heads, hd, heads2 int
	nrot                 int
	c                    ropeConsts
}

// ropeArgs checks RoPE of x and, when x2 is not nil, x2, and gathers the
// launch's arguments.
func (b *Backend) ropeArgs(x, x2 *compute.Tensor, pos []int32, p compute.RoPEParams) (ropeCall, error) {
	var r ropeCall
	if err := compute.CheckRoPE(x, pos, p); err != nil {
		return r, err
	}
	xb, err := b.f32Buf("rope", "x", x)
	if err != nil {
		return r, err
	}
	r.x, r.n, r.heads, r.hd, r.nrot = xb.ptr, x.Shape[0], x.Shape[1], x.Shape[2], p.NRot
	if x2 != nil {
		x2b, err := b.f32Buf("rope", "k", x2)
		if err != nil {
			return r, err
		}
		r.x2, r.heads2 = x2b.ptr, x2.Shape[1]
	}
	if p.FreqFactors != nil {
		if r.ff, err = b.vecBuf("rope", "FreqFactors", p.FreqFactors, p.NRot/2, func() string { return fmt.Sprintf("NRot %d", p.NRot) }); err != nil {
			return r, err
		}
	}
	r.c = newRoPEConsts(p)
	return r, nil
}

// put appends rope_f32's arguments (positions at posp, hpb heads a block).
func (r *ropeCall) put(a *launchArgs, posp cuda.DevicePtr, hpb int) *launchArgs {
	c := &r.c
	return a.ptr(r.x).ptr(posp).i32(r.heads).i32(r.hd).i32(r.nrot).i32(c.neox).
		f32(c.thetaScale).f32(c.freqScale).f32(c.ext).f32(c.mscale).f32(c.corr[0]).f32(c.corr[1]).ptr(r.ff).
		ptr(r.x2).i32(r.heads2).i32(hpb)
}
