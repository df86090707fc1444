// Package chat turns a conversation into the prompt text a model was trained
// on, by rendering the model's chat template (the Jinja source in the GGUF key
// tokenizer.chat_template) with github.com/ardanlabs/jinja.
//
// A template sees the variables Hugging Face's apply_chat_template passes:
// messages (a list of {role, content} dicts, plus name when set),
// add_generation_prompt, bos_token and eos_token, and the function
// raise_exception(message), which aborts rendering with an
// [*ExceptionError]; templates use it to reject conversations they cannot
// express ("System role not supported").
//
// A model without a template gets [ChatML], the format llama.cpp also falls
// back to:
//
//	<|im_start|>system
//	You are a helpful assistant<|im_end|>
//	<|im_start|>user
//	Hello<|im_end|>
//	<|im_start|>assistant
//
// Its end marker <|im_end|> is usually not a token of such a model's
// vocabulary, so [Template.Stops] lists it as a stop string.
package chat

import (
	"errors"
	"fmt"

	"github.com/ardanlabs/jinja"

	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string // "system", "user", "assistant", "tool", ...
	Content string
	Name    string // optional participant name; passed to the template when set
}

// ChatML is the fallback template for models without one.
const ChatML = `{%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\n' -}}
{%- endif -%}`

// chatMLEnd ends a ChatML turn; see Template.Stops.
const chatMLEnd = "<|im_end|>"

// Template is a compiled chat template with the model's special token texts.
// It is safe for concurrent use.
type Template struct {
	src      string
	tmpl     *jinja.Template
	bos, eos string
	fallback bool
}

// ExceptionError is the error of a template that called raise_exception:
// the conversation is one the template refuses.
type ExceptionError struct {
	Message string
}

func (e *ExceptionError) Error() string {
	return "chat template: " + e.Message
}

// New compiles the template source src; bos and eos are the texts of the
// model's BOS and EOS tokens ("" if it has none). An empty src selects the
// ChatML fallback.
func New(src, bos, eos string) (*Template, error) {
	fallback := src == ""
	if fallback {
		src = ChatML
	}
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	return &Template{src: src, tmpl: t, bos: bos, eos: eos, fallback: fallback}, nil
}

// Source returns the Jinja source in use (ChatML for the fallback).
func (t *Template) Source() string { return t.src }

// Fallback reports whether the template is the ChatML fallback rather than
// the model's own.
func (t *Template) Fallback() bool { return t.fallback }

// Stops returns stop strings the template's turns end with that the model
// may not have as an end-of-generation token: ChatML's <|im_end|> for the
// fallback, nothing for a model's own template (whose end-of-turn token the
// tokenizer knows).
func (t *Template) Stops() []string {
	if t.fallback {
		return []string{chatMLEnd}
	}
	return nil
}

// Render returns the prompt text of msgs. With addGenerationPrompt the text
// ends with the header of an assistant turn, for the model to continue.
// A raise_exception call in the template gives an *ExceptionError.
func (t *Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		dict := d.AsDict()
		dict.Set("role", jinja.NewString(m.Role))
		dict.Set("content", jinja.NewString(m.Content))
		if m.Name != "" {
			dict.Set("name", jinja.NewString(m.Name))
		}
		list[i] = d
	}
	out, err := t.tmpl.RenderValues(map[string]jinja.Value{
		"messages":              jinja.NewList(list),
		"add_generation_prompt": jinja.NewBool(addGenerationPrompt),
		"bos_token":             jinja.NewString(t.bos),
		"eos_token":             jinja.NewString(t.eos),
		// Ours rather than the library's built-in, so that the caller can
		// tell a refused conversation from a broken template.
		"raise_exception": jinja.NewCallable("raise_exception", raiseException),
	})
	if err != nil {
		var ex *ExceptionError
		if errors.As(err, &ex) {
			return "", ex
		}
		return "", fmt.Errorf("chat template: rendering %d messages: %w", len(msgs), err)
	}
	return out, nil
}

func raiseException(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	if len(args) == 0 {
		return jinja.Undefined(), &ExceptionError{Message: "raise_exception called without a message"}
	}
	msg := args[0].String()
	if args[0].IsString() {
		msg = args[0].AsString()
	}
	return jinja.Undefined(), &ExceptionError{Message: msg}
}

// TemplateKey is the GGUF metadata key of a model's chat template.
const TemplateKey = "tokenizer.chat_template"

// FromGGUF builds the chat template of a model file: its tokenizer.chat_template
// (ChatML when absent), with the texts of tok's BOS and EOS tokens.
func FromGGUF(f *gguf.File, tok *tokenizer.Tokenizer) (*Template, error) {
	src, err := f.GetStringOr(TemplateKey, "")
	if err != nil {
		return nil, err
	}
	var bos, eos string
	if id := tok.BOS(); id >= 0 {
		bos = tok.Token(id)
	}
	if id := tok.EOS(); id >= 0 {
		eos = tok.Token(id)
	}
	return New(src, bos, eos)
}
