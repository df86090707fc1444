package cpu

import (
	"sync"
	"sync/atomic"
)

// A task is work split into index ranges: do(lo, hi) handles [lo, hi).
// Ranges handed to concurrent calls never overlap.
type task interface {
	do(lo, hi int)
}

// pool is a fixed set of worker goroutines, started once, that split a
// task's index range between themselves and the calling goroutine. Chunks
// are claimed from a shared counter, so a worker slowed by another process
// on the machine takes fewer chunks instead of holding everyone up.
//
// Waking a parked goroutine costs a few microseconds, which is why callers
// run small ops on their own goroutine (see Backend.parallel) and why the
// workers stay parked rather than spinning between ops on a shared 2-core
// machine.
type pool struct {
	mu      sync.Mutex      // one task at a time
	wake    []chan struct{} // one per helper goroutine
	done    chan struct{}
	t       task
	n, step int
	next    atomic.Int64
	stop    sync.Once
}

// newPool starts threads-1 helper goroutines (the caller is the last thread).
func newPool(threads int) *pool {
	p := &pool{done: make(chan struct{}, threads)}
	for range threads - 1 {
		c := make(chan struct{}, 1)
		p.wake = append(p.wake, c)
		go func() {
			for range c {
				p.work()
				p.done <- struct{}{}
			}
		}()
	}
	return p
}

// threads is the number of goroutines a task is split over.
func (p *pool) threads() int { return len(p.wake) + 1 }

// run calls t.do over [0, n) in chunks of step (the last one shorter) on
// every thread and returns when all are done.
func (p *pool) run(n, step int, t task) {
	if n <= 0 {
		return
	}
	step = max(step, 1)
	chunks := (n + step - 1) / step
	helpers := min(len(p.wake), chunks-1)
	if helpers == 0 {
		t.do(0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t, p.n, p.step = t, n, step
	p.next.Store(0)
	for _, c := range p.wake[:helpers] {
		c <- struct{}{}
	}
	p.work()
	for range helpers {
		<-p.done
	}
	p.t = nil
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

// close stops the helper goroutines; the pool must not be used after.
func (p *pool) close() {
	p.stop.Do(func() {
		for _, c := range p.wake {
			close(c)
		}
	})
}
