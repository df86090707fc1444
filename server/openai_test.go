package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/rocmforge/rocmforge/engine"
)

// The official Go client, unmodified, against the real model.

const modelID = "stories260K"

// greedyStory is how stories260K continues "Once upon a time" greedily
// (Karpathy's documented story).
const greedyStory = ", there was a little girl named Lily"

func newOpenAI(t testing.TB, rs *realServer, opts ...option.RequestOption) openai.Client {
	t.Helper()
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(rs.url + "/"),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
		option.WithHTTPClient(newClient(t)),
	}, opts...)...)
}

func chatParams(maxTokens int64) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model: modelID,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("You tell stories."),
			openai.UserMessage("Tell me about a dog."),
		},
		MaxTokens:   openai.Int(maxTokens),
		Temperature: openai.Float(0),
	}
}

func TestOpenAIChat(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	client := newOpenAI(t, rs)
	ctx := context.Background()
	params := chatParams(24)

	var httpResp *http.Response
	whole, err := client.Chat.Completions.New(ctx, params, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(whole.ID, "chatcmpl-") || httpResp.Header.Get("X-Request-Id") != whole.ID {
		t.Errorf("id %q, X-Request-Id %q: want the same chatcmpl- id", whole.ID, httpResp.Header.Get("X-Request-Id"))
	}
	if whole.Object != "chat.completion" || whole.Model != modelID || len(whole.Choices) != 1 {
		t.Fatalf("response %s", whole.RawJSON())
	}
	c := whole.Choices[0]
	if c.Message.Role != "assistant" || c.Message.Content == "" || (c.FinishReason != "stop" && c.FinishReason != "length") {
		t.Errorf("choice %s", c.RawJSON())
	}
	u := whole.Usage
	if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.CompletionTokens > 24 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage %s", u.RawJSON())
	}
	t.Logf("chat: %q (%s, %d+%d tokens)", c.Message.Content, c.FinishReason, u.PromptTokens, u.CompletionTokens)

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params, option.WithResponseInto(&httpResp))
	var text strings.Builder
	var finish string
	var usageChunks, chunks int
	for stream.Next() {
		ch := stream.Current()
		chunks++
		if ch.Object != "chat.completion.chunk" || ch.ID != httpResp.Header.Get("X-Request-Id") || !strings.HasPrefix(ch.ID, "chatcmpl-") {
			t.Errorf("chunk %d: object %q, id %q (header %q)", chunks, ch.Object, ch.ID, httpResp.Header.Get("X-Request-Id"))
		}
		if chunks == 1 && (len(ch.Choices) != 1 || ch.Choices[0].Delta.Role != "assistant") {
			t.Errorf("first chunk %s: want the assistant role", ch.RawJSON())
		}
		if len(ch.Choices) == 0 {
			usageChunks++
			if ch.Usage.CompletionTokens != u.CompletionTokens || ch.Usage.PromptTokens != u.PromptTokens {
				t.Errorf("usage chunk %s, want the usage of the whole response", ch.RawJSON())
			}
			continue
		}
		text.WriteString(ch.Choices[0].Delta.Content)
		if ch.Choices[0].FinishReason != "" {
			finish = ch.Choices[0].FinishReason
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != c.Message.Content || finish != c.FinishReason {
		t.Errorf("stream gave %q (%s), whole gave %q (%s)", text.String(), finish, c.Message.Content, c.FinishReason)
	}
	if usageChunks != 1 {
		t.Errorf("%d usage chunks, want 1", usageChunks)
	}
}

func TestOpenAIChatLogprobsAndN(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	client := newOpenAI(t, rs)
	ctx := context.Background()
	params := chatParams(8)
	params.Logprobs = openai.Bool(true)
	params.TopLogprobs = openai.Int(3)
	params.N = openai.Int(3)
	params.Temperature = openai.Float(1)
	params.Seed = openai.Int(42)
	first, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Choices) != 3 {
		t.Fatalf("%d choices, want 3", len(first.Choices))
	}
	var completion int64
	for i, c := range first.Choices {
		if int(c.Index) != i {
			t.Errorf("choice %d has index %d", i, c.Index)
		}
		lp := c.Logprobs.Content
		if len(lp) == 0 {
			t.Errorf("choice %d: no logprobs", i)
		}
		for j, e := range lp {
			if e.Logprob > 0 || len(e.TopLogprobs) != 3 || e.TopLogprobs[0].Logprob < e.Logprob || len(e.Bytes) != len(e.Token) {
				t.Errorf("choice %d token %d: %s", i, j, e.RawJSON())
			}
		}
		completion += int64(len(lp))
	}
	if first.Usage.CompletionTokens != completion {
		t.Errorf("usage: %d completion tokens, logprobs of %d", first.Usage.CompletionTokens, completion)
	}
	// The same seed gives the same choices.
	again, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	for i := range first.Choices {
		if first.Choices[i].Message.Content != again.Choices[i].Message.Content {
			t.Errorf("choice %d: %q, then %q with the same seed", i, first.Choices[i].Message.Content, again.Choices[i].Message.Content)
		}
	}
}

func TestOpenAICompletions(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	client := newOpenAI(t, rs)
	ctx := context.Background()
	params := openai.CompletionNewParams{
		Model:       modelID,
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens:   openai.Int(20),
		Temperature: openai.Float(0),
		Logprobs:    openai.Int(2),
	}
	var httpResp *http.Response
	whole, err := client.Completions.New(ctx, params, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(whole.ID, "cmpl-") || httpResp.Header.Get("X-Request-Id") != whole.ID || whole.Object != "text_completion" {
		t.Errorf("id %q (header %q), object %q", whole.ID, httpResp.Header.Get("X-Request-Id"), whole.Object)
	}
	c := whole.Choices[0]
	if !strings.HasPrefix(c.Text, greedyStory) || c.FinishReason != "length" {
		t.Errorf("greedy text %q (%s), want it to start with %q", c.Text, c.FinishReason, greedyStory)
	}
	lp := c.Logprobs
	if len(lp.Tokens) != 20 || len(lp.TokenLogprobs) != 20 || len(lp.TopLogprobs) != 20 || len(lp.TextOffset) != 20 {
		t.Fatalf("logprobs %s", lp.RawJSON())
	}
	if strings.Join(lp.Tokens, "") != c.Text {
		t.Errorf("logprob tokens %q do not make the text %q", lp.Tokens, c.Text)
	}
	for i, top := range lp.TopLogprobs {
		// Greedy: the chosen token is the likeliest.
		if best := top[lp.Tokens[i]]; len(top) == 0 || len(top) > 2 || best != lp.TokenLogprobs[i] {
			t.Errorf("token %d %q (logprob %v): top %v", i, lp.Tokens[i], lp.TokenLogprobs[i], top)
		}
	}

	stream := client.Completions.NewStreaming(ctx, params)
	var text strings.Builder
	var finish string
	for stream.Next() {
		ch := stream.Current()
		for _, c := range ch.Choices {
			text.WriteString(c.Text)
			if c.FinishReason != "" {
				finish = string(c.FinishReason)
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != c.Text || finish != string(c.FinishReason) {
		t.Errorf("stream gave %q (%s), whole gave %q (%s)", text.String(), finish, c.Text, c.FinishReason)
	}

	// Stop strings: the text ends before the stop string.
	stop := params
	stop.Logprobs = openai.CompletionNewParams{}.Logprobs
	stop.Stop = openai.CompletionNewParamsStopUnion{OfStringArray: []string{" named", "xyz"}}
	res, err := client.Completions.New(ctx, stop)
	if err != nil {
		t.Fatal(err)
	}
	if want := ", there was a little girl"; res.Choices[0].Text != want || res.Choices[0].FinishReason != "stop" {
		t.Errorf("with stop: %q (%s), want %q (stop)", res.Choices[0].Text, res.Choices[0].FinishReason, want)
	}

	// Echo, and token-id prompts.
	echo := stop
	echo.Stop = openai.CompletionNewParamsStopUnion{}
	echo.Echo = openai.Bool(true)
	echo.MaxTokens = openai.Int(3)
	ids, err := rs.tok.Encode("Once upon a time", true, true)
	if err != nil {
		t.Fatal(err)
	}
	tokIDs := make([]int64, len(ids))
	for i, id := range ids {
		tokIDs[i] = int64(id)
	}
	echo.Prompt = openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: tokIDs}
	res, err = client.Completions.New(ctx, echo)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Choices[0].Text; !strings.HasPrefix(got, "Once upon a time"+greedyStory[:5]) {
		t.Errorf("echo: %q", got)
	}

	// Logit bias: banning the greedy first token (every token with its
	// text, byte tokens included) changes the first token.
	first := lp.Tokens[0]
	bias := stop
	bias.Stop = openai.CompletionNewParamsStopUnion{}
	bias.MaxTokens = openai.Int(3)
	bias.LogitBias = map[string]int64{}
	for id := range int32(rs.tok.NVocab()) {
		if rs.tok.Piece(id) == first {
			bias.LogitBias[strconv.Itoa(int(id))] = -100
		}
	}
	if len(bias.LogitBias) == 0 {
		t.Fatalf("no token has the text %q", first)
	}
	res, err = client.Completions.New(ctx, bias)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(res.Choices[0].Text, first) {
		t.Errorf("with the tokens %v (%q) banned the text still starts with it: %q", bias.LogitBias, first, res.Choices[0].Text)
	}
}

func TestOpenAIMultiplePrompts(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{})
	client := newOpenAI(t, rs)
	params := openai.CompletionNewParams{
		Model:       modelID,
		Prompt:      openai.CompletionNewParamsPromptUnion{OfArrayOfStrings: []string{"Once upon a time", "The cat"}},
		MaxTokens:   openai.Int(6),
		Temperature: openai.Float(0.9),
		N:           openai.Int(2),
		Seed:        openai.Int(7),
	}
	a, err := client.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	b, err := client.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Choices) != 4 {
		t.Fatalf("%d choices, want 2 prompts x n=2", len(a.Choices))
	}
	for i := range a.Choices {
		if int(a.Choices[i].Index) != i || a.Choices[i].Text != b.Choices[i].Text {
			t.Errorf("choice %d (index %d): %q then %q with the same seed", i, a.Choices[i].Index, a.Choices[i].Text, b.Choices[i].Text)
		}
	}
	// Prompt tokens count each prompt once, not once per choice.
	p1, _ := rs.tok.Encode("Once upon a time", true, true)
	p2, _ := rs.tok.Encode("The cat", true, true)
	if want := int64(len(p1) + len(p2)); a.Usage.PromptTokens != want {
		t.Errorf("prompt tokens %d, want %d", a.Usage.PromptTokens, want)
	}
}

// TestOpenAIErrors checks that the client sees the server's errors as
// *openai.Error with the right status and type.
func TestOpenAIErrors(t *testing.T) {
	rs := newRealServer(t, engine.Config{}, Config{APIKey: "right"})
	ctx := context.Background()
	tests := []struct {
		name   string
		client openai.Client
		params openai.ChatCompletionNewParams
		status int
		typ    string
	}{
		{"bad temperature", newOpenAI(t, rs, option.WithAPIKey("right")),
			func() openai.ChatCompletionNewParams { p := chatParams(4); p.Temperature = openai.Float(3); return p }(), 400, typeInvalidRequest},
		{"unknown model", newOpenAI(t, rs, option.WithAPIKey("right")),
			func() openai.ChatCompletionNewParams { p := chatParams(4); p.Model = "gpt-4o"; return p }(), 404, typeInvalidRequest},
		{"wrong key", newOpenAI(t, rs, option.WithAPIKey("wrong")), chatParams(4), 401, typeAuthentication},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.Chat.Completions.New(ctx, tc.params)
			var ae *openai.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T), want *openai.Error", err, err)
			}
			if ae.StatusCode != tc.status || ae.Type != tc.typ || ae.Message == "" {
				t.Errorf("status %d, type %q, message %q; want %d, %q", ae.StatusCode, ae.Type, ae.Message, tc.status, tc.typ)
			}
		})
	}
	// The right key works.
	right := newOpenAI(t, rs, option.WithAPIKey("right"))
	if _, err := right.Chat.Completions.New(ctx, chatParams(2)); err != nil {
		t.Errorf("right key: %v", err)
	}
}
