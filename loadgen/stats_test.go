package loadgen

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"one value", []float64{7}, 50, 7},
		{"one value p99", []float64{7}, 99, 7},
		{"min", []float64{1, 2, 3, 4}, 0, 1},
		{"max", []float64{1, 2, 3, 4}, 100, 4},
		{"median of odd", []float64{1, 2, 3, 4, 5}, 50, 3},
		{"median of even interpolates", []float64{1, 2, 3, 4}, 50, 2.5},
		// numpy.percentile([10,20,30,40,50,60,70,80,90,100], 99) = 99.1
		{"p99 of ten", []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 99, 99.1},
		// numpy.percentile([1,2,3,4], 90) = 3.7
		{"p90 of four", []float64{1, 2, 3, 4}, 90, 3.7},
		{"ties", []float64{5, 5, 5, 9}, 50, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Percentile(tc.sorted, tc.p)
			if math.Abs(got-tc.want) > 1e-12*math.Max(1, math.Abs(tc.want)) {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
			}
		})
	}
	for _, bad := range []struct {
		s []float64
		p float64
	}{{nil, 50}, {[]float64{1}, -1}, {[]float64{1}, 101}, {[]float64{1}, math.NaN()}} {
		if got := Percentile(bad.s, bad.p); !math.IsNaN(got) {
			t.Errorf("Percentile(%v, %v) = %v, want NaN", bad.s, bad.p, got)
		}
	}
}

// TestPercentileRanks checks, on random samples of awkward sizes, that the
// percentile stays within the sample, is monotone in p and hits the exact
// order statistic where p/100*(n-1) is an integer.
func TestPercentileRanks(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, n := range []int{1, 2, 3, 7, 101, 1000} {
		s := make([]float64, n)
		for i := range s {
			s[i] = rng.NormFloat64()
		}
		slices.Sort(s)
		prev := math.Inf(-1)
		for p := 0.0; p <= 100; p += 0.5 {
			v := Percentile(s, p)
			if v < s[0] || v > s[n-1] || v < prev {
				t.Fatalf("n %d: Percentile(p=%v) = %v outside [%v, %v] or below the previous %v", n, p, v, s[0], s[n-1], prev)
			}
			prev = v
		}
		for i := range n {
			if n == 1 {
				break
			}
			p := 100 * float64(i) / float64(n-1)
			if got := Percentile(s, p); math.Abs(got-s[i]) > 1e-9*math.Max(1, math.Abs(s[i])) {
				t.Errorf("n %d: Percentile(p=%v) = %v, want order statistic %d = %v", n, p, got, i, s[i])
			}
		}
	}
}

func TestSummary(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x * float64(time.Millisecond))
		}
		return out
	}
	// Unsorted on purpose: Summary sorts a copy.
	in := ms(40, 10, 30, 20)
	q := Summary(in)
	want := Quantiles{N: 4, Mean: 25, P50: 25, P90: 37, P99: 39.7, Max: 40}
	if !closeQ(q, want) {
		t.Errorf("Summary = %+v, want %+v", q, want)
	}
	if in[0] != 40*time.Millisecond {
		t.Errorf("Summary reordered its input: %v", in)
	}
	if q := Summary(nil); q != (Quantiles{}) {
		t.Errorf("Summary(nil) = %+v, want zeros", q)
	}
}

func closeQ(a, b Quantiles) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	return a.N == b.N && near(a.Mean, b.Mean) && near(a.P50, b.P50) && near(a.P90, b.P90) && near(a.P99, b.P99) && near(a.Max, b.Max)
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	recs := []Record{
		{Latency: 100 * ms, TTFT: 10 * ms, ITL: []time.Duration{5 * ms, 7 * ms}, Chunks: 3, PromptTokens: 8, CompletionTokens: 3, FinishReason: "length"},
		{Latency: 200 * ms, TTFT: 30 * ms, ITL: []time.Duration{9 * ms}, Chunks: 2, PromptTokens: 8, CompletionTokens: 2, CachedTokens: 4, FinishReason: "stop"},
		{Latency: 1 * ms, Err: errors.New("HTTP 503: queue full")},
		{Latency: 1 * ms, Err: errors.New("HTTP 503: queue full")},
		{Latency: 1 * ms, Err: errors.New("reset")},
	}
	r := Summarize(4, recs, 2*time.Second, 3)
	check := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("Concurrency", r.Concurrency, 4)
	check("Requests", r.Requests, 2)
	check("Errors", r.Errors, 3)
	check("len(ErrorSamples)", len(r.ErrorSamples), 2) // distinct messages
	check("PromptTokens", r.PromptTokens, 16)
	check("CompletionTokens", r.CompletionTokens, 5)
	check("CachedTokens", r.CachedTokens, 4)
	check("ShortRequests", r.ShortRequests, 1)
	check("RequestsPerSec", r.RequestsPerSec, 1.0)
	check("GenTokensPerSec", r.GenTokensPerSec, 2.5)
	check("TTFT.N", r.TTFT.N, 2)
	check("TTFT.P50", r.TTFT.P50, 20.0)
	check("ITL.N", r.ITL.N, 3)
	check("ITL.P50", r.ITL.P50, 7.0)
	check("Latency.Max", r.Latency.Max, 200.0) // failed requests are left out
	if z := Summarize(1, nil, 0, 3); z.RequestsPerSec != 0 || z.GenTokensPerSec != 0 || z.Requests != 0 {
		t.Errorf("Summarize of nothing = %+v, want zero rates", z)
	}
}
