package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A task is work split into index ranges: do(lo, hi) handles [lo, hi).
// Ranges handed to concurrent calls never overlap.
type task interface {
	do(lo, hi int)
}

// spinFor is how long an idle worker keeps polling for the next task
// before parking. Waking a parked goroutine costs 5–10 µs (measured by
// BenchmarkPool on the 2-core target), while a decode step hands out a
// task every few microseconds; 50 µs of polling bridges the serial ops
// between two matmuls and costs nothing once the step is over.
const spinFor = 50 * time.Microsecond

// pool is a fixed set of worker goroutines, started once, that split a
// task's index range between themselves and the calling goroutine. Chunks
// are claimed from a shared counter, so a worker slowed by another process
// on the machine takes fewer chunks instead of holding everyone up.
type pool struct {
	mu      sync.Mutex // one task at a time
	workers []*worker

	// The current task, published by bumping gen.
	t       task
	n, step int
	next    atomic.Int64
	gen     atomic.Uint64
	pending atomic.Int32  // helpers still working on the current task
	waiting atomic.Bool   // the caller parked on done
	done    chan struct{} // wakes a parked caller
	stop    atomic.Bool
}

// A worker is one helper goroutine. It polls gen for a while after each
// task, then parks on wake. The sleeping flag makes the hand-off race-free:
// the worker sets it before a last look at gen, and run sends a wake-up
// only to a worker whose flag it clears itself.
type worker struct {
	sleeping atomic.Bool
	wake     chan struct{}
}

// newPool starts threads-1 helper goroutines (the caller is the last thread).
func newPool(threads int) *pool {
	p := &pool{done: make(chan struct{}, 1)}
	for range threads - 1 {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.loop(w)
	}
	return p
}

// threads is the number of goroutines a task is split over.
func (p *pool) threads() int { return len(p.workers) + 1 }

// run calls t.do over [0, n) in chunks of step (the last one shorter) on
// every thread and returns when all are done.
func (p *pool) run(n, step int, t task) {
	if n <= 0 {
		return
	}
	step = max(step, 1)
	if len(p.workers) == 0 || n <= step || p.stop.Load() {
		t.do(0, n) // after close, on the caller alone
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t, p.n, p.step = t, n, step
	p.next.Store(0)
	p.pending.Store(int32(len(p.workers)))
	p.gen.Add(1)
	for _, w := range p.workers {
		if w.sleeping.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
	p.work()
	// The helpers usually finish within microseconds of the caller: poll
	// first, park only if one of them was descheduled.
	deadline := time.Now().Add(spinFor)
	for p.pending.Load() != 0 {
		if time.Now().After(deadline) {
			// The last helper sends on done if it sees waiting. A token
			// left over from an earlier task only costs one more check.
			p.waiting.Store(true)
			for p.pending.Load() != 0 {
				<-p.done
			}
			p.waiting.Store(false)
			break
		}
		runtime.Gosched()
	}
	p.t = nil
}

// loop is a helper goroutine: wait for a new gen, work, repeat.
func (p *pool) loop(w *worker) {
	// Not p.gen.Load(): a task published before this goroutine first runs
	// must still be taken.
	var seen uint64
	for {
		deadline := time.Now().Add(spinFor)
		for p.gen.Load() == seen && !p.stop.Load() {
			if time.Now().After(deadline) {
				w.sleeping.Store(true)
				if p.gen.Load() == seen && !p.stop.Load() {
					<-w.wake
				} else if !w.sleeping.CompareAndSwap(true, false) {
					<-w.wake // run cleared the flag, so it sent a wake-up
				}
				deadline = time.Now().Add(spinFor)
			}
			runtime.Gosched()
		}
		if p.stop.Load() {
			return
		}
		seen = p.gen.Load()
		p.work()
		if p.pending.Add(-1) == 0 && p.waiting.Load() {
			select {
			case p.done <- struct{}{}:
			default:
			}
		}
	}
}

// work claims and runs chunks until none is left.
func (p *pool) work() {
	for {
		lo := int(p.next.Add(int64(p.step))) - p.step
		if lo >= p.n {
			return
		}
		p.t.do(lo, min(lo+p.step, p.n))
	}
}

// close stops the helper goroutines; later tasks run on the caller alone.
func (p *pool) close() {
	if p.stop.Swap(true) {
		return
	}
	for _, w := range p.workers {
		if w.sleeping.CompareAndSwap(true, false) {
			w.wake <- struct{}{}
		}
	}
}
