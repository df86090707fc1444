package model

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// TestCacheCopyBlock fills a cache of each KV type with random keys and
// values, copies part of one block to another and checks that exactly
// those rows changed, to the bit, in every layer.
func TestCacheCopyBlock(t *testing.T) {
	for _, typ := range []ggml.Type{ggml.F32, ggml.F16, ggml.Q8_0} {
		t.Run(typ.String(), func(t *testing.T) { testCopyBlock(t, compute.NewReference(), typ) })
	}
}

// readPool returns every slot of a pool tensor as F32, through Embedding
// (which every backend has for every pool type, and which dequantizes
// exactly).
func readPool(t *testing.T, b compute.Backend, x *compute.Tensor) []float32 {
	t.Helper()
	rows, cols := x.Shape[0], x.Cols()
	dst, err := b.NewTensor("read", ggml.F32, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free(dst)
	ids := make([]int32, rows)
	for i := range ids {
		ids[i] = int32(i)
	}
	if err := b.Embedding(dst, x, ids); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, dst.Elems())
	if err := b.Read(dst, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func testCopyBlock(t *testing.T, b compute.Backend, typ ggml.Type) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	hp := HParams{NLayer: 3, NHeadKV: 2, HeadDimK: 3, HeadDimV: 5}
	if typ == ggml.Q8_0 {
		hp.HeadDimK, hp.HeadDimV = 48, 16 // rows of whole blocks: 96 and 32
	}
	const nBlocks, bs = 5, 7 // awkward sizes
	c, err := NewCacheType(b, hp, nBlocks, bs, typ)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free()
	if c.Type != typ {
		t.Fatalf("cache type %s, want %s", c.Type, typ)
	}
	// Fill every slot through KVWrite; slot 3's rows are tiny (a Q8_0 scale
	// that underflows F16).
	slots := make([]int32, c.Slots())
	for i := range slots {
		slots[i] = int32(i)
	}
	rows := func(cols int) *compute.Tensor {
		x, err := b.NewTensor("rows", ggml.F32, c.Slots(), cols)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]float32, x.Elems())
		for i := range data {
			data[i] = rng.Float32()*2 - 1
			if i/cols == 3 {
				data[i] *= 1e-7
			}
		}
		if err := b.Write(x, data); err != nil {
			t.Fatal(err)
		}
		return x
	}
	k, v := rows(hp.KDim()), rows(hp.VDim())
	defer b.Free(k)
	defer b.Free(v)
	var before [][2][]float32
	for _, p := range c.Layers {
		if err := b.KVWrite(p, k, v, slots); err != nil {
			t.Fatal(err)
		}
		before = append(before, [2][]float32{readPool(t, b, p.K), readPool(t, b, p.V)})
	}
	cases := []struct{ src, dst, rows int }{{1, 3, 4}, {4, 0, bs}, {2, 2, 3}, {0, 1, 0}, {0, 2, 5}}
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
				got := readPool(t, b, x)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s CopyBlock(%d, %d, %d): layer %d tensor %d element %d (slot %d) = %v, want %v",
							typ, tc.src, tc.dst, tc.rows, il, kv, i, i/w, got[i], want[i])
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

// TestCacheCopyBlockQ8Bytes checks the Q8_0 round trip of CopyBlock byte
// for byte on the reference backend (whose pools are host bytes): the
// copied slots hold exactly the source slots' blocks, scales included.
func TestCacheCopyBlockQ8Bytes(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	b := compute.NewReference()
	hp := HParams{NLayer: 2, NHeadKV: 4, HeadDimK: 64, HeadDimV: 32}
	const nBlocks, bs = 4, 16
	c, err := NewCacheType(b, hp, nBlocks, bs, ggml.Q8_0)
	if err != nil {
		t.Fatal(err)
	}
	slots := make([]int32, c.Slots())
	for i := range slots {
		slots[i] = int32(i)
	}
	mk := func(cols int) *compute.Tensor {
		x, _ := b.NewTensor("rows", ggml.F32, c.Slots(), cols)
		for i := range x.F32 {
			// Magnitudes from 1e-4 to 1e3: scales across the F16 range.
			x.F32[i] = float32(rng.NormFloat64() * math.Pow(10, float64(i/cols%8)-4))
		}
		return x
	}
	for _, p := range c.Layers {
		if err := b.KVWrite(p, mk(hp.KDim()), mk(hp.VDim()), slots); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CopyBlock(2, 0, bs); err != nil {
		t.Fatal(err)
	}
	for il, p := range c.Layers {
		for _, x := range []*compute.Tensor{p.K, p.V} {
			rb := x.Cols() / 32 * 34
			src, dst := x.Raw[2*bs*rb:3*bs*rb], x.Raw[:bs*rb]
			if string(src) != string(dst) {
				t.Fatalf("layer %d %s: copied block's bytes differ from the source's", il, x.Name)
			}
		}
	}
}

func TestCacheTypes(t *testing.T) {
	// TinyLlama's shape: 22 layers, 4 KV heads of 64.
	hp := HParams{NLayer: 22, NHeadKV: 4, HeadDimK: 64, HeadDimV: 64}
	for _, tc := range []struct {
		typ  ggml.Type
		want int64
	}{{ggml.F32, 22 * 2 * 256 * 4}, {ggml.F16, 22 * 2 * 256 * 2}, {ggml.Q8_0, 22 * 2 * 8 * 34}} {
		got, err := CacheBytesPerToken(hp, tc.typ)
		if err != nil || got != tc.want {
			t.Errorf("CacheBytesPerToken(%s) = %d, %v; want %d", tc.typ, got, err, tc.want)
		}
	}
	odd := HParams{NLayer: 2, NHeadKV: 3, HeadDimK: 10, HeadDimV: 10}
	for _, tc := range []struct {
		hp    HParams
		typ   ggml.Type
		frags []string
	}{
		{hp, ggml.Q4_0, []string{"Q4_0", "F32, F16 or Q8_0"}},
		{odd, ggml.Q8_0, []string{"Q8_0", "K width 30", "3 heads × 10"}},
	} {
		_, err := CacheBytesPerToken(tc.hp, tc.typ)
		_, err2 := NewCacheType(compute.NewReference(), tc.hp, 2, 4, tc.typ)
		for _, e := range []error{err, err2} {
			if e == nil {
				t.Errorf("%s: no error", tc.typ)
				continue
			}
			for _, f := range tc.frags {
				if !strings.Contains(e.Error(), f) {
					t.Errorf("%s: error %q lacks %q", tc.typ, e, f)
				}
			}
		}
	}
	if _, err := NewCacheType(compute.NewReference(), odd, 2, 4, ggml.F16); err != nil {
		t.Errorf("F16 cache of 30-wide rows: %v", err)
	}
}
