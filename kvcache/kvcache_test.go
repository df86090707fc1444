package kvcache

import (
	"errors"
	"slices"
	"testing"
)

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		wantBS int // 0: want an error
	}{
		{"default block size", Config{Blocks: 3}, DefaultBlockSize},
		{"block size 1", Config{Blocks: 1, BlockSize: 1}, 1},
		{"awkward", Config{Blocks: 7, BlockSize: 13}, 13},
		{"zero blocks", Config{Blocks: 0, BlockSize: 16}, 0},
		{"negative blocks", Config{Blocks: -4, BlockSize: 16}, 0},
		{"negative block size", Config{Blocks: 4, BlockSize: -1}, 0},
		{"slots overflow int32", Config{Blocks: 1 << 27, BlockSize: 16}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if tt.wantBS == 0 {
				if err == nil {
					t.Fatalf("New(%+v) succeeded, want an error", tt.cfg)
				}
				t.Logf("error: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("New(%+v): %v", tt.cfg, err)
			}
			if m.BlockSize() != tt.wantBS {
				t.Errorf("BlockSize %d, want %d", m.BlockSize(), tt.wantBS)
			}
			st := m.Stats()
			if st.Blocks != tt.cfg.Blocks || st.Free != tt.cfg.Blocks || st.Used != 0 || st.Cached != 0 {
				t.Errorf("fresh stats %+v", st)
			}
		})
	}
}

// snapshot captures what a failed call must leave unchanged.
type snapshot struct {
	stats  Stats
	lens   map[SeqID]int
	tables map[SeqID][]int32
}

func snap(t *testing.T, m *Manager) snapshot {
	t.Helper()
	s := snapshot{m.Stats(), map[SeqID]int{}, map[SeqID][]int32{}}
	for id := range m.seqs {
		s.lens[id] = seqLen(t, m, id)
		s.tables[id] = table(t, m, id)
	}
	return s
}

func (s snapshot) equal(o snapshot) bool {
	if s.stats != o.stats || len(s.lens) != len(o.lens) {
		return false
	}
	for id, n := range s.lens {
		if o.lens[id] != n || !slices.Equal(s.tables[id], o.tables[id]) {
			return false
		}
	}
	return true
}

func TestCapacityExact(t *testing.T) {
	for _, prefix := range []bool{false, true} {
		const nb, bs = 7, 5
		m := newManager(t, Config{Blocks: nb, BlockSize: bs, EnablePrefixCache: prefix})
		dev := newDevice(m)
		// Three sequences of 2, 3 and 2 blocks, filled in interleaved chunks
		// of awkward sizes: exactly nb*bs tokens in all.
		want := map[SeqID]int{1: 2 * bs, 2: 3 * bs, 3: 2 * bs}
		for id := range want {
			newSeq(t, m, id)
		}
		chunks := []int{3, 7, 1, 4, 9}
		total, tok := 0, 0
		for step := 0; total < nb*bs; step++ {
			for id := SeqID(1); id <= 3; id++ {
				have := seqLen(t, m, id)
				n := min(chunks[(step+int(id))%len(chunks)], want[id]-have)
				if n == 0 {
					continue
				}
				if !m.CanAppend(id, n) {
					t.Fatalf("CanAppend(seq %d, %d) false with %d of %d tokens stored", id, n, total, nb*bs)
				}
				appendOK(t, m, dev, id, seqToks(tok, n))
				tok += n
				total += n
			}
		}
		invariants(t, m)
		if st := m.Stats(); st.Used != nb || st.Free != 0 || st.Cached != 0 {
			t.Fatalf("prefix %v: full pool stats %+v", prefix, st)
		}
		before := snap(t, m)
		for id := SeqID(1); id <= 3; id++ {
			if m.CanAppend(id, 1) {
				t.Errorf("CanAppend(seq %d, 1) true on a full pool", id)
			}
			slots, copies, err := m.Append(id, []int32{99})
			wantErr(t, "append to full pool", err, ErrNoSpace)
			if slots != nil || copies != nil {
				t.Errorf("failed Append returned slots %v copies %v", slots, copies)
			}
		}
		newSeq(t, m, 4)
		_, _, err := m.Append(4, []int32{1})
		wantErr(t, "append to a new sequence on a full pool", err, ErrNoSpace)
		t.Logf("full pool error: %v", err)
		if err := m.Free(4); err != nil {
			t.Fatal(err)
		}
		if after := snap(t, m); !before.equal(after) {
			t.Errorf("failed appends changed state:\nbefore %+v\nafter  %+v", before, after)
		}
		invariants(t, m)
		for id := SeqID(1); id <= 3; id++ {
			tb := table(t, m, id)
			if got := dev.read(bs, tb, seqLen(t, m, id)); slices.Contains(got, 99) || slices.Contains(got, -1) {
				t.Errorf("seq %d reads %v", id, got)
			}
		}
	}
}

func TestAppendPartialFailureChangesNothing(t *testing.T) {
	const bs = 4
	m := newManager(t, Config{Blocks: 2, BlockSize: bs})
	newSeq(t, m, 1)
	appendOK(t, m, nil, 1, seqToks(0, 5)) // 2 blocks, 3 slots left in the second
	before := snap(t, m)
	if n, err := m.NeedBlocks(1, 4); err != nil || n != 1 {
		t.Fatalf("NeedBlocks(1, 4) = %d, %v; want 1", n, err)
	}
	if m.CanAppend(1, 4) {
		t.Fatal("CanAppend(1, 4) true with 3 slots left")
	}
	dst := []int32{42}
	got, _, err := m.AppendSlots(dst, 1, seqToks(5, 4))
	wantErr(t, "append past capacity", err, ErrNoSpace)
	if !slices.Equal(got, []int32{42}) {
		t.Errorf("failed AppendSlots returned %v, want dst unchanged", got)
	}
	if after := snap(t, m); !before.equal(after) {
		t.Fatalf("failed append changed state:\nbefore %+v\nafter  %+v", before, after)
	}
	if !m.CanAppend(1, 3) {
		t.Fatal("CanAppend(1, 3) false with 3 slots left")
	}
	got, _, err = m.AppendSlots(dst, 1, seqToks(5, 3))
	if err != nil {
		t.Fatal(err)
	}
	tb := table(t, m, 1)
	want := []int32{42, tb[1]*bs + 1, tb[1]*bs + 2, tb[1]*bs + 3}
	if !slices.Equal(got, want) {
		t.Errorf("AppendSlots = %v, want %v", got, want)
	}
	if seqLen(t, m, 1) != 2*bs {
		t.Errorf("Len = %d, want %d", seqLen(t, m, 1), 2*bs)
	}
	invariants(t, m)
}

func TestUnknownAndDuplicateIDs(t *testing.T) {
	m := newManager(t, Config{Blocks: 4, BlockSize: 3, EnablePrefixCache: true})
	newSeq(t, m, 1)
	appendOK(t, m, nil, 1, seqToks(0, 4))
	before := snap(t, m)

	wantErr(t, "NewSeq twice", m.NewSeq(1), ErrSeqExists)
	wantErr(t, "Fork onto a live id", m.Fork(1, 1), ErrSeqExists)
	wantErr(t, "Fork from unknown", m.Fork(9, 10), ErrUnknownSeq)
	_, _, err := m.Append(9, []int32{1})
	wantErr(t, "Append unknown", err, ErrUnknownSeq)
	_, err = m.Len(9)
	wantErr(t, "Len unknown", err, ErrUnknownSeq)
	_, err = m.BlockTable(9)
	wantErr(t, "BlockTable unknown", err, ErrUnknownSeq)
	_, err = m.NeedBlocks(9, 1)
	wantErr(t, "NeedBlocks unknown", err, ErrUnknownSeq)
	if _, err := m.NeedBlocks(1, -1); err == nil {
		t.Error("NeedBlocks with -1 tokens succeeded")
	}
	_, err = m.MatchPrefix(9, seqToks(0, 8))
	wantErr(t, "MatchPrefix unknown", err, ErrUnknownSeq)
	if _, err := m.MatchPrefix(1, seqToks(0, 8)); err == nil {
		t.Error("MatchPrefix on a non-empty sequence succeeded")
	}
	wantErr(t, "Free unknown", m.Free(9), ErrUnknownSeq)
	wantErr(t, "Drop unknown", m.Drop(9), ErrUnknownSeq)
	if m.CanAppend(9, 1) || m.CanAppend(1, -1) {
		t.Error("CanAppend true for an unknown id or negative count")
	}
	if slots, copies, err := m.Append(1, nil); err != nil || slots != nil || copies != nil {
		t.Errorf("Append of no tokens = %v, %v, %v", slots, copies, err)
	}
	if after := snap(t, m); !before.equal(after) {
		t.Fatalf("rejected calls changed state:\nbefore %+v\nafter  %+v", before, after)
	}

	if err := m.Free(1); err != nil {
		t.Fatal(err)
	}
	afterFree := m.Stats()
	wantErr(t, "Free twice", m.Free(1), ErrUnknownSeq)
	if m.Stats() != afterFree {
		t.Errorf("second Free changed stats: %+v then %+v", afterFree, m.Stats())
	}
	// A freed id can be reused.
	newSeq(t, m, 1)
	if n := seqLen(t, m, 1); n != 0 {
		t.Errorf("reused id has length %d", n)
	}
	invariants(t, m)
}

func TestFreeReturnsEveryBlock(t *testing.T) {
	m := newManager(t, Config{Blocks: 40, BlockSize: 3})
	dev := newDevice(m)
	for id := SeqID(0); id < 6; id++ {
		newSeq(t, m, id)
		appendOK(t, m, dev, id, seqToks(int(id)*100, 2+int(id)*3))
	}
	for id := SeqID(0); id < 6; id++ {
		if err := m.Fork(id, id+10); err != nil {
			t.Fatal(err)
		}
		appendOK(t, m, dev, id+10, seqToks(500, int(id)+1))
	}
	if err := m.Fork(12, 20); err != nil {
		t.Fatal(err)
	}
	invariants(t, m)
	if st := m.Stats(); st.Used == 0 || st.Seqs != 13 {
		t.Fatalf("stats %+v", st)
	}
	for _, id := range []SeqID{3, 12, 0, 20, 1, 2, 4, 5, 10, 11, 13, 14, 15} {
		if err := m.Free(id); err != nil {
			t.Fatalf("Free(%d): %v", id, err)
		}
		invariants(t, m)
	}
	if st := m.Stats(); st.Used != 0 || st.Free != 40 || st.Cached != 0 || st.Seqs != 0 {
		t.Errorf("after freeing everything: %+v", st)
	}
}

func TestForkCopyOnWrite(t *testing.T) {
	const bs = 4
	m := newManager(t, Config{Blocks: 8, BlockSize: bs})
	dev := newDevice(m)
	newSeq(t, m, 1)
	appendOK(t, m, dev, 1, seqToks(0, 6)) // blocks [b0 full, b1 with 2 tokens]
	if err := m.Fork(1, 2); err != nil {
		t.Fatal(err)
	}
	src := table(t, m, 1)
	if got := table(t, m, 2); !slices.Equal(got, src) || seqLen(t, m, 2) != 6 {
		t.Fatalf("fork table %v len %d, want %v len 6", got, seqLen(t, m, 2), src)
	}
	if n, _ := m.NeedBlocks(2, 1); n != 1 {
		t.Errorf("NeedBlocks for appending into a shared partial block = %d, want 1", n)
	}
	invariants(t, m)

	copies := appendOK(t, m, dev, 2, []int32{100})
	got := table(t, m, 2)
	if len(copies) != 1 || copies[0] != (Copy{Src: src[1], Dst: got[1], Len: 2}) {
		t.Fatalf("copies %v, want one copy of block %d's 2 slots to seq 2's new block %d", copies, src[1], got[1])
	}
	if got[0] != src[0] || got[1] == src[1] {
		t.Errorf("seq 2 table %v: want the full block %d kept and a new last block", got, src[0])
	}
	if tb := table(t, m, 1); !slices.Equal(tb, src) {
		t.Errorf("seq 1 table changed to %v, want %v", tb, src)
	}
	// The original is now private to seq 1: appending needs no copy.
	if c := appendOK(t, m, dev, 1, []int32{200, 201}); len(c) != 0 {
		t.Errorf("append to an unshared block copied %v", c)
	}
	if got := dev.read(bs, table(t, m, 1), 8); !slices.Equal(got, []int32{0, 1, 2, 3, 4, 5, 200, 201}) {
		t.Errorf("seq 1 reads %v", got)
	}
	if got := dev.read(bs, table(t, m, 2), 7); !slices.Equal(got, []int32{0, 1, 2, 3, 4, 5, 100}) {
		t.Errorf("seq 2 reads %v", got)
	}
	invariants(t, m)

	// Fork at a block boundary: appending opens a new block, nothing to copy.
	if err := m.Fork(1, 3); err != nil {
		t.Fatal(err)
	}
	if c := appendOK(t, m, dev, 3, []int32{300}); len(c) != 0 {
		t.Errorf("append after forking at a block boundary copied %v", c)
	}
	if a, b := table(t, m, 1), table(t, m, 3); !slices.Equal(a, b[:2]) || len(b) != 3 {
		t.Errorf("tables %v and %v: want the first two blocks shared", a, b)
	}
	invariants(t, m)
}

func TestCopyOnWriteNeedsSpace(t *testing.T) {
	m := newManager(t, Config{Blocks: 2, BlockSize: 4})
	newSeq(t, m, 1)
	appendOK(t, m, nil, 1, seqToks(0, 5))
	if err := m.Fork(1, 2); err != nil {
		t.Fatal(err)
	}
	before := snap(t, m)
	// One slot left in the shared block, but writing it needs a private
	// copy and the pool is full.
	if m.CanAppend(2, 1) {
		t.Error("CanAppend true though copy-on-write needs a block")
	}
	_, _, err := m.Append(2, []int32{9})
	wantErr(t, "copy-on-write on a full pool", err, ErrNoSpace)
	if after := snap(t, m); !before.equal(after) {
		t.Errorf("failed append changed state")
	}
	// Once seq 1 is gone the block is private again and fits in place.
	if err := m.Free(1); err != nil {
		t.Fatal(err)
	}
	if c := appendOK(t, m, nil, 2, seqToks(5, 3)); len(c) != 0 {
		t.Errorf("copies %v after the sharer was freed", c)
	}
	invariants(t, m)
}

func TestDropForgetsCachedBlocks(t *testing.T) {
	m := newManager(t, Config{Blocks: 6, BlockSize: 2, EnablePrefixCache: true})
	prompt := seqToks(10, 7)
	newSeq(t, m, 1)
	mustMatch(t, m, 1, prompt)
	appendOK(t, m, nil, 1, prompt)
	newSeq(t, m, 2)
	if got := mustMatch(t, m, 2, prompt); got != 6 {
		t.Fatalf("match before drop = %d, want 6", got)
	}
	if err := m.Drop(1); err != nil {
		t.Fatal(err)
	}
	invariants(t, m)
	newSeq(t, m, 3)
	if got := mustMatch(t, m, 3, prompt); got != 0 {
		t.Errorf("match after Drop = %d, want 0", got)
	}
	if err := m.Free(2); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Cached != 0 || st.Used != 0 {
		t.Errorf("after drop and free: %+v", st)
	}
	invariants(t, m)
}

func TestErrorsWrap(t *testing.T) {
	m := newManager(t, Config{Blocks: 1, BlockSize: 1})
	newSeq(t, m, 7)
	appendOK(t, m, nil, 7, []int32{1})
	_, _, err := m.Append(7, []int32{2, 3})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("error %v", err)
	}
	t.Logf("message: %v", err)
}
