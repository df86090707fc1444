package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
	"github.com/rocmforge/rocmforge/progress"
)

// synthSpec is the shape and encoding of a synthetic model.
type synthSpec struct {
	Arch                             string
	Layers, Embd, Heads, KVHeads, FF int
	Vocab, Ctx                       int
	Type, OutputType                 ggml.Type
	Seed                             uint64
}

// synthTensor is one tensor to generate: N(0, 0.02) values, or 1 + N(0,
// 0.02) for a norm weight (see gaussTable).
type synthTensor struct {
	name string
	dims []uint64 // ne0 first
	typ  ggml.Type
	norm bool
	size int64
}

// synthStd is the standard deviation of the random weights, the usual
// initialisation of transformer matrices.
const synthStd = 0.02

// synthChunkElems is about how many elements one generation job produces, so
// that memory stays a few MB per worker whatever the tensor sizes.
const synthChunkElems = 1 << 18

func runSynth(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	arch := fs.String("arch", "llama", "architecture (llama)")
	layers := fs.Int("layers", 0, "number of transformer `blocks`")
	embd := fs.Int("embd", 0, "embedding `width`")
	heads := fs.Int("heads", 0, "attention `heads`")
	kvHeads := fs.Int("kv-heads", 0, "key/value `heads` (default: --heads)")
	ff := fs.Int("ff", 0, "feed-forward `width`")
	vocab := fs.Int("vocab", 32000, "vocabulary `size` (at least 260)")
	nCtx := fs.Int("ctx", 2048, "training context `length` recorded in the file")
	typ := fs.String("type", "F16", "`type` of the matrices: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, ...")
	outType := fs.String("output-type", "", "`type` of output.weight (default: --type)")
	seed := fs.Uint64("seed", 42, "random `seed`")
	out := fs.String("o", "", "output `FILE.gguf`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rocmforge synth --arch llama --layers L --embd D --heads H [--kv-heads K] --ff F [--vocab V] [--ctx N] [--type Q4_0] [--output-type T] [--seed S] -o out.gguf")
		fmt.Fprintln(stderr, "  e.g. TinyLlama's shape: --layers 22 --embd 2048 --heads 32 --kv-heads 4 --ff 5632 --vocab 32000")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected arguments %q", pos)
	}
	if *out == "" {
		return errors.New("no output file: give -o out.gguf")
	}
	spec := synthSpec{Arch: *arch, Layers: *layers, Embd: *embd, Heads: *heads, KVHeads: *kvHeads, FF: *ff,
		Vocab: *vocab, Ctx: *nCtx, Seed: *seed}
	if spec.KVHeads == 0 {
		spec.KVHeads = spec.Heads
	}
	if spec.Type, err = parseType("--type", *typ); err != nil {
		return err
	}
	spec.OutputType = spec.Type
	if *outType != "" {
		if spec.OutputType, err = parseType("--output-type", *outType); err != nil {
			return err
		}
	}
	w, tensors, err := synthLayout(spec)
	if err != nil {
		return err
	}
	var total int64
	for _, t := range tensors {
		total += t.size
	}
	bar := progress.New(stderr, "writing "+filepath.Base(*out), total)
	start := time.Now()
	if err := writeSynth(ctx, w, tensors, spec.Seed, *out, runtime.GOMAXPROCS(0), bar); err != nil {
		return err
	}
	bar.Finish()
	fmt.Fprintf(stdout, "wrote %s: %s %d layers, embd %d, %d/%d heads, ff %d, vocab %d, %s (output %s), %d tensors, %s, in %.1f s\n",
		*out, spec.Arch, spec.Layers, spec.Embd, spec.Heads, spec.KVHeads, spec.FF, spec.Vocab, spec.Type, spec.OutputType,
		len(tensors), progress.FormatBytes(total), time.Since(start).Seconds())
	return nil
}

// synthLayout checks spec and returns a Writer holding the metadata (and no
// tensors yet) with the list of tensors to generate.
func synthLayout(s synthSpec) (*gguf.Writer, []synthTensor, error) {
	if s.Arch != "llama" {
		return nil, nil, fmt.Errorf("--arch %q: only llama is supported", s.Arch)
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"--layers", s.Layers}, {"--embd", s.Embd}, {"--heads", s.Heads}, {"--kv-heads", s.KVHeads}, {"--ff", s.FF}, {"--ctx", s.Ctx}} {
		if c.v <= 0 {
			return nil, nil, fmt.Errorf("%s %d: want > 0", c.name, c.v)
		}
	}
	if s.Embd%s.Heads != 0 {
		return nil, nil, fmt.Errorf("--embd %d is not a multiple of --heads %d", s.Embd, s.Heads)
	}
	headDim := s.Embd / s.Heads
	if headDim%2 != 0 {
		return nil, nil, fmt.Errorf("head size %d (--embd %d / --heads %d) is odd; RoPE needs it even", headDim, s.Embd, s.Heads)
	}
	if s.Heads%s.KVHeads != 0 {
		return nil, nil, fmt.Errorf("--heads %d is not a multiple of --kv-heads %d", s.Heads, s.KVHeads)
	}
	tokens, scores, types, err := synthVocab(s.Vocab)
	if err != nil {
		return nil, nil, err
	}
	ftype, ok := fileTypeOf(s.Type)
	if !ok {
		return nil, nil, fmt.Errorf("--type %s: no llama.cpp file type for it", s.Type)
	}

	d, kv, ff, v := uint64(s.Embd), uint64(s.KVHeads*headDim), uint64(s.FF), uint64(s.Vocab)
	var ts []synthTensor
	add := func(name string, t ggml.Type, norm bool, dims ...uint64) {
		ts = append(ts, synthTensor{name: name, dims: dims, typ: t, norm: norm})
	}
	add("token_embd.weight", s.Type, false, d, v)
	for il := range s.Layers {
		p := fmt.Sprintf("blk.%d.", il)
		add(p+"attn_norm.weight", ggml.F32, true, d)
		add(p+"attn_q.weight", s.Type, false, d, d)
		add(p+"attn_k.weight", s.Type, false, d, kv)
		add(p+"attn_v.weight", s.Type, false, d, kv)
		add(p+"attn_output.weight", s.Type, false, d, d)
		add(p+"ffn_norm.weight", ggml.F32, true, d)
		add(p+"ffn_gate.weight", s.Type, false, d, ff)
		add(p+"ffn_up.weight", s.Type, false, d, ff)
		add(p+"ffn_down.weight", s.Type, false, ff, d)
	}
	add("output_norm.weight", ggml.F32, true, d)
	add("output.weight", s.OutputType, false, d, v)
	for i := range ts {
		t := &ts[i]
		if bs := t.typ.BlockSize(); t.dims[0]%uint64(bs) != 0 {
			return nil, nil, fmt.Errorf("tensor %s: rows of %d elements are not a whole number of %s blocks of %d", t.name, t.dims[0], t.typ, bs)
		}
		n := int64(1)
		for _, x := range t.dims {
			n *= int64(x)
		}
		if t.size, err = t.typ.RowSize(n); err != nil {
			return nil, nil, fmt.Errorf("tensor %s: %w", t.name, err)
		}
	}

	w := gguf.NewWriter()
	kvs := []struct {
		k string
		v any
	}{
		{"general.architecture", "llama"},
		{"general.name", fmt.Sprintf("synthetic llama %dL %dD %s", s.Layers, s.Embd, s.Type)},
		{"general.file_type", ftype},
		{"general.quantization_version", uint32(2)},
		{"llama.vocab_size", uint32(s.Vocab)},
		{"llama.context_length", uint32(s.Ctx)},
		{"llama.embedding_length", uint32(s.Embd)},
		{"llama.block_count", uint32(s.Layers)},
		{"llama.feed_forward_length", uint32(s.FF)},
		{"llama.rope.dimension_count", uint32(headDim)},
		{"llama.rope.freq_base", float32(10000)},
		{"llama.attention.head_count", uint32(s.Heads)},
		{"llama.attention.head_count_kv", uint32(s.KVHeads)},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.unknown_token_id", uint32(0)},
		{"tokenizer.ggml.bos_token_id", uint32(1)},
		{"tokenizer.ggml.eos_token_id", uint32(2)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	}
	for _, kv := range kvs {
		if err := w.Set(kv.k, kv.v); err != nil {
			return nil, nil, fmt.Errorf("metadata %s: %w", kv.k, err)
		}
	}
	return w, ts, nil
}

// synthVocab makes a SentencePiece-style vocabulary of n tokens: <unk>,
// <s>, </s>, the 256 byte tokens, then "▁", single characters, and words of
// a-z with and without "▁" by increasing length. Every piece is the
// concatenation of two earlier ones, so the SPM merges can reach it; earlier
// pieces score higher, so they merge first.
func synthVocab(n int) (tokens []string, scores []float32, types []int32, err error) {
	const nFixed = 3 + 256
	if n < nFixed+1 {
		return nil, nil, nil, fmt.Errorf("--vocab %d: want at least %d (3 special tokens, 256 byte tokens and ▁)", n, nFixed+1)
	}
	tokens = make([]string, 0, n)
	types = make([]int32, 0, n)
	tokens = append(tokens, "<unk>", "<s>", "</s>")
	types = append(types, 2, 3, 3) // unknown, control, control
	for b := range 256 {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6) // byte
	}
	seen := make(map[string]bool, n)
	addPiece := func(p string) bool {
		if len(tokens) == n {
			return false
		}
		if !seen[p] {
			seen[p] = true
			tokens = append(tokens, p)
			types = append(types, 1) // normal
		}
		return len(tokens) < n
	}
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const singles = letters + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()"
	more := addPiece("▁")
	for i := 0; more && i < len(singles); i++ {
		more = addPiece(singles[i : i+1])
	}
	for i := 0; more && i < len(singles); i++ {
		more = addPiece("▁" + singles[i:i+1])
	}
	// Words of length 2, 3, ... over a-z in lexicographic order.
	for l := 2; more && l <= 5; l++ {
		idx := make([]int, l)
		word := make([]byte, l)
		for more {
			for i, x := range idx {
				word[i] = letters[x]
			}
			more = addPiece("▁"+string(word)) && addPiece(string(word))
			k := l - 1
			for k >= 0 && idx[k] == len(letters)-1 {
				idx[k] = 0
				k--
			}
			if k < 0 {
				break
			}
			idx[k]++
		}
	}
	if len(tokens) < n {
		return nil, nil, nil, fmt.Errorf("--vocab %d: the synthetic vocabulary has only %d tokens", n, len(tokens))
	}
	scores = make([]float32, n)
	for i := nFixed; i < n; i++ {
		scores[i] = -float32(i - nFixed)
	}
	return tokens, scores, types, nil
}

// writeSynth writes the file in two passes so that no tensor is ever held
// whole in memory: first the header with every tensor's data left as a hole
// (the Writer gets slices of one zero buffer, which holeWriter turns into
// seeks), then the weights, generated and quantized in row chunks by workers
// that write them in place. The file appears at path only when complete.
// Each chunk has its own RNG stream, so the bytes depend on the seed only,
// not on the number of workers.
func writeSynth(ctx context.Context, w *gguf.Writer, ts []synthTensor, seed uint64, path string, workers int, bar *progress.Bar) (err error) {
	var maxSize int64
	for _, t := range ts {
		maxSize = max(maxSize, t.size)
	}
	zero := make([]byte, maxSize)
	for _, t := range ts {
		if err := w.AddTensor(t.name, t.typ, t.dims, zero[:t.size]); err != nil {
			return fmt.Errorf("tensor %s: %w", t.name, err)
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := w.WriteTo(holeWriter{f, make([]byte, 4096)})
	if err != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := f.Truncate(n); err != nil { // a trailing hole still counts
		return err
	}
	layout, err := gguf.Open(f.Name())
	if err != nil {
		return fmt.Errorf("reading back the header of %s: %w", f.Name(), err)
	}
	offsets := make([]int64, len(ts))
	for i := range ts {
		offsets[i] = layout.DataOffset + int64(layout.Tensors[i].Offset)
	}
	layout.Close()

	gauss := newGaussTable(synthStd)
	type job struct{ ti, r0, r1 int }
	jobs := make(chan job)
	errc := make(chan error, workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var vals []float32
			var buf []byte
			for j := range jobs {
				t := &ts[j.ti]
				cols := int(t.dims[0])
				rowBytes := t.size / int64(t.elemRows())
				nv := (j.r1 - j.r0) * cols
				if cap(vals) < nv {
					vals = make([]float32, nv)
				}
				vals = vals[:nv]
				gauss.fill(vals, rand.NewPCG(seed, uint64(j.ti)<<32|uint64(j.r0)))
				if t.norm {
					for i := range vals {
						vals[i]++
					}
				}
				nb := int64(j.r1-j.r0) * rowBytes
				if int64(cap(buf)) < nb {
					buf = make([]byte, nb)
				}
				if err := ggml.QuantizeInto(t.typ, buf[:nb], vals); err != nil {
					errc <- fmt.Errorf("tensor %s: %w", t.name, err)
					cancel()
					return
				}
				if _, err := f.WriteAt(buf[:nb], offsets[j.ti]+int64(j.r0)*rowBytes); err != nil {
					errc <- err
					cancel()
					return
				}
				bar.Add(nb)
			}
		}()
	}
feed:
	for ti := range ts {
		rows := ts[ti].elemRows()
		step := max(1, synthChunkElems/int(ts[ti].dims[0]))
		for r0 := 0; r0 < rows; r0 += step {
			select {
			case jobs <- job{ti, r0, min(r0+step, rows)}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// CreateTemp makes the file private; a model file is as readable as
	// any other.
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// elemRows is the number of rows (every dimension but the first, in GGUF
// order).
func (t *synthTensor) elemRows() int {
	r := 1
	for _, d := range t.dims[1:] {
		r *= int(d)
	}
	return r
}

// holeWriter writes to a file but seeks over runs of zeros instead of
// writing them, leaving holes that read back as zeros.
type holeWriter struct {
	f    *os.File
	zero []byte // a page of zeros to compare with
}

func (h holeWriter) Write(p []byte) (int, error) {
	if isZero(p, h.zero) {
		if _, err := h.f.Seek(int64(len(p)), io.SeekCurrent); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return h.f.Write(p)
}

func isZero(p, zero []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zero))
		if !bytes.Equal(p[:n], zero[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}

// gaussTable draws normal samples cheaply: each is one of 65536 equally
// likely values, the quantiles of N(0, std) at (i+0.5)/65536, picked by 16
// random bits. That is a fine normal for random weights (it reaches ±4.3
// std) at a quarter of a 64-bit random number per sample, several times
// faster than NormFloat64, which would dominate synthesizing a 7B model.
type gaussTable [1 << 16]float32

func newGaussTable(std float64) *gaussTable {
	var g gaussTable
	for i := range g {
		p := (float64(i) + 0.5) / float64(len(g))
		g[i] = float32(std * math.Sqrt2 * math.Erfinv(2*p-1))
	}
	return &g
}

// fill sets every element of dst to a sample.
func (g *gaussTable) fill(dst []float32, src rand.Source) {
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		r := src.Uint64()
		dst[i] = g[uint16(r)]
		dst[i+1] = g[uint16(r>>16)]
		dst[i+2] = g[uint16(r>>32)]
		dst[i+3] = g[uint16(r>>48)]
	}
	for r := src.Uint64(); i < len(dst); i, r = i+1, r>>16 {
		dst[i] = g[uint16(r)]
	}
}
