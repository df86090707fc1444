package engine

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStepCostFit: the weighted fit recovers a linear cost from steps of
// varying size, falls back to a proportional cost when every step has the
// same size, and sizes steps against a target.
func TestStepCostFit(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const a, b = 0.004, 0.0005 // 4 ms a step, 0.5 ms a row
	var c stepCost
	if _, ok := c.rowsWithin(time.Second); ok {
		t.Fatal("rowsWithin with no observation: ok")
	}
	for range 200 {
		n := 1 + rng.IntN(300)
		c.observe(n, time.Duration((a+b*float64(n))*float64(time.Second)))
	}
	ga, gb, ok := c.fit()
	if !ok || math.Abs(ga-a)/a > 1e-6 || math.Abs(gb-b)/b > 1e-6 {
		t.Errorf("fit = %v, %v, %v; want a %v, b %v (relative error 1e-6)", ga, gb, ok, a, b)
	}
	for _, tc := range []struct {
		target time.Duration
		want   int
	}{
		{100 * time.Millisecond, 192}, // (0.1 - 0.004) / 0.0005
		{4 * time.Millisecond, 0},
		{time.Millisecond, 0}, // less than the per-step cost
	} {
		if got, ok := c.rowsWithin(tc.target); !ok || got < tc.want-1 || got > tc.want {
			t.Errorf("rowsWithin(%v) = %d, %v; want %d (±1 for rounding)", tc.target, got, ok, tc.want)
		}
	}

	// Steps all of one size: the whole time is charged to the rows.
	var d stepCost
	for range 50 {
		d.observe(64, 32*time.Millisecond)
	}
	if ga, gb, ok := d.fit(); !ok || ga != 0 || math.Abs(gb-0.0005)/0.0005 > 1e-9 {
		t.Errorf("constant steps: fit = %v, %v, %v; want 0, 0.0005", ga, gb, ok)
	}
	if got, _ := d.rowsWithin(100 * time.Millisecond); got < 199 || got > 200 {
		t.Errorf("constant steps: rowsWithin(100ms) = %d, want 200 (±1 for rounding)", got)
	}

	// The fit follows a change of speed: after 100 steps the old ones
	// weigh 0.95^100 = 0.6 %.
	for range 100 {
		n := 1 + rng.IntN(300)
		c.observe(n, time.Duration((a+4*b*float64(n))*float64(time.Second)))
	}
	if _, gb, _ := c.fit(); math.Abs(gb-4*b)/(4*b) > 2e-2 {
		t.Errorf("after slowing down 4×: per-row cost %v, want %v", gb, 4*b)
	}
}

// fixedCost is a cost model that always predicts n rows for the target.
type fixedCost struct{ n int }

func (fixedCost) observe(int, time.Duration)             {}
func (f fixedCost) rowsWithin(time.Duration) (int, bool) { return f.n, true }

// TestPrefillCapRule checks the cap for each configuration.
func TestPrefillCapRule(t *testing.T) {
	for _, tc := range []struct {
		name            string
		maxPrefill      int
		target          time.Duration
		cost            costModel
		decodes, budget int
		want            int
	}{
		{"nothing decodes", 0, time.Second, fixedCost{5}, 0, 2048, 2048},
		{"static cap", 100, time.Second, fixedCost{5}, 3, 2045, 100},
		{"static cap above the budget", 100, time.Second, fixedCost{5}, 3, 50, 50},
		{"adaptive", 0, time.Second, fixedCost{500}, 20, 2028, 480},
		{"adaptive, floor of the decode rows", 0, time.Second, fixedCost{30}, 80, 1968, 80},
		{"adaptive, floor of minPrefill", 0, time.Second, fixedCost{0}, 2, 2046, 64},
		{"adaptive within the budget", 0, time.Second, fixedCost{5000}, 20, 1000, 1000},
		{"adaptive, nothing known", 0, time.Second, &stepCost{}, 20, 2028, 2028},
		{"off", 0, -1, fixedCost{5}, 20, 2028, 2028},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Engine{cfg: Config{MaxPrefillTokens: tc.maxPrefill, TargetStepLatency: tc.target, BlockSize: 16}}
			s := &scheduler{e: e, cost: tc.cost, minPrefill: defaultMinPrefill}
			if got := s.prefillCap(tc.decodes, tc.budget); got != tc.want {
				t.Errorf("prefillCap(%d decodes, budget %d) = %d, want %d", tc.decodes, tc.budget, got, tc.want)
			}
		})
	}
}

// TestPrefillCapWhileDecoding runs requests whose long prompts are
// admitted while another sequence decodes: those steps take at most the
// capped prompt rows, a step where nothing decodes fills the budget, and
// every output equals the request's output alone (chunking does not change
// results).
func TestPrefillCapWhileDecoding(t *testing.T) {
	for _, be := range testBackends {
		t.Run(be.name, func(t *testing.T) {
			s := loadStories(t, be.new)
			var reqs []Request
			for i, text := range testPrompts[:4] {
				p := s.encode(t, text)
				if i > 0 { // long prompts behind a short one
					p = s.encode(t, text+" "+testPrompts[i+3]+" "+testPrompts[i+1])
				}
				r := greedy(p, 30)
				r.IgnoreEOS = true
				r.TopLogprobs = 2
				reqs = append(reqs, r)
			}
			solo := runEach(t, startEngine(t, s, DefaultConfig()), reqs)

			for _, pc := range []struct {
				name       string
				maxPrefill int
				target     time.Duration
				cost       costModel
				cap        func(decodes, budget int) int
			}{
				{"adaptive", 0, time.Second, fixedCost{7}, func(d, b int) int { return min(b, max(7-d, d, 4)) }},
				{"static", 3, time.Second, nil, func(d, b int) int { return min(b, 3) }},
				{"off", 0, -1, nil, func(d, b int) int { return b }},
			} {
				cfg := DefaultConfig()
				cfg.BlockSize = 4
				cfg.MaxBatchTokens = 24
				cfg.MaxPrefillTokens = pc.maxPrefill
				cfg.TargetStepLatency = pc.target
				var mu sync.Mutex
				var steps []StepStats
				cfg.OnStep = func(st StepStats) {
					mu.Lock()
					steps = append(steps, st)
					mu.Unlock()
				}
				e, err := New(loadStories(t, be.new).m, s.tok, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if pc.cost != nil {
					e.s.cost = pc.cost
				}
				e.s.minPrefill = 4 // one block: small enough for the cap to show in 24-row steps
				// Submitted before Start: the first step sees them all.
				hs := make([]*Handle, len(reqs))
				for i, r := range reqs {
					if hs[i], err = e.Submit(context.Background(), r); err != nil {
						t.Fatal(err)
					}
				}
				e.Start(context.Background())
				for i, h := range hs {
					if d := sameOutput(collect(t, h), solo[i]); d != "" {
						t.Errorf("%s: request %d vs alone: %s", pc.name, i, d)
					}
				}
				if err := e.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				capped, full := 0, 0
				for i, st := range steps {
					want := pc.cap(st.DecodeSeqs, cfg.MaxBatchTokens-st.DecodeSeqs)
					if st.DecodeSeqs == 0 {
						want = cfg.MaxBatchTokens
					}
					if st.PrefillCap != want || st.PrefillTokens > st.PrefillCap || st.Tokens != st.DecodeSeqs+st.PrefillTokens {
						t.Errorf("%s: step %d: %+v: want prefill cap %d and at most that many prompt rows", pc.name, i, st, want)
					}
					if st.DecodeSeqs > 0 && st.PrefillTokens == st.PrefillCap && st.PrefillCap < cfg.MaxBatchTokens-st.DecodeSeqs {
						capped++
					}
					if st.DecodeSeqs == 0 && st.PrefillTokens == cfg.MaxBatchTokens {
						full++
					}
				}
				t.Logf("%s: %d steps, %d capped next to decodes, %d full prefill steps", pc.name, len(steps), capped, full)
				if full == 0 {
					t.Errorf("%s: no step without decodes filled the %d-token budget", pc.name, cfg.MaxBatchTokens)
				}
				if (pc.name != "off") != (capped > 0) {
					t.Errorf("%s: %d steps hit a prefill cap below the budget", pc.name, capped)
				}
			}
		})
	}
}

// TestPrefixCountsBackedOutAdmissions: a request whose prompt matches the
// prefix cache but whose first chunk finds too few free blocks is matched
// and backed out at every step until room frees up; the prefix counters
// count its match once, when it is admitted.
func TestPrefixCountsBackedOutAdmissions(t *testing.T) {
	s := loadStories(t, refBackend)
	cfg := DefaultConfig()
	cfg.BlockSize, cfg.KVCacheTokens = 4, 48 // 12 blocks
	gateA := make(chan struct{})
	var holding atomic.Bool
	stepped := make(chan struct{}, 1)
	cfg.OnStep = func(StepStats) {
		if holding.CompareAndSwap(true, false) {
			stepped <- struct{}{}
			<-gateA // hold the scheduler while B is submitted
		}
	}
	e := startEngine(t, s, cfg)
	rng := rand.New(rand.NewPCG(3, 4))
	toks := func(n int) []int32 {
		p := []int32{1}
		for len(p) < n {
			p = append(p, int32(10+rng.IntN(200)))
		}
		return p
	}
	promptP := toks(9) // 2 full blocks, cached once P ends
	p := run(t, e, withIgnoreEOS(greedy(promptP, 1)))
	if p.done.FinishReason != FinishLength {
		t.Fatalf("P ended %q", p.done.FinishReason)
	}

	// A holds 4 blocks, then up to 8; B needs its 2 matched blocks plus 8
	// more, which only fit once A is done.
	holding.Store(true)
	hA, err := e.Submit(context.Background(), withIgnoreEOS(greedy(toks(12), 20)))
	if err != nil {
		t.Fatal(err)
	}
	<-stepped
	promptB := append(slices.Clone(promptP[:8]), toks(31)[1:]...)
	hB, err := e.Submit(context.Background(), withIgnoreEOS(greedy(promptB, 1)))
	if err != nil {
		t.Fatal(err)
	}
	close(gateA)
	a, b := collect(t, hA), collect(t, hB)
	if a.done.FinishReason != FinishLength || b.done.FinishReason != FinishLength {
		t.Fatalf("A ended %q (%v), B %q (%v)", a.done.FinishReason, a.done.Err, b.done.FinishReason, b.done.Err)
	}
	stA, _ := e.Status(hA.ID)
	stB, _ := e.Status(hB.ID)
	if stB.FirstToken.Before(stA.Finished) {
		t.Errorf("B's first token at %v, before A finished at %v: it was never backed out", stB.FirstToken, stA.Finished)
	}
	st := e.Stats()
	wantHits, wantMisses := int64(8), int64(len(promptP)+12+len(promptB)-8)
	if b.done.Usage.CachedTokens != 8 || st.PrefixHitTokens != wantHits || st.PrefixMissTokens != wantMisses || st.Preemptions != 0 {
		t.Errorf("B cached %d tokens; stats: %d hit, %d missed tokens, %d preemptions; want 8 cached, %d hit, %d missed, 0 preemptions",
			b.done.Usage.CachedTokens, st.PrefixHitTokens, st.PrefixMissTokens, st.Preemptions, wantHits, wantMisses)
	}
}

func withIgnoreEOS(r Request) Request {
	r.IgnoreEOS = true
	return r
}
