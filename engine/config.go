package engine

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/kvcache"
	"github.com/rocmforge/rocmforge/model"
)

// Defaults of the Config fields left zero.
const (
	DefaultMaxBatchTokens    = 2048
	DefaultMaxSeqs           = 64
	DefaultMaxQueue          = 256
	DefaultBlockSize         = kvcache.DefaultBlockSize
	DefaultKVCacheBytes      = 4 << 30
	DefaultEventBuffer       = 128
	DefaultSlowReaderTimeout = 30 * time.Second
	DefaultStatusHistory     = 1024
	DefaultTargetStepLatency = 100 * time.Millisecond
)

// Config sizes an Engine. Zero fields take the defaults named; negative
// values are errors.
type Config struct {
	// MaxBatchTokens is the token budget of one step: rows of one
	// model.Forward, decodes and prefill chunks together (default 2048).
	// It should be at least MaxSeqs, or some decoding sequences wait a step.
	MaxBatchTokens int
	// MaxPrefillTokens caps the prompt rows (prefill chunks and admissions)
	// of a step in which some sequence decodes, so that a long prompt does
	// not hold every running stream for a whole MaxBatchTokens step. 0
	// selects the adaptive cap of TargetStepLatency. A step in which
	// nothing decodes always fills MaxBatchTokens.
	MaxPrefillTokens int
	// TargetStepLatency is what the adaptive prefill cap aims at: while
	// sequences decode, a step takes as many prompt rows as a cost model
	// measured on the previous steps (step time against rows, an
	// exponentially weighted linear fit) predicts to fit in this time, but
	// never fewer than it has decode rows nor fewer than 64 (BlockSize if
	// larger), so that on a backend too slow for the target waiting
	// prompts still advance in efficient chunks. Default 100 ms;
	// negative turns the adaptive cap off (prefill fills the step's budget
	// after the decodes). MaxPrefillTokens, when set, takes precedence.
	TargetStepLatency time.Duration
	// MaxSeqs bounds the sequences running at once (default 64).
	MaxSeqs int
	// MaxQueue bounds the requests waiting for admission; Submit beyond it
	// is ErrQueueFull (default 256).
	MaxQueue int
	// BlockSize is the number of token slots per KV block (default 16).
	BlockSize int
	// KVCacheTokens is the size of the KV pool in tokens, rounded up to
	// whole blocks. Default: CtxLen*MaxSeqs, capped so that the cache takes
	// at most KVCacheBytes.
	KVCacheTokens int
	// KVCacheBytes is the memory budget of the default KVCacheTokens
	// (default 4 GiB); it does not limit an explicit KVCacheTokens.
	KVCacheBytes int64
	// KVType is the element type of the KV pool: ggml.F32 (the zero
	// value), ggml.F16 (half the memory; llama.cpp's default) or ggml.Q8_0
	// (about a quarter; K and V widths must be multiples of 32).
	KVType ggml.Type
	// EnablePrefixCache keeps full KV blocks by content so that prompts
	// sharing a prefix skip its computation. DefaultConfig turns it on; the
	// zero Config leaves it off.
	EnablePrefixCache bool
	// CtxLen is the per-sequence context limit: prompt plus generated
	// tokens (default the model's training context).
	CtxLen int
	// EventBuffer is the capacity of each request's event channel
	// (default 128).
	EventBuffer int
	// SlowReaderTimeout is how long a request's reader may leave its full
	// event channel unread before the request is cancelled (default 30 s).
	SlowReaderTimeout time.Duration
	// StatusHistory is how many finished requests Status remembers, least
	// recently finished forgotten first (default 1024).
	StatusHistory int
	// Logger receives scheduler diagnostics (default slog.Default()).
	Logger *slog.Logger
	// OnStep, when set, is called on the scheduler goroutine after every
	// step (forward pass) with its StepStats, for metrics. It delays the
	// next step, so it must return quickly, and it must not call the
	// Engine's methods that wait for the scheduler (Close).
	OnStep func(StepStats)
}

// StepStats describes one engine step: one forward pass and the sampling
// after it.
type StepStats struct {
	Tokens        int // rows of the batch: decode rows plus prompt rows
	Seqs          int // sequences in the batch
	DecodeSeqs    int // sequences with one decode row
	PrefillTokens int // prompt rows (recomputation after a preemption included)
	PrefillSeqs   int // sequences with prompt rows
	// PrefillCap is the prompt rows the step was allowed after its decode
	// rows: what was left of MaxBatchTokens when nothing decoded, else
	// the prefill cap (MaxPrefillTokens or the adaptive one).
	PrefillCap int
	Outputs    int  // sequences that sampled a token
	Argmax     bool // the outputs came from the backend's argmax, not the logit rows
	// Duration is the forward pass plus sampling, on the engine's clock.
	Duration time.Duration
}

// DefaultConfig returns the defaults, with the prefix cache on.
func DefaultConfig() Config {
	return Config{EnablePrefixCache: true}
}

// resolve fills the defaults for model hyperparameters hp and checks the
// values.
func (c Config) resolve(hp *model.HParams) (Config, error) {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"MaxBatchTokens", c.MaxBatchTokens}, {"MaxPrefillTokens", c.MaxPrefillTokens}, {"MaxSeqs", c.MaxSeqs}, {"MaxQueue", c.MaxQueue},
		{"BlockSize", c.BlockSize}, {"KVCacheTokens", c.KVCacheTokens}, {"CtxLen", c.CtxLen},
		{"EventBuffer", c.EventBuffer}, {"StatusHistory", c.StatusHistory},
	} {
		if f.v < 0 {
			return c, fmt.Errorf("engine: config %s %d: want >= 0 (0 = default)", f.name, f.v)
		}
	}
	if c.KVCacheBytes < 0 {
		return c, fmt.Errorf("engine: config KVCacheBytes %d: want >= 0 (0 = default)", c.KVCacheBytes)
	}
	if c.SlowReaderTimeout < 0 {
		return c, fmt.Errorf("engine: config SlowReaderTimeout %v: want >= 0 (0 = default)", c.SlowReaderTimeout)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxBatchTokens, DefaultMaxBatchTokens)
	def(&c.MaxSeqs, DefaultMaxSeqs)
	def(&c.MaxQueue, DefaultMaxQueue)
	def(&c.BlockSize, DefaultBlockSize)
	def(&c.EventBuffer, DefaultEventBuffer)
	def(&c.StatusHistory, DefaultStatusHistory)
	if c.KVCacheBytes == 0 {
		c.KVCacheBytes = DefaultKVCacheBytes
	}
	if c.TargetStepLatency == 0 {
		c.TargetStepLatency = DefaultTargetStepLatency
	}
	if c.SlowReaderTimeout == 0 {
		c.SlowReaderTimeout = DefaultSlowReaderTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.CtxLen == 0 {
		c.CtxLen = hp.NCtxTrain
		if c.CtxLen <= 0 {
			return c, fmt.Errorf("engine: the model has no training context length (%d); set Config.CtxLen", hp.NCtxTrain)
		}
	}
	perToken, err := model.CacheBytesPerToken(*hp, c.KVType)
	if err != nil {
		return c, fmt.Errorf("engine: config KVType: %w", err)
	}
	if c.KVCacheTokens == 0 {
		c.KVCacheTokens = c.CtxLen * c.MaxSeqs
		if perToken > 0 && int64(c.KVCacheTokens) > c.KVCacheBytes/perToken {
			c.KVCacheTokens = int(c.KVCacheBytes / perToken)
		}
		c.KVCacheTokens = max(c.KVCacheTokens, c.BlockSize)
	}
	return c, nil
}

// blocks is the number of KV blocks of the pool.
func (c *Config) blocks() int { return (c.KVCacheTokens + c.BlockSize - 1) / c.BlockSize }
