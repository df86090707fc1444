package gpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// TestRoPEKVWrite checks RoPE + KV write in one launch against the
// reference's RoPE of q and k and KVWrite of the rotated k and v: q and k
// bit for bit (as TestRoPEPair), every slot of the pools bit for bit
// (read back through Embedding, which dequantizes exactly), over pools
// already holding other rows. Pool types F32, F16, Q8_0; GQA and MHA head
// counts that split into uneven chunks; partial rotation; head sizes that
// are not whole q8 blocks (the Q8_0 pool then takes RoPEPair + KVWrite);
// with the fused kernel on and off.
func TestRoPEKVWrite(t *testing.T) {
	b := testBackend(t)
	defer func(on bool) { b.dec.ropeKVOn = on }(b.dec.ropeKVOn)
	rng := newRNG(t)
	ref := compute.NewReference()
	for _, c := range []struct {
		typ   ggml.Type
		fused bool
	}{{ggml.F32, true}, {ggml.F16, true}, {ggml.Q8_0, true}, {ggml.F16, false}} {
		typ := c.typ
		b.dec.ropeKVOn = c.fused
		for _, tc := range []struct {
			n, hq, hk, hd, hdv int
			p                  compute.RoPEParams
		}{
			{1, 32, 4, 64, 64, compute.RoPEParams{Kind: compute.RoPENorm, NRot: 64, FreqBase: 10000, FreqScale: 1}},
			{3, 13, 5, 128, 128, compute.RoPEParams{Kind: compute.RoPENeoX, NRot: 128, FreqBase: 1e6}},
			{2, 7, 7, 64, 96, compute.RoPEParams{Kind: compute.RoPENeoX, NRot: 26, FreqBase: 10000, FreqScale: 0.25}},
			{1, 6, 4, 40, 40, compute.RoPEParams{Kind: compute.RoPENorm, NRot: 40, FreqBase: 10000}},
		} {
			what := fmt.Sprintf("%s (fused %v) n=%d heads %d+%d hd %d/%d", typ, c.fused, tc.n, tc.hq, tc.hk, tc.hd, tc.hdv)
			slotsN, kc, vc := 24, tc.hk*tc.hd, tc.hk*tc.hdv
			newPool := func(name string, cols int) pair {
				g, err := b.NewTensor(name, typ, slotsN, cols)
				must(t, "new pool", err)
				t.Cleanup(func() { b.Free(g) })
				r, err := ref.NewTensor(name, typ, slotsN, cols)
				must(t, "new pool", err)
				return pair{g, r}
			}
			pk, pv := newPool("K", kc), newPool("V", vc)
			gpool := compute.KVPool{K: pk.g, V: pv.g, BlockSize: 8}
			rpool := compute.KVPool{K: pk.r, V: pv.r, BlockSize: 8}
			// Old rows in every slot, so an unwritten new row shows.
			all := make([]int32, slotsN)
			for i := range all {
				all[i] = int32(i)
			}
			ok := f32Pair(t, b, "old k", randVec(rng, slotsN*kc, 1), slotsN, kc)
			ov := f32Pair(t, b, "old v", randVec(rng, slotsN*vc, 1), slotsN, vc)
			must(t, what, b.KVWrite(gpool, ok.g, ov.g, all))
			must(t, what, ref.KVWrite(rpool, ok.r, ov.r, all))

			q := f32Pair(t, b, "q", randVec(rng, tc.n*tc.hq*tc.hd, 2), tc.n, tc.hq, tc.hd)
			k := f32Pair(t, b, "k", randVec(rng, tc.n*kc, 2), tc.n, tc.hk, tc.hd)
			v := f32Pair(t, b, "v", randVec(rng, tc.n*vc, 2), tc.n, vc)
			pos, slots := make([]int32, tc.n), make([]int32, tc.n)
			perm := rng.Perm(slotsN)
			for i := range pos {
				pos[i] = int32(rng.IntN(5000))
				slots[i] = int32(perm[i])
			}
			kg2, err := compute.Reshape(k.g, tc.n, kc)
			must(t, what, err)
			must(t, what, b.RoPEKVWrite(q.g, k.g, kg2, v.g, pos, tc.p, gpool, slots))
			must(t, what, ref.RoPE(q.r, pos, tc.p))
			must(t, what, ref.RoPE(k.r, pos, tc.p))
			kr2, err := compute.Reshape(k.r, tc.n, kc)
			must(t, what, err)
			must(t, what, ref.KVWrite(rpool, kr2, v.r, slots))
			check(t, b, what+": q", q, exactTol)
			check(t, b, what+": k", k, exactTol)
			checkPoolRows(t, b, what+": pool K", pk, all)
			checkPoolRows(t, b, what+": pool V", pv, all)
		}
	}
}

// checkPoolRows reads rows of a GPU pool and of the reference pool back
// through Embedding and requires the same bits.
func checkPoolRows(t *testing.T, b *Backend, what string, p pair, ids []int32) {
	t.Helper()
	out := poisonedPair(t, b, "rows", len(ids), p.g.Cols())
	must(t, what, b.Embedding(out.g, p.g, ids))
	must(t, what, compute.NewReference().Embedding(out.r, p.r, ids))
	got := read(t, b, out.g)
	for i, w := range out.r.F32 {
		if math.Float32bits(got[i]) != math.Float32bits(w) {
			t.Fatalf("%s: slot %d col %d holds %v, reference %v", what, ids[i/p.g.Cols()], i%p.g.Cols(), got[i], w)
		}
	}
}
