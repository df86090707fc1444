package model

import (
	"math"
	"slices"
	"strings"

	"github.com/rocmforge/rocmforge/compute"
)

// normKind is the normalisation a model uses everywhere.
type normKind int

const (
	normRMS   normKind = iota // x / sqrt(mean(x²) + eps) * w
	normLayer                 // (x - mean) / sqrt(var + eps) * w + b
)

// ropeKind says how positions enter the model.
type ropeKind int

const (
	ropeNorm ropeKind = iota // RoPE on adjacent pairs (2i, 2i+1)
	ropeNeoX                 // RoPE on pairs (i, i+nRot/2)
	ropeNone                 // learned absolute positions (position_embd)
)

// ffnKind is the feed-forward block.
type ffnKind int

const (
	ffnSwiGLU ffnKind = iota // down(silu(gate(x)) * up(x))
	ffnGeGLU                 // down(gelu(gate(x)) * up(x))
	ffnGELU                  // down(gelu(up(x))), no gate
)

// arch describes how one architecture differs from the plain llama block.
// Everything not listed here is shared: the forward pass is one function.
// Biases, fused attn_qkv and fused ffn_up (gate|up) are bound whenever the
// file has them, as llama.cpp does.
type arch struct {
	name string
	norm normKind
	rope ropeKind
	ffn  ffnKind

	qkvBias    bool // attn_q/k/v biases are required (qwen2)
	allBiases  bool // every linear layer and norm has a bias (gpt2)
	qkNorm     bool // per-head RMSNorm of Q and K before RoPE (qwen3, gemma3)
	postNorms  bool // post_attention_norm and post_ffw_norm on each branch (gemma2/3, glm4)
	embedScale bool // embeddings × sqrt(n_embd) (gemma)
	fullRotary bool // rope.dimension_count must equal the head dimension (llama)

	// Sliding-window attention: swaPattern > 0 enables it with that default
	// attention.sliding_window_pattern; defaultWindow is used when
	// attention.sliding_window is absent, unless swaWindowRequired.
	swaPattern        int
	defaultWindow     int
	swaWindowRequired bool
	// unscaledSWARoPE: sliding-window layers use rope.freq_base_swa
	// (default 10000) and no frequency scaling (gemma3's local layers).
	unscaledSWARoPE bool
	softcaps        bool // reads attn_logit_softcapping and final_logit_softcapping (gemma2)

	// attnScale overrides the score scale 1/sqrt(head_dim).
	attnScale func(hp *HParams) float32
}

// defaultFreqBaseSWA is the rope base of sliding-window layers when
// rope.freq_base_swa is absent.
func (a *arch) defaultFreqBaseSWA(freqBase float32) float32 {
	if a.unscaledSWARoPE {
		return 10000
	}
	return freqBase
}

// ropeKind converts the arch's RoPE style to the backend's.
func (a *arch) computeRoPE() compute.RoPEKind {
	if a.rope == ropeNeoX {
		return compute.RoPENeoX
	}
	return compute.RoPENorm
}

// gemmaAttnScale follows llama.cpp and gemma_pytorch: the 27B models scale
// scores by 1/sqrt(n_embd/n_head) (query_pre_attn_scalar), the others by
// 1/sqrt(head_dim). llama.cpp tells the 27B models apart by layer count.
func gemmaAttnScale(layers27B int) func(hp *HParams) float32 {
	return func(hp *HParams) float32 {
		d := hp.HeadDimK
		if hp.NLayer == layers27B {
			d = hp.NEmbd / hp.NHead
		}
		return float32(1 / math.Sqrt(float64(d)))
	}
}

var llamaArch = &arch{name: "llama", rope: ropeNorm, ffn: ffnSwiGLU, fullRotary: true}

// archs is the table of supported architectures, by general.architecture.
// The RoPE style per arch is llama.cpp's (llama_model_rope_type).
var archs = map[string]*arch{
	"llama":   llamaArch,
	"mistral": {name: "mistral", rope: ropeNorm, ffn: ffnSwiGLU, fullRotary: true},
	"qwen2":   {name: "qwen2", rope: ropeNeoX, ffn: ffnSwiGLU, qkvBias: true},
	"qwen3":   {name: "qwen3", rope: ropeNeoX, ffn: ffnSwiGLU, qkNorm: true},
	"phi3":    {name: "phi3", rope: ropeNeoX, ffn: ffnSwiGLU},
	"gemma2": {name: "gemma2", rope: ropeNeoX, ffn: ffnGeGLU, postNorms: true, embedScale: true,
		swaPattern: 2, defaultWindow: 4096, softcaps: true, attnScale: gemmaAttnScale(46)},
	"gemma3": {name: "gemma3", rope: ropeNeoX, ffn: ffnGeGLU, qkNorm: true, postNorms: true, embedScale: true,
		swaPattern: 6, swaWindowRequired: true, unscaledSWARoPE: true, attnScale: gemmaAttnScale(62)},
	"chatglm": {name: "chatglm", rope: ropeNorm, ffn: ffnSwiGLU},
	"glm4":    {name: "glm4", rope: ropeNorm, ffn: ffnSwiGLU, postNorms: true},
	"gpt2":    {name: "gpt2", norm: normLayer, rope: ropeNone, ffn: ffnGELU, allBiases: true},
}

// archNames lists the supported architectures for error messages.
func archNames() string {
	names := make([]string, 0, len(archs))
	for n := range archs {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
