package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/rocmforge/rocmforge/engine"
)

// startStream posts a streaming request and returns the response once its
// headers are in; the caller reads (and closes) the body.
func startStream(t *testing.T, ctx context.Context, client *http.Client, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return resp
}

// readEvents reads a server-sent event stream to its end: the data of each
// event, and whether it ended with [DONE].
func readEvents(t *testing.T, r io.Reader) (data []string, done bool) {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Errorf("stream line %q is not a data line", line)
			continue
		}
		if d == "[DONE]" {
			done = true
			continue
		}
		if done {
			t.Errorf("event after [DONE]: %s", d)
		}
		data = append(data, d)
	}
	return data, done
}

func getStatus(t *testing.T, root, id string) requestStatus {
	t.Helper()
	resp, body := get(t, root+"/v1/requests/"+id)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status of %s: %d %s", id, resp.StatusCode, body)
	}
	var st requestStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("status body %s: %v", body, err)
	}
	return st
}

func TestRequestStatusAndCancel(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	client := newClient(t)

	// A finished request: its status has its counts and timings.
	resp, body := post(t, rs.url+"/completions", `{"prompt":"Once upon a time","max_tokens":5,"ignore_eos":true}`)
	if resp.StatusCode != 200 {
		t.Fatalf("completion: %d %s", resp.StatusCode, body)
	}
	id := resp.Header.Get("X-Request-Id")
	st := getStatus(t, rs.root, id)
	if st.ID != id || st.State != engine.StateFinished || st.Kind != "text_completion" || st.GeneratedTokens != 5 || st.PromptTokens == 0 ||
		len(st.Choices) != 1 || st.Choices[0].FinishReason != "length" || st.Choices[0].TimeToFirstTokenMS == nil || st.Choices[0].DurationMS == nil {
		t.Errorf("finished request status: %+v", st)
	}
	// Cancelling a finished request changes nothing.
	if resp, body := post(t, rs.root+"/v1/requests/"+id+"/cancel", ""); resp.StatusCode != 200 || !strings.Contains(string(body), `"state":"finished"`) {
		t.Errorf("cancel of a finished request: %d %s", resp.StatusCode, body)
	}

	// A running request, held at the first step by the gate.
	entered := rs.be.shut()
	sresp := startStream(t, context.Background(), client, rs.url+"/chat/completions",
		`{"messages":[{"role":"user","content":"Hi"}],"stream":true,"ignore_eos":true}`)
	defer sresp.Body.Close()
	id = sresp.Header.Get("X-Request-Id")
	<-entered
	// The step admitting it is under way: queued or running, depending on
	// whether the engine has published the admission yet.
	st = getStatus(t, rs.root, id)
	if (st.State != engine.StateRunning && st.State != engine.StateQueued) || st.Kind != "chat.completion" || st.PromptTokens == 0 || st.GeneratedTokens != 0 ||
		len(st.Choices) != 1 || st.Choices[0].EngineID == "" || st.Choices[0].DurationMS != nil {
		t.Errorf("running request status: %+v", st)
	}
	// The engine's own id finds it too.
	if est := getStatus(t, rs.root, st.Choices[0].EngineID); est.State != st.State {
		t.Errorf("status by engine id: %+v", est)
	}
	if resp, body := post(t, rs.root+"/v1/requests/"+id+"/cancel", ""); resp.StatusCode != 200 {
		t.Fatalf("cancel: %d %s", resp.StatusCode, body)
	}
	rs.be.open()
	events, done := readEvents(t, sresp.Body)
	if !done || len(events) < 2 || !strings.Contains(events[len(events)-1], `"finish_reason":"cancelled"`) {
		t.Errorf("cancelled stream: done %v, events %q", done, events)
	}
	st = getStatus(t, rs.root, id)
	if st.State != engine.StateCancelled || st.Choices[0].FinishReason != "cancelled" || st.Choices[0].DurationMS == nil {
		t.Errorf("cancelled request status: %+v", st)
	}
}

// TestClientDisconnect checks that a client going away cancels its request.
func TestClientDisconnect(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	entered := rs.be.shut()
	ctx, cancel := context.WithCancel(context.Background())
	resp := startStream(t, ctx, newClient(t), rs.url+"/completions", `{"prompt":"Once","stream":true,"ignore_eos":true}`)
	id := resp.Header.Get("X-Request-Id")
	<-entered
	cancel()
	resp.Body.Close()
	rs.be.open()
	rs.ts.Close() // waits for the handler, which waits for the engine's final event
	m := rs.s.model.Load()
	st, ok := rs.s.lookup(id, m)
	if !ok || st.State != engine.StateCancelled || st.GeneratedTokens >= m.ContextLength-2 {
		t.Errorf("after the client left: %+v", st)
	}
	if s := rs.eng.Stats(); s.Running != 0 || s.Waiting != 0 || s.KVBlocksUsed != 0 {
		t.Errorf("engine after the disconnect: %+v", s)
	}
}

func TestPrefixCacheReported(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	client := newOpenAI(t, rs)
	prompt := "Once upon a time there was a little dog named Max. Max liked to run in the park with his big red ball every day."
	ids, _ := rs.tok.Encode(prompt, true, true)
	if len(ids) < 2*engine.DefaultBlockSize+1 {
		t.Fatalf("prompt of %d tokens: want more than two KV blocks", len(ids))
	}
	params := openai.CompletionNewParams{
		Model: modelID, Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens: openai.Int(4), Temperature: openai.Float(0),
	}
	var cached [2]int64
	var texts [2]string
	for i := range cached {
		res, err := client.Completions.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		cached[i] = res.Usage.PromptTokensDetails.CachedTokens
		texts[i] = res.Choices[0].Text
		if res.Usage.PromptTokens != int64(len(ids)) {
			t.Errorf("request %d: %d prompt tokens, want %d", i, res.Usage.PromptTokens, len(ids))
		}
	}
	t.Logf("prompt %d tokens; cached %v", len(ids), cached)
	if cached[0] != 0 || cached[1] <= 0 || cached[1] >= int64(len(ids)) {
		t.Errorf("cached tokens %v, want 0 then some (< %d)", cached, len(ids))
	}
	if texts[0] != texts[1] {
		t.Errorf("cached prefix changed the greedy output: %q then %q", texts[0], texts[1])
	}
	// The chat endpoint reports it too.
	chat := chatParams(2)
	chat.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}
	for i := range 2 {
		res, err := client.Chat.Completions.New(context.Background(), chat)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Usage.PromptTokensDetails.CachedTokens; (i == 1) != (got > 0) {
			t.Errorf("chat request %d: cached tokens %d", i, got)
		}
	}
}

func TestMetrics(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	for range 2 {
		resp, body := post(t, rs.url+"/completions", `{"prompt":"Once upon a time","max_tokens":6,"stream":true,"ignore_eos":true}`)
		if resp.StatusCode != 200 {
			t.Fatalf("completion: %d %s", resp.StatusCode, body)
		}
	}
	resp, body := get(t, rs.root+"/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	values := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Errorf("metrics line %q: %v", line, err)
			continue
		}
		values[line[:i]] = v
	}
	for _, tc := range []struct {
		series string
		min    float64
	}{
		{"rocmforge_requests_running", 0},
		{"rocmforge_requests_waiting", 0},
		{"rocmforge_prompt_tokens_total", 2},
		{"rocmforge_generation_tokens_total", 12},
		{"rocmforge_time_to_first_token_seconds_count", 2},
		{`rocmforge_time_to_first_token_seconds_bucket{le="+Inf"}`, 2},
		{"rocmforge_inter_token_latency_seconds_count", 10},
		{"rocmforge_kv_blocks_used", 0},
		{"rocmforge_kv_blocks_total", 1},
		{"rocmforge_prefix_cache_hit_ratio", 0},
		{"rocmforge_engine_steps_total", 6},
		{"rocmforge_engine_batch_tokens_total", 12},
		{"rocmforge_engine_last_batch_tokens", 1},
		{"rocmforge_engine_batch_tokens_count", 6},
		{"rocmforge_engine_batch_sequences_count", 6},
		{"rocmforge_engine_step_duration_seconds_count", 6},
		{`rocmforge_request_finished_total{reason="length"}`, 2},
		{`rocmforge_http_requests_total{code="200",route="/v1/completions"}`, 2},
		{"go_goroutines", 1},
	} {
		v, ok := values[tc.series]
		if !ok {
			t.Errorf("no series %s", tc.series)
		} else if v < tc.min {
			t.Errorf("%s = %v, want >= %v", tc.series, v, tc.min)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

// TestConcurrentClients runs 64 streaming clients at once, a third of them
// leaving at random points. Every response that finishes must equal the
// same request run alone (greedy decoding is batch-invariant); afterwards
// no KV block is in use and no goroutine of the server or engine is left.
// The KV pool is kept small so that sequences also get preempted.
func TestConcurrentClients(t *testing.T) {
	rs := newRealServer(t, engine.Config{MaxSeqs: 16, MaxBatchTokens: 256, KVCacheTokens: 512}, Config{})
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	prompts := []string{
		"Once upon a time", "The little cat", "Tom and Sue went to the park", "Lily",
		"One day, a big bird", "The sun was", "Max had a red ball", "She was very happy because",
	}
	type job struct {
		prompt    string
		maxTokens int64
		chat      bool
		leaveAt   int // 0: read to the end; else leave after this many chunks
	}
	const clients = 64
	jobs := make([]job, clients)
	for i := range jobs {
		jobs[i] = job{prompt: prompts[i%len(prompts)], maxTokens: int64(10 + 7*(i%len(prompts))), chat: i%2 == 1}
		if rng.IntN(3) == 0 {
			jobs[i].leaveAt = 1 + rng.IntN(int(jobs[i].maxTokens))
		}
	}
	client := newOpenAI(t, rs)
	type result struct {
		text   string
		finish string
	}
	run := func(ctx context.Context, j job, stream bool, leave func()) (result, error) {
		var r result
		if j.chat {
			p := openai.ChatCompletionNewParams{Model: modelID, MaxTokens: openai.Int(j.maxTokens), Temperature: openai.Float(0),
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(j.prompt)}}
			if !stream {
				res, err := client.Chat.Completions.New(ctx, p)
				if err != nil {
					return r, err
				}
				return result{res.Choices[0].Message.Content, res.Choices[0].FinishReason}, nil
			}
			s := client.Chat.Completions.NewStreaming(ctx, p)
			defer s.Close()
			var b strings.Builder
			for n := 1; s.Next(); n++ {
				if n == j.leaveAt {
					leave()
				}
				for _, c := range s.Current().Choices {
					b.WriteString(c.Delta.Content)
					if c.FinishReason != "" {
						r.finish = c.FinishReason
					}
				}
			}
			r.text = b.String()
			return r, s.Err()
		}
		p := openai.CompletionNewParams{Model: modelID, MaxTokens: openai.Int(j.maxTokens), Temperature: openai.Float(0),
			Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(j.prompt)}}
		if !stream {
			res, err := client.Completions.New(ctx, p)
			if err != nil {
				return r, err
			}
			return result{res.Choices[0].Text, string(res.Choices[0].FinishReason)}, nil
		}
		s := client.Completions.NewStreaming(ctx, p)
		defer s.Close()
		var b strings.Builder
		for n := 1; s.Next(); n++ {
			if n == j.leaveAt {
				leave()
			}
			for _, c := range s.Current().Choices {
				b.WriteString(c.Text)
				if c.FinishReason != "" {
					r.finish = string(c.FinishReason)
				}
			}
		}
		r.text = b.String()
		return r, s.Err()
	}

	// Each distinct request alone first.
	alone := map[job]result{}
	for _, j := range jobs {
		key := job{prompt: j.prompt, maxTokens: j.maxTokens, chat: j.chat}
		if _, ok := alone[key]; ok {
			continue
		}
		r, err := run(context.Background(), key, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		alone[key] = r
	}
	before := rs.eng.Stats()

	var wg sync.WaitGroup
	results := make([]result, clients)
	errs := make([]error, clients)
	start := make(chan struct{})
	for i, j := range jobs {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			<-start
			results[i], errs[i] = run(ctx, j, true, cancel)
		})
	}
	close(start)
	wg.Wait()

	finished, left := 0, 0
	for i, j := range jobs {
		want := alone[job{prompt: j.prompt, maxTokens: j.maxTokens, chat: j.chat}]
		if j.leaveAt > 0 {
			left++
			if errs[i] == nil && results[i].finish != "" && results[i] != want {
				// It finished before it could leave: it must still be right.
				t.Errorf("client %d (left late): %+v, alone %+v", i, results[i], want)
			}
			continue
		}
		finished++
		if errs[i] != nil {
			t.Errorf("client %d: %v", i, errs[i])
		} else if results[i] != want {
			t.Errorf("client %d %+v: got %+v, alone %+v", i, j, results[i], want)
		}
	}
	t.Logf("%d clients read to the end, %d left early", finished, left)

	rs.ts.Close() // waits for every handler
	after := rs.eng.Stats()
	steps := after.Steps - before.Steps
	t.Logf("engine: %d steps for %d rows (%.1f a step), %d requests cancelled, %d preemptions, %d prompt tokens from the prefix cache",
		steps, after.ComputedTokens-before.ComputedTokens, float64(after.ComputedTokens-before.ComputedTokens)/float64(max(steps, 1)),
		after.Cancelled-before.Cancelled, after.Preemptions-before.Preemptions, after.PrefixHitTokens-before.PrefixHitTokens)
	if after.Running != 0 || after.Waiting != 0 || after.KVBlocksUsed != 0 {
		t.Errorf("engine after all clients: running %d, waiting %d, KV blocks used %d (cached %d)",
			after.Running, after.Waiting, after.KVBlocksUsed, after.KVBlocksCached)
	}
	if got := after.Finished + after.Cancelled - before.Finished - before.Cancelled; got != clients {
		t.Errorf("engine ended %d requests, want %d", got, clients)
	}
	rs.close(t)
	if g := ourGoroutines(); len(g) > 0 {
		t.Errorf("%d goroutines of the server or engine left:\n%s", len(g), strings.Join(g, "\n\n"))
	}
}

// TestQueueFull fills the engine's queue (one running, one waiting) and
// checks that the next request gets 503 with Retry-After.
func TestQueueFull(t *testing.T) {
	rs := newRealServer(t, engine.Config{MaxSeqs: 1, MaxQueue: 1}, Config{})
	client := newClient(t)
	entered := rs.be.shut()
	body := `{"prompt":"Once upon a time","max_tokens":4,"stream":true}`
	first := startStream(t, context.Background(), client, rs.url+"/completions", body)
	defer first.Body.Close()
	<-entered // the first request's step is under way; it holds the one sequence slot
	// The second waits in the queue, or is refused already if the engine
	// still counts the first as queued during its first step.
	req, _ := http.NewRequest(http.MethodPost, rs.url+"/completions", strings.NewReader(body))
	second, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Body.Close()
	resp, b := post(t, rs.url+"/completions", body)
	e := wantError(t, resp, b, http.StatusServiceUnavailable, typeUnavailable, "queue_full")
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("no Retry-After with %q", e.Error.Message)
	}
	rs.be.open()
	for _, r := range []*http.Response{first, second} {
		if r.StatusCode != http.StatusOK {
			continue
		}
		if _, done := readEvents(t, r.Body); !done {
			t.Error("a queued stream did not finish")
		}
	}
}

// TestKVPoolTooSmall: a request that fits the context but not the engine's
// KV pool is the engine's ErrTooLong, a 400 context_length_exceeded.
func TestKVPoolTooSmall(t *testing.T) {
	rs := newRealServer(t, engine.Config{KVCacheTokens: 32}, Config{})
	resp, b := post(t, rs.url+"/completions", `{"prompt":"Once upon a time there was a little dog named Max.","max_tokens":40}`)
	e := wantError(t, resp, b, http.StatusBadRequest, typeInvalidRequest, "context_length_exceeded")
	if e.Error.Param == nil || *e.Error.Param != "prompt" {
		t.Errorf("param %s, want \"prompt\"", strp(e.Error.Param))
	}
}
