package model

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// Cache is the key/value storage of every layer: one paged pool per layer,
// NBlocks blocks of BlockSize token slots each, allocated once. Which blocks
// belong to which sequence is the caller's business (Session for one
// sequence, package kvcache for many); Forward only writes the slots and
// reads the block tables a Batch names.
type Cache struct {
	Layers    []compute.KVPool
	NBlocks   int
	BlockSize int
	Type      ggml.Type // of every pool: F32, F16 or Q8_0

	// spareTables are the blocks past the NBlocks a caller may use (indices
	// NBlocks, NBlocks+1, ...), enough for maxDecodePad slots, where the
	// padding rows of a decode step padded to its graph bucket write and
	// attend. Only backends with graph steps get them.
	spareTables []int32

	b compute.Backend
	// Staging rows for CopyBlock, allocated on first use: [BlockSize, K
	// width] and [BlockSize, V width], with views cut to the rows copied.
	stageK, stageV         *compute.Tensor
	stageKView, stageVView compute.Tensor
	slotBuf                []int32
}

// NewCache allocates an F32 cache of nBlocks blocks of blockSize slots for
// every layer of a model with hyperparameters hp.
func NewCache(b compute.Backend, hp HParams, nBlocks, blockSize int) (*Cache, error) {
	return NewCacheType(b, hp, nBlocks, blockSize, ggml.F32)
}

// NewCacheType is NewCache with pools of KV type t: F32, F16 (half the
// memory; llama.cpp's default) or Q8_0 (about 0.53× F16; the K and V widths
// must be multiples of 32). Attention reads F16 and Q8_0 pools through
// exact dequantization; KVWrite rounds the new rows as ggml does.
// CacheBytesPerToken sizes a pool from a memory budget.
func NewCacheType(b compute.Backend, hp HParams, nBlocks, blockSize int, t ggml.Type) (*Cache, error) {
	if nBlocks <= 0 || blockSize <= 0 {
		return nil, fmt.Errorf("model: cache of %d blocks of %d slots: both must be positive", nBlocks, blockSize)
	}
	if _, err := CacheBytesPerToken(hp, t); err != nil {
		return nil, err
	}
	c := &Cache{NBlocks: nBlocks, BlockSize: blockSize, Type: t, b: b}
	slots := nBlocks * blockSize
	if _, ok := b.(stepGrapher); ok {
		for i := range (maxDecodePad + blockSize - 1) / blockSize {
			c.spareTables = append(c.spareTables, int32(nBlocks+i))
		}
		slots += len(c.spareTables) * blockSize
	}
	for il := range hp.NLayer {
		k, err := b.NewTensor(fmt.Sprintf("cache_k.%d", il), t, slots, hp.KDim())
		if err != nil {
			c.Free()
			return nil, fmt.Errorf("model: cache layer %d: %w", il, err)
		}
		v, err := b.NewTensor(fmt.Sprintf("cache_v.%d", il), t, slots, hp.VDim())
		if err != nil {
			b.Free(k)
			c.Free()
			return nil, fmt.Errorf("model: cache layer %d: %w", il, err)
		}
		c.Layers = append(c.Layers, compute.KVPool{K: k, V: v, BlockSize: blockSize})
	}
	return c, nil
}

// CacheBytesPerToken is the memory one token slot takes in a cache of KV
// type t, keys and values of every layer: 4·NLayer·(KDim+VDim) bytes for
// F32, half that for F16, 34 bytes per 32 elements for Q8_0. A pool for a budget of B
// bytes holds B / CacheBytesPerToken slots. The error names a type that
// cannot be a KV type, or widths Q8_0 cannot store.
func CacheBytesPerToken(hp HParams, t ggml.Type) (int64, error) {
	if !compute.KVType(t) {
		return 0, fmt.Errorf("model: KV cache type %s: want F32, F16 or Q8_0", t)
	}
	kr, err := t.RowSize(int64(hp.KDim()))
	if err != nil {
		return 0, fmt.Errorf("model: KV cache type %s: K width %d (%d heads × %d): %w", t, hp.KDim(), hp.NHeadKV, hp.HeadDimK, err)
	}
	vr, err := t.RowSize(int64(hp.VDim()))
	if err != nil {
		return 0, fmt.Errorf("model: KV cache type %s: V width %d (%d heads × %d): %w", t, hp.VDim(), hp.NHeadKV, hp.HeadDimV, err)
	}
	return int64(hp.NLayer) * (kr + vr), nil
}

// Slots is the number of token slots per layer (NBlocks*BlockSize).
func (c *Cache) Slots() int { return c.NBlocks * c.BlockSize }

// CopyBlock copies the first rows token slots of block src to the same
// slots of block dst, keys and values, in every layer: the device side of a
// copy-on-write instruction from package kvcache.
//
// The backend contract has no row-range copy, so the rows go through a
// staging tensor: Embedding gathers them as F32 and KVWrite scatters them
// into dst's slots. That works on every backend, host or device, with no
// host round trip, and every pool type copies exactly: an F16 value
// converts to F32 and back unchanged, and a Q8_0 block dequantized (q·d)
// and quantized again gives the same d (127·d is exact, /127 returns d) and
// the same q, so the same bytes; the one exception, a block whose scale
// underflowed to F16 zero (every |x| below about 4e-6), holds zeros either
// way.
func (c *Cache) CopyBlock(src, dst, rows int) error {
	if src < 0 || src >= c.NBlocks || dst < 0 || dst >= c.NBlocks {
		return fmt.Errorf("model: copy block %d to %d: blocks must be in [0, %d)", src, dst, c.NBlocks)
	}
	if rows < 0 || rows > c.BlockSize {
		return fmt.Errorf("model: copy block %d to %d: %d rows, want 0 to the block size %d", src, dst, rows, c.BlockSize)
	}
	if rows == 0 || src == dst || len(c.Layers) == 0 {
		return nil
	}
	if c.stageK == nil {
		var err error
		p := c.Layers[0]
		if c.stageK, err = c.b.NewTensor("cache_copy_k", ggml.F32, c.BlockSize, p.K.Cols()); err != nil {
			return fmt.Errorf("model: copy block: %w", err)
		}
		if c.stageV, err = c.b.NewTensor("cache_copy_v", ggml.F32, c.BlockSize, p.V.Cols()); err != nil {
			c.b.Free(c.stageK)
			c.stageK = nil
			return fmt.Errorf("model: copy block: %w", err)
		}
	}
	view(&c.stageKView, c.stageK, rows, c.stageK.Cols())
	view(&c.stageVView, c.stageV, rows, c.stageV.Cols())
	// The first rows entries hold the source slots (Embedding row ids), the
	// next rows the destination slots (KVWrite).
	c.slotBuf = c.slotBuf[:0]
	for i := range rows {
		c.slotBuf = append(c.slotBuf, int32(src*c.BlockSize+i))
	}
	for i := range rows {
		c.slotBuf = append(c.slotBuf, int32(dst*c.BlockSize+i))
	}
	from, to := c.slotBuf[:rows], c.slotBuf[rows:]
	for il, p := range c.Layers {
		if err := c.b.Embedding(&c.stageKView, p.K, from); err != nil {
			return fmt.Errorf("model: copy block %d to %d, layer %d keys: %w", src, dst, il, err)
		}
		if err := c.b.Embedding(&c.stageVView, p.V, from); err != nil {
			return fmt.Errorf("model: copy block %d to %d, layer %d values: %w", src, dst, il, err)
		}
		if err := c.b.KVWrite(p, &c.stageKView, &c.stageVView, to); err != nil {
			return fmt.Errorf("model: copy block %d to %d, layer %d: %w", src, dst, il, err)
		}
	}
	return nil
}

// Free releases the cache's tensors.
func (c *Cache) Free() {
	for _, p := range c.Layers {
		c.b.Free(p.K)
		c.b.Free(p.V)
	}
	c.Layers = nil
	if c.stageK != nil {
		c.b.Free(c.stageK)
		c.b.Free(c.stageV)
		c.stageK, c.stageV = nil, nil
	}
}
