//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the server's log writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func httpDo(t *testing.T, method, url, key, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestServe runs the serve command on stories260K: /health is 503 while the
// model loads (the listener is up first), requests work with the API key
// (from $ROCMFORGE_API_KEY) and are logged one line each, and SIGTERM shuts it down cleanly, letting a
// streamed response in flight finish.
func TestServe(t *testing.T) {
	model := stories260K(t)
	const key = "serve-test-key"
	t.Setenv("ROCMFORGE_API_KEY", key) // the --api-key default
	var logs syncBuffer
	var base string
	var stream *http.Response
	hooks := serveHooks{
		listening: func(addr string) {
			base = "http://" + addr
			resp, body := httpDo(t, "GET", base+"/health", "", "")
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"loading"`) {
				t.Errorf("health before the model loaded: %d %s", resp.StatusCode, body)
			}
		},
		ready: func() {
			resp, body := httpDo(t, "GET", base+"/health", "", "")
			if resp.StatusCode != http.StatusOK {
				t.Errorf("health when ready: %d %s", resp.StatusCode, body)
			}
			resp, body = httpDo(t, "POST", base+"/v1/completions", "", `{"prompt":"Once upon a time","max_tokens":8,"temperature":0}`)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("without the key: %d %s", resp.StatusCode, body)
			}
			resp, body = httpDo(t, "POST", base+"/v1/completions", key, `{"model":"stories260K","prompt":"Once upon a time","max_tokens":8,"temperature":0}`)
			var c struct {
				ID      string `json:"id"`
				Choices []struct {
					Text string `json:"text"`
				} `json:"choices"`
			}
			if err := json.Unmarshal([]byte(body), &c); err != nil || resp.StatusCode != 200 || len(c.Choices) != 1 {
				t.Fatalf("completion: %d %s (%v)", resp.StatusCode, body, err)
			}
			if want := strings.TrimPrefix(storiesGreedy, "Once upon a time"); !strings.HasPrefix(want, c.Choices[0].Text) || c.Choices[0].Text == "" {
				t.Errorf("completion %q, want the start of %q", c.Choices[0].Text, want)
			}
			for _, part := range []string{"msg=request", "id=" + c.ID, "method=POST", "path=/v1/completions", "status=200", "prompt_tokens=5", "completion_tokens=8", "duration="} {
				if !strings.Contains(logs.String(), part) {
					t.Errorf("log has no %q:\n%s", part, logs.String())
				}
			}
			// The engine's steps reach the histograms of /metrics.
			resp, body = httpDo(t, "GET", base+"/metrics", key, "")
			if resp.StatusCode != 200 || !strings.Contains(body, "\nrocmforge_engine_batch_tokens_count ") || strings.Contains(body, "\nrocmforge_engine_batch_tokens_count 0\n") {
				t.Errorf("metrics without engine steps in rocmforge_engine_batch_tokens: %d\n%s", resp.StatusCode, body)
			}
			// A stream in flight when the signal comes.
			req, _ := http.NewRequest("POST", base+"/v1/completions", strings.NewReader(`{"prompt":"Once upon a time","max_tokens":40,"stream":true}`))
			req.Header.Set("Authorization", "Bearer "+key)
			var err error
			if stream, err = http.DefaultClient.Do(req); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		},
	}
	prof := filepath.Join(t.TempDir(), "cpu.pprof")
	err := serveUntilSignal([]string{"-m", model, "--port", "0", "--backend", "ref", "--max-prefill-tokens", "4", "--cpuprofile", prof}, &logs, hooks)
	if err != nil {
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	if fi, err := os.Stat(prof); err != nil {
		t.Errorf("--cpuprofile: %v", err)
	} else if fi.Size() == 0 {
		t.Errorf("--cpuprofile %s is empty", prof)
	}
	if stream == nil {
		t.Fatalf("the server never got ready:\n%s", logs.String())
	}
	defer stream.Body.Close()
	sc := bufio.NewScanner(stream.Body)
	var last string
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			last = line
		}
	}
	if last != "data: [DONE]" {
		t.Errorf("the stream in flight at shutdown ended with %q, want data: [DONE]", last)
	}
	for _, part := range []string{"msg=listening", "msg=\"model ready\"", "msg=\"shutting down\"", "msg=stopped"} {
		if !strings.Contains(logs.String(), part) {
			t.Errorf("log has no %q:\n%s", part, logs.String())
		}
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-m", "x.gguf", "--port", "70000"},
		{"-m", "x.gguf", "--max-seqs", "0"},
		{"-m", "x.gguf", "--kv-cache-tokens", "-1"},
		{"-m", "x.gguf", "--kv-type", "q4_0"},
		{"-m", "x.gguf", "--max-prefill-tokens", "-1"},
		{"-m", "x.gguf", "--target-step-latency", "-1s"},
		{"-m", "x.gguf", "extra"},
	} {
		var logs syncBuffer
		if err := serve(t.Context(), args, &logs, serveHooks{}); err == nil {
			t.Errorf("serve %q: no error", args)
		}
	}
}
