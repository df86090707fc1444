package compute

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/rocmforge/rocmforge/ggml"
)

// KVWrite implements Backend: row i of k and v goes to row slots[i] of
// pool.K and pool.V, converted to the pool's type (see EncodeKVRow).
func (r *Reference) KVWrite(pool KVPool, k, v *Tensor, slots []int32) error {
	if err := CheckKVWrite(pool, k, v, slots); err != nil {
		return err
	}
	kc, vc := k.Cols(), v.Cols()
	for i, s := range slots {
		writeKVRow(pool.K, int(s), k.F32[i*kc:(i+1)*kc])
		writeKVRow(pool.V, int(s), v.F32[i*vc:(i+1)*vc])
	}
	return nil
}

// KVType reports whether t can be the element type of a KV pool: F32, F16
// (halves the cache; llama.cpp's default) or Q8_0 (about 0.53× F16).
func KVType(t ggml.Type) bool {
	return t == ggml.F32 || t == ggml.F16 || t == ggml.Q8_0
}

// EncodeKVRow writes the F32 row src into dst in KV type t's GGML layout
// (dst is exactly t.RowSize(len(src)) bytes): F16 rounds each element to
// nearest even, Q8_0 is ggml's quantize_row_q8_0_ref (d = amax/127 stored
// as F16, q = round(x/d) with ties away from zero), F32 is the bytes of src.
// Every backend's KVWrite must produce these bytes.
func EncodeKVRow(t ggml.Type, dst []byte, src []float32) error {
	if !KVType(t) {
		return fmt.Errorf("encode kv row: type %s is not a KV pool type (F32, F16 or Q8_0)", t)
	}
	return ggml.QuantizeInto(t, dst, src)
}

// writeKVRow stores src as row slot of a host pool tensor of a checked type.
func writeKVRow(t *Tensor, slot int, src []float32) {
	c := len(src)
	switch t.Type {
	case ggml.F32:
		copy(t.F32[slot*c:(slot+1)*c], src)
	case ggml.F16:
		row := t.Raw[2*slot*c : 2*(slot+1)*c]
		for i, x := range src {
			binary.LittleEndian.PutUint16(row[2*i:], ggml.FP32ToFP16(x))
		}
	default: // Q8_0, checked
		rb := c / 32 * 34
		_ = EncodeKVRow(t.Type, t.Raw[slot*rb:(slot+1)*rb], src)
	}
}

// KVRow sets dst to columns [col, col+len(dst)) of row slot of a host KV
// pool tensor (F32, F16 or Q8_0, as CheckKVPool accepts), dequantized
// exactly as ggml.Dequantize does (F16 and Q8_0 values are exact in
// float32). The range may start and end inside a Q8_0 block.
func KVRow(t *Tensor, slot, col int, dst []float32) {
	c := t.Cols()
	switch t.Type {
	case ggml.F32:
		copy(dst, t.F32[slot*c+col:])
	case ggml.F16:
		row := t.Raw[2*(slot*c+col):]
		for i := range dst {
			dst[i] = ggml.FP16ToFP32(binary.LittleEndian.Uint16(row[2*i:]))
		}
	case ggml.Q8_0:
		row := t.Raw[slot*(c/32*34):]
		for i := 0; i < len(dst); {
			e := col + i
			blk := row[e/32*34:]
			d := ggml.FP16ToFP32(binary.LittleEndian.Uint16(blk))
			for j := e % 32; j < 32 && i < len(dst); j++ {
				dst[i] = float32(int8(blk[2+j])) * d
				i++
			}
		}
	default:
		panic("compute: KVRow on a tensor CheckKVPool rejects: " + t.Type.String())
	}
}

// CheckKVWrite validates the arguments of Backend.KVWrite: the pool is valid
// (see CheckKVPool), k is F32 [n, pool.K columns], v is F32 [n, pool.V
// columns], len(slots) == n, and the slots are distinct and inside the pool.
func CheckKVWrite(pool KVPool, k, v *Tensor, slots []int32) error {
	const op = "kvwrite"
	if err := CheckKVPool(op, pool); err != nil {
		return err
	}
	if err := checkF32(op, "k", k); err != nil {
		return err
	}
	if err := checkF32(op, "v", v); err != nil {
		return err
	}
	n := len(slots)
	if len(k.Shape) != 2 || k.Shape[0] != n || k.Shape[1] != pool.K.Cols() {
		return fmt.Errorf("%s: %d slots and pool K %s but k %s (want [%d %d])", op, n, desc(pool.K), desc(k), n, pool.K.Cols())
	}
	if len(v.Shape) != 2 || v.Shape[0] != n || v.Shape[1] != pool.V.Cols() {
		return fmt.Errorf("%s: %d slots and pool V %s but v %s (want [%d %d])", op, n, desc(pool.V), desc(v), n, pool.V.Cols())
	}
	nSlots := pool.K.Shape[0]
	for i, s := range slots {
		if s < 0 || int(s) >= nSlots {
			return fmt.Errorf("%s: slot %d for row %d outside the pool's %d slots", op, s, i, nSlots)
		}
	}
	// Duplicates would make the result depend on write order, which a
	// parallel backend cannot promise. Decode-sized calls compare pairs
	// (no allocation on the per-token path); larger ones sort a copy.
	if n <= 64 {
		for i := 1; i < n; i++ {
			for j := range i {
				if slots[i] == slots[j] {
					return fmt.Errorf("%s: slot %d written twice in one call", op, slots[i])
				}
			}
		}
		return nil
	}
	sorted := slices.Clone(slots)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return fmt.Errorf("%s: slot %d written twice in one call", op, sorted[i])
		}
	}
	return nil
}

// CheckKVPool validates a paged pool: K [slots, kCols] and V [slots, vCols]
// are 2-D tensors of one KV type (F32, F16 or Q8_0, see KVType; Q8_0 rows a
// multiple of 32 wide) with equal row counts, BlockSize > 0 and slots a
// multiple of it. op prefixes the error.
func CheckKVPool(op string, pool KVPool) error {
	for _, x := range []struct {
		role string
		t    *Tensor
	}{{"pool K", pool.K}, {"pool V", pool.V}} {
		if x.t == nil {
			return fmt.Errorf("%s: %s is nil", op, x.role)
		}
		if !KVType(x.t.Type) {
			return fmt.Errorf("%s: %s %s: a KV pool holds F32, F16 or Q8_0", op, x.role, desc(x.t))
		}
		if x.t.Type == ggml.Q8_0 && x.t.Cols()%32 != 0 {
			return fmt.Errorf("%s: %s %s: Q8_0 rows must be a multiple of 32 wide, not %d", op, x.role, desc(x.t), x.t.Cols())
		}
		if err := checkStorage(op, x.role, x.t); err != nil {
			return err
		}
	}
	if pool.K.Type != pool.V.Type {
		return fmt.Errorf("%s: pool K %s and V %s must have the same type", op, desc(pool.K), desc(pool.V))
	}
	if len(pool.K.Shape) != 2 || len(pool.V.Shape) != 2 || pool.K.Shape[0] != pool.V.Shape[0] {
		return fmt.Errorf("%s: pool K %s and V %s must be 2-D with equal row counts", op, desc(pool.K), desc(pool.V))
	}
	if pool.BlockSize <= 0 || pool.K.Shape[0]%pool.BlockSize != 0 {
		return fmt.Errorf("%s: pool K %s is not a whole number of %d-slot blocks", op, desc(pool.K), pool.BlockSize)
	}
	return nil
}

// Attention implements Backend: paged scaled-dot-product attention.
//
// For each sequence s and each of its query rows i (absolute position
// pos[i]) and head h (KV head h / (NHead/NKVHead)), the scores over the key
// positions j < CtxLen are Scale·q·k, then Softcap·tanh(score/Softcap) when
// Softcap > 0, then masked (Causal hides j > pos[i]; Window > 0 hides
// pos[i]-j >= Window), then softmax-normalised, and the output is Σ p_j v_j.
// Keys and values are read through the block table, dequantized exactly
// from an F16 or Q8_0 pool (KVRow). Memory is one score buffer of the
// longest CtxLen; no mask matrix is built. A row whose every
// key is masked gets zeros, and so do query rows that no sequence covers.
// Arithmetic is float64.
func (r *Reference) Attention(out, q *Tensor, pool KVPool, pos []int32, seqs []SeqAttn, p AttnParams) error {
	if err := CheckAttention(out, q, pool, pos, seqs, p); err != nil {
		return err
	}
	clear(out.F32)
	maxCtx := 0
	for _, s := range seqs {
		maxCtx = max(maxCtx, s.CtxLen)
	}
	scratch := make([]float64, maxCtx+p.HeadDimV)
	row := make([]float32, max(p.HeadDim, p.HeadDimV))
	group := p.NHead / p.NKVHead
	qCols, oCols := q.Cols(), out.Cols()
	for _, s := range seqs {
		for i := s.QStart; i < s.QStart+s.QLen; i++ {
			for h := range p.NHead {
				AttentionHead(
					out.F32[i*oCols+h*p.HeadDimV:i*oCols+(h+1)*p.HeadDimV],
					q.F32[i*qCols+h*p.HeadDim:i*qCols+(h+1)*p.HeadDim],
					pool, s, int(pos[i]), h/group, p, scratch, row)
			}
		}
	}
	return nil
}

// AttentionHead is the reference computation for one query head: q (len
// HeadDim) at position qPos attends over the first s.CtxLen positions of
// sequence s in KV head kvHead of the pool, and the result goes to out (len
// HeadDimV); a fully masked row gives zeros. scratch needs s.CtxLen+HeadDimV
// float64s, and row max(HeadDim, HeadDimV) float32s for an F16 or Q8_0 pool
// (one dequantized K or V row; nil for F32). Arguments must have passed CheckAttention. Rows and heads are
// independent, so a backend may run calls concurrently, each with its own
// scratch.
func AttentionHead(out, q []float32, pool KVPool, s SeqAttn, qPos, kvHead int, p AttnParams, scratch []float64, row []float32) {
	scores, acc := scratch[:s.CtxLen], scratch[s.CtxLen:s.CtxLen+p.HeadDimV]
	// kvRow is the head's K or V row of slot: a view of an F32 pool, else
	// dequantized into row.
	kvRow := func(t *Tensor, slot, col, n int) []float32 {
		if t.Type == ggml.F32 {
			c := t.Cols()
			return t.F32[slot*c+col : slot*c+col+n]
		}
		KVRow(t, slot, col, row[:n])
		return row[:n]
	}
	bs := pool.BlockSize
	m := math.Inf(-1)
	for j := range s.CtxLen {
		if (p.Causal && j > qPos) || (p.Window > 0 && qPos-j >= p.Window) {
			scores[j] = math.Inf(-1)
			continue
		}
		slot := int(s.Blocks[j/bs])*bs + j%bs
		k := kvRow(pool.K, slot, kvHead*p.HeadDim, p.HeadDim)
		sc := float64(p.Scale) * DotF64(q, k)
		if p.Softcap > 0 {
			sc = float64(p.Softcap) * math.Tanh(sc/float64(p.Softcap))
		}
		scores[j] = sc
		m = max(m, sc)
	}
	if math.IsInf(m, -1) {
		clear(out) // every key masked
		return
	}
	clear(acc)
	var sum float64
	for j := range s.CtxLen {
		if math.IsInf(scores[j], -1) {
			continue
		}
		w := math.Exp(scores[j] - m)
		sum += w
		slot := int(s.Blocks[j/bs])*bs + j%bs
		v := kvRow(pool.V, slot, kvHead*p.HeadDimV, p.HeadDimV)
		for d, x := range v {
			acc[d] += w * float64(x)
		}
	}
	for d := range out {
		out[d] = float32(acc[d] / sum)
	}
}

// CheckAttention validates the arguments of Backend.Attention:
//   - NHead, NKVHead, HeadDim, HeadDimV > 0 and NHead % NKVHead == 0; Window >= 0;
//     Softcap >= 0 and finite;
//   - q is F32 [n, NHead*HeadDim] and out is F32 [n, NHead*HeadDimV], distinct;
//   - the pool is valid with K [slots, NKVHead*HeadDim] and V [slots, NKVHead*HeadDimV];
//   - len(pos) == n and no position is negative;
//   - each sequence's query rows lie inside [0, n) and no two sequences share
//     a row; CtxLen <= len(Blocks)*BlockSize; every block the first CtxLen
//     positions use is inside the pool; for causal attention, every query
//     position is < CtxLen (the query's own key must be in the context).
func CheckAttention(out, q *Tensor, pool KVPool, pos []int32, seqs []SeqAttn, p AttnParams) error {
	const op = "attention"
	if p.NHead <= 0 || p.NKVHead <= 0 || p.NHead%p.NKVHead != 0 {
		return fmt.Errorf("%s: NHead %d must be a positive multiple of NKVHead %d", op, p.NHead, p.NKVHead)
	}
	if p.HeadDim <= 0 || p.HeadDimV <= 0 {
		return fmt.Errorf("%s: HeadDim %d and HeadDimV %d must be positive", op, p.HeadDim, p.HeadDimV)
	}
	if p.Window < 0 {
		return fmt.Errorf("%s: negative Window %d", op, p.Window)
	}
	if !(p.Softcap >= 0) || math.IsInf(float64(p.Softcap), 0) {
		return fmt.Errorf("%s: Softcap %v must be finite and >= 0", op, p.Softcap)
	}
	if err := checkF32(op, "q", q); err != nil {
		return err
	}
	if err := checkF32(op, "out", out); err != nil {
		return err
	}
	if len(q.Shape) != 2 || q.Shape[1] != p.NHead*p.HeadDim {
		return fmt.Errorf("%s: q %s but NHead %d × HeadDim %d (want [n %d])", op, desc(q), p.NHead, p.HeadDim, p.NHead*p.HeadDim)
	}
	n := q.Shape[0]
	if len(out.Shape) != 2 || out.Shape[0] != n || out.Shape[1] != p.NHead*p.HeadDimV {
		return fmt.Errorf("%s: q %s but out %s (want [%d %d] for NHead %d × HeadDimV %d)", op, desc(q), desc(out), n, p.NHead*p.HeadDimV, p.NHead, p.HeadDimV)
	}
	if len(q.F32) > 0 && len(out.F32) > 0 && &q.F32[0] == &out.F32[0] { // host storage only
		return fmt.Errorf("%s: out %s and q %s share storage", op, desc(out), desc(q))
	}
	if err := CheckKVPool(op, pool); err != nil {
		return err
	}
	if pool.K.Shape[1] != p.NKVHead*p.HeadDim {
		return fmt.Errorf("%s: pool K %s but NKVHead %d × HeadDim %d = %d columns", op, desc(pool.K), p.NKVHead, p.HeadDim, p.NKVHead*p.HeadDim)
	}
	if pool.V.Shape[1] != p.NKVHead*p.HeadDimV {
		return fmt.Errorf("%s: pool V %s but NKVHead %d × HeadDimV %d = %d columns", op, desc(pool.V), p.NKVHead, p.HeadDimV, p.NKVHead*p.HeadDimV)
	}
	if len(pos) != n {
		return fmt.Errorf("%s: q %s but %d positions", op, desc(q), len(pos))
	}
	for i, x := range pos {
		if x < 0 {
			return fmt.Errorf("%s: negative position %d for row %d", op, x, i)
		}
	}
	bs := pool.BlockSize
	nBlocks := pool.K.Shape[0] / bs
	owner := make([]int, n) // 1 + index of the sequence that owns each row
	for si, s := range seqs {
		if s.QStart < 0 || s.QLen < 0 || s.QStart+s.QLen > n {
			return fmt.Errorf("%s: sequence %d query rows [%d, %d) outside the batch's %d rows", op, si, s.QStart, s.QStart+s.QLen, n)
		}
		if s.CtxLen < 0 || s.CtxLen > len(s.Blocks)*bs {
			return fmt.Errorf("%s: sequence %d CtxLen %d but %d blocks of %d slots", op, si, s.CtxLen, len(s.Blocks), bs)
		}
		for b := range (s.CtxLen + bs - 1) / bs {
			if id := s.Blocks[b]; id < 0 || int(id) >= nBlocks {
				return fmt.Errorf("%s: sequence %d block %d has id %d outside the pool's %d blocks", op, si, b, id, nBlocks)
			}
		}
		for i := s.QStart; i < s.QStart+s.QLen; i++ {
			if owner[i] != 0 {
				return fmt.Errorf("%s: query row %d belongs to sequences %d and %d", op, i, owner[i]-1, si)
			}
			owner[i] = si + 1
			if p.Causal && int(pos[i]) >= s.CtxLen {
				return fmt.Errorf("%s: sequence %d row %d at position %d but CtxLen %d (causal attention needs the query's own key)", op, si, i, pos[i], s.CtxLen)
			}
		}
	}
	return nil
}
