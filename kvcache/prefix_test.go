package kvcache

import (
	"errors"
	"slices"
	"testing"
)

// concat joins token runs into one prompt.
func concat(parts ...[]int32) []int32 { return slices.Concat(parts...) }

// runPrompt creates seq id, matches prompt against the cache, appends the
// rest and returns the number of cached tokens.
func runPrompt(t *testing.T, m *Manager, dev *device, id SeqID, prompt []int32) int {
	t.Helper()
	newSeq(t, m, id)
	cached := mustMatch(t, m, id, prompt)
	if cached%m.BlockSize() != 0 || cached > max(len(prompt)-1, 0) {
		t.Fatalf("MatchPrefix covered %d of %d tokens (block size %d)", cached, len(prompt), m.BlockSize())
	}
	if dev != nil {
		if got := dev.read(m.BlockSize(), table(t, m, id), cached); !slices.Equal(got, prompt[:cached]) {
			t.Fatalf("seq %d: cached blocks hold %v, prompt starts %v", id, got, prompt[:cached])
		}
	}
	appendOK(t, m, dev, id, prompt[cached:])
	return cached
}

func TestPrefixHitOnIdenticalPrompt(t *testing.T) {
	const bs = 4
	m := newManager(t, Config{Blocks: 16, BlockSize: bs, EnablePrefixCache: true})
	dev := newDevice(m)
	prompt := seqToks(1, 10) // 2 full blocks and 2 tokens
	if got := runPrompt(t, m, dev, 1, prompt); got != 0 {
		t.Fatalf("first prompt matched %d tokens of an empty cache", got)
	}
	first := table(t, m, 1)

	// While seq 1 is live its full blocks are shared.
	if got := runPrompt(t, m, dev, 2, prompt); got != 8 {
		t.Fatalf("identical prompt matched %d tokens, want 8", got)
	}
	second := table(t, m, 2)
	if !slices.Equal(second[:2], first[:2]) || second[2] == first[2] {
		t.Errorf("tables %v and %v: want the 2 full blocks shared, the partial one not", first, second)
	}
	if st := m.Stats(); st.Hits != 8 || st.Misses != 10+2 {
		t.Errorf("stats %+v: want 8 hit and 12 missed tokens", st)
	}
	invariants(t, m)

	// After both are freed, the full blocks stay cached and are hit again.
	for _, id := range []SeqID{1, 2} {
		if err := m.Free(id); err != nil {
			t.Fatal(err)
		}
	}
	if st := m.Stats(); st.Cached != 2 || st.Used != 0 || st.Free != 14 {
		t.Fatalf("after free: %+v, want 2 cached blocks", st)
	}
	longer := concat(prompt, seqToks(50, 9))
	if got := runPrompt(t, m, dev, 3, longer); got != 8 {
		t.Fatalf("longer prompt with the same start matched %d, want 8", got)
	}
	if got := table(t, m, 3); !slices.Equal(got[:2], first[:2]) {
		t.Errorf("table %v does not reuse cached blocks %v", got, first[:2])
	}
	// Seq 3 filled blocks 2..4 of its own; a fourth prompt reuses all of them.
	if got := runPrompt(t, m, dev, 4, concat(longer, []int32{7})); got != 16 {
		t.Errorf("extension of a cached prompt matched %d, want 16", got)
	}
	invariants(t, m)
}

func TestPrefixMissAfterDifferentPrefix(t *testing.T) {
	const bs = 3
	m := newManager(t, Config{Blocks: 20, BlockSize: bs, EnablePrefixCache: true})
	dev := newDevice(m)
	x, y, z := []int32{1, 2, 3}, []int32{4, 5, 6}, []int32{7, 8, 9}
	runPrompt(t, m, dev, 1, concat(x, y, z, []int32{0}))
	// Same second and third blocks after a different first block: no hit.
	if got := runPrompt(t, m, dev, 2, concat([]int32{1, 2, 4}, y, z, []int32{0})); got != 0 {
		t.Errorf("different first block matched %d tokens, want 0", got)
	}
	// Same first block, different second: only the first.
	if got := runPrompt(t, m, dev, 3, concat(x, []int32{4, 5, 7}, z, []int32{0})); got != bs {
		t.Errorf("different second block matched %d tokens, want %d", got, bs)
	}
	// Blocks must also be at the same position: x y z shifted by one block.
	if got := runPrompt(t, m, dev, 4, concat(z, x, y, z, []int32{0})); got != 0 {
		t.Errorf("shifted prompt matched %d tokens, want 0", got)
	}
	invariants(t, m)
}

func TestPartialBlocksNotCached(t *testing.T) {
	const bs = 4
	m := newManager(t, Config{Blocks: 8, BlockSize: bs, EnablePrefixCache: true})
	dev := newDevice(m)
	runPrompt(t, m, dev, 1, seqToks(0, 3)) // less than a block
	runPrompt(t, m, dev, 2, seqToks(100, 7))
	for _, id := range []SeqID{1, 2} {
		if err := m.Free(id); err != nil {
			t.Fatal(err)
		}
	}
	if st := m.Stats(); st.Cached != 1 {
		t.Fatalf("stats %+v: want only the one full block cached", st)
	}
	if got := runPrompt(t, m, dev, 3, seqToks(0, 9)); got != 0 {
		t.Errorf("prompt whose start was only a partial block matched %d", got)
	}
	if got := runPrompt(t, m, dev, 4, seqToks(100, 9)); got != 4 {
		t.Errorf("matched %d, want the one full block (4)", got)
	}
	invariants(t, m)
}

func TestMatchNeverCoversWholePrompt(t *testing.T) {
	const bs = 4
	m := newManager(t, Config{Blocks: 8, BlockSize: bs, EnablePrefixCache: true})
	dev := newDevice(m)
	prompt := seqToks(0, 2*bs)
	runPrompt(t, m, dev, 1, concat(prompt, []int32{99}))
	tests := []struct {
		prompt []int32
		want   int
	}{
		{prompt, bs},        // both blocks cached, but the last token must be computed
		{prompt[:bs+1], bs}, // one block and a token
		{prompt[:bs], 0},    // exactly one cached block
		{prompt[:1], 0},     // one token
		{nil, 0},            // empty
		{concat(prompt, []int32{99}), 2 * bs},
	}
	for i, tt := range tests {
		id := SeqID(10 + i)
		newSeq(t, m, id)
		if got := mustMatch(t, m, id, tt.prompt); got != tt.want {
			t.Errorf("prompt of %d tokens matched %d, want %d", len(tt.prompt), got, tt.want)
		}
		if n := seqLen(t, m, id); n != tt.want {
			t.Errorf("Len after match = %d, want %d", n, tt.want)
		}
		if err := m.Free(id); err != nil {
			t.Fatal(err)
		}
	}
	invariants(t, m)
}

func TestLRUEviction(t *testing.T) {
	const bs = 2
	a := seqToks(10, 2*bs) // blocks a0 a1
	b := seqToks(20, 2*bs) // blocks b0 b1
	tail := []int32{0}

	setup := func(t *testing.T) (*Manager, *device, []int32, []int32) {
		t.Helper()
		m := newManager(t, Config{Blocks: 4, BlockSize: bs, EnablePrefixCache: true})
		dev := newDevice(m)
		runPrompt(t, m, dev, 1, a)
		runPrompt(t, m, dev, 2, b)
		ta, tb := table(t, m, 1), table(t, m, 2)
		for _, id := range []SeqID{1, 2} {
			if err := m.Free(id); err != nil {
				t.Fatal(err)
			}
		}
		if st := m.Stats(); st.Cached != 4 || st.Free != 0 {
			t.Fatalf("stats %+v: want all 4 blocks cached", st)
		}
		return m, dev, ta, tb
	}

	t.Run("oldest first, last block of a chain first", func(t *testing.T) {
		m, dev, ta, tb := setup(t)
		// Released order: a1 a0 b1 b0. Each new block evicts the oldest.
		newSeq(t, m, 3)
		wantEvicted := []int32{ta[1], ta[0], tb[1]}
		for i, want := range wantEvicted {
			appendOK(t, m, dev, 3, seqToks(30+2*i, bs))
			tb3 := table(t, m, 3)
			if got := tb3[len(tb3)-1]; got != want {
				t.Errorf("eviction %d took block %d, want %d", i, got, want)
			}
			if st := m.Stats(); st.Evictions != int64(i+1) {
				t.Errorf("Evictions = %d, want %d", st.Evictions, i+1)
			}
			invariants(t, m)
		}
		if got := matchOnly(t, m, 4, concat(a, tail)); got != 0 {
			t.Errorf("evicted prompt a matched %d tokens", got)
		}
		if got := matchOnly(t, m, 5, concat(b, tail)); got != bs {
			t.Errorf("prompt b matched %d tokens, want %d (b0 only)", got, bs)
		}
	})

	t.Run("reuse refreshes recency", func(t *testing.T) {
		m, dev, ta, tb := setup(t)
		// Using a's blocks again makes them the most recent: b goes first.
		if got := matchOnly(t, m, 3, concat(a, tail)); got != 2*bs {
			t.Fatalf("prompt a matched %d", got)
		}
		newSeq(t, m, 4)
		appendOK(t, m, dev, 4, seqToks(40, 2*bs))
		if got := table(t, m, 4); !slices.Equal(got, []int32{tb[1], tb[0]}) {
			t.Errorf("new blocks %v, want b's %v evicted child first", got, []int32{tb[1], tb[0]})
		}
		if got := matchOnly(t, m, 5, concat(b, tail)); got != 0 {
			t.Errorf("evicted prompt b matched %d tokens", got)
		}
		newSeq(t, m, 6)
		if got := mustMatch(t, m, 6, concat(a, tail)); got != 2*bs {
			t.Errorf("prompt a matched %d, want %d", got, 2*bs)
		}
		if got := table(t, m, 6); !slices.Equal(got, ta) {
			t.Errorf("table %v, want a's blocks %v", got, ta)
		}
		if got := dev.read(bs, table(t, m, 6), 2*bs); !slices.Equal(got, a) {
			t.Errorf("attached blocks hold %v, want %v", got, a)
		}
		invariants(t, m)
	})

	t.Run("free blocks before cached ones", func(t *testing.T) {
		m := newManager(t, Config{Blocks: 4, BlockSize: bs, EnablePrefixCache: true})
		runPrompt(t, m, nil, 1, a)
		if err := m.Free(1); err != nil {
			t.Fatal(err)
		}
		newSeq(t, m, 2)
		appendOK(t, m, nil, 2, seqToks(50, 2*bs))
		if st := m.Stats(); st.Evictions != 0 || st.Cached != 2 {
			t.Errorf("stats %+v: want the free blocks used and a still cached", st)
		}
	})
}

// matchOnly reports how many tokens of prompt a fresh sequence would get
// from the cache, leaving the pool as it was apart from LRU recency.
func matchOnly(t *testing.T, m *Manager, id SeqID, prompt []int32) int {
	t.Helper()
	newSeq(t, m, id)
	n := mustMatch(t, m, id, prompt)
	if err := m.Free(id); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStaleChildNotMatched checks that a block registered under a parent
// that has since been evicted and refilled with other content is not
// matched after the new content.
func TestStaleChildNotMatched(t *testing.T) {
	m := newManager(t, Config{Blocks: 3, BlockSize: 2, EnablePrefixCache: true})
	dev := newDevice(m)
	runPrompt(t, m, dev, 1, []int32{1, 2, 3, 4, 9}) // [1 2] [3 4] [9]
	ta := table(t, m, 1)
	// Seq 2 shares block [1 2]; dropping it unregisters that block while
	// [3 4] stays registered under it.
	newSeq(t, m, 2)
	if got := mustMatch(t, m, 2, []int32{1, 2, 3}); got != 2 {
		t.Fatalf("matched %d", got)
	}
	if err := m.Drop(2); err != nil {
		t.Fatal(err)
	}
	if err := m.Free(1); err != nil {
		t.Fatal(err)
	}
	// Block ta[0] is free again; refill it with [7 8].
	newSeq(t, m, 3)
	appendOK(t, m, dev, 3, []int32{7, 8})
	if got := table(t, m, 3); got[0] != ta[0] {
		t.Fatalf("seq 3 got block %d, the scenario needs %d", got[0], ta[0])
	}
	invariants(t, m)
	newSeq(t, m, 4)
	if got := mustMatch(t, m, 4, []int32{7, 8, 3, 4, 0}); got != 2 {
		t.Errorf("matched %d tokens, want 2: [3 4] was cached after [1 2], not [7 8]", got)
	}
	if got := dev.read(2, table(t, m, 4), 2); !slices.Equal(got, []int32{7, 8}) {
		t.Errorf("attached block holds %v", got)
	}
	invariants(t, m)
}

// TestHashCollisionsOnlyMiss forces every block to hash alike: hits must
// still be exact.
func TestHashCollisionsOnlyMiss(t *testing.T) {
	const bs = 4
	m := newManager(t, Config{Blocks: 16, BlockSize: bs, EnablePrefixCache: true})
	m.hash = func(*Manager, []int32) uint64 { return 42 }
	dev := newDevice(m)
	p1 := seqToks(0, 2*bs+1)
	p2 := seqToks(100, 2*bs+1)
	runPrompt(t, m, dev, 1, p1)
	if got := runPrompt(t, m, dev, 2, p2); got != 0 {
		t.Fatalf("colliding prompt matched %d tokens", got)
	}
	for _, id := range []SeqID{1, 2} {
		if err := m.Free(id); err != nil {
			t.Fatal(err)
		}
	}
	// p1's two blocks are registered (their keys differ by parent); p2's
	// first block collided with p1's, so its chain was not registered.
	if st := m.Stats(); st.Cached != 2 {
		t.Errorf("stats %+v: want 2 cached blocks", st)
	}
	if got := runPrompt(t, m, dev, 3, p2); got != 0 {
		t.Errorf("p2 matched %d tokens", got)
	}
	if got := runPrompt(t, m, dev, 4, p1); got != 2*bs {
		t.Errorf("p1 matched %d tokens, want %d", got, 2*bs)
	}
	invariants(t, m)
}

// TestDuplicateContentChains checks that a sequence that computed blocks
// already in the cache (without matching them) keeps the chain going from
// the cached copies, so its later blocks are found after them.
func TestDuplicateContentChains(t *testing.T) {
	const bs = 3
	m := newManager(t, Config{Blocks: 12, BlockSize: bs, EnablePrefixCache: true})
	dev := newDevice(m)
	base := seqToks(0, 2*bs)
	runPrompt(t, m, dev, 1, concat(base, []int32{1}))
	newSeq(t, m, 2)
	ext := concat(base, seqToks(50, bs+1))
	appendOK(t, m, dev, 2, ext) // no MatchPrefix: duplicates base's blocks
	if st := m.Stats(); len(m.index) != 3 {
		t.Errorf("index has %d blocks, want 3 (2 of seq 1, the third of seq 2); stats %+v", len(m.index), st)
	}
	t1, t2 := table(t, m, 1), table(t, m, 2)
	if got := runPrompt(t, m, dev, 3, concat(ext, []int32{5})); got != 3*bs {
		t.Fatalf("matched %d, want %d", got, 3*bs)
	}
	if got := table(t, m, 3); !slices.Equal(got[:3], []int32{t1[0], t1[1], t2[2]}) {
		t.Errorf("table %v, want seq 1's first two blocks then seq 2's third", got)
	}
	for _, id := range []SeqID{1, 2, 3} {
		if err := m.Free(id); err != nil {
			t.Fatal(err)
		}
	}
	// Cached: seq 1's two blocks and seq 2's third; seq 2's duplicates of
	// the first two and every partial block went back to the free list.
	if st := m.Stats(); st.Cached != 3 || st.Used != 0 || st.Free != 9 {
		t.Errorf("stats %+v, want 3 cached and 9 free", st)
	}
	invariants(t, m)
}

func TestPrefixCacheDisabled(t *testing.T) {
	m := newManager(t, Config{Blocks: 8, BlockSize: 2})
	prompt := seqToks(0, 7)
	for id := SeqID(1); id <= 2; id++ {
		if got := runPrompt(t, m, nil, id, prompt); got != 0 {
			t.Errorf("disabled cache matched %d tokens", got)
		}
		if err := m.Free(id); err != nil {
			t.Fatal(err)
		}
	}
	if st := m.Stats(); st.Cached != 0 || st.Free != 8 || st.Hits != 0 || st.Misses != 0 {
		t.Errorf("stats %+v", st)
	}
	invariants(t, m)
}

// TestNoRegistrationUnderReusedParent checks that a sequence whose chain
// hangs from a cached block that was since evicted and refilled does not
// register its later blocks: no lookup could reach them, they would only
// crowd the cache.
func TestNoRegistrationUnderReusedParent(t *testing.T) {
	m := newManager(t, Config{Blocks: 6, BlockSize: 2, EnablePrefixCache: true})
	runPrompt(t, m, nil, 1, []int32{1, 2, 9}) // [1 2] registered in block 0
	x := table(t, m, 1)[0]
	if err := m.Free(1); err != nil {
		t.Fatal(err)
	}
	newSeq(t, m, 2)
	appendOK(t, m, nil, 2, []int32{1, 2}) // a duplicate of x: its chain continues from x
	newSeq(t, m, 4)
	appendOK(t, m, nil, 4, seqToks(100, 2*m.Available()-2)) // every free block
	newSeq(t, m, 3)
	appendOK(t, m, nil, 3, []int32{5, 6})
	if got := table(t, m, 3)[0]; got != x || !m.blocks[x].hashed {
		t.Fatalf("seq 3 got block %d (hashed %v), the scenario needs the evicted %d re-registered", got, m.blocks[got].hashed, x)
	}
	if err := m.Free(4); err != nil {
		t.Fatal(err)
	}
	appendOK(t, m, nil, 2, []int32{3, 4})
	if b := table(t, m, 2)[1]; m.blocks[b].hashed {
		t.Errorf("block %d registered under the old content of block %d", b, x)
	}
	invariants(t, m)
}

// TestPrefixCountsOnlyCommittedMatches checks that a match undone before
// any Append (an admission the scheduler backed out of for want of blocks)
// adds nothing to Hits and Misses, and that a committed one counts once.
func TestPrefixCountsOnlyCommittedMatches(t *testing.T) {
	const bs = 4
	m := newManager(t, Config{Blocks: 16, BlockSize: bs, EnablePrefixCache: true})
	prompt := seqToks(1, 10) // 2 full blocks and 2 tokens
	runPrompt(t, m, nil, 1, prompt)
	if err := m.Free(1); err != nil {
		t.Fatal(err)
	}
	base := m.Stats()
	if base.Hits != 0 || base.Misses != 10 {
		t.Fatalf("after the first prompt: %+v, want 0 hit and 10 missed tokens", base)
	}

	// Matched, then backed out: Free and Drop both discard the match.
	for i, undo := range []func(SeqID) error{m.Free, m.Drop} {
		id := SeqID(10 + i)
		if err := m.NewSeq(id); err != nil {
			t.Fatal(err)
		}
		if got := mustMatch(t, m, id, prompt); got != 8 {
			t.Fatalf("seq %d matched %d tokens, want 8", id, got)
		}
		if st := m.Stats(); st.Hits != base.Hits || st.Misses != base.Misses {
			t.Errorf("seq %d: stats %+v after a match not yet appended to, want the counters unchanged (%d, %d)", id, st, base.Hits, base.Misses)
		}
		if i == 0 {
			// A failed Append does not commit the match either.
			if _, _, err := m.Append(id, seqToks(100, 16*bs)); !errors.Is(err, ErrNoSpace) {
				t.Fatalf("append beyond the pool: %v, want ErrNoSpace", err)
			}
		}
		if err := undo(id); err != nil {
			t.Fatal(err)
		}
		if st := m.Stats(); st.Hits != base.Hits || st.Misses != base.Misses {
			t.Errorf("seq %d undone: stats %+v, want the counters unchanged (%d, %d)", id, st, base.Hits, base.Misses)
		}
		if i == 1 {
			// Drop forgot the matched blocks; match them again below.
			runPrompt(t, m, nil, 20, prompt)
			if err := m.Free(20); err != nil {
				t.Fatal(err)
			}
			base = m.Stats()
		}
	}

	// Committed: counted at the first Append, once.
	if got := runPrompt(t, m, nil, 30, prompt); got != 8 {
		t.Fatalf("committed prompt matched %d tokens, want 8", got)
	}
	appendOK(t, m, nil, 30, seqToks(50, 3))
	if st := m.Stats(); st.Hits != base.Hits+8 || st.Misses != base.Misses+2 {
		t.Errorf("after a committed match: %+v, want hits %d, misses %d", st, base.Hits+8, base.Misses+2)
	}
	invariants(t, m)
}
