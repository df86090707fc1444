package cpu

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countTask counts how often each index is handed out.
type countTask struct{ hits []atomic.Int32 }

func (c *countTask) do(lo, hi int) {
	for i := lo; i < hi; i++ {
		c.hits[i].Add(1)
	}
}

// TestPool checks that every index of every task is done exactly once,
// with gaps long enough for the workers to park between some tasks and
// several goroutines submitting at once, and that close stops the workers.
func TestPool(t *testing.T) {
	rng := newRNG(t)
	p := newPool(3)
	var wg sync.WaitGroup
	for g := range 3 {
		seed := rng.Uint64()
		wg.Go(func() {
			for it := range 60 {
				n := 1 + int((seed>>uint(it%40))%997)
				c := &countTask{hits: make([]atomic.Int32, n)}
				p.run(n, 1+it%17, c)
				for i := range c.hits {
					if h := c.hits[i].Load(); h != 1 {
						t.Errorf("submitter %d task %d: index %d of %d done %d times", g, it, i, n, h)
						return
					}
				}
				if it%20 == 19 {
					time.Sleep(2 * spinFor) // let the workers park
				}
			}
		})
	}
	wg.Wait()
	p.close()
	p.close() // idempotent
}
