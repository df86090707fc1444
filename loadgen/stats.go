package loadgen

import (
	"math"
	"slices"
	"time"
)

// Record is what one request gave.
type Record struct {
	// Latency is from sending the request to the end of its response.
	Latency time.Duration
	// TTFT is the time to the first chunk that carried text (streaming
	// only; 0 when no text came).
	TTFT time.Duration
	// ITL are the gaps between successive text chunks (streaming only).
	// The server sends one chunk per token that adds text, so a gap spans
	// one token, or more where a token added no text by itself.
	ITL []time.Duration
	// Chunks is the number of text chunks received.
	Chunks int
	// PromptTokens, CompletionTokens and CachedTokens are the response's
	// usage (CompletionTokens falls back to Chunks when the server sent
	// no usage).
	PromptTokens, CompletionTokens, CachedTokens int
	// FinishReason is the choice's finish_reason.
	FinishReason string
	// Err is why the request failed; nil for a success.
	Err error
}

// Quantiles summarizes a sample of latencies, in milliseconds.
type Quantiles struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

// Result is one concurrency level's summary.
type Result struct {
	Concurrency int `json:"concurrency"`
	// Requests is the number that succeeded; Errors the number that failed.
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	// ErrorSamples are up to maxErrorSamples distinct error messages.
	ErrorSamples []string `json:"error_samples,omitempty"`
	// Elapsed is from the first request's start to the last one's end.
	ElapsedSeconds float64 `json:"elapsed_s"`
	// RequestsPerSec is Requests / Elapsed.
	RequestsPerSec float64 `json:"requests_per_s"`
	// GenTokensPerSec is the completion tokens of the successful requests
	// over Elapsed: the aggregate generation throughput.
	GenTokensPerSec float64 `json:"gen_tokens_per_s"`
	// Token totals over the successful requests.
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	CachedTokens     int `json:"cached_tokens"`
	// ShortRequests finished with fewer tokens than max_tokens (an
	// end-of-generation token or a stop where ignore_eos is not honoured).
	ShortRequests int       `json:"short_requests"`
	TTFT          Quantiles `json:"ttft"`
	ITL           Quantiles `json:"itl"`
	Latency       Quantiles `json:"latency"`
}

const maxErrorSamples = 5

// Summarize computes a level's result from its records. elapsed is the
// level's wall time and maxTokens the max_tokens every request asked for
// (0: unknown, ShortRequests stays 0).
func Summarize(concurrency int, records []Record, elapsed time.Duration, maxTokens int) Result {
	r := Result{Concurrency: concurrency, ElapsedSeconds: elapsed.Seconds()}
	var ttft, itl, lat []time.Duration
	for _, rec := range records {
		if rec.Err != nil {
			r.Errors++
			msg := rec.Err.Error()
			if len(r.ErrorSamples) < maxErrorSamples && !slices.Contains(r.ErrorSamples, msg) {
				r.ErrorSamples = append(r.ErrorSamples, msg)
			}
			continue
		}
		r.Requests++
		r.PromptTokens += rec.PromptTokens
		r.CompletionTokens += rec.CompletionTokens
		r.CachedTokens += rec.CachedTokens
		if maxTokens > 0 && rec.CompletionTokens < maxTokens {
			r.ShortRequests++
		}
		lat = append(lat, rec.Latency)
		if rec.Chunks > 0 {
			ttft = append(ttft, rec.TTFT)
		}
		itl = append(itl, rec.ITL...)
	}
	if s := elapsed.Seconds(); s > 0 {
		r.RequestsPerSec = float64(r.Requests) / s
		r.GenTokensPerSec = float64(r.CompletionTokens) / s
	}
	r.TTFT = Summary(ttft)
	r.ITL = Summary(itl)
	r.Latency = Summary(lat)
	return r
}

// Summary returns the quantiles of ds (which it does not modify). An
// empty sample gives all zeros.
func Summary(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	slices.Sort(ms)
	return Quantiles{
		N:    len(ms),
		Mean: sum / float64(len(ms)),
		P50:  Percentile(ms, 50),
		P90:  Percentile(ms, 90),
		P99:  Percentile(ms, 99),
		Max:  ms[len(ms)-1],
	}
}

// Percentile returns the p-th percentile (0 to 100) of sorted, which must
// be in ascending order, interpolating linearly between the two nearest
// ranks (numpy's default, so that figures compare with vLLM's benchmark).
// It returns NaN for an empty slice or a p outside [0, 100].
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 || !(p >= 0 && p <= 100) {
		return math.NaN()
	}
	pos := p / 100 * float64(n-1)
	lo := int(math.Floor(pos))
	if lo >= n-1 {
		return sorted[n-1]
	}
	frac := pos - float64(lo)
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}
