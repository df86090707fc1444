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

// Free releases the cache's tensors.
func (c *Cache) Free() {
	for _, p := range c.Layers {
		c.b.Free(p.K)
		c.b.Free(p.V)
	}
	c.Layers = nil
}
