package compute

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/ggml"
)

// sortedCandidates is TopKRow's order by a plain full sort: every index
// whose value is neither NaN nor -Inf, larger value first, ties to the
// lower index.
func sortedCandidates(row []float32) []int32 {
	var ids []int32
	for j, v := range row {
		if v == v && v >= -math.MaxFloat32 {
			ids = append(ids, int32(j))
		}
	}
	slices.SortStableFunc(ids, func(a, b int32) int {
		switch {
		case row[a] > row[b]:
			return -1
		case row[a] < row[b]:
			return 1
		}
		return 0
	})
	return ids
}

// awkwardRow is a random row with exact ties, -Inf, signed zeros and, when
// asked, a NaN or +Inf.
func awkwardRow(rng *rand.Rand, m int, bad float32) []float32 {
	row := make([]float32, m)
	for j := range row {
		switch rng.IntN(8) {
		case 0:
			row[j] = float32(math.Inf(-1))
		case 1:
			row[j] = float32(rng.IntN(3)) // many exact ties
		case 2:
			row[j] = float32(math.Copysign(0, float64(rng.IntN(2))-0.5))
		default:
			row[j] = float32(rng.NormFloat64() * 3)
		}
	}
	if bad != 0 || bad != bad {
		row[rng.IntN(m)] = bad
	}
	return row
}

func TestTopKRow(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	inf := float32(math.Inf(1))
	for _, m := range []int{1, 2, 7, 100, 1000, 5003} {
		for _, k := range []int{1, 5, 40, 64, MaxTopK} {
			for _, bad := range []float32{0, float32(math.NaN()), inf} {
				row := awkwardRow(rng, m, bad)
				ids := make([]int32, k)
				vals := make([]float32, k)
				for i := range ids {
					ids[i], vals[i] = 12345, float32(math.NaN()) // poison
				}
				lse := TopKRow(row, ids, vals)
				want := sortedCandidates(row)
				for i := range k {
					wid, wv := int32(-1), float32(math.Inf(-1))
					if i < len(want) {
						wid, wv = want[i], row[want[i]]
					}
					if ids[i] != wid || math.Float32bits(vals[i]) != math.Float32bits(wv) {
						t.Fatalf("m=%d k=%d bad=%v: slot %d is (%d, %v), want (%d, %v)", m, k, bad, i, ids[i], vals[i], wid, wv)
					}
				}
				var wantLSE float64
				switch {
				case bad != 0 || bad != bad:
					wantLSE = math.NaN()
				case len(want) == 0:
					wantLSE = math.Inf(-1)
				default:
					var z float64
					for _, v := range row {
						z += math.Exp(float64(v))
					}
					wantLSE = math.Log(z) // |values| are small: no overflow
				}
				switch {
				case math.IsNaN(wantLSE) || math.IsInf(wantLSE, -1):
					if math.Float64bits(lse) != math.Float64bits(wantLSE) && !(math.IsNaN(lse) && math.IsNaN(wantLSE)) {
						t.Errorf("m=%d k=%d bad=%v: lse %v, want %v", m, k, bad, lse, wantLSE)
					}
				case math.Abs(lse-wantLSE) > 1e-12*max(1, math.Abs(wantLSE)):
					t.Errorf("m=%d k=%d: lse %v, want %v", m, k, lse, wantLSE)
				}
			}
		}
	}
}

// TestTopKRowAllMasked: a row of only -Inf and NaN has no candidate; its
// lse is -Inf without NaN, NaN with.
func TestTopKRowAllMasked(t *testing.T) {
	ninf := float32(math.Inf(-1))
	ids, vals := make([]int32, 3), make([]float32, 3)
	if lse := TopKRow([]float32{ninf, ninf}, ids, vals); !math.IsInf(lse, -1) || ids[0] != -1 || ids[2] != -1 {
		t.Errorf("all -Inf: lse %v ids %v, want -Inf, all -1", lse, ids)
	}
	if lse := TopKRow([]float32{ninf, float32(math.NaN())}, ids, vals); !math.IsNaN(lse) || ids[0] != -1 {
		t.Errorf("-Inf and NaN: lse %v ids %v, want NaN, all -1", lse, ids)
	}
}

func TestTopKRowsArgs(t *testing.T) {
	x := &Tensor{Type: ggml.F32, Shape: []int{2, 3}, F32: []float32{1, 3, 2, 0, -1, 5}}
	ids, vals, lse := make([]int32, 4), make([]float32, 4), make([]float32, 2)
	if err := TopKRows(x, 2, ids, vals, lse); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int32{1, 2, 2, 0}) || !slices.Equal(vals, []float32{3, 2, 5, 0}) {
		t.Errorf("ids %v vals %v, want [1 2 2 0] [3 2 5 0]", ids, vals)
	}
	for _, tc := range []struct {
		name string
		k    int
		ids  int
		lse  int
		x    *Tensor
	}{
		{"k 0", 0, 0, 2, x},
		{"k over MaxTopK", MaxTopK + 1, 2 * (MaxTopK + 1), 2, x},
		{"short ids", 2, 3, 2, x},
		{"short lse", 2, 4, 1, x},
		{"1-D", 2, 4, 2, &Tensor{Type: ggml.F32, Shape: []int{6}, F32: x.F32}},
		{"F16", 2, 4, 2, &Tensor{Type: ggml.F16, Shape: []int{2, 3}}},
	} {
		if err := TopKRows(tc.x, tc.k, make([]int32, tc.ids), make([]float32, tc.ids), make([]float32, tc.lse)); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
}
