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
	if nBlocks <= 0 || blockSize <= 0 {
		return nil, fmt.Errorf("model: cache of %d blocks of %d slots: both must be positive", nBlocks, blockSize)
	}
	c := &Cache{NBlocks: nBlocks, BlockSize: blockSize, b: b}
	slots := nBlocks * blockSize
	for il := range hp.NLayer {
		k, err := b.NewTensor(fmt.Sprintf("cache_k.%d", il), ggml.F32, slots, hp.KDim())
		if err != nil {
			c.Free()
			return nil, fmt.Errorf("model: cache layer %d: %w", il, err)
		}
		v, err := b.NewTensor(fmt.Sprintf("cache_v.%d", il), ggml.F32, slots, hp.VDim())
		if err != nil {
			b.Free(k)
			c.Free()
			return nil, fmt.Errorf("model: cache layer %d: %w", il, err)
		}
		c.Layers = append(c.Layers, compute.KVPool{K: k, V: v, BlockSize: blockSize})
	}
	return c, nil
}

// Slots is the number of token slots per layer (NBlocks*BlockSize).
func (c *Cache) Slots() int { return c.NBlocks * c.BlockSize }

// CopyBlock copies the first rows token slots of block src to the same
// slots of block dst, keys and values, in every layer: the device side of a
// copy-on-write instruction from package kvcache.
//
// The backend contract has no row-range copy, so the rows go through a
// staging tensor: Embedding gathers them (an F32 table row is copied
// exactly) and KVWrite scatters them into dst's slots. That works on every
// backend, host or device, with no host round trip.
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
