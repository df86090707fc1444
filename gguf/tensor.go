package gguf

import "github.com/rocmforge/rocmforge/ggml"

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	// Name is the GGUF tensor name ("blk.0.attn_q.weight").
	Name string
	// Dims is the shape as stored in GGUF: ne[0] (the contiguous, innermost
	// dimension) first.
	Dims []uint64
	// Type is the GGML type of the data.
	Type ggml.Type
	// Offset is where the data starts, relative to File.DataOffset.
	Offset uint64
	// Size is the data's length in bytes.
	Size int64
}

// Elems is the number of elements (the product of Dims). The reader has
// checked that it fits in an int64.
func (ti *TensorInfo) Elems() int64 {
	n := int64(1)
	for _, d := range ti.Dims {
		n *= int64(d)
	}
	return n
}
