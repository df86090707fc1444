package kvcache

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return m
}

func newSeq(t *testing.T, m *Manager, id SeqID) {
	t.Helper()
	if err := m.NewSeq(id); err != nil {
		t.Fatalf("NewSeq(%d): %v", id, err)
	}
}

// appendOK appends tokens, writes them into dev (applying copies first) and
// checks the returned slots against the block table.
func appendOK(t *testing.T, m *Manager, dev *device, id SeqID, toks []int32) []Copy {
	t.Helper()
	before, _ := m.Len(id)
	slots, copies, err := m.Append(id, toks)
	if err != nil {
		t.Fatalf("Append(seq %d, %d tokens): %v", id, len(toks), err)
	}
	if err := checkSlots(m, id, before, slots); err != nil {
		t.Fatal(err)
	}
	if dev != nil {
		dev.apply(m.BlockSize(), copies, slots, toks)
	}
	return copies
}

// checkSlots verifies slots are the positions before.. of seq id in the
// layout compute.SeqAttn reads.
func checkSlots(m *Manager, id SeqID, before int, slots []int32) error {
	table, err := m.BlockTable(id)
	if err != nil {
		return err
	}
	bs := m.BlockSize()
	for i, s := range slots {
		j := before + i
		if want := table[j/bs]*int32(bs) + int32(j%bs); s != want {
			return fmt.Errorf("seq %d position %d: slot %d, table %v says %d", id, j, s, table, want)
		}
	}
	return nil
}

func table(t *testing.T, m *Manager, id SeqID) []int32 {
	t.Helper()
	tb, err := m.BlockTable(id)
	if err != nil {
		t.Fatalf("BlockTable(%d): %v", id, err)
	}
	return slices.Clone(tb)
}

func seqLen(t *testing.T, m *Manager, id SeqID) int {
	t.Helper()
	n, err := m.Len(id)
	if err != nil {
		t.Fatalf("Len(%d): %v", id, err)
	}
	return n
}

func mustMatch(t *testing.T, m *Manager, id SeqID, prompt []int32) int {
	t.Helper()
	n, err := m.MatchPrefix(id, prompt)
	if err != nil {
		t.Fatalf("MatchPrefix(seq %d, %d tokens): %v", id, len(prompt), err)
	}
	return n
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

// seqToks returns n tokens start, start+1, ...
func seqToks(start, n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = int32(start + i)
	}
	return s
}

// device stands in for the K/V pool: it stores the token id written to
// each slot. A sequence whose slots read back its own tokens has correct
// K/V (same tokens at the same positions after the same prefix).
type device struct{ slots []int32 }

func newDevice(m *Manager) *device {
	d := &device{slots: make([]int32, len(m.blocks)*m.bs)}
	for i := range d.slots {
		d.slots[i] = -1 // never written
	}
	return d
}

func (d *device) apply(bs int, copies []Copy, slots, toks []int32) {
	for _, c := range copies {
		copy(d.slots[int(c.Dst)*bs:int(c.Dst)*bs+c.Len], d.slots[int(c.Src)*bs:])
	}
	for i, s := range slots {
		d.slots[s] = toks[i]
	}
}

// read returns the first n positions of a sequence with the given table.
func (d *device) read(bs int, table []int32, n int) []int32 {
	out := make([]int32, n)
	for j := range out {
		out[j] = d.slots[int(table[j/bs])*bs+j%bs]
	}
	return out
}

// checkInvariants verifies the Manager's internal consistency.
func checkInvariants(m *Manager) error {
	n := len(m.blocks)
	bs := m.bs
	inFree := make([]bool, n)
	for _, b := range m.free {
		if inFree[b] {
			return fmt.Errorf("block %d twice in the free list", b)
		}
		inFree[b] = true
		if m.blocks[b].ref != 0 || m.blocks[b].hashed {
			return fmt.Errorf("free block %d has ref %d, hashed %v", b, m.blocks[b].ref, m.blocks[b].hashed)
		}
	}
	inLRU := make([]bool, n)
	cached := 0
	prev := m.lru
	for b := m.links[m.lru].next; b != m.lru; b = m.links[b].next {
		if b < 0 || int(b) >= n || inLRU[b] {
			return fmt.Errorf("LRU list broken at %d", b)
		}
		if m.links[b].prev != prev {
			return fmt.Errorf("LRU block %d: prev %d, want %d", b, m.links[b].prev, prev)
		}
		inLRU[b] = true
		cached++
		prev = b
		if m.blocks[b].ref != 0 || !m.blocks[b].hashed {
			return fmt.Errorf("cached block %d has ref %d, hashed %v", b, m.blocks[b].ref, m.blocks[b].hashed)
		}
	}
	if cached != m.cached {
		return fmt.Errorf("LRU list has %d blocks, counter says %d", cached, m.cached)
	}

	counts := make([]int32, n)
	entries := 0
	type use struct {
		id  SeqID
		idx int
	}
	users := make([][]use, n)
	for id, s := range m.seqs {
		if want := (s.n + bs - 1) / bs; len(s.table) != want {
			return fmt.Errorf("seq %d: %d tokens in %d blocks, want %d", id, s.n, len(s.table), want)
		}
		seen := map[int32]bool{}
		for i, b := range s.table {
			if seen[b] {
				return fmt.Errorf("seq %d: block %d twice in table %v", id, b, s.table)
			}
			seen[b] = true
			counts[b]++
			entries++
			users[b] = append(users[b], use{id, i})
			if m.blocks[b].hashed && (i+1)*bs > s.n {
				return fmt.Errorf("seq %d: hashed block %d is its partial block %d (length %d)", id, b, i, s.n)
			}
		}
	}
	sumRef, used, hashed := 0, 0, 0
	for b := range m.blocks {
		blk := &m.blocks[b]
		if blk.ref != counts[b] {
			return fmt.Errorf("block %d: ref %d but in %d tables", b, blk.ref, counts[b])
		}
		sumRef += int(blk.ref)
		states := 0
		if inFree[b] {
			states++
		}
		if inLRU[b] {
			states++
		}
		if blk.ref > 0 {
			states++
			used++
		}
		if states != 1 {
			return fmt.Errorf("block %d: in %d of free/used/cached (ref %d, free %v, cached %v)", b, states, blk.ref, inFree[b], inLRU[b])
		}
		if blk.hashed {
			hashed++
			if got, ok := m.index[blk.key]; !ok || got != int32(b) {
				return fmt.Errorf("hashed block %d not indexed under its key", b)
			}
		}
		// Sharing is legitimate only at the same position of every table
		// (fork or prefix match); a shared partial block only between
		// sequences of equal length (fork before either appended).
		for _, u := range users[b][min(1, len(users[b])):] {
			u0 := users[b][0]
			if u.idx != u0.idx {
				return fmt.Errorf("block %d at index %d of seq %d but %d of seq %d", b, u0.idx, u0.id, u.idx, u.id)
			}
			n0, n1 := m.seqs[u0.id].n, m.seqs[u.id].n
			if ((u.idx+1)*bs > n0 || (u.idx+1)*bs > n1) && n0 != n1 {
				return fmt.Errorf("partial block %d shared by seq %d (length %d) and seq %d (length %d)", b, u0.id, n0, u.id, n1)
			}
		}
	}
	if sumRef != entries {
		return fmt.Errorf("sum of ref counts %d, table entries %d", sumRef, entries)
	}
	if len(m.index) != hashed {
		return fmt.Errorf("index has %d entries, %d blocks hashed", len(m.index), hashed)
	}
	st := m.Stats()
	if st.Used != used || st.Free != len(m.free) || st.Cached != cached || st.Blocks != n ||
		st.Used+st.Free+st.Cached != st.Blocks || st.Seqs != len(m.seqs) {
		return fmt.Errorf("stats %+v: counted used %d, free %d, cached %d, seqs %d", st, used, len(m.free), cached, len(m.seqs))
	}
	if m.Available() != st.Free+st.Cached {
		return fmt.Errorf("Available %d, stats free %d + cached %d", m.Available(), st.Free, st.Cached)
	}
	return nil
}

func invariants(t *testing.T, m *Manager) {
	t.Helper()
	if err := checkInvariants(m); err != nil {
		t.Fatal(err)
	}
}
