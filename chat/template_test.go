package chat

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// Templates as published in the models' tokenizer_config.json (the JSON
// string's escapes undone: a \n below is Jinja's string escape, as there).
const (
	// Qwen/Qwen2-7B-Instruct (ChatML with a default system prompt).
	qwen2Template = `{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`

	// meta-llama/Meta-Llama-3-8B-Instruct.
	llama3Template = `{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}`

	// meta-llama/Llama-2-7b-chat-hf.
	llama2Template = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`

	// google/gemma-7b-it (and Gemma 2).
	gemmaTemplate = `{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}`

	// microsoft/Phi-3-mini-4k-instruct.
	phi3Template = `{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|system|>' + '\n' + message['content'] + '<|end|>' + '\n'}}{% elif (message['role'] == 'user') %}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif message['role'] == 'assistant' %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}`
)

// conversation is llama.cpp's test-chat-template conversation: note the
// spaces around the second assistant turn, which some templates trim.
var conversation = []Message{
	{Role: "system", Content: "You are a helpful assistant"},
	{Role: "user", Content: "Hello"},
	{Role: "assistant", Content: "Hi there"},
	{Role: "user", Content: "Who are you"},
	{Role: "assistant", Content: "   I am an assistant   "},
	{Role: "user", Content: "Another question"},
}

func TestRenderTemplates(t *testing.T) {
	noSystem := conversation[1:]
	tests := []struct {
		name      string
		src       string
		bos, eos  string
		msgs      []Message
		genPrompt bool
		want      string
	}{
		{
			name: "qwen2 with system", src: qwen2Template, msgs: conversation, genPrompt: true,
			want: "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n" +
				"<|im_start|>user\nHello<|im_end|>\n" +
				"<|im_start|>assistant\nHi there<|im_end|>\n" +
				"<|im_start|>user\nWho are you<|im_end|>\n" +
				"<|im_start|>assistant\n   I am an assistant   <|im_end|>\n" +
				"<|im_start|>user\nAnother question<|im_end|>\n" +
				"<|im_start|>assistant\n",
		},
		{
			name: "qwen2 default system, no generation prompt", src: qwen2Template,
			msgs: []Message{{Role: "user", Content: "Hi"}},
			want: "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
		},
		{
			name: "llama3", src: llama3Template, bos: "<|begin_of_text|>", eos: "<|end_of_text|>",
			msgs: conversation, genPrompt: true,
			want: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n",
		},
		{
			name: "llama2", src: llama2Template, bos: "<s>", eos: "</s>", msgs: conversation, genPrompt: true,
			want: "<s>[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>" +
				"<s>[INST] Who are you [/INST] I am an assistant </s>" +
				"<s>[INST] Another question [/INST]",
		},
		{
			name: "gemma", src: gemmaTemplate, bos: "<bos>", eos: "<eos>", msgs: noSystem, genPrompt: true,
			want: "<bos><start_of_turn>user\nHello<end_of_turn>\n" +
				"<start_of_turn>model\nHi there<end_of_turn>\n" +
				"<start_of_turn>user\nWho are you<end_of_turn>\n" +
				"<start_of_turn>model\nI am an assistant<end_of_turn>\n" +
				"<start_of_turn>user\nAnother question<end_of_turn>\n" +
				"<start_of_turn>model\n",
		},
		{
			name: "phi3", src: phi3Template, bos: "<s>", eos: "<|endoftext|>", msgs: conversation, genPrompt: true,
			want: "<s><|system|>\nYou are a helpful assistant<|end|>\n" +
				"<|user|>\nHello<|end|>\n<|assistant|>\n" +
				"Hi there<|end|>\n" +
				"<|user|>\nWho are you<|end|>\n<|assistant|>\n" +
				"   I am an assistant   <|end|>\n" +
				"<|user|>\nAnother question<|end|>\n<|assistant|>\n",
		},
		{
			name: "fallback chatml", src: "", msgs: conversation[:2], genPrompt: true,
			want: "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n" +
				"<|im_start|>user\nHello<|im_end|>\n" +
				"<|im_start|>assistant\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := New(tc.src, tc.bos, tc.eos)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Render(tc.msgs, tc.genPrompt)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("rendered\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestRaiseException(t *testing.T) {
	tests := []struct {
		name string
		src  string
		msgs []Message
		want string
	}{
		{"gemma system", gemmaTemplate, conversation, "System role not supported"},
		{"llama2 alternation", llama2Template, []Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}},
			"Conversation roles must alternate user/assistant/user/assistant/..."},
		{"no message", `{{ raise_exception() }}`, nil, "raise_exception called without a message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := New(tc.src, "<s>", "</s>")
			if err != nil {
				t.Fatal(err)
			}
			_, err = tmpl.Render(tc.msgs, true)
			var ex *ExceptionError
			if !errors.As(err, &ex) {
				t.Fatalf("error %v (%T), want an *ExceptionError", err, err)
			}
			if ex.Message != tc.want {
				t.Errorf("message %q, want %q", ex.Message, tc.want)
			}
		})
	}
}

func TestBadTemplates(t *testing.T) {
	if _, err := New("{% for m in messages %}", "", ""); err == nil {
		t.Error("an unclosed for loop compiled")
	}
	// A render-time failure that is not raise_exception must not pass as one.
	tmpl, err := New("{{ messages[0]['content'] | nosuchfilter }}", "", "")
	if err != nil {
		t.Skipf("the library rejects unknown filters at compile time: %v", err)
	}
	_, err = tmpl.Render(conversation, true)
	var ex *ExceptionError
	if err == nil || errors.As(err, &ex) {
		t.Errorf("unknown filter: error %v, want a non-exception error", err)
	}
}

func TestNameAndStops(t *testing.T) {
	tmpl, err := New(`{% for m in messages %}{{ m.role }}{% if m.name is defined %}({{ m.name }}){% endif %}:{{ m.content }};{% endfor %}`, "", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render([]Message{{Role: "user", Content: "x", Name: "ann"}, {Role: "assistant", Content: "y"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "user(ann):x;assistant:y;"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if tmpl.Fallback() || tmpl.Stops() != nil {
		t.Errorf("own template: Fallback %v, Stops %q; want false, none", tmpl.Fallback(), tmpl.Stops())
	}
	fb, err := New("", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !fb.Fallback() || len(fb.Stops()) != 1 || fb.Stops()[0] != "<|im_end|>" || fb.Source() != ChatML {
		t.Errorf("fallback: Fallback %v, Stops %q, Source ChatML %v", fb.Fallback(), fb.Stops(), fb.Source() == ChatML)
	}
}

func TestConcurrentRender(t *testing.T) {
	tmpl, err := New(llama3Template, "<|begin_of_text|>", "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := tmpl.Render(conversation, true)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for range 50 {
				got, err := tmpl.Render(conversation, true)
				if err != nil {
					errs <- err
					return
				}
				if got != want {
					errs <- errors.New("concurrent render differs: " + got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFromGGUF(t *testing.T) {
	f, err := gguf.Open(shareddata.Path(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	// stories260K has no chat template: ChatML with its <s> and </s>.
	tmpl, err := FromGGUF(f, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !tmpl.Fallback() || tmpl.bos != "<s>" || tmpl.eos != "</s>" {
		t.Errorf("Fallback %v, bos %q, eos %q; want true, <s>, </s>", tmpl.Fallback(), tmpl.bos, tmpl.eos)
	}
	got, err := tmpl.Render([]Message{{Role: "user", Content: "Once"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "<|im_start|>assistant\n") {
		t.Errorf("rendered %q: no assistant header at the end", got)
	}
}
