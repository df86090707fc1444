package compute

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/rocmforge/rocmforge/ggml"
)

// Reference is the plain-Go implementation of every Backend op. It is the
// definition the optimised backends are tested against, so it favours
// clarity and float64 accumulation over speed.
//
// Tensors live in host memory: F32 tensors in Tensor.F32, every other type in
// Tensor.Raw (GGML block layout). Faster host backends embed *Reference and
// override the ops they accelerate.
type Reference struct{}

// NewReference returns the reference backend.
func NewReference() *Reference { return &Reference{} }

var _ Backend = (*Reference)(nil)

// Name implements Backend.
func (r *Reference) Name() string { return "reference" }

// NewTensor implements Backend: a zeroed host tensor.
func (r *Reference) NewTensor(name string, t ggml.Type, shape ...int) (*Tensor, error) {
	x := &Tensor{Name: name, Type: t, Shape: slices.Clone(shape)}
	n, err := storageSize(x)
	if err != nil {
		return nil, fmt.Errorf("new tensor: %w", err)
	}
	if t == ggml.F32 {
		x.F32 = make([]float32, n)
	} else {
		x.Raw = make([]byte, n)
	}
	return x, nil
}

// Upload implements Backend. F32 data is decoded into Tensor.F32 (a copy);
// data of any other type is kept as Tensor.Raw without copying, so the caller
// must keep it alive and unmodified (it is usually a read-only mapping of the
// GGUF file).
func (r *Reference) Upload(name string, t ggml.Type, shape []int, data []byte) (*Tensor, error) {
	x := &Tensor{Name: name, Type: t, Shape: slices.Clone(shape)}
	n, err := storageSize(x)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	if t == ggml.F32 {
		if len(data) != 4*n {
			return nil, fmt.Errorf("upload: %s needs %d bytes but got %d", desc(x), 4*n, len(data))
		}
		x.F32 = make([]float32, n)
		for i := range x.F32 {
			x.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		return x, nil
	}
	if len(data) != n {
		return nil, fmt.Errorf("upload: %s needs %d bytes but got %d", desc(x), n, len(data))
	}
	x.Raw = data
	return x, nil
}

// Read implements Backend.
func (r *Reference) Read(src *Tensor, dst []float32) error {
	if err := checkF32("read", "src", src); err != nil {
		return err
	}
	if len(dst) != len(src.F32) {
		return fmt.Errorf("read: src %s has %d elements but dst holds %d", desc(src), len(src.F32), len(dst))
	}
	copy(dst, src.F32)
	return nil
}

// Write implements Backend.
func (r *Reference) Write(dst *Tensor, src []float32) error {
	if err := checkF32("write", "dst", dst); err != nil {
		return err
	}
	if len(src) != len(dst.F32) {
		return fmt.Errorf("write: dst %s has %d elements but src holds %d", desc(dst), len(dst.F32), len(src))
	}
	copy(dst.F32, src)
	return nil
}

// Free implements Backend: it drops the host storage.
func (r *Reference) Free(t *Tensor) {
	if t != nil {
		t.F32, t.Raw = nil, nil
	}
}

// desc names a tensor for error messages: "blk.0.attn_q.weight Q4_0[64 64]".
func desc(t *Tensor) string {
	if t.Name == "" {
		return fmt.Sprintf("%s%v", t.Type, t.Shape)
	}
	return t.String()
}

// storageSize checks a tensor's type and shape and returns the length its
// host storage must have: floats for F32, bytes for any other type.
func storageSize(t *Tensor) (int, error) {
	if !t.Type.Supported() {
		return 0, fmt.Errorf("%s: type %s is not supported", desc(t), t.Type)
	}
	if len(t.Shape) == 0 {
		return 0, fmt.Errorf("%s: empty shape (a tensor has at least one dimension)", desc(t))
	}
	for _, d := range t.Shape {
		if d < 0 {
			return 0, fmt.Errorf("%s: negative dimension %d", desc(t), d)
		}
	}
	if t.Type == ggml.F32 {
		return t.Elems(), nil
	}
	rowBytes, err := t.Type.RowSize(int64(t.Cols()))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", desc(t), err)
	}
	return t.Rows() * int(rowBytes), nil
}

// checkStorage checks that t is non-nil, has a supported type and a valid
// shape, and that its host storage has exactly the length the shape needs.
// Tensors with device storage (Dev != nil) skip the host-length check, so
// device backends can share the exported Check functions.
func checkStorage(op, role string, t *Tensor) error {
	if t == nil {
		return fmt.Errorf("%s: %s is nil", op, role)
	}
	n, err := storageSize(t)
	if err != nil {
		return fmt.Errorf("%s: %s %w", op, role, err)
	}
	if t.Dev != nil {
		// A device backend sizes and checks its own storage; the shape and
		// type checks above are the part every backend shares.
		return nil
	}
	if t.Type == ggml.F32 {
		if len(t.F32) != n {
			return fmt.Errorf("%s: %s %s holds %d floats but its shape has %d elements", op, role, desc(t), len(t.F32), n)
		}
		return nil
	}
	if len(t.Raw) != n {
		return fmt.Errorf("%s: %s %s holds %d bytes but its shape needs %d", op, role, desc(t), len(t.Raw), n)
	}
	return nil
}

// checkF32 is checkStorage for tensors that must be F32 (activations).
func checkF32(op, role string, t *Tensor) error {
	if t == nil {
		return fmt.Errorf("%s: %s is nil", op, role)
	}
	if t.Type != ggml.F32 {
		return fmt.Errorf("%s: %s %s must be F32", op, role, desc(t))
	}
	return checkStorage(op, role, t)
}

// checkSameShape requires b to have exactly a's shape.
func checkSameShape(op, roleA string, a *Tensor, roleB string, b *Tensor) error {
	if !slices.Equal(a.Shape, b.Shape) {
		return fmt.Errorf("%s: %s %s but %s %s (shapes must be equal)", op, roleA, desc(a), roleB, desc(b))
	}
	return nil
}

// checkSameRows requires a and b to agree on every dimension but the last.
func checkSameRows(op, roleA string, a *Tensor, roleB string, b *Tensor) error {
	if !slices.Equal(a.Shape[:len(a.Shape)-1], b.Shape[:len(b.Shape)-1]) {
		return fmt.Errorf("%s: %s %s but %s %s (leading dimensions must be equal)", op, roleA, desc(a), roleB, desc(b))
	}
	return nil
}

// checkVector requires v to be a 1-D tensor [n] of any supported type.
func checkVector(op, role string, v *Tensor, n int, against string) error {
	if err := checkStorage(op, role, v); err != nil {
		return err
	}
	if len(v.Shape) != 1 || v.Shape[0] != n {
		return fmt.Errorf("%s: %s but %s %s (want [%d])", op, against, role, desc(v), n)
	}
	return nil
}

// vectorF32 returns the values of a checked 1-D tensor as float32, decoding
// non-F32 types (norm weights and biases are small).
func vectorF32(v *Tensor) ([]float32, error) {
	if v.Type == ggml.F32 {
		return v.F32, nil
	}
	out := make([]float32, v.Elems())
	if err := ggml.Dequantize(v.Type, v.Raw, out); err != nil {
		return nil, fmt.Errorf("%s: %w", desc(v), err)
	}
	return out, nil
}

// rowBytes is the byte length of one row of a checked non-F32 tensor.
func rowBytes(t *Tensor) int {
	n, _ := t.Type.RowSize(int64(t.Cols())) // checked by storageSize
	return int(n)
}

// dequantizeRow writes row i of a checked tensor of any type to dst (len Cols).
func dequantizeRow(t *Tensor, i int, dst []float32) error {
	c := t.Cols()
	if t.Type == ggml.F32 {
		copy(dst, t.F32[i*c:(i+1)*c])
		return nil
	}
	rb := rowBytes(t)
	if err := ggml.Dequantize(t.Type, t.Raw[i*rb:(i+1)*rb], dst); err != nil {
		return fmt.Errorf("%s row %d: %w", desc(t), i, err)
	}
	return nil
}
