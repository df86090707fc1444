package model

import (
	"math/rand/v2"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
)

// TestCacheCopyBlock fills a cache with random keys and values, copies part
// of one block to another and checks that exactly those rows changed, to
// the bit, in every layer.
func TestCacheCopyBlock(t *testing.T) {
	testCopyBlock(t, compute.NewReference())
}

func testCopyBlock(t *testing.T, b compute.Backend) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	hp := HParams{NLayer: 3, NHeadKV: 2, HeadDimK: 3, HeadDimV: 5}
	const nBlocks, bs = 5, 7 // awkward sizes
	c, err := NewCache(b, hp, nBlocks, bs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	fill := func(x *compute.Tensor) []float32 {
		data := make([]float32, x.Elems())
		for i := range data {
			data[i] = rng.Float32()*2 - 1
		}
		if err := b.Write(x, data); err != nil {
			t.Fatal(err)
		}
		return data
	}
	var before [][2][]float32
	for _, p := range c.Layers {
		before = append(before, [2][]float32{fill(p.K), fill(p.V)})
	}
	cases := []struct{ src, dst, rows int }{{1, 3, 4}, {4, 0, bs}, {2, 2, 3}, {0, 1, 0}}
	for _, tc := range cases {
		if err := c.CopyBlock(tc.src, tc.dst, tc.rows); err != nil {
			t.Fatalf("CopyBlock(%d, %d, %d): %v", tc.src, tc.dst, tc.rows, err)
		}
		for il, p := range c.Layers {
			for kv, x := range []*compute.Tensor{p.K, p.V} {
				want := before[il][kv]
				w := x.Cols()
				for r := range tc.rows {
					copy(want[(tc.dst*bs+r)*w:(tc.dst*bs+r+1)*w], want[(tc.src*bs+r)*w:])
				}
				got := make([]float32, x.Elems())
				if err := b.Read(x, got); err != nil {
					t.Fatal(err)
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("CopyBlock(%d, %d, %d): layer %d tensor %d element %d (slot %d) = %v, want %v",
							tc.src, tc.dst, tc.rows, il, kv, i, i/w, got[i], want[i])
					}
				}
			}
		}
	}
	for _, bad := range []struct{ src, dst, rows int }{{-1, 0, 1}, {0, nBlocks, 1}, {0, 1, bs + 1}, {0, 1, -1}} {
		if err := c.CopyBlock(bad.src, bad.dst, bad.rows); err == nil {
			t.Errorf("CopyBlock(%d, %d, %d): no error", bad.src, bad.dst, bad.rows)
		}
	}
}
