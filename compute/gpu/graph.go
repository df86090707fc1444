package gpu

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"unsafe"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// Graph steps: a forward step of a few tokens is ~350 small launches whose
// host cost (~5.6 µs each through purego) exceeds the GPU work, so repeated
// step shapes are recorded once as a CUDA graph and then replayed with one
// launch.
//
// The only per-step data in a step are the index arrays the ops stage
// (token ids, positions, KV slots, attention descriptors). A graph reads
// them from its own device input area, which one asynchronous copy fills
// before each launch. To know the bytes without launching anything, every
// step first runs its ops in feed mode: the ops check their arguments and
// pack their arrays into host memory, and launch nothing. If a graph exists
// for the key and its input layout is the same, the bytes are copied and the
// graph launched; otherwise the ops run a third time in capture mode, where
// their arrays get addresses in a new graph's input area.

// opMode says what an op does with its work.
type opMode int

const (
	modeEager   opMode = iota // launch on the stream (the normal case)
	modeFeed                  // stage index arrays into the host step buffer; launch nothing
	modeCapture               // launch into a stream capture; index arrays live in the graph's input area
)

// maxStepGraphs bounds the graphs kept; past it all are dropped (they are
// recaptured on demand).
const maxStepGraphs = 64

// stepGraph is one captured step and its input area.
type stepGraph struct {
	g       cuda.Graph
	exec    cuda.GraphExec
	sizes   []int // padded byte size of each staged part, in staging order
	bytes   int   // of the input area
	dev     cuda.DevicePtr
	host    uintptr // page-locked copy source
	ev      cuda.Event
	pending bool // ev marks an input copy that may not have run yet
}

// stepState is the staging of one step's index arrays, shared by the feed
// pass (which writes data) and the capture pass (which hands out addresses).
type stepState struct {
	data  []byte // feed: the packed arrays, each part 16-byte aligned
	sizes []int  // padded byte size of each part
	offs  []int  // offset of each part
	seen  []seenPart
	next  int            // capture: the next part
	dev   cuda.DevicePtr // capture: the graph's input area
	att   attMemo
}

// seenPart remembers a caller-owned array already staged in this step
// (the same Positions slice serves every layer's RoPE and attention).
type seenPart struct {
	ptr  *int32
	n    int
	part int
}

// attMemo is the attention descriptor staged for the step: every layer
// attends with the same positions and sequences.
type attMemo struct {
	valid          bool
	pos            *int32
	nPos, nSeqs    int
	seqs           *compute.SeqAttn
	bs, tileMin    int
	p0, p1, p2, p3 cuda.DevicePtr
}

func (s *stepState) reset(dev cuda.DevicePtr) {
	s.seen = s.seen[:0]
	s.next = 0
	s.dev = dev
	s.att = attMemo{}
}

// errStepLayout says the capture pass staged different arrays than the feed
// pass: the ops of a step depend on more than its key.
var errStepLayout = errors.New("gpu: graph step: the ops staged different arrays in capture than in feed")

// errInStep is the error of a call GraphStep's ops may not make.
var errInStep = errors.New("not allowed inside a graph step (GraphStep runs ops only)")

// stagePut stages index arrays for the current op and leaves their device
// addresses in b.stage.ptrs. Eager mode uses the staging ring (the caller
// holds enter); the graph modes use the step state. dedup says the arrays
// are caller-owned and unchanged for the step, so a repeat is staged once.
func (b *Backend) stagePut(dedup bool, parts ...[]int32) error {
	if b.mode == modeEager {
		return b.put(parts...)
	}
	s := &b.step
	for i, p := range parts {
		if dedup && len(p) > 0 {
			ptr := unsafe.SliceData(p)
			found := -1
			for _, sp := range s.seen {
				if sp.ptr == ptr && sp.n == len(p) {
					found = sp.part
					break
				}
			}
			if found >= 0 {
				b.stage.ptrs[i] = s.dev + cuda.DevicePtr(s.offs[found])
				continue
			}
		}
		size := (4*len(p) + 15) &^ 15
		var part int
		if b.mode == modeFeed {
			part = len(s.sizes)
			off := len(s.data)
			s.data = slices.Grow(s.data, size)[:off+size]
			for j, v := range p {
				*(*int32)(unsafe.Pointer(&s.data[off+4*j])) = v
			}
			clear(s.data[off+4*len(p) : off+size])
			s.sizes = append(s.sizes, size)
			s.offs = append(s.offs, off)
		} else {
			part = s.next
			if part >= len(s.sizes) || s.sizes[part] != size {
				return errStepLayout
			}
			s.next++
		}
		b.stage.ptrs[i] = s.dev + cuda.DevicePtr(s.offs[part])
		if dedup && len(p) > 0 {
			s.seen = append(s.seen, seenPart{ptr: unsafe.SliceData(p), n: len(p), part: part})
		}
	}
	return nil
}

// feeding reports whether ops should only stage their index arrays (the
// feed pass of a graph step): no launch.
func (b *Backend) feeding() bool { return b.mode == modeFeed }

// GraphStep runs the ops fn issues on the backend it is given as one step
// keyed by key: the first time a key is seen the ops run as usual; from the
// second time they are captured as a CUDA graph, and later steps with the
// same key replay it with one launch after one copy of their index arrays.
// The key must determine everything but the contents of the index arrays
// the ops are given (token ids, positions, slots, block tables): the
// tensors, their shapes, the op sequence and the number of sequences.
//
// fn must issue only ops, on the backend it is passed (no Read, Write or
// allocation), the same ops for the same key; it may run up to three times.
// Other goroutines' calls wait while a step is recorded. Work is queued,
// not waited for: Read the results as after any ops.
func (b *Backend) GraphStep(key any, fn func(compute.Backend) error) error {
	if b.mode != modeEager {
		return fn(b)
	}
	b.mu.Lock()
	on := b.graphsOn && !b.closed
	first := false
	if on {
		if b.stepSeen == nil {
			b.stepSeen = map[any]int{}
			b.graphs = map[any]*stepGraph{}
		}
		if len(b.stepSeen) > 4096 {
			clear(b.stepSeen)
		}
		b.stepSeen[key]++
		first = b.stepSeen[key] < 2
		if first {
			b.gstats.Eager++
		}
	}
	b.mu.Unlock()
	if !on || first {
		return fn(b)
	}

	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	// Feed pass: checks, and the index arrays into b.step.data.
	s := &b.step
	s.data, s.sizes, s.offs = s.data[:0], s.sizes[:0], s.offs[:0]
	s.reset(0)
	if err := fn(b.feedView); err != nil {
		return err
	}
	g := b.graphs[key]
	if g != nil && !slices.Equal(g.sizes, s.sizes) {
		b.drv.StreamSynchronize(b.stream)
		b.freeStepGraph(g)
		delete(b.graphs, key)
		g = nil
	}
	if g == nil {
		if len(b.graphs) >= maxStepGraphs {
			b.dropGraphsLocked()
		}
		var err error
		if g, err = b.captureStep(fn); err != nil {
			return err
		}
		b.graphs[key] = g
		b.gstats.Captures++
	} else {
		b.gstats.Replays++
	}
	return b.launchStep(g)
}

// captureStep records fn's ops into a new graph whose input area has the
// layout of the last feed pass. The caller holds enter.
func (b *Backend) captureStep(fn func(compute.Backend) error) (g *stepGraph, err error) {
	s := &b.step
	g = &stepGraph{sizes: slices.Clone(s.sizes), bytes: len(s.data)}
	defer func() {
		if err != nil {
			b.freeStepGraph(g)
		}
	}()
	if g.dev, err = b.drv.MemAlloc(int64(max(g.bytes, 16))); err != nil {
		return nil, fmt.Errorf("gpu: graph step inputs: %w", err)
	}
	if g.host, err = b.drv.MemAllocHost(max(g.bytes, 16)); err != nil {
		return nil, fmt.Errorf("gpu: graph step inputs: %w", err)
	}
	if g.ev, err = b.drv.EventCreate(); err != nil {
		return nil, err
	}
	if err = b.drv.StreamBeginCapture(b.stream); err != nil {
		return nil, err
	}
	s.reset(g.dev)
	b.q8Forget() // a replay cannot rely on what ran before it
	ferr := fn(b.capView)
	if ferr == nil && s.next != len(s.sizes) {
		ferr = errStepLayout
	}
	graph, cerr := b.drv.StreamEndCapture(b.stream)
	g.g = graph
	if ferr != nil {
		return nil, ferr
	}
	if cerr != nil {
		return nil, fmt.Errorf("gpu: graph step capture: %w", cerr)
	}
	if g.exec, err = b.drv.GraphInstantiate(g.g); err != nil {
		return nil, fmt.Errorf("gpu: graph step: %w", err)
	}
	return g, nil
}

// launchStep copies the step's index arrays into g's input area and
// launches g. The caller holds enter.
func (b *Backend) launchStep(g *stepGraph) error {
	if g.pending {
		// The host bytes of the previous launch must have been copied
		// before they are overwritten (normally long done: a Read synced).
		if err := b.drv.EventSynchronize(g.ev); err != nil {
			return err
		}
		g.pending = false
	}
	if g.bytes > 0 {
		copy(unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&g.host))), g.bytes), b.step.data)
		if err := b.drv.MemcpyHtoDAsyncPinned(g.dev, g.host, g.bytes, b.stream); err != nil {
			return fmt.Errorf("gpu: graph step inputs: %w", err)
		}
		if err := b.drv.EventRecord(g.ev, b.stream); err != nil {
			return err
		}
		g.pending = true
	}
	if err := b.drv.GraphLaunch(g.exec, b.stream); err != nil {
		return fmt.Errorf("gpu: graph step: %w", err)
	}
	b.q8Forget()
	if b.syncEachOp {
		if err := b.drv.StreamSynchronize(b.stream); err != nil {
			return fmt.Errorf("gpu: graph step: %w", err)
		}
	}
	return nil
}

// freeStepGraph releases g; the context must be current and g idle.
func (b *Backend) freeStepGraph(g *stepGraph) {
	if g.exec != 0 {
		b.drv.GraphExecDestroy(g.exec)
	}
	if g.g != 0 {
		b.drv.GraphDestroy(g.g)
	}
	if g.ev != 0 {
		b.drv.EventDestroy(g.ev)
	}
	if g.host != 0 {
		b.drv.MemFreeHost(g.host)
	}
	if g.dev != 0 {
		b.drv.MemFree(g.dev)
	}
}

// DropGraphs frees every captured step graph (after the queued work is
// done). Model code calls it when the tensors the graphs were captured on
// go away; later steps capture again.
func (b *Backend) DropGraphs() {
	if err := b.enter(); err != nil {
		return
	}
	defer b.leave()
	b.dropGraphsLocked()
}

func (b *Backend) dropGraphsLocked() {
	if len(b.graphs) == 0 {
		return
	}
	b.drv.StreamSynchronize(b.stream)
	for k, g := range b.graphs {
		b.freeStepGraph(g)
		delete(b.graphs, k)
	}
	clear(b.stepSeen)
}

// GraphStats counts what GraphStep did: steps run op by op (first sight of
// a key, or graphs off), graphs captured, and replays.
type GraphStats struct {
	Eager, Captures, Replays int
}

// GraphStats reports the counts since the backend was made.
func (b *Backend) GraphStats() GraphStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gstats
}

// EnableGraphs turns graph steps on or off (on by default, unless the
// environment sets ROCMFORGE_CUDA_GRAPHS=0). Off, GraphStep runs its ops
// one by one; the captured graphs are dropped.
func (b *Backend) EnableGraphs(on bool) {
	if !on {
		b.DropGraphs()
	}
	b.mu.Lock()
	b.graphsOn = on
	b.mu.Unlock()
}

// graphsFromEnv is the default of graph steps: on unless
// ROCMFORGE_CUDA_GRAPHS is "0" (for comparing timings with and without).
func graphsFromEnv() bool { return os.Getenv("ROCMFORGE_CUDA_GRAPHS") != "0" }
