package gpu

import (
	"testing"

	"github.com/rocmforge/rocmforge/compute"
)

// TestAttTiledChoice (no GPU needed): which attention kernels a batch
// takes. Decode rows never go to the tiled kernel, whatever their number;
// prompt runs of atSeqRows rows or more do once they hold atMinRows rows,
// with the per-row kernel beside them for any shorter run.
func TestAttTiledChoice(t *testing.T) {
	b := &Backend{core: &core{attTileOn: true, warp: 32}}
	p := compute.AttnParams{NHead: 4, NKVHead: 2, HeadDim: 64, HeadDimV: 64}
	seqs := func(qlens ...int) []compute.SeqAttn {
		var s []compute.SeqAttn
		start := 0
		for _, q := range qlens {
			s = append(s, compute.SeqAttn{QStart: start, QLen: q, CtxLen: q + 5})
			start += q
		}
		return s
	}
	ones := make([]int, 200)
	for i := range ones {
		ones[i] = 1
	}
	for _, tc := range []struct {
		name         string
		seqs         []compute.SeqAttn
		tiled, mixed bool
	}{
		{"200 decode rows", seqs(ones...), false, false},
		{"one 64-row prompt", seqs(64), true, false},
		{"63 prompt rows", seqs(63), false, false},
		{"prompt and decodes", seqs(append([]int{100}, ones[:50]...)...), true, true},
		{"short prompts only", seqs(15, 15, 15, 15, 15), false, false},
		{"two prompts of 40", seqs(40, 40), true, false},
	} {
		tiled, mixed := b.attTiled(tc.seqs, p)
		if tiled != tc.tiled || mixed != tc.mixed {
			t.Errorf("%s: tiled %v mixed %v, want %v %v", tc.name, tiled, mixed, tc.tiled, tc.mixed)
		}
	}
	p.HeadDim = 256
	if tiled, _ := b.attTiled(seqs(100), p); tiled {
		t.Error("a 256-wide head took the tiled kernel (at most 128)")
	}
}
