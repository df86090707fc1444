package compute

import (
	"fmt"
)

// Embedding implements Backend: row i of dst [n, d] is row ids[i] of table
// [vocab, d], dequantized from the table's type.
func (r *Reference) Embedding(dst, table *Tensor, ids []int32) error {
	if err := CheckEmbedding(dst, table, ids); err != nil {
		return err
	}
	d := table.Cols()
	for i, id := range ids {
		if err := dequantizeRow(table, int(id), dst.F32[i*d:(i+1)*d]); err != nil {
			return fmt.Errorf("embedding: %w", err)
		}
	}
	return nil
}

// CheckEmbedding validates the arguments of Backend.Embedding: table is a 2-D
// tensor [vocab, d] of any supported type, dst is F32 [len(ids), d], and every
// id is inside [0, vocab).
func CheckEmbedding(dst, table *Tensor, ids []int32) error {
	const op = "embedding"
	if err := checkStorage(op, "table", table); err != nil {
		return err
	}
	if len(table.Shape) != 2 {
		return fmt.Errorf("%s: table %s must be 2-D [vocab, d]", op, desc(table))
	}
	if err := checkF32(op, "dst", dst); err != nil {
		return err
	}
	vocab, d := table.Shape[0], table.Shape[1]
	if len(dst.Shape) != 2 || dst.Shape[0] != len(ids) || dst.Shape[1] != d {
		return fmt.Errorf("%s: %d ids and table %s but dst %s (want [%d %d])", op, len(ids), desc(table), desc(dst), len(ids), d)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("%s: id %d at %d outside table %s (vocab %d)", op, id, i, desc(table), vocab)
		}
	}
	return nil
}

// MatMul implements Backend: dst[n, m] = x[n, k] · w[m, k]ᵀ for a weight of
// any supported type. One weight row is dequantized at a time (a whole
// quantized weight never is) and every dot product is accumulated in float64.
func (r *Reference) MatMul(dst, x, w *Tensor) error {
	if err := CheckMatMul(dst, x, w); err != nil {
		return err
	}
	k, m, n := x.Cols(), w.Shape[0], x.Rows()
	row := make([]float32, k)
	for j := range m {
		if err := dequantizeRow(w, j, row); err != nil {
			return fmt.Errorf("matmul: %w", err)
		}
		for i := range n {
			dst.F32[i*m+j] = float32(DotF64(x.F32[i*k:(i+1)*k], row))
		}
	}
	return nil
}

// MatMulEach is what MultiMatMuler.MatMulMulti means: b.MatMul of x by each
// weight. (It is a function, not a Reference method, so that backends that
// embed Reference do not inherit a MatMulMulti that bypasses their MatMul.)
func MatMulEach(b Backend, dst []*Tensor, x *Tensor, w []*Tensor) error {
	if len(dst) != len(w) {
		return fmt.Errorf("matmul multi: %d outputs for %d weights", len(dst), len(w))
	}
	for i := range w {
		if err := b.MatMul(dst[i], x, w[i]); err != nil {
			return err
		}
	}
	return nil
}

// CheckMatMul validates the arguments of Backend.MatMul: w is a 2-D tensor
// [m, k] of any supported type, x is F32 [..., k], and dst is F32 [..., m]
// with the same leading dimensions as x. dst must not share storage with x.
func CheckMatMul(dst, x, w *Tensor) error {
	const op = "matmul"
	if err := checkStorage(op, "w", w); err != nil {
		return err
	}
	if len(w.Shape) != 2 {
		return fmt.Errorf("%s: w %s must be 2-D [m, k]", op, desc(w))
	}
	if err := checkF32(op, "x", x); err != nil {
		return err
	}
	if err := checkF32(op, "dst", dst); err != nil {
		return err
	}
	m, k := w.Shape[0], w.Shape[1]
	if x.Cols() != k {
		return fmt.Errorf("%s: x %s but w %s (x needs %d columns)", op, desc(x), desc(w), k)
	}
	if dst.Cols() != m {
		return fmt.Errorf("%s: w %s but dst %s (dst needs %d columns)", op, desc(w), desc(dst), m)
	}
	if err := checkSameRows(op, "x", x, "dst", dst); err != nil {
		return err
	}
	if len(x.F32) > 0 && len(dst.F32) > 0 && &x.F32[0] == &dst.F32[0] {
		return fmt.Errorf("%s: dst %s and x %s share storage", op, desc(dst), desc(x))
	}
	return nil
}

// DotF64 is the dot product of two equal-length vectors accumulated in float64.
func DotF64(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}
