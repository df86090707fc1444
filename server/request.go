package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/rocmforge/rocmforge/chat"
	"github.com/rocmforge/rocmforge/engine"
	"github.com/rocmforge/rocmforge/sample"
)

// Limits on request fields beyond the sampler's own ranges.
const (
	maxN        = 16  // choices per prompt
	maxChoices  = 64  // choices per request, over all prompts
	maxStops    = 16  // stop strings
	maxBiasAbs  = 100 // |logit_bias| (OpenAI's range)
	maxPenalty  = 2   // |presence_penalty|, |frequency_penalty| (OpenAI's range)
	maxTemp     = 2   // temperature (OpenAI's range)
	maxTopProbs = sample.MaxTopLogprobs
)

// samplingFields are the request fields chat and text completions share.
// Pointers tell an absent (or null) field from a zero one.
type samplingFields struct {
	Model             string             `json:"model"`
	MaxTokens         *int               `json:"max_tokens"`
	Temperature       *float64           `json:"temperature"`
	TopP              *float64           `json:"top_p"`
	TopK              *int               `json:"top_k"`
	MinP              *float64           `json:"min_p"`
	PresencePenalty   *float64           `json:"presence_penalty"`
	FrequencyPenalty  *float64           `json:"frequency_penalty"`
	RepetitionPenalty *float64           `json:"repetition_penalty"`
	Seed              *int64             `json:"seed"`
	Stop              json.RawMessage    `json:"stop"`
	LogitBias         map[string]float64 `json:"logit_bias"`
	N                 *int               `json:"n"`
	User              string             `json:"user"`
	Stream            bool               `json:"stream"`
	StreamOptions     *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	// IgnoreEOS (a vLLM extension) keeps generating past end-of-generation
	// tokens, up to max_tokens.
	IgnoreEOS bool `json:"ignore_eos"`
}

// chatRequest is the body of POST /v1/chat/completions.
type chatRequest struct {
	samplingFields
	Messages            []chatMessage `json:"messages"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
	Logprobs            *bool         `json:"logprobs"`
	TopLogprobs         *int          `json:"top_logprobs"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
}

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	samplingFields
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs *int            `json:"logprobs"`
	Echo     bool            `json:"echo"`
	Suffix   *string         `json:"suffix"`
	BestOf   *int            `json:"best_of"`
}

// generation is a validated request: what to submit to the engine, how many
// times, and how to answer.
type generation struct {
	prompts     [][]int32 // token ids of each prompt
	promptTexts []string  // the prompts' text, for echo
	n           int       // choices per prompt
	maxTokens   int       // 0: up to the context length
	params      sample.Params
	stop        []string
	ignoreEOS   bool
	logprobs    bool
	topLogprobs int
	stream      bool
	usageChunk  bool // stream_options.include_usage
	echo        bool
}

// requests returns the engine requests of g: n for each prompt, prompt-major,
// the choice index being the position in the list. Choice i samples with
// seed+i, so that n choices of one seeded request differ from each other yet
// repeat from run to run.
func (g *generation) requests() []engine.Request {
	reqs := make([]engine.Request, 0, len(g.prompts)*g.n)
	for _, p := range g.prompts {
		for range g.n {
			params := g.params
			params.Seed += uint64(len(reqs))
			reqs = append(reqs, engine.Request{
				Prompt:      p,
				MaxTokens:   g.maxTokens, // 0: up to the context length, as the engine has it
				Params:      params,
				Stop:        g.stop,
				IgnoreEOS:   g.ignoreEOS,
				Logprobs:    g.logprobs,
				TopLogprobs: g.topLogprobs,
			})
		}
	}
	return reqs
}

// decodeBody reads a JSON request body into v, with the errors a client
// should see: 413 past the body limit, 400 for malformed JSON or a field of
// the wrong type.
func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newAPIError(http.StatusRequestEntityTooLarge, typeInvalidRequest, "", "request_too_large",
				"request body larger than %d bytes", mbe.Limit)
		}
		return invalid("", "reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "empty request body: want a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// The path of a field of the embedded struct starts with its
			// Go name, which means nothing to a client.
			te.Field = strings.TrimPrefix(te.Field, "samplingFields.")
			if te.Field == "" {
				return invalid("", "the request body is a JSON %s: want an object", te.Value)
			}
			return invalid(te.Field, "field %s: got a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type.String()))
		}
		return invalid("", "malformed JSON in the request body: %v", err)
	}
	return nil
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(goType string) string {
	t := strings.TrimPrefix(goType, "*")
	switch {
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "map"), strings.HasPrefix(t, "struct"):
		return "an object"
	}
	return "a value of type " + t
}

// isNull reports whether a raw field is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || bytes.Equal(s, []byte("null"))
}

// checkModel accepts the served model's id, or no model at all.
func (s *Server) checkModel(name string, m *Model) error {
	if name == "" || name == m.ID {
		return nil
	}
	return newAPIError(http.StatusNotFound, typeInvalidRequest, "model", "model_not_found",
		"the model %q does not exist; this server serves %q", name, m.ID)
}

// sampling validates the shared fields into g (all but the prompts and
// logprobs). maxTokens is the request's max_tokens (or
// max_completion_tokens), named param.
func sampling(f *samplingFields, maxTokens *int, param string, nVocab, nCtx int, g *generation) error {
	if maxTokens != nil {
		switch {
		case *maxTokens < 1:
			return invalid(param, "%s is %d: want at least 1", param, *maxTokens)
		case *maxTokens > nCtx:
			return invalid(param, "%s is %d but the context length is %d tokens", param, *maxTokens, nCtx)
		}
		g.maxTokens = *maxTokens
	}
	p := sample.DefaultParams()
	if v := f.Temperature; v != nil {
		if !(*v >= 0 && *v <= maxTemp) {
			return invalid("temperature", "temperature is %v: want a value in [0, %d]", *v, maxTemp)
		}
		p.Temperature = float32(*v)
	}
	if v := f.TopP; v != nil {
		if !(*v > 0 && *v <= 1) {
			return invalid("top_p", "top_p is %v: want a value in (0, 1]", *v)
		}
		p.TopP = float32(*v)
	}
	if v := f.TopK; v != nil {
		// -1 is vLLM's "off"; 0 is ours.
		if *v < -1 {
			return invalid("top_k", "top_k is %d: want >= 0 (0 or -1 = off)", *v)
		}
		p.TopK = max(*v, 0)
	}
	if v := f.MinP; v != nil {
		if !(*v >= 0 && *v <= 1) {
			return invalid("min_p", "min_p is %v: want a value in [0, 1]", *v)
		}
		p.MinP = float32(*v)
	}
	if v := f.PresencePenalty; v != nil {
		if !(*v >= -maxPenalty && *v <= maxPenalty) {
			return invalid("presence_penalty", "presence_penalty is %v: want a value in [-%d, %d]", *v, maxPenalty, maxPenalty)
		}
		p.PresencePenalty = float32(*v)
	}
	if v := f.FrequencyPenalty; v != nil {
		if !(*v >= -maxPenalty && *v <= maxPenalty) {
			return invalid("frequency_penalty", "frequency_penalty is %v: want a value in [-%d, %d]", *v, maxPenalty, maxPenalty)
		}
		p.FrequencyPenalty = float32(*v)
	}
	if v := f.RepetitionPenalty; v != nil {
		if !(*v > 0 && !math.IsInf(*v, 1)) {
			return invalid("repetition_penalty", "repetition_penalty is %v: want a finite value > 0 (1 = off)", *v)
		}
		p.RepeatPenalty = float32(*v)
	}
	if f.Seed != nil {
		p.Seed = uint64(*f.Seed)
	} else {
		p.Seed = rand.Uint64()
	}
	if len(f.LogitBias) > 0 {
		p.LogitBias = make(map[int32]float32, len(f.LogitBias))
		for k, b := range f.LogitBias {
			id, err := strconv.ParseInt(k, 10, 32)
			if err != nil || id < 0 || int(id) >= nVocab {
				return invalid("logit_bias", "logit_bias key %q: want a token id in [0, %d)", k, nVocab)
			}
			if !(b >= -maxBiasAbs && b <= maxBiasAbs) {
				return invalid("logit_bias", "logit_bias for token %d is %v: want a value in [-%d, %d]", id, b, maxBiasAbs, maxBiasAbs)
			}
			p.LogitBias[int32(id)] = float32(b)
		}
	}
	g.n = 1
	if f.N != nil {
		if *f.N < 1 || *f.N > maxN {
			return invalid("n", "n is %d: want 1 to %d", *f.N, maxN)
		}
		g.n = *f.N
	}
	stops, err := stopStrings(f.Stop)
	if err != nil {
		return err
	}
	g.stop = stops
	g.params = p
	g.ignoreEOS = f.IgnoreEOS
	g.stream = f.Stream
	g.usageChunk = f.Stream && f.StreamOptions != nil && f.StreamOptions.IncludeUsage
	return nil
}

// stopStrings reads stop: a string or a list of strings (empty ones are
// dropped).
func stopStrings(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("stop", "stop: want a string or an array of strings")
	}
	if len(list) > maxStops {
		return nil, invalid("stop", "stop has %d strings: want at most %d", len(list), maxStops)
	}
	out := list[:0]
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// chatGeneration validates a chat request and renders its prompt.
func (s *Server) chatGeneration(req *chatRequest, m *Model) (*generation, error) {
	if err := s.checkModel(req.Model, m); err != nil {
		return nil, err
	}
	nVocab := m.Tokenizer.NVocab()
	maxTok, param := req.MaxCompletionTokens, "max_completion_tokens"
	if maxTok == nil {
		maxTok, param = req.MaxTokens, "max_tokens"
	}
	g := &generation{}
	if err := sampling(&req.samplingFields, maxTok, param, nVocab, m.ContextLength, g); err != nil {
		return nil, err
	}
	if req.Logprobs != nil && *req.Logprobs {
		g.logprobs = true
	}
	if req.TopLogprobs != nil {
		k := *req.TopLogprobs
		if k < 0 || k > maxTopProbs {
			return nil, invalid("top_logprobs", "top_logprobs is %d: want 0 to %d", k, maxTopProbs)
		}
		if k > 0 && !g.logprobs {
			return nil, invalid("top_logprobs", "top_logprobs needs logprobs set to true")
		}
		g.topLogprobs = k
	}
	msgs, err := chatMessages(req.Messages)
	if err != nil {
		return nil, err
	}
	text, err := m.Template.Render(msgs, true)
	if err != nil {
		var ex *chat.ExceptionError
		if errors.As(err, &ex) {
			return nil, invalid("messages", "the model's chat template refused the conversation: %s", ex.Message)
		}
		return nil, fmt.Errorf("rendering the chat template: %w", err)
	}
	g.stop = append(g.stop, m.Template.Stops()...)
	ids, err := m.encodePrompt(text)
	if err != nil {
		return nil, err
	}
	g.prompts = [][]int32{ids}
	g.promptTexts = []string{text}
	if err := g.checkLength(m.ContextLength, "messages"); err != nil {
		return nil, err
	}
	return g, nil
}

// chatMessages checks roles and flattens content into text.
func chatMessages(in []chatMessage) ([]chat.Message, error) {
	if len(in) == 0 {
		return nil, invalid("messages", "messages is empty: want at least one message")
	}
	out := make([]chat.Message, len(in))
	for i, m := range in {
		param := fmt.Sprintf("messages[%d]", i)
		role := m.Role
		switch role {
		case "system", "user", "assistant", "tool":
		case "developer":
			role = "system" // OpenAI's newer name; templates know "system"
		case "":
			return nil, invalid(param+".role", "%s has no role", param)
		default:
			return nil, invalid(param+".role", "%s has role %q: want system, developer, user, assistant or tool", param, m.Role)
		}
		content, err := messageContent(m.Content, param+".content")
		if err != nil {
			return nil, err
		}
		out[i] = chat.Message{Role: role, Content: content, Name: m.Name}
	}
	return out, nil
}

// messageContent reads a message's content: a string, null, or a list of
// text parts (joined by newlines).
func messageContent(raw json.RawMessage, param string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "%s: want a string or an array of content parts", param)
	}
	texts := make([]string, 0, len(parts))
	for j, p := range parts {
		if p.Type != "text" {
			return "", invalid(fmt.Sprintf("%s[%d].type", param, j), "%s[%d] has type %q: only text parts are supported", param, j, p.Type)
		}
		if p.Text == nil {
			return "", invalid(fmt.Sprintf("%s[%d].text", param, j), "%s[%d] is a text part without text", param, j)
		}
		texts = append(texts, *p.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// completionGeneration validates a text completion request and tokenizes its
// prompts.
func (s *Server) completionGeneration(req *completionRequest, m *Model) (*generation, error) {
	if err := s.checkModel(req.Model, m); err != nil {
		return nil, err
	}
	g := &generation{}
	if err := sampling(&req.samplingFields, req.MaxTokens, "max_tokens", m.Tokenizer.NVocab(), m.ContextLength, g); err != nil {
		return nil, err
	}
	if req.Logprobs != nil {
		k := *req.Logprobs
		if k < 0 || k > maxTopProbs {
			return nil, invalid("logprobs", "logprobs is %d: want 0 to %d", k, maxTopProbs)
		}
		g.logprobs, g.topLogprobs = true, k
	}
	if req.Suffix != nil && *req.Suffix != "" {
		return nil, invalid("suffix", "suffix is not supported")
	}
	if req.BestOf != nil && *req.BestOf != g.n {
		return nil, invalid("best_of", "best_of %d: only best_of equal to n (%d) is supported", *req.BestOf, g.n)
	}
	g.echo = req.Echo
	if err := m.completionPrompts(req.Prompt, g); err != nil {
		return nil, err
	}
	if len(g.prompts)*g.n > maxChoices {
		return nil, invalid("n", "%d prompts times n = %d is %d choices: want at most %d", len(g.prompts), g.n, len(g.prompts)*g.n, maxChoices)
	}
	if err := g.checkLength(m.ContextLength, "prompt"); err != nil {
		return nil, err
	}
	return g, nil
}

// completionPrompts reads prompt in any of its four forms: a string, a list
// of strings, a list of token ids, a list of lists of token ids.
func (m *Model) completionPrompts(raw json.RawMessage, g *generation) error {
	if isNull(raw) {
		return invalid("prompt", "prompt is missing")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return m.addTextPrompts(g, []string{one})
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		if len(texts) == 0 {
			return invalid("prompt", "prompt is an empty array")
		}
		return m.addTextPrompts(g, texts)
	}
	var ids []int64
	if json.Unmarshal(raw, &ids) == nil {
		return m.addTokenPrompts(g, [][]int64{ids})
	}
	var lists [][]int64
	if json.Unmarshal(raw, &lists) == nil {
		if len(lists) == 0 {
			return invalid("prompt", "prompt is an empty array")
		}
		return m.addTokenPrompts(g, lists)
	}
	return invalid("prompt", "prompt: want a string, an array of strings, an array of token ids or an array of arrays of token ids")
}

func (m *Model) addTextPrompts(g *generation, texts []string) error {
	for _, t := range texts {
		ids, err := m.encodePrompt(t)
		if err != nil {
			return err
		}
		g.prompts = append(g.prompts, ids)
		g.promptTexts = append(g.promptTexts, t)
	}
	return nil
}

func (m *Model) addTokenPrompts(g *generation, lists [][]int64) error {
	nVocab := m.Tokenizer.NVocab()
	for i, l := range lists {
		if len(l) == 0 {
			return invalid("prompt", "prompt %d is an empty list of tokens", i)
		}
		ids := make([]int32, len(l))
		for j, id := range l {
			if id < 0 || id >= int64(nVocab) {
				return invalid("prompt", "prompt %d: token %d is %d, outside the vocabulary [0, %d)", i, j, id, nVocab)
			}
			ids[j] = int32(id)
		}
		g.prompts = append(g.prompts, ids)
		g.promptTexts = append(g.promptTexts, m.Tokenizer.Decode(ids))
	}
	return nil
}

// encodePrompt tokenizes a prompt text, special-token texts included, with
// the BOS the model wants, but only one: a chat template that writes
// bos_token itself would otherwise give two.
func (m *Model) encodePrompt(text string) ([]int32, error) {
	ids, err := m.Tokenizer.Encode(text, true, true)
	if err != nil {
		return nil, fmt.Errorf("tokenizing the prompt: %w", err)
	}
	if bos := m.Tokenizer.BOS(); len(ids) >= 2 && bos >= 0 && ids[0] == bos && ids[1] == bos && m.Tokenizer.AddBOS() {
		ids = ids[1:]
	}
	if len(ids) == 0 {
		return nil, invalid("prompt", "the prompt is empty and the model adds no BOS token: nothing to start from")
	}
	return ids, nil
}

// checkLength rejects prompts that leave no room for max_tokens in the
// context.
func (g *generation) checkLength(nCtx int, param string) error {
	for _, p := range g.prompts {
		need := len(p) + max(g.maxTokens, 1)
		if need > nCtx {
			if g.maxTokens == 0 {
				return newAPIError(http.StatusBadRequest, typeInvalidRequest, param, "context_length_exceeded",
					"this model's maximum context length is %d tokens, but the prompt is %d tokens, leaving no room to generate", nCtx, len(p))
			}
			return newAPIError(http.StatusBadRequest, typeInvalidRequest, param, "context_length_exceeded",
				"this model's maximum context length is %d tokens, but you requested %d tokens (%d in the prompt, %d for the completion)",
				nCtx, len(p)+g.maxTokens, len(p), g.maxTokens)
		}
	}
	return nil
}
