package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/hub"
	"github.com/rocmforge/rocmforge/model"
	"github.com/rocmforge/rocmforge/progress"
	"github.com/rocmforge/rocmforge/tokenizer"
)

// loadedModel is a model file opened, loaded onto a backend, with its
// tokenizer.
type loadedModel struct {
	path string
	file *gguf.File
	be   compute.Backend
	m    *model.Model
	tok  *tokenizer.Tokenizer // nil unless asked for
}

// loadOptions say what to load and how.
type loadOptions struct {
	ref       string // -m: a path or hf:OWNER/REPO/PATH
	backend   string
	threads   int
	tokenizer bool // also build the tokenizer
	// kvTokens and batch size the GPU memory check: the context the
	// command will cache and its largest batch (0: defaults, see planMemory).
	kvTokens, batch int
	// kvType is the KV pool's element type (zero: F32); kvBudget, when
	// kvTokens is 0, bounds the pool in bytes (the engine's default pool).
	kvType   ggml.Type
	kvBudget int64
}

// loadModel resolves o.ref (downloading it if need be), opens it and loads
// it onto the backend o names. A progress bar on stderr (when stderr is a
// terminal) follows the weights as they are read.
func loadModel(ctx context.Context, o loadOptions, stderr io.Writer) (*loadedModel, error) {
	if o.ref == "" {
		return nil, fmt.Errorf("no model: give -m MODEL.gguf or -m hf:OWNER/REPO/FILE.gguf")
	}
	be, err := openBackend(o.backend, o.threads)
	if err != nil {
		return nil, err
	}
	h := hub.FromEnv()
	h.Progress = stderr
	path, err := h.Resolve(ctx, o.ref)
	if err != nil {
		closeBackend(be)
		return nil, err
	}
	f, err := gguf.Open(path)
	if err != nil {
		closeBackend(be)
		return nil, err
	}
	l := &loadedModel{path: path, file: f, be: be}
	if o.tokenizer {
		if l.tok, err = tokenizer.FromGGUF(f); err != nil {
			l.Close()
			return nil, fmt.Errorf("%s: tokenizer: %w", path, err)
		}
	}
	dm, onDevice := be.(deviceMemory)
	var freeBefore int64
	if onDevice {
		plan, err := planMemory(f, o.kvTokens, o.batch, o.kvType, o.kvBudget)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if freeBefore, err = checkDeviceMemory(be, dm, plan); err != nil {
			l.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	readWeights(f, stderr)
	if l.m, err = model.Load(f, be); err != nil {
		l.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if onDevice {
		reportDeviceMemory(slog.Default(), be, dm, freeBefore)
	}
	if o.tokenizer && l.tok.NVocab() != l.m.HParams.NVocab {
		l.Close()
		return nil, fmt.Errorf("%s: the tokenizer has %d tokens but the model's vocabulary is %d", path, l.tok.NVocab(), l.m.HParams.NVocab)
	}
	return l, nil
}

// readWeights touches every page of the tensor data under a progress bar,
// when stderr is a terminal: with a memory-mapped file, that is when the
// weights actually come off the disk, which otherwise happens unseen during
// the first forward pass.
func readWeights(f *gguf.File, stderr io.Writer) {
	bytes, _ := weightStats(f)
	bar := progress.New(stderr, "loading", bytes)
	if !bar.Enabled() {
		return
	}
	bar.SetItems(len(f.Tensors), "tensors")
	var sink byte
	for i := range f.Tensors {
		data, err := f.TensorData(&f.Tensors[i])
		if err != nil {
			continue // model.Load reports it
		}
		for j := 0; j < len(data); j += 4096 {
			sink ^= data[j]
		}
		bar.AddItem(int64(len(data)))
	}
	bar.Finish()
	runtime.KeepAlive(sink) // keep the reads from being optimised away
}

// Close frees the model, the backend and the file.
func (l *loadedModel) Close() {
	if l.m != nil {
		l.m.Close()
	}
	closeBackend(l.be)
	l.file.Close()
}
