// Package compute defines the backend contract that model code runs on, and
// the plain-Go reference implementation of every op (the definition the CPU
// and GPU backends are tested against).
package compute

import (
	"fmt"

	"github.com/rocmforge/rocmforge/ggml"
)

// Tensor is a dense tensor with an explicit element type and shape.
//
// Shape is outermost first and row-major: the last dimension is contiguous.
// A GGUF weight with ne = [in, out] is a Tensor of Shape [out, in]. Rows of
// quantized types are whole blocks (Shape[last] % Type.BlockSize() == 0).
//
// Storage depends on the backend that made the tensor: host backends fill F32
// (for Type F32) or Raw (for every other type); a device backend keeps its
// own handle in Dev. Code outside a backend never touches storage directly,
// it goes through Backend.Read and Backend.Write.
//
// Prefix views: model code reuses scratch buffers for smaller batches by
// copying a Tensor and giving it a smaller Shape (and, for host storage, a
// cut F32 slice). A device backend therefore must accept a Dev handle whose
// allocation is larger than the tensor's shape; it uses the first Elems().
type Tensor struct {
	Name  string
	Type  ggml.Type
	Shape []int

	F32 []float32 // host storage for F32 tensors
	Raw []byte    // host storage for every other type, GGML block layout
	Dev any       // device storage, owned by a device backend
}

// Elems is the number of elements (product of the shape).
func (t *Tensor) Elems() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Rows is the product of every dimension but the last; Cols is the last.
func (t *Tensor) Rows() int { return t.Elems() / max(t.Cols(), 1) }

// Cols is the length of the contiguous (last) dimension.
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

func (t *Tensor) String() string {
	name := t.Name
	if name == "" {
		name = "tensor"
	}
	return fmt.Sprintf("%s %s%v", name, t.Type, t.Shape)
}

// RoPEKind selects which element pairs are rotated.
type RoPEKind int

const (
	// RoPENorm rotates adjacent pairs (2i, 2i+1) (llama, chatglm, glm4).
	RoPENorm RoPEKind = iota
	// RoPENeoX rotates pairs (i, i+nRot/2) (qwen2, qwen3, phi3, gemma).
	RoPENeoX
)

// RoPEParams describes a rotary position embedding.
type RoPEParams struct {
	Kind     RoPEKind
	NRot     int     // rotated dimensions per head (<= head dim); the rest pass through
	FreqBase float32 // rope.freq_base (theta)
	// FreqScale is 1/rope.scaling.factor for linear scaling, 1 otherwise.
	FreqScale float32
	// YaRN parameters (rope.scaling.type == "yarn"); ExtFactor 0 disables YaRN.
	ExtFactor  float32
	AttnFactor float32 // 1 when unused
	BetaFast   float32
	BetaSlow   float32
	OrigCtx    int // rope.scaling.original_context_length
	// FreqFactors, when not nil, is an F32 [NRot/2] tensor: pair i's angle
	// is divided by FreqFactors[i] before scaling, as ggml does with a
	// rope's third source (Llama 3's rope_freqs.weight).
	FreqFactors *Tensor
}

// SeqAttn describes one sequence of a batch for attention.
//
// The sequence's new tokens are the query rows [QStart, QStart+QLen) of the
// batch. Its keys and values are the first CtxLen positions of the sequence
// (positions 0..CtxLen-1, the new tokens included once written), stored in
// the paged pool: position j lives in slot Blocks[j/blockSize]*blockSize +
// j%blockSize.
type SeqAttn struct {
	QStart, QLen int
	CtxLen       int
	Blocks       []int32
}

// AttnParams are the attention options shared by every sequence of a call.
type AttnParams struct {
	NHead, NKVHead int // NHead % NKVHead == 0: MHA, GQA, or MQA when NKVHead == 1
	HeadDim        int // of Q and K
	HeadDimV       int // of V (usually == HeadDim)
	Scale          float32
	Causal         bool
	// Window > 0 limits each query at position p to keys at positions > p-Window.
	Window int
	// Softcap > 0 applies cap*tanh(score/cap) to the scaled scores.
	Softcap float32
}

// KVPool is one layer's paged K/V storage: K is [slots, NKVHead*HeadDim],
// V is [slots, NKVHead*HeadDimV], slots = blocks*BlockSize.
type KVPool struct {
	K, V      *Tensor
	BlockSize int
}

// Backend is the contract between model code and a compute device. Every op
// checks the shapes it is given and returns an error naming the mismatch;
// nothing is inferred from a slice's length. Activations are F32 unless a
// backend documents otherwise.
type Backend interface {
	Name() string

	// Memory.
	NewTensor(name string, t ggml.Type, shape ...int) (*Tensor, error)
	// Upload makes a weight tensor from GGUF bytes in their stored type.
	Upload(name string, t ggml.Type, shape []int, data []byte) (*Tensor, error)
	Read(src *Tensor, dst []float32) error  // F32 tensor to host
	Write(dst *Tensor, src []float32) error // host to F32 tensor
	Free(t *Tensor)

	// Ops. Shapes: n = tokens in the batch.
	Embedding(dst, table *Tensor, ids []int32) error        // table [vocab, d] any type; dst [n, d]
	RMSNorm(dst, x, w *Tensor, eps float32) error           // x, dst [n, d]; w [d] or nil
	LayerNorm(dst, x, w, b *Tensor, eps float32) error      // w, b [d] or nil
	MatMul(dst, x, w *Tensor) error                         // x [n, k] F32; w [m, k] any type; dst [n, m]
	AddBias(x, b *Tensor) error                             // x [n, m] += b [m]
	Add(dst, a, b *Tensor) error                            // elementwise, equal shapes
	Scale(x *Tensor, s float32) error                       // x *= s
	Softcap(x *Tensor, c float32) error                     // x = c*tanh(x/c)
	RoPE(x *Tensor, pos []int32, p RoPEParams) error        // x [n, heads, headDim], in place
	SwiGLU(dst, gate, up *Tensor) error                     // dst = silu(gate)*up, [n, f]
	GeGLU(dst, gate, up *Tensor) error                      // dst = gelu_tanh(gate)*up
	GELU(x *Tensor) error                                   // in place, tanh approximation
	Softmax(x *Tensor) error                                // each row, in place
	Copy(dst, src *Tensor, dstCol, srcCol, cols int) error  // dst[:, dstCol:+cols] = src[:, srcCol:+cols], equal row counts
	KVWrite(pool KVPool, k, v *Tensor, slots []int32) error // k [n, kvHeads*hd] into pool rows slots[i]
	Attention(out, q *Tensor, pool KVPool, pos []int32, seqs []SeqAttn, p AttnParams) error
	// q [n, NHead*HeadDim]; out [n, NHead*HeadDimV]; pos[i] is the absolute position of query row i.
}

// Argmaxer is an optional Backend capability for greedy sampling: the
// index of the largest element of each row of an F32 tensor, computed where
// the tensor lives, so that a device backend copies n ints to the host
// instead of n whole logit rows.
type Argmaxer interface {
	// ArgmaxRows sets dst[i] to the lowest index j at which row i of x
	// [n, m] holds its largest value. NaN and -Inf elements are never
	// chosen; a row with nothing else gives -1. len(dst) must be n.
	ArgmaxRows(x *Tensor, dst []int32) error
}

// TopKer is an optional Backend capability for sampling with top-k: each
// row's best candidates and its log-sum-exp, computed where the logits
// live, so that a device backend copies n*(2k+1) numbers to the host
// instead of n whole logit rows. [TopKRow] is its definition.
type TopKer interface {
	// TopKRows fills, for each row i of logits [n, m], ids[i*k:(i+1)*k]
	// and vals[i*k:(i+1)*k] with the indices and values of the row's k
	// largest elements, largest first, equal values (-0 equals +0) by
	// ascending index; NaN and -Inf are never chosen and +Inf ranks above
	// every finite value. A row with fewer than k such elements ends with
	// id -1, value -Inf. lse[i] is the log-sum-exp of the whole row: -Inf
	// when every element is -Inf, NaN when any is NaN or +Inf (a row the
	// host sampler refuses). k must be in [1, MaxTopK]; len(ids) and
	// len(vals) must be n*k and len(lse) n.
	TopKRows(logits *Tensor, k int, ids []int32, vals []float32, lse []float32) error
}

// MultiMatMuler is an optional Backend capability: the products of one input
// by several weights (Q, K and V; gate and up), dst[i] = x · w[i]ᵀ as
// MatMul computes each, in one call, so that a device backend can make them
// one launch and prepare the shared input once.
type MultiMatMuler interface {
	MatMulMulti(dst []*Tensor, x *Tensor, w []*Tensor) error
}

// RoPEPairer is an optional Backend capability: RoPE of the queries and the
// keys of a step (same positions and parameters) in one call, with the
// result of RoPE on each.
type RoPEPairer interface {
	RoPEPair(q, k *Tensor, pos []int32, p RoPEParams) error
}

// RoPEKVWriter is an optional Backend capability: RoPE of the queries q and
// keys k of a step ([n, heads, headDim], same positions and parameters),
// then KVWrite of the rotated keys (kRows: k's storage as [n,
// kvHeads*headDim]) and of the values v into pool at slots, in one call,
// with the results of the separate ops bit for bit.
type RoPEKVWriter interface {
	RoPEKVWrite(q, k, kRows, v *Tensor, pos []int32, p RoPEParams, pool KVPool, slots []int32) error
}

// Reshape returns a tensor that shares t's storage under another shape with
// the same number of elements (a view, e.g. [n, heads*hd] as [n*heads, hd]).
func Reshape(t *Tensor, shape ...int) (*Tensor, error) {
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("reshape %s to %v: dimensions must be positive", t, shape)
		}
		n *= d
	}
	if n != t.Elems() {
		return nil, fmt.Errorf("reshape %s to %v: %d elements but the tensor has %d", t, shape, n, t.Elems())
	}
	bs := t.Type.BlockSize()
	if bs > 1 && shape[len(shape)-1]%bs != 0 {
		return nil, fmt.Errorf("reshape %s to %v: rows of %s must be whole %d-element blocks", t, shape, t.Type, bs)
	}
	v := *t
	v.Shape = append([]int(nil), shape...)
	return &v, nil
}
