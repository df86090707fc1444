package server

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/engine"
)

// TestAppendJSONString: the fast string encoder gives json.Marshal's bytes
// for awkward and random strings (control characters, HTML, quotes,
// invalid UTF-8, U+2028/U+2029, multi-byte runes), fresh seed logged.
func TestAppendJSONString(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	cases := []string{"", "plain", `"quoted" \ back`, "<b>&amp;</b>", "\x00\x01\b\f\n\r\t\x1f\x7f",
		"\u2028\u2029", "héllo wörld 日本 🙂", "\xff\xfe", "a\xc3", "\xe2\x82", "\xed\xa0\x80", " x "}
	pieces := []string{"a", " ", "\"", "\\", "<", ">", "&", "\n", "\x00", "\x1b", "é", "日", "🙂", "\u2028", "\xff", "\xc3", "\x80", "\x7f"}
	for range 500 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got[1:], want)
		}
	}
}

// TestTokenChunks: the pre-encoded token chunks of text and chat streams
// equal the marshalled chunk objects, for several choice indices and
// awkward texts, with a model name and id that need escaping.
func TestTokenChunks(t *testing.T) {
	tok, _ := testTokenizer(t)
	m := &Model{ID: `model "index":0 <x>`, Tokenizer: tok}
	g := &generation{}
	text := &textFormat{m: m, id: `cmpl-"\u0001"`, created: 1700000000, g: g}
	chat := &chatFormat{m: m, id: "chatcmpl-1", created: 1700000000, g: g}
	for _, idx := range []int{0, 1, 7, 12} {
		for _, s := range []string{"x", " Once", "\"<&>\"", "\x01", "\n\t", "日本"} {
			ev := choiceEvent{index: idx, Event: engine.Event{Token: 5, Text: s}}
			want, _ := json.Marshal(text.body(textChoice{Index: idx, Text: s}))
			got := chunkBytes(text.streamToken(ev))
			if string(got) != string(want) {
				t.Errorf("text chunk (%d, %q):\n got %s\nwant %s", idx, s, got, want)
			}
			content := s
			want, _ = json.Marshal(chat.chunk(chunkChoice{Index: idx, Delta: chatDelta{Content: &content}}))
			got = chunkBytes(chat.streamToken(ev))
			if string(got) != string(want) {
				t.Errorf("chat chunk (%d, %q):\n got %s\nwant %s", idx, s, got, want)
			}
		}
	}
	// With logprobs the chunks carry more than the text: no fast path.
	lp := &chatFormat{m: m, id: "chatcmpl-2", g: &generation{logprobs: true}}
	if _, fast := lp.streamToken(choiceEvent{Event: engine.Event{Token: 5, Text: "x"}}).(*tokenChunk); fast {
		t.Error("a logprobs chunk took the fast path")
	}
}

// chunkBytes is the encoding of a fast chunk, or nil for another value.
func chunkBytes(v any) []byte {
	if c, ok := v.(*tokenChunk); ok {
		return c.buf
	}
	return nil
}

// flushCounter is a response writer that counts flushes.
type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() {
	f.flushes++
	f.ResponseRecorder.Flush()
}

// TestStreamCoalescesReadyEvents: events the engine has already generated
// when the stream reads them go out in one flush, and the stream is the
// same as event by event.
func TestStreamCoalescesReadyEvents(t *testing.T) {
	s, _ := newFakeServer(t, Config{}, &fakeEngine{})
	for _, path := range []string{"/v1/completions", "/v1/chat/completions"} {
		body := `{"prompt":"Once upon a time there was","max_tokens":5,"stream":true}`
		if strings.Contains(path, "chat") {
			body = `{"messages":[{"role":"user","content":"Once upon a time there was"}],"max_tokens":5,"stream":true}`
		}
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
		s.Handler().ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("%s: status %d: %s", path, w.Code, w.Body)
		}
		events := strings.Split(strings.TrimSuffix(w.Body.String(), "\n\n"), "\n\n")
		// The fake engine has every event in the channel before the stream
		// reads: headers, (chat: the role chunk, sent at once), all
		// chunks, [DONE].
		want := 3
		if strings.Contains(path, "chat") {
			want = 4
		}
		if w.flushes > want {
			t.Errorf("%s: %d flushes for %d events, want at most %d", path, w.flushes, len(events), want)
		}
		if events[len(events)-1] != "data: [DONE]" {
			t.Errorf("%s: last event %q", path, events[len(events)-1])
		}
		texts, reasons := 0, 0
		for _, e := range events[:len(events)-1] {
			var c struct {
				Choices []struct {
					Text         string `json:"text"`
					Delta        struct{ Content *string }
					FinishReason *string `json:"finish_reason"`
				}
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(e, "data: ")), &c); err != nil || len(c.Choices) != 1 {
				t.Fatalf("%s: event %q: %v", path, e, err)
			}
			if ch := c.Choices[0]; ch.Text == "x" || (ch.Delta.Content != nil && *ch.Delta.Content == "x") {
				texts++
			} else if ch.FinishReason != nil {
				reasons++
			}
		}
		if texts != 5 || reasons != 1 {
			t.Errorf("%s: %d token chunks and %d final ones, want 5 and 1:\n%s", path, texts, reasons, w.Body)
		}
		t.Logf("%s: %d events in %d flushes", path, len(events), w.flushes)
	}
}

// TestStepHistograms: the per-step histograms of /metrics count every step
// of two sequential requests: one prompt step and then one-row decode steps
// each.
func TestStepHistograms(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	const prompt, maxTokens = "Once upon a time", 6
	ids, err := rs.tok.Encode(prompt, true, false)
	if err != nil {
		t.Fatal(err)
	}
	n := len(ids)
	for range 2 {
		resp, body := post(t, rs.url+"/completions", `{"prompt":"`+prompt+`","max_tokens":`+strconv.Itoa(maxTokens)+`,"stream":true,"ignore_eos":true}`)
		if resp.StatusCode != 200 {
			t.Fatalf("completion: %d %s", resp.StatusCode, body)
		}
	}
	_, body := get(t, rs.root+"/metrics")
	values := map[string]float64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if i := strings.LastIndexByte(line, ' '); line != "" && line[0] != '#' && i > 0 {
			v, err := strconv.ParseFloat(line[i+1:], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			values[line[:i]] = v
		}
	}
	steps := float64(2 * maxTokens)         // per request: 1 prompt step, maxTokens-1 decode steps
	decodes := float64(2 * (maxTokens - 1)) // one-row steps
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{"rocmforge_engine_batch_tokens_count", steps},
		{"rocmforge_engine_batch_tokens_sum", float64(2*n) + decodes},
		{`rocmforge_engine_batch_tokens_bucket{le="1"}`, decodes},
		{`rocmforge_engine_batch_tokens_bucket{le="+Inf"}`, steps},
		{"rocmforge_engine_batch_sequences_count", steps},
		{"rocmforge_engine_batch_sequences_sum", steps},
		{`rocmforge_engine_batch_sequences_bucket{le="1"}`, steps},
		{"rocmforge_engine_batch_prefill_tokens_sum", float64(2 * n)},
		{`rocmforge_engine_batch_prefill_tokens_bucket{le="0"}`, decodes},
		{"rocmforge_engine_batch_decode_sequences_sum", decodes},
		{`rocmforge_engine_batch_decode_sequences_bucket{le="0"}`, 2},
		{"rocmforge_engine_step_duration_seconds_count", steps},
		{`rocmforge_engine_step_duration_seconds_bucket{le="+Inf"}`, steps},
	} {
		if v, ok := values[tc.series]; !ok || v != tc.want {
			t.Errorf("%s = %v (present %v), want %v", tc.series, v, ok, tc.want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}
