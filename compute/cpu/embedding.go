package cpu

import (
	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// Embedding implements compute.Backend: row i of dst is row ids[i] of the
// table, copied (F32) or decoded by ggml.Dequantize (any other type), with
// the rows split over the workers for long prompts.
func (b *Backend) Embedding(dst, table *compute.Tensor, ids []int32) error {
	if err := compute.CheckEmbedding(dst, table, ids); err != nil {
		return err
	}
	d := table.Cols()
	j := embedJob{dst: dst.F32, table: table, ids: ids, d: d}
	if table.Type != ggml.F32 {
		rb, _ := table.Type.RowSize(int64(d)) // checked by CheckEmbedding
		j.rowBytes = int(rb)
	}
	if b.serial(len(ids) * d * 4) {
		j.do(0, len(ids)) // no job on the heap for the common small case
	} else {
		jp := new(embedJob)
		*jp = j
		b.pool.run(len(ids), max(1, 4096/d), jp)
	}
	return nil
}

// embedJob fills dst rows [lo, hi).
type embedJob struct {
	dst      []float32
	table    *compute.Tensor
	ids      []int32
	d        int
	rowBytes int
}

func (j *embedJob) do(lo, hi int) {
	for i := lo; i < hi; i++ {
		id, out := int(j.ids[i]), j.dst[i*j.d:(i+1)*j.d]
		if j.table.Type == ggml.F32 {
			copy(out, j.table.F32[id*j.d:(id+1)*j.d])
			continue
		}
		// Cannot fail: the type is supported and the sizes were checked.
		_ = ggml.Dequantize(j.table.Type, j.table.Raw[id*j.rowBytes:(id+1)*j.rowBytes], out)
	}
}
