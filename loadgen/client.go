package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client talks to one server: its base URL and nothing else.
type client struct {
	base   string // without a trailing slash
	apiKey string
	http   *http.Client
	now    func() time.Time
}

// apiErrorBody is OpenAI's error envelope.
type apiErrorBody struct {
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
	} `json:"error"`
}

// post sends a JSON body and returns the response; a status other than 200
// is an error naming the status and the server's message.
func (c *client) post(ctx context.Context, path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req)
}

func (c *client) do(req *http.Request) (*http.Response, error) {
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(string(b))
		var e apiErrorBody
		if json.Unmarshal(b, &e) == nil && e.Error != nil {
			msg = e.Error.Message
		}
		return nil, fmt.Errorf("%s %s: HTTP %d: %s", req.Method, req.URL.Path, resp.StatusCode, msg)
	}
	return resp, nil
}

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decoding the response: %w", path, err)
	}
	return nil
}

// ModelInfo is what the server says of the model it serves.
type ModelInfo struct {
	ID string `json:"id"`
	// ContextLength is 0 when the server does not say.
	ContextLength int `json:"context_length"`
}

// models returns the first model of /v1/models.
func (c *client) models(ctx context.Context) (ModelInfo, error) {
	var list struct {
		Data []ModelInfo `json:"data"`
	}
	if err := c.getJSON(ctx, "/v1/models", &list); err != nil {
		return ModelInfo{}, err
	}
	if len(list.Data) == 0 {
		return ModelInfo{}, errors.New("GET /v1/models: the server lists no model")
	}
	return list.Data[0], nil
}

// tokenize returns the server's token ids of text.
func (c *client) tokenize(ctx context.Context, text string, addSpecial bool) ([]int32, error) {
	resp, err := c.post(ctx, "/tokenize", map[string]any{"content": text, "add_special": addSpecial, "parse_special": false})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Tokens []int32 `json:"tokens"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("POST /tokenize: decoding the response: %w", err)
	}
	return out.Tokens, nil
}

// completionRequest is the body of the requests loadgen sends.
type completionRequest struct {
	Model         string         `json:"model,omitempty"`
	Prompt        []int32        `json:"prompt"`
	MaxTokens     int            `json:"max_tokens"`
	Temperature   float64        `json:"temperature"`
	TopK          int            `json:"top_k,omitempty"`
	IgnoreEOS     bool           `json:"ignore_eos,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// completionChunk is a streamed chunk or a whole response of
// /v1/completions; Error is set on an error event.
type completionChunk struct {
	Choices []struct {
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// apply takes a chunk's usage and finish reason into rec.
func (ch *completionChunk) apply(rec *Record) {
	for _, c := range ch.Choices {
		if c.FinishReason != nil {
			rec.FinishReason = *c.FinishReason
		}
	}
	if u := ch.Usage; u != nil {
		rec.PromptTokens, rec.CompletionTokens = u.PromptTokens, u.CompletionTokens
		if u.PromptTokensDetails != nil {
			rec.CachedTokens = u.PromptTokensDetails.CachedTokens
		}
	}
}

// complete sends one completion request and times it.
func (c *client) complete(ctx context.Context, body completionRequest) Record {
	var rec Record
	start := c.now()
	err := c.completeInto(ctx, body, start, &rec)
	rec.Latency = c.now().Sub(start)
	if err == nil && rec.FinishReason == "error" {
		err = errors.New("finish_reason error")
	}
	if err != nil {
		rec.Err = err
	}
	return rec
}

func (c *client) completeInto(ctx context.Context, body completionRequest, start time.Time, rec *Record) error {
	resp, err := c.post(ctx, "/v1/completions", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if !body.Stream {
		var ch completionChunk
		if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
			return fmt.Errorf("decoding the response: %w", err)
		}
		ch.apply(rec)
		if ch.Usage == nil {
			return errors.New("the response has no usage")
		}
		return nil
	}
	return readStream(resp.Body, c.now, start, rec)
}

// readStream reads a completion's server-sent events into rec, timing the
// text chunks from start.
func readStream(r io.Reader, now func() time.Time, start time.Time, rec *Record) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var last time.Time
	usage := false
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue // blank separators, comments, other fields
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			if !usage {
				rec.CompletionTokens = rec.Chunks
			}
			return nil
		}
		t := now()
		var ch completionChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return fmt.Errorf("malformed event %.80q: %w", data, err)
		}
		if ch.Error != nil {
			return fmt.Errorf("error event: %s", ch.Error.Message)
		}
		text := false
		for _, c := range ch.Choices {
			text = text || c.Text != ""
		}
		if text {
			if rec.Chunks == 0 {
				rec.TTFT = t.Sub(start)
			} else {
				rec.ITL = append(rec.ITL, t.Sub(last))
			}
			last = t
			rec.Chunks++
		}
		usage = usage || ch.Usage != nil
		ch.apply(rec)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the stream: %w", err)
	}
	return errors.New("the stream ended without [DONE]")
}
