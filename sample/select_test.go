package sample

import (
	"slices"
	"testing"
)

// TestSelectMatchesSort checks topK (both the heap and the quickselect path)
// and nthElement against a full sort, on awkward sizes and with many ties.
func TestSelectMatchesSort(t *testing.T) {
	r := newRand(t, 21)
	for _, n := range []int{1, 2, 17, 129, 1000, 4099} {
		for _, tied := range []bool{false, true} {
			l := randLogits(r, n, 1)
			if tied { // few distinct values, so the order rests on the id tie-break
				for i := range l {
					l[i] = float32(int(l[i] * 2))
				}
			}
			want := refOrder(l)
			for _, k := range []int{1, 3, 40, 128, 129, 500, n - 1, n} {
				if k < 1 || k > n {
					continue
				}
				got := topK(nil, l, k)
				sortCands(got)
				if !slices.Equal(candIDs(got), want[:k]) {
					t.Fatalf("n=%d tied=%v k=%d: topK %v..., want %v...", n, tied, k, candIDs(got)[:min(k, 5)], want[:min(k, 5)])
				}
				c := appendFinite(nil, l)
				nthElement(c, k)
				head := slices.Clone(c[:k])
				sortCands(head)
				if !slices.Equal(candIDs(head), want[:k]) {
					t.Fatalf("n=%d tied=%v k=%d: nthElement head differs from the sort", n, tied, k)
				}
			}
		}
	}
}

// TestNthElementSortedInputs feeds the inputs that defeat naive pivots.
func TestNthElementSortedInputs(t *testing.T) {
	const n = 3001
	for _, name := range []string{"ascending", "descending", "constant", "organ pipe"} {
		l := make([]float32, n)
		for i := range l {
			switch name {
			case "ascending":
				l[i] = float32(i)
			case "descending":
				l[i] = float32(n - i)
			case "organ pipe":
				l[i] = float32(min(i, n-i))
			}
		}
		want := refOrder(l)
		for _, k := range []int{1, 64, n / 2, n - 1} {
			c := appendFinite(nil, l)
			nthElement(c, k)
			head := c[:k]
			sortCands(head)
			if !slices.Equal(candIDs(head), want[:k]) {
				t.Errorf("%s k=%d: nthElement head differs from the sort", name, k)
			}
		}
	}
}
