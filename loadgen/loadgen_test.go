package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer fakes the endpoints loadgen uses: /v1/models, /tokenize (one
// token per word, BOS 1 in front when add_special) and /v1/completions,
// which streams max_tokens one-token chunks.
type fakeServer struct {
	t      *testing.T
	ctxLen int
	key    string
	// fail, when set, decides the fate of request n (from 0): "" for a
	// normal answer, "503", "event" (an error event mid-stream) or "cut"
	// (a stream without [DONE]).
	fail func(n int) string
	// emptyFirst makes the first token chunk carry no text (a token that
	// completes no character).
	emptyFirst bool

	mu      sync.Mutex
	n       int
	prompts [][]int32
	bodies  []map[string]any
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"object":"list","data":[{"id":"fake","object":"model","context_length":%d}]}`, f.ctxLen)
	})
	mux.HandleFunc("POST /tokenize", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Content    string `json:"content"`
			AddSpecial bool   `json:"add_special"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ids := []int32{}
		if req.AddSpecial {
			ids = append(ids, 1)
		}
		for _, word := range strings.Fields(req.Content) {
			h := fnv.New32a()
			h.Write([]byte(word))
			ids = append(ids, 10+int32(h.Sum32()%1000))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"tokens": ids})
	})
	mux.HandleFunc("POST /v1/completions", f.complete)
	return f.auth(mux)
}

func (f *fakeServer) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.key != "" && r.Header.Get("Authorization") != "Bearer "+f.key {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"message":"missing or incorrect API key"}}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeServer) complete(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	raw, _ := json.Marshal(body["prompt"])
	var prompt []int32
	if err := json.Unmarshal(raw, &prompt); err != nil {
		f.t.Errorf("prompt %s: want token ids: %v", raw, err)
	}
	f.mu.Lock()
	n := f.n
	f.n++
	f.prompts = append(f.prompts, prompt)
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	fate := ""
	if f.fail != nil {
		fate = f.fail(n)
	}
	if fate == "503" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":{"message":"queue full"}}`)
		return
	}
	maxTok := int(body["max_tokens"].(float64))
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":0}}`,
		len(prompt), maxTok, len(prompt)+maxTok)
	if body["stream"] != true {
		fmt.Fprintf(w, `{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"%s","finish_reason":"length"}],"usage":%s}`,
			strings.Repeat("x", maxTok), usage)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	send := func(data string) {
		fmt.Fprintf(w, "data: %s\n\n", data)
		_ = rc.Flush()
	}
	for i := range maxTok {
		text := "x"
		if i == 0 && f.emptyFirst {
			text = ""
		}
		send(fmt.Sprintf(`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":%q,"finish_reason":null}]}`, text))
		if i == maxTok/2 {
			switch fate {
			case "event":
				send(`{"error":{"message":"generation failed: boom","type":"server_error"}}`)
				return
			case "cut":
				return
			}
		}
	}
	send(`{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"","finish_reason":"length"}]}`)
	send(`{"id":"cmpl-1","object":"text_completion","choices":[],"usage":` + usage + `}`)
	send("[DONE]")
}

func newFake(t *testing.T, f *fakeServer) string {
	t.Helper()
	f.t = t
	ts := httptest.NewServer(f.handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// stepClock is a fake clock whose k-th reading (from 1) is k*(k-1)/2 ms
// after its start: it advances by k-1 ms between readings k-1 and k, so
// every interval it measures is different and known.
type stepClock struct {
	mu sync.Mutex
	k  int
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Duration(c.k) * time.Millisecond)
	c.k++
	return c.t
}

// TestRunFakeClock runs one client against the fake server under a fake
// clock, so every latency is known: the clock is read at the level's start,
// at each request's start, at each event and at its end.
func TestRunFakeClock(t *testing.T) {
	f := &fakeServer{ctxLen: 64}
	clk := &stepClock{t: time.Unix(1000, 0)}
	g, err := New(context.Background(), Config{URL: newFake(t, f), PromptTokens: 12, MaxTokens: 4, Stream: true, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Run(context.Background(), Level{Concurrency: 1, RequestsPerClient: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Readings: 1 level start; request 1: 2 start, 3..6 tokens, 7 final
	// chunk, 8 usage, 9 end; request 2: 10 start, 11..14 tokens, 15, 16,
	// 17 end; 18 level end. Reading k-1 to k is k-1 ms.
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	wantTTFT := Summary(ms(2, 10))              // 2->3; 10->11
	wantITL := Summary(ms(3, 4, 5, 11, 12, 13)) // 3->4->5->6; 11->...->14
	wantLat := Summary(ms(2+3+4+5+6+7+8, 10+11+12+13+14+15+16))
	elapsed := time.Duration(17*18/2) * time.Millisecond // reading 1 to 18
	if r.Requests != 2 || r.Errors != 0 || r.CompletionTokens != 8 || r.PromptTokens != 24 || r.ShortRequests != 0 {
		t.Errorf("result %+v: want 2 requests, no errors, 8 completion and 24 prompt tokens", r)
	}
	if !closeQ(r.TTFT, wantTTFT) || !closeQ(r.ITL, wantITL) || !closeQ(r.Latency, wantLat) {
		t.Errorf("TTFT %+v ITL %+v latency %+v\nwant %+v %+v %+v", r.TTFT, r.ITL, r.Latency, wantTTFT, wantITL, wantLat)
	}
	if r.ElapsedSeconds != elapsed.Seconds() {
		t.Errorf("elapsed %v s, want %v", r.ElapsedSeconds, elapsed.Seconds())
	}
	if want := 8 / elapsed.Seconds(); r.GenTokensPerSec != want {
		t.Errorf("gen tok/s %v, want %v", r.GenTokensPerSec, want)
	}
}

// TestRunRequests checks what is sent and counted with several clients:
// every request gets a distinct prompt of exactly PromptTokens tokens, the
// body asks for ignore_eos and the configured temperature, and the counts
// add up.
func TestRunRequests(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			f := &fakeServer{ctxLen: 64, key: "k"}
			temp, topK := 0.0, 0 // greedy, the default; the unstreamed run samples with top-k
			if !stream {
				temp, topK = 0.7, 40
			}
			g, err := New(context.Background(), Config{URL: newFake(t, f), APIKey: "k", PromptTokens: 13, MaxTokens: 5, Stream: stream, Temperature: temp, TopK: topK})
			if err != nil {
				t.Fatal(err)
			}
			var all []Result
			for _, c := range []int{1, 4} {
				r, err := g.Run(context.Background(), Level{Concurrency: c, RequestsPerClient: 3})
				if err != nil {
					t.Fatal(err)
				}
				if r.Concurrency != c || r.Requests != 3*c || r.Errors != 0 || r.CompletionTokens != 15*c || r.PromptTokens != 39*c {
					t.Errorf("c=%d: %+v: want %d requests, no errors, %d completion tokens, %d prompt tokens", c, r, 3*c, 15*c, 39*c)
				}
				if r.GenTokensPerSec <= 0 || r.RequestsPerSec <= 0 {
					t.Errorf("c=%d: rates %v req/s %v tok/s: want > 0", c, r.RequestsPerSec, r.GenTokensPerSec)
				}
				wantTTFT, wantITL := 3*c, 3*c*4
				if !stream {
					wantTTFT, wantITL = 0, 0
				}
				if r.TTFT.N != wantTTFT || r.ITL.N != wantITL {
					t.Errorf("c=%d: %d TTFT and %d ITL samples, want %d and %d", c, r.TTFT.N, r.ITL.N, wantTTFT, wantITL)
				}
				all = append(all, r)
			}
			var sb strings.Builder
			if err := WriteTable(&sb, all); err != nil {
				t.Fatal(err)
			}
			if lines := strings.Count(sb.String(), "\n"); lines != 3 {
				t.Errorf("table has %d lines, want a header and 2 rows:\n%s", lines, sb.String())
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.prompts) != 15 {
				t.Fatalf("server got %d requests, want 15", len(f.prompts))
			}
			seen := map[string]bool{}
			for i, p := range f.prompts {
				if len(p) != 13 || p[0] != 1 {
					t.Errorf("prompt %d: %d tokens starting %v, want 13 starting with BOS 1", i, len(p), p[:min(len(p), 1)])
				}
				// The first block must differ, or a prefix cache would skip it.
				key := fmt.Sprint(p[:4])
				if seen[key] {
					t.Errorf("prompt %d starts like an earlier one: %v", i, p[:4])
				}
				seen[key] = true
				b := f.bodies[i]
				if b["temperature"] != temp || b["ignore_eos"] != true || b["stream"] != stream || b["model"] != "fake" {
					t.Errorf("request %d body %v: want temperature %v, ignore_eos, stream %v, model fake", i, b, temp, stream)
				}
				if k, sent := b["top_k"]; (topK == 0 && sent) || (topK != 0 && k != float64(topK)) {
					t.Errorf("request %d body %v: top_k %v (sent %v), want %d (0: not sent)", i, b, k, sent, topK)
				}
				if so, _ := b["stream_options"].(map[string]any); stream && so["include_usage"] != true {
					t.Errorf("request %d: stream_options %v: want include_usage", i, b["stream_options"])
				}
			}
		})
	}
}

func TestSharedPrefix(t *testing.T) {
	f := &fakeServer{ctxLen: 64}
	g, err := New(context.Background(), Config{URL: newFake(t, f), PromptTokens: 20, SharedPrefix: 8, MaxTokens: 2, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Run(context.Background(), Level{Concurrency: 2, RequestsPerClient: 2}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.prompts {
		if len(p) != 20 || !slices.Equal(p[:8], f.prompts[0][:8]) {
			t.Errorf("prompt %d: %v: want 20 tokens whose first 8 are %v", i, p, f.prompts[0][:8])
		}
		if i > 0 && slices.Equal(p[8:], f.prompts[0][8:]) {
			t.Errorf("prompt %d repeats prompt 0 past the shared prefix: %v", i, p)
		}
		if slices.Contains(p[1:], 1) {
			t.Errorf("prompt %d has a second BOS: %v", i, p)
		}
	}
}

// TestErrors checks that failed requests are counted, not fatal: an HTTP
// error, an error event and a stream cut short.
func TestErrors(t *testing.T) {
	fates := []string{"", "503", "event", "cut", "", ""}
	f := &fakeServer{ctxLen: 64, fail: func(n int) string { return fates[n%len(fates)] }, emptyFirst: true}
	g, err := New(context.Background(), Config{URL: newFake(t, f), PromptTokens: 4, MaxTokens: 6, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.Run(context.Background(), Level{Concurrency: 2, RequestsPerClient: 6})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 6 || r.Errors != 6 || len(r.ErrorSamples) != 3 {
		t.Fatalf("%d requests, %d errors, samples %q: want 6, 6 and 3 kinds", r.Requests, r.Errors, r.ErrorSamples)
	}
	for _, want := range []string{"HTTP 503: queue full", "error event: generation failed: boom", "without [DONE]"} {
		found := false
		for _, s := range r.ErrorSamples {
			found = found || strings.Contains(s, want)
		}
		if !found {
			t.Errorf("no error sample mentions %q: %q", want, r.ErrorSamples)
		}
	}
	// The first token had no text: 5 text chunks each, usage still says 6.
	if r.CompletionTokens != 36 || r.TTFT.N != 6 || r.ITL.N != 24 {
		t.Errorf("%d completion tokens, %d TTFT and %d ITL samples: want 36, 6, 24", r.CompletionTokens, r.TTFT.N, r.ITL.N)
	}
}

// TestDuration runs levels bounded by time under the fake clock: clients
// stop starting requests at the deadline, and those in flight finish.
func TestDuration(t *testing.T) {
	f := &fakeServer{ctxLen: 64}
	clk := &stepClock{t: time.Unix(1000, 0)}
	g, err := New(context.Background(), Config{URL: newFake(t, f), PromptTokens: 4, MaxTokens: 3, Stream: true, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Readings per request: a deadline check, start, 3 tokens, final,
	// usage, end. The level starts at reading 1 (time 0); the checks come
	// at readings 2, 10, 18, 26 (times 1, 45, 153, 325 ms).
	r, err := g.Run(context.Background(), Level{Concurrency: 1, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 3 || r.Errors != 0 {
		t.Errorf("%d requests, %d errors: want 3 and 0", r.Requests, r.Errors)
	}
	// Both bounds: the count comes first.
	r, err = g.Run(context.Background(), Level{Concurrency: 2, RequestsPerClient: 1, Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 2 {
		t.Errorf("%d requests with 1 per client and 2 clients, want 2", r.Requests)
	}
}

func TestConfigErrors(t *testing.T) {
	f := &fakeServer{ctxLen: 64}
	url := newFake(t, f)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no scheme", Config{URL: "127.0.0.1:1", PromptTokens: 4, MaxTokens: 4}, "want http://HOST:PORT"},
		{"other scheme", Config{URL: "localhost:8080", PromptTokens: 4, MaxTokens: 4}, "want http://HOST:PORT"},
		{"no prompt", Config{URL: url, PromptTokens: 0, MaxTokens: 4}, "PromptTokens 0"},
		{"no tokens", Config{URL: url, PromptTokens: 4, MaxTokens: 0}, "MaxTokens 0"},
		{"prefix too long", Config{URL: url, PromptTokens: 4, MaxTokens: 4, SharedPrefix: 4}, "SharedPrefix 4"},
		{"over the context", Config{URL: url, PromptTokens: 48, MaxTokens: 17}, "65, more than the model's context of 64"},
		{"wrong key", Config{URL: newFake(t, &fakeServer{ctxLen: 64, key: "right"}) + "/", PromptTokens: 4, MaxTokens: 4, APIKey: "x"},
			"HTTP 401: missing or incorrect API key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(ctx, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	g, err := New(ctx, Config{URL: url, PromptTokens: 4, MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, lv := range []Level{{Concurrency: 0, RequestsPerClient: 1}, {Concurrency: 1}, {Concurrency: 1, RequestsPerClient: -1}} {
		if _, err := g.Run(ctx, lv); err == nil {
			t.Errorf("Run(%+v): no error", lv)
		}
	}
}
