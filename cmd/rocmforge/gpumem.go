package main

import (
	"fmt"
	"log/slog"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/progress"
)

// deviceMemory is implemented by backends with memory of their own (the
// GPU): free and total bytes.
type deviceMemory interface {
	MemInfo() (free, total int64, err error)
}

// gpuReserve is room kept free beyond the estimate: captured step graphs,
// staging buffers, the allocator's rounding.
const gpuReserve = 256 << 20

// defaultPlanRows is the batch the scratch estimate assumes when the command
// does not say (prompts are evaluated in one batch).
const defaultPlanRows = 512

// memPlan is the device memory a model will take: weights, KV cache and
// activations, as the model package lays them out.
type memPlan struct {
	weights, kv, scratch, reserve int64
	kvTokens, rows                int
}

func (p memPlan) total() int64 { return p.weights + p.kv + p.scratch + p.reserve }

// planMemory estimates what loading f and running kvTokens of context with
// batches of rows tokens needs on a device (kvTokens 0: the model's training
// context, at most defaultMaxCtx; rows 0: defaultPlanRows).
//
// The cache holds kvType elements (model.CacheBytesPerToken); with kvTokens
// 0 and kvBudget > 0 it is planned at kvBudget bytes, the most the engine's
// default pool takes.
func planMemory(f *gguf.File, kvTokens, rows int, kvType ggml.Type, kvBudget int64) (memPlan, error) {
	hp, err := model.ReadHParams(f)
	if err != nil {
		return memPlan{}, err
	}
	perToken, err := model.CacheBytesPerToken(hp, kvType)
	if err != nil {
		return memPlan{}, err
	}
	if kvTokens <= 0 && kvBudget > 0 {
		kvTokens = int(kvBudget / max(perToken, 1))
	}
	if kvTokens <= 0 {
		kvTokens = hp.NCtxTrain
		if kvTokens <= 0 || kvTokens > defaultMaxCtx {
			kvTokens = defaultMaxCtx
		}
	}
	if rows <= 0 {
		rows = min(defaultPlanRows, kvTokens)
	}
	p := memPlan{kvTokens: kvTokens, rows: rows, reserve: gpuReserve}
	p.weights, _ = weightStats(f)
	for i := range f.Tensors {
		// 1-D weights of other types also get an F32 copy on the GPU.
		if t := &f.Tensors[i]; len(t.Dims) == 1 && t.Type != ggml.F32 {
			p.weights += 4 * int64(t.Dims[0])
		}
	}
	// The cache, rounded up to blocks, and the spare block a graph backend's
	// cache adds for padded decode steps (model.NewCacheType).
	p.kv = perToken * int64(kvTokens+32)
	// Scratch rows (model/scratch.go): x, xn, o, down [n_embd]; q, k, v,
	// attention; gate, up, activation [n_ff]; one row of logits.
	perRow := 4*hp.NEmbd + hp.QDim() + hp.KDim() + hp.VDim() + hp.NHead*hp.HeadDimV + 3*hp.NFF
	p.scratch = 4 * (int64(rows)*int64(perRow) + int64(hp.NEmbd+hp.NVocab))
	return p, nil
}

// checkDeviceMemory fails, before anything is uploaded, when plan does not
// fit in the device's free memory, saying how much is missing. It returns
// the free bytes it saw (for the report after loading).
func checkDeviceMemory(be compute.Backend, dm deviceMemory, p memPlan) (int64, error) {
	free, total, err := dm.MemInfo()
	if err != nil {
		return 0, fmt.Errorf("%s: reading free memory: %w", be.Name(), err)
	}
	if need := p.total(); need > free {
		fb := progress.FormatBytes
		return free, fmt.Errorf("the model does not fit on %s: it needs %s (weights %s, KV cache %s for %d tokens, scratch %s for %d-token batches, reserve %s) but %s of %s is free: %s missing; "+
			"use a smaller --ctx, a smaller quantization, or --backend cpu",
			be.Name(), fb(need), fb(p.weights), fb(p.kv), p.kvTokens, fb(p.scratch), p.rows, fb(p.reserve), fb(free), fb(total), fb(need-free))
	}
	return free, nil
}

// reportDeviceMemory logs, in one line, what loading took on the device.
func reportDeviceMemory(log *slog.Logger, be compute.Backend, dm deviceMemory, freeBefore int64) {
	free, total, err := dm.MemInfo()
	if err != nil {
		return
	}
	log.Info("GPU memory after loading the weights", "device", be.Name(), "weights", progress.FormatBytes(freeBefore-free),
		"free", progress.FormatBytes(free), "total", progress.FormatBytes(total))
}
