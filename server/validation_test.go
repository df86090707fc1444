package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/engine"
)

// TestBadRequests sends one bad request per rule; none may reach the engine.
func TestBadRequests(t *testing.T) {
	_, ts := newFakeServer(t, Config{}, &fakeEngine{refuse: true})
	long := strings.Repeat("Once upon a time there was a big dog. ", 20)
	const (
		chatURL = "/v1/chat/completions"
		cmplURL = "/v1/completions"
	)
	msgs := `"messages":[{"role":"user","content":"Hi"}]`
	tests := []struct {
		name   string
		url    string
		body   string
		status int
		typ    string
		code   string
		param  string
	}{
		{"malformed JSON", chatURL, `{"messages": [`, 400, typeInvalidRequest, "", ""},
		{"empty body", chatURL, ``, 400, typeInvalidRequest, "", ""},
		{"body not an object", chatURL, `[1, 2]`, 400, typeInvalidRequest, "", ""},
		{"messages of the wrong type", chatURL, `{"messages":"Hi"}`, 400, typeInvalidRequest, "", "messages"},
		{"temperature of the wrong type", chatURL, `{` + msgs + `,"temperature":"hot"}`, 400, typeInvalidRequest, "", "temperature"},
		{"negative max_tokens", chatURL, `{` + msgs + `,"max_tokens":-5}`, 400, typeInvalidRequest, "", "max_tokens"},
		{"absurd max_tokens", chatURL, `{` + msgs + `,"max_tokens":100000000}`, 400, typeInvalidRequest, "", "max_tokens"},
		{"zero max_completion_tokens", chatURL, `{` + msgs + `,"max_completion_tokens":0}`, 400, typeInvalidRequest, "", "max_completion_tokens"},
		{"temperature below 0", chatURL, `{` + msgs + `,"temperature":-0.1}`, 400, typeInvalidRequest, "", "temperature"},
		{"temperature above 2", chatURL, `{` + msgs + `,"temperature":2.5}`, 400, typeInvalidRequest, "", "temperature"},
		{"top_p 0", chatURL, `{` + msgs + `,"top_p":0}`, 400, typeInvalidRequest, "", "top_p"},
		{"top_p above 1", chatURL, `{` + msgs + `,"top_p":1.01}`, 400, typeInvalidRequest, "", "top_p"},
		{"top_k below -1", chatURL, `{` + msgs + `,"top_k":-2}`, 400, typeInvalidRequest, "", "top_k"},
		{"min_p above 1", chatURL, `{` + msgs + `,"min_p":1.5}`, 400, typeInvalidRequest, "", "min_p"},
		{"presence_penalty above 2", chatURL, `{` + msgs + `,"presence_penalty":3}`, 400, typeInvalidRequest, "", "presence_penalty"},
		{"frequency_penalty below -2", chatURL, `{` + msgs + `,"frequency_penalty":-2.5}`, 400, typeInvalidRequest, "", "frequency_penalty"},
		{"repetition_penalty 0", chatURL, `{` + msgs + `,"repetition_penalty":0}`, 400, typeInvalidRequest, "", "repetition_penalty"},
		{"n 0", chatURL, `{` + msgs + `,"n":0}`, 400, typeInvalidRequest, "", "n"},
		{"n too large", chatURL, `{` + msgs + `,"n":1000}`, 400, typeInvalidRequest, "", "n"},
		{"logit_bias key not a number", chatURL, `{` + msgs + `,"logit_bias":{"dog":5}}`, 400, typeInvalidRequest, "", "logit_bias"},
		{"logit_bias key outside the vocabulary", chatURL, `{` + msgs + `,"logit_bias":{"512":5}}`, 400, typeInvalidRequest, "", "logit_bias"},
		{"logit_bias value out of range", chatURL, `{` + msgs + `,"logit_bias":{"10":101}}`, 400, typeInvalidRequest, "", "logit_bias"},
		{"logit_bias value of the wrong type", chatURL, `{` + msgs + `,"logit_bias":{"10":"up"}}`, 400, typeInvalidRequest, "", "logit_bias"},
		{"stop of the wrong type", chatURL, `{` + msgs + `,"stop":7}`, 400, typeInvalidRequest, "", "stop"},
		{"too many stops", chatURL, `{` + msgs + `,"stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`, 400, typeInvalidRequest, "", "stop"},
		{"top_logprobs above 20", chatURL, `{` + msgs + `,"logprobs":true,"top_logprobs":21}`, 400, typeInvalidRequest, "", "top_logprobs"},
		{"top_logprobs without logprobs", chatURL, `{` + msgs + `,"top_logprobs":2}`, 400, typeInvalidRequest, "", "top_logprobs"},
		{"logprobs of the wrong type", chatURL, `{` + msgs + `,"logprobs":3}`, 400, typeInvalidRequest, "", "logprobs"},
		{"seed of the wrong type", chatURL, `{` + msgs + `,"seed":1.5}`, 400, typeInvalidRequest, "", "seed"},
		{"user of the wrong type", chatURL, `{` + msgs + `,"user":5}`, 400, typeInvalidRequest, "", "user"},
		{"no messages", chatURL, `{"model":"stories260K"}`, 400, typeInvalidRequest, "", "messages"},
		{"empty messages", chatURL, `{"messages":[]}`, 400, typeInvalidRequest, "", "messages"},
		{"unknown role", chatURL, `{"messages":[{"role":"wizard","content":"Hi"}]}`, 400, typeInvalidRequest, "", "messages[0].role"},
		{"missing role", chatURL, `{"messages":[{"content":"Hi"}]}`, 400, typeInvalidRequest, "", "messages[0].role"},
		{"content of the wrong type", chatURL, `{"messages":[{"role":"user","content":5}]}`, 400, typeInvalidRequest, "", "messages[0].content"},
		{"image content", chatURL, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, typeInvalidRequest, "", "messages[0].content[0].type"},
		{"unknown model", chatURL, `{"model":"gpt-4o",` + msgs + `}`, 404, typeInvalidRequest, "model_not_found", "model"},
		{"prompt over the context", chatURL, `{"messages":[{"role":"user","content":"` + long + `"}]}`, 400, typeInvalidRequest, "context_length_exceeded", "messages"},
		{"prompt plus max_tokens over the context", chatURL, `{` + msgs + `,"max_tokens":120}`, 400, typeInvalidRequest, "context_length_exceeded", "messages"},

		{"completion without prompt", cmplURL, `{"max_tokens":5}`, 400, typeInvalidRequest, "", "prompt"},
		{"completion prompt of the wrong type", cmplURL, `{"prompt":{"text":"Once"}}`, 400, typeInvalidRequest, "", "prompt"},
		{"completion prompt empty array", cmplURL, `{"prompt":[]}`, 400, typeInvalidRequest, "", "prompt"},
		{"completion token outside the vocabulary", cmplURL, `{"prompt":[1, 600]}`, 400, typeInvalidRequest, "", "prompt"},
		{"completion logprobs above 20", cmplURL, `{"prompt":"Once","logprobs":21}`, 400, typeInvalidRequest, "", "logprobs"},
		{"completion suffix", cmplURL, `{"prompt":"Once","suffix":"end"}`, 400, typeInvalidRequest, "", "suffix"},
		{"completion best_of", cmplURL, `{"prompt":"Once","best_of":3}`, 400, typeInvalidRequest, "", "best_of"},
		{"completion unknown model", cmplURL, `{"model":"davinci","prompt":"Once"}`, 404, typeInvalidRequest, "model_not_found", "model"},
		{"completion prompt over the context", cmplURL, `{"prompt":"` + long + `"}`, 400, typeInvalidRequest, "context_length_exceeded", "prompt"},
		{"completion too many choices", cmplURL, `{"prompt":["a","b","c","d","e"],"n":16}`, 400, typeInvalidRequest, "", "n"},

		{"tokenize without content", "/tokenize", `{}`, 400, typeInvalidRequest, "", "content"},
		{"detokenize outside the vocabulary", "/detokenize", `{"tokens":[1,-1]}`, 400, typeInvalidRequest, "", "tokens"},
		{"detokenize of the wrong type", "/detokenize", `{"tokens":"abc"}`, 400, typeInvalidRequest, "", "tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, ts.URL+tc.url, tc.body)
			e := wantError(t, resp, body, tc.status, tc.typ, tc.code)
			if tc.param != "" && (e.Error.Param == nil || *e.Error.Param != tc.param) {
				t.Errorf("param %s, want %q (message %q)", strp(e.Error.Param), tc.param, e.Error.Message)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id header")
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	_, ts := newFakeServer(t, Config{}, &fakeEngine{refuse: true})
	big := `{"messages":[{"role":"user","content":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}]}`
	resp, body := post(t, ts.URL+"/v1/chat/completions", big)
	wantError(t, resp, body, http.StatusRequestEntityTooLarge, typeInvalidRequest, "request_too_large")
}

// TestEngineErrors checks how refusals of the engine reach the client.
func TestEngineErrors(t *testing.T) {
	tests := []struct {
		err        error
		status     int
		typ, code  string
		retryAfter bool
	}{
		{engine.ErrQueueFull, 503, typeUnavailable, "queue_full", true},
		{engine.ErrTooLong, 400, typeInvalidRequest, "context_length_exceeded", false},
		{engine.ErrClosed, 503, typeUnavailable, "shutting_down", true},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			_, ts := newFakeServer(t, Config{}, &fakeEngine{err: tc.err})
			resp, body := post(t, ts.URL+"/v1/completions", `{"prompt":"Once","max_tokens":3}`)
			wantError(t, resp, body, tc.status, tc.typ, tc.code)
			if got := resp.Header.Get("Retry-After"); (got != "") != tc.retryAfter {
				t.Errorf("Retry-After %q, want one: %v", got, tc.retryAfter)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	_, ts := newFakeServer(t, Config{}, &fakeEngine{refuse: true})
	resp, body := get(t, ts.URL+"/v1/nothing")
	wantError(t, resp, body, http.StatusNotFound, typeNotFound, "not_found")

	resp, body = get(t, ts.URL+"/v1/chat/completions")
	wantError(t, resp, body, http.StatusMethodNotAllowed, typeInvalidRequest, "method_not_allowed")
	if a := resp.Header.Get("Allow"); a != "POST" {
		t.Errorf("Allow %q, want POST", a)
	}

	resp, body = get(t, ts.URL+"/v1/models")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("models: %d %s (%v)", resp.StatusCode, body, err)
	}
	if list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "stories260K" || list.Data[0].Object != "model" {
		t.Errorf("models: %s", body)
	}
	if resp, body := get(t, ts.URL+"/v1/models/stories260K"); resp.StatusCode != 200 {
		t.Errorf("model: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, ts.URL+"/v1/models/gpt-4")
	wantError(t, resp, body, http.StatusNotFound, typeInvalidRequest, "model_not_found")

	resp, body = get(t, ts.URL+"/v1/requests/chatcmpl-nosuch")
	wantError(t, resp, body, http.StatusNotFound, typeNotFound, "request_not_found")
	resp, body = post(t, ts.URL+"/v1/requests/chatcmpl-nosuch/cancel", "")
	wantError(t, resp, body, http.StatusNotFound, typeNotFound, "request_not_found")
}

func TestHealthWhileLoading(t *testing.T) {
	s := New(Config{Logger: discardLogger()})
	h := s.Handler()
	ts := newHTTPTest(t, h)
	resp, body := get(t, ts+"/health")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"loading"`) {
		t.Errorf("health while loading: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, ts+"/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}]}`)
	wantError(t, resp, body, http.StatusServiceUnavailable, typeUnavailable, "model_loading")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After while loading")
	}

	tok, tmpl := testTokenizer(t)
	s.SetModel(&Model{ID: "m", Engine: &fakeEngine{t: t, refuse: true}, Tokenizer: tok, Template: tmpl, ContextLength: 128})
	resp, body = get(t, ts+"/health")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("health when ready: %d %s", resp.StatusCode, body)
	}
	s.SetDraining()
	if resp, body = get(t, ts+"/health"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health while draining: %d %s", resp.StatusCode, body)
	}
}

func TestAuth(t *testing.T) {
	const key = "sekrit-key"
	_, ts := newFakeServer(t, Config{APIKey: key}, &fakeEngine{})
	body := `{"prompt":"Once","max_tokens":2}`
	for _, tc := range []struct {
		name, header string
		code         string
	}{
		{"no header", "", "missing_api_key"},
		{"wrong key", "Bearer sekrit-kez", "invalid_api_key"},
		{"no Bearer", key, "invalid_api_key"},
		{"prefix of the key", "Bearer sekrit", "invalid_api_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			var b []byte
			if tc.header == "" {
				resp, b = post(t, ts.URL+"/v1/completions", body)
			} else {
				resp, b = post(t, ts.URL+"/v1/completions", body, "Authorization", tc.header)
			}
			wantError(t, resp, b, http.StatusUnauthorized, typeAuthentication, tc.code)
		})
	}
	if resp, b := post(t, ts.URL+"/v1/completions", body, "Authorization", "Bearer "+key); resp.StatusCode != 200 {
		t.Errorf("right key: %d %s", resp.StatusCode, b)
	}
	if resp, b := get(t, ts.URL+"/health"); resp.StatusCode != 200 {
		t.Errorf("health without a key: %d %s", resp.StatusCode, b)
	}
	resp, b := get(t, ts.URL+"/metrics")
	wantError(t, resp, b, http.StatusUnauthorized, typeAuthentication, "missing_api_key")
}

func TestCORS(t *testing.T) {
	preflight := func(t *testing.T, url string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, url+"/v1/chat/completions", nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, _ := do(t, req)
		return resp
	}
	t.Run("off", func(t *testing.T) {
		_, ts := newFakeServer(t, Config{}, &fakeEngine{})
		resp := preflight(t, ts.URL)
		if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.StatusCode < 400 {
			t.Errorf("CORS off: preflight %d with Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		resp, _ = post(t, ts.URL+"/v1/completions", `{"prompt":"Once","max_tokens":1}`, "Origin", "https://app.example")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Error("CORS off: Allow-Origin on a response")
		}
	})
	t.Run("on", func(t *testing.T) {
		// With an API key too: the preflight carries no credentials.
		_, ts := newFakeServer(t, Config{CORSOrigin: "https://app.example", APIKey: "k"}, &fakeEngine{})
		resp := preflight(t, ts.URL)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "authorization") {
			t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
		resp, b := post(t, ts.URL+"/v1/completions", `{"prompt":"Once","max_tokens":1}`, "Origin", "https://app.example", "Authorization", "Bearer k")
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("CORS request: %d %s, Allow-Origin %q", resp.StatusCode, b, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		resp, _ = post(t, ts.URL+"/v1/completions", `{"prompt":"Once","max_tokens":1}`, "Origin", "https://evil.example", "Authorization", "Bearer k")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Error("Allow-Origin sent to another origin")
		}
	})
}

func TestTokenizeRoundTrip(t *testing.T) {
	_, ts := newFakeServer(t, Config{}, &fakeEngine{refuse: true})
	for _, tc := range []struct {
		add     bool
		wantBOS bool
	}{{true, true}, {false, false}} {
		resp, body := post(t, ts.URL+"/tokenize", map[string]any{"content": "Once upon a time", "add_special": tc.add})
		var tk struct {
			Tokens []int32 `json:"tokens"`
		}
		if err := json.Unmarshal(body, &tk); err != nil || resp.StatusCode != 200 || len(tk.Tokens) == 0 {
			t.Fatalf("tokenize: %d %s (%v)", resp.StatusCode, body, err)
		}
		if (tk.Tokens[0] == 1) != tc.wantBOS {
			t.Errorf("add_special %v: tokens %v", tc.add, tk.Tokens)
		}
		resp, body = post(t, ts.URL+"/detokenize", map[string]any{"tokens": tk.Tokens})
		var dt struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(body, &dt); err != nil || resp.StatusCode != 200 {
			t.Fatalf("detokenize: %d %s (%v)", resp.StatusCode, body, err)
		}
		if dt.Content != "Once upon a time" {
			t.Errorf("round trip gave %q", dt.Content)
		}
	}
}
