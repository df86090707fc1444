package model

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute"
)

// ForwardTopK is Forward for sampling from each output's best tokens: for
// output i, ids[i*k:(i+1)*k] and vals[i*k:(i+1)*k] get the k largest
// logits, largest first (ties to the lower id), and lse[i] the log-sum-exp
// of the whole row, as compute.TopKer defines them. A backend with
// compute.TopKer finds them where the logits are and copies back only
// those; otherwise the logits are read and searched here
// (compute.TopKRows). k must be 1 to compute.MaxTopK.
func (m *Model) ForwardTopK(b *Batch, c *Cache, k int, ids []int32, vals []float32, lse []float32) error {
	n := len(b.Outputs)
	if k < 1 || k > compute.MaxTopK {
		return fmt.Errorf("model: forward: top-k of %d, want 1 to %d", k, compute.MaxTopK)
	}
	if len(ids) != n*k || len(vals) != n*k || len(lse) != n {
		return fmt.Errorf("model: forward: %d ids, %d values and %d log-sum-exps for the top %d of %d outputs", len(ids), len(vals), len(lse), k, n)
	}
	nv := m.HParams.NVocab
	if err := m.checkBatch(b, c, n*nv); err != nil {
		return err
	}
	if err := m.forward(b, c); err != nil || n == 0 {
		return err
	}
	if t, ok := m.b.(compute.TopKer); ok {
		if err := t.TopKRows(&m.s.logits, k, ids, vals, lse); err != nil {
			return fmt.Errorf("model: top-k: %w", err)
		}
		return nil
	}
	host := &compute.Tensor{Type: m.s.logits.Type, Shape: []int{n, nv}, F32: make([]float32, n*nv)} // the slow path: no TopKer
	if err := m.b.Read(&m.s.logits, host.F32); err != nil {
		return fmt.Errorf("model: read logits: %w", err)
	}
	return compute.TopKRows(host, k, ids, vals, lse)
}
