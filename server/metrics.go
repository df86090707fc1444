package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rocmforge/rocmforge/engine"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg       *prometheus.Registry
	http      *prometheus.CounterVec
	prompt    prometheus.Counter
	cached    prometheus.Counter
	generated prometheus.Counter
	finishes  *prometheus.CounterVec
	ttft      prometheus.Histogram
	itl       prometheus.Histogram

	// Per engine step (fed by Server.ObserveStep).
	batchTokens, batchSeqs    prometheus.Histogram
	prefillTokens, decodeSeqs prometheus.Histogram
	stepSeconds               prometheus.Histogram
}

const namespace = "rocmforge"

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		http: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		prompt: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "prompt_tokens_total",
			Help: "Prompt tokens of finished requests (cached ones included)."}),
		cached: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "prompt_cached_tokens_total",
			Help: "Prompt tokens of finished requests that came from the prefix cache."}),
		generated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "generation_tokens_total",
			Help: "Generated tokens."}),
		finishes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "request_finished_total",
			Help: "Finished engine requests by finish reason."}, []string{"reason"}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "time_to_first_token_seconds",
			Help:    "Time from submission to the first generated token.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		itl: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "inter_token_latency_seconds",
			Help:    "Time between consecutive tokens of a request.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		batchTokens: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "engine_batch_tokens",
			Help:    "Rows (tokens) of each engine step's batch: decode rows plus prompt rows.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}), // 1 .. 8192
		batchSeqs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "engine_batch_sequences",
			Help:    "Sequences in each engine step's batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11)}), // 1 .. 1024
		prefillTokens: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "engine_batch_prefill_tokens",
			Help:    "Prompt rows of each engine step (0: a decode-only step).",
			Buckets: append([]float64{0}, prometheus.ExponentialBuckets(1, 2, 14)...)}),
		decodeSeqs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "engine_batch_decode_sequences",
			Help:    "Sequences decoding (one row each) in each engine step (0: a prefill-only step).",
			Buckets: append([]float64{0}, prometheus.ExponentialBuckets(1, 2, 11)...)}),
		stepSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "engine_step_duration_seconds",
			Help:    "Duration of each engine step: forward pass and sampling.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
	}
	m.reg.MustRegister(m.http, m.prompt, m.cached, m.generated, m.finishes, m.ttft, m.itl,
		m.batchTokens, m.batchSeqs, m.prefillTokens, m.decodeSeqs, m.stepSeconds,
		&engineCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// httpRequest counts a finished HTTP request.
func (m *metrics) httpRequest(path string, code int) {
	m.http.WithLabelValues(routeLabel(path), strconv.Itoa(code)).Inc()
}

// finished counts a finished engine request.
func (m *metrics) finished(u engine.Usage, reason string) {
	m.prompt.Add(float64(u.PromptTokens))
	m.cached.Add(float64(u.CachedTokens))
	m.finishes.WithLabelValues(reason).Inc()
}

// step records one engine step.
func (m *metrics) step(st engine.StepStats) {
	m.batchTokens.Observe(float64(st.Tokens))
	m.batchSeqs.Observe(float64(st.Seqs))
	m.prefillTokens.Observe(float64(st.PrefillTokens))
	m.decodeSeqs.Observe(float64(st.DecodeSeqs))
	m.stepSeconds.Observe(st.Duration.Seconds())
}

// routeLabel maps a path to its route, keeping the label's values few.
func routeLabel(path string) string {
	switch {
	case strings.HasPrefix(path, "/v1/requests/"):
		if strings.HasSuffix(path, "/cancel") {
			return "/v1/requests/{id}/cancel"
		}
		return "/v1/requests/{id}"
	case strings.HasPrefix(path, "/v1/models/"):
		return "/v1/models/{model}"
	}
	switch path {
	case "/v1/chat/completions", "/v1/completions", "/v1/models", "/tokenize", "/detokenize", "/health", "/metrics":
		return path
	}
	return "other"
}

// engineCollector reports the engine's scheduler and cache state from one
// engine.Stats snapshot per scrape.
type engineCollector struct {
	s *Server
}

// engineMetric is one series taken from engine.Stats.
type engineMetric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func(st *engine.Stats) float64
}

func engineDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, nil, nil)
}

var engineMetrics = []engineMetric{
	{engineDesc("requests_running", "Engine requests admitted and generating."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 { return float64(st.Running) }},
	{engineDesc("requests_waiting", "Engine requests waiting for admission (new or preempted)."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 { return float64(st.Waiting) }},
	{engineDesc("kv_blocks_total", "KV cache blocks in the pool."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 { return float64(st.KVBlocksTotal) }},
	{engineDesc("kv_blocks_used", "KV cache blocks referenced by running sequences."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 { return float64(st.KVBlocksUsed) }},
	{engineDesc("kv_blocks_cached", "Unreferenced KV cache blocks kept for the prefix cache (evictable)."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 { return float64(st.KVBlocksCached) }},
	{engineDesc("kv_block_size_tokens", "Tokens per KV cache block."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 { return float64(st.BlockSize) }},
	{engineDesc("prefix_cache_hit_ratio", "Share of admitted prompt tokens found in the prefix cache, since start."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 {
			if n := st.PrefixHitTokens + st.PrefixMissTokens; n > 0 {
				return float64(st.PrefixHitTokens) / float64(n)
			}
			return 0
		}},
	{engineDesc("prefix_cache_hit_tokens_total", "Admitted prompt tokens found in the prefix cache."), prometheus.CounterValue,
		func(st *engine.Stats) float64 { return float64(st.PrefixHitTokens) }},
	{engineDesc("prefix_cache_miss_tokens_total", "Admitted prompt tokens not found in the prefix cache."), prometheus.CounterValue,
		func(st *engine.Stats) float64 { return float64(st.PrefixMissTokens) }},
	{engineDesc("engine_steps_total", "Engine steps (forward passes)."), prometheus.CounterValue,
		func(st *engine.Stats) float64 { return float64(st.Steps) }},
	{engineDesc("engine_batch_tokens_total", "Batch rows computed over all steps (prefill and decode); divided by engine_steps_total, the mean batch size per step."), prometheus.CounterValue,
		func(st *engine.Stats) float64 { return float64(st.ComputedTokens) }},
	{engineDesc("engine_last_batch_tokens", "Rows of the last step's batch."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 { return float64(st.LastBatchTokens) }},
	{engineDesc("engine_last_batch_seqs", "Sequences in the last step's batch."), prometheus.GaugeValue,
		func(st *engine.Stats) float64 { return float64(st.LastBatchSeqs) }},
	{engineDesc("engine_preemptions_total", "Sequences preempted for want of KV blocks."), prometheus.CounterValue,
		func(st *engine.Stats) float64 { return float64(st.Preemptions) }},
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range engineMetrics {
		ch <- m.desc
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.s.model.Load()
	if m == nil {
		return // loading: no engine yet
	}
	st := m.Engine.Stats()
	for _, em := range engineMetrics {
		ch <- prometheus.MustNewConstMetric(em.desc, em.typ, em.val(&st))
	}
}
