// Package kvcache is the paged KV-cache manager: it decides which fixed-size
// blocks of the backend's K/V pool (compute.KVPool) each sequence owns.
//
// The pool has Config.Blocks blocks of Config.BlockSize token slots. Position
// j of a sequence lives in slot table[j/BlockSize]*BlockSize + j%BlockSize,
// the layout compute.SeqAttn reads. The Manager never touches K/V data; it
// hands the engine slot numbers to write (Append) and, for copy-on-write,
// block copies to perform on the device (Copy).
//
// Blocks are reference counted. A block is in exactly one of three states:
// free (no references, no content worth keeping), used (referenced by at
// least one sequence's block table) or cached (no references, but a full
// block registered in the prefix cache, kept until evicted least recently
// used first when the free list runs dry).
//
// A request's life: NewSeq; MatchPrefix with its prompt to attach cached
// blocks; each step, Append (or AppendSlots into the batch's slot list) the
// tokens to compute, carry out any returned Copy, KVWrite the new K/V at the
// returned slots and pass BlockTable as compute.SeqAttn.Blocks; Fork for
// parallel samples; Free when done, or Drop after a failed step. A scheduler
// checks room first with NeedBlocks/CanAppend against Available.
//
// A Manager is not safe for concurrent use: the engine's scheduler goroutine
// is meant to be its only caller, so it takes no locks.
package kvcache

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
)

// DefaultBlockSize is the block size used when Config.BlockSize is 0.
const DefaultBlockSize = 16

// Errors returned (wrapped, with the sequence and sizes involved) by Manager
// methods; test for them with errors.Is.
var (
	// ErrNoSpace means the pool has too few free or evictable blocks.
	ErrNoSpace = errors.New("kvcache: no free blocks")
	// ErrUnknownSeq means the sequence id was never created or was freed.
	ErrUnknownSeq = errors.New("kvcache: unknown sequence")
	// ErrSeqExists means NewSeq or Fork named an id that is already live.
	ErrSeqExists = errors.New("kvcache: sequence already exists")
)

// SeqID names a sequence. The engine picks the ids; the Manager only
// requires that live ids are distinct.
type SeqID int64

// Config sizes a Manager.
type Config struct {
	Blocks    int // blocks in the pool, >= 1
	BlockSize int // token slots per block, >= 1; 0 means DefaultBlockSize
	// EnablePrefixCache registers full blocks by content so that later
	// prompts with the same prefix can reuse them (MatchPrefix).
	EnablePrefixCache bool
}

// Copy is a copy-on-write instruction: before writing the slots returned
// with it, the engine must copy, in every layer's K and V tensors, the rows
// of the first Len slots of block Src to the same offsets of block Dst
// (rows Src*BlockSize .. Src*BlockSize+Len-1 to Dst*BlockSize ..).
type Copy struct {
	Src, Dst int32 // block ids
	Len      int   // token slots to copy, 1 .. BlockSize-1
}

// Stats is a snapshot of the pool. Blocks == Used + Free + Cached.
type Stats struct {
	Blocks    int // total blocks in the pool
	BlockSize int
	Used      int // referenced by at least one sequence
	Free      int // unreferenced and holding nothing reusable
	Cached    int // unreferenced full blocks still in the prefix cache (evictable)
	Seqs      int // live sequences

	// Prefix cache counters, in prompt tokens, over every committed
	// MatchPrefix made with the prefix cache enabled: Hits were attached
	// from the cache, Misses must be computed. A match is committed by the
	// sequence's first Append; one freed or dropped before that (an
	// admission the scheduler backed out of) counts nothing.
	Hits, Misses int64
	Evictions    int64 // cached blocks reclaimed for new content
}

// block is the bookkeeping of one physical block.
type block struct {
	ref int32
	// hashed marks a full block registered in the prefix index under key,
	// with the registration's unique serial (see prefix.go).
	hashed bool
	serial uint64
	key    prefixKey
}

// sequence is one sequence's block table and length.
type sequence struct {
	table []int32
	n     int // tokens stored
	// parent identifies the registered block holding the same content as
	// this sequence's last full block (the chain its next full block hangs
	// from); see prefix.go.
	parent parentRef
	// pendHits and pendMisses are MatchPrefix's counts, added to the
	// Manager's at the first Append (pending until then).
	pendHits, pendMisses int64
	pending              bool
}

// Manager allocates pool blocks to sequences. Create it with New.
type Manager struct {
	bs     int
	blocks []block
	// tokens mirrors the token id stored in every slot, so that a filled
	// block can be hashed and a cache hit verified token by token.
	tokens []int32
	free   []int32 // stack of free block ids
	// links chain the cached blocks (ref == 0 && hashed) from least to
	// most recently released; links[lru] (the last entry) is the sentinel.
	links  []link
	lru    int32
	cached int

	seqs  map[SeqID]*sequence
	spare []*sequence // recycled sequences, to keep Append+Free allocation-free

	prefix     bool
	index      map[prefixKey]int32
	seed       maphash.Seed
	hash       func(m *Manager, toks []int32) uint64 // replaced by tests to force collisions
	hashBuf    []byte
	nextSerial uint64

	hits, misses, evictions int64
}

// link is a node of the LRU list of cached blocks.
type link struct{ prev, next int32 }

// New makes a Manager for a pool of cfg.Blocks blocks of cfg.BlockSize
// tokens. Slots are int32, so Blocks*BlockSize must fit in an int32.
func New(cfg Config) (*Manager, error) {
	bs := cfg.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < 1 {
		return nil, fmt.Errorf("kvcache: block size %d: must be >= 1 (0 selects %d)", cfg.BlockSize, DefaultBlockSize)
	}
	if cfg.Blocks < 1 {
		return nil, fmt.Errorf("kvcache: %d blocks: the pool needs at least 1", cfg.Blocks)
	}
	if cfg.Blocks > math.MaxInt32/bs {
		return nil, fmt.Errorf("kvcache: %d blocks of %d tokens: %d slots exceed the int32 slot range", cfg.Blocks, bs, int64(cfg.Blocks)*int64(bs))
	}
	m := &Manager{
		bs:     bs,
		blocks: make([]block, cfg.Blocks),
		tokens: make([]int32, cfg.Blocks*bs),
		free:   make([]int32, cfg.Blocks),
		links:  make([]link, cfg.Blocks+1),
		lru:    int32(cfg.Blocks),
		seqs:   make(map[SeqID]*sequence),
		prefix: cfg.EnablePrefixCache,
	}
	// Pop order 0, 1, 2, ... so that fresh pools hand out blocks in order.
	for i := range m.free {
		m.free[i] = int32(cfg.Blocks - 1 - i)
	}
	m.links[m.lru] = link{m.lru, m.lru}
	if m.prefix {
		m.index = make(map[prefixKey]int32)
		m.seed = maphash.MakeSeed()
		m.hash = (*Manager).hashTokens
		m.hashBuf = make([]byte, 4*bs)
	}
	return m, nil
}

// BlockSize is the number of token slots per block.
func (m *Manager) BlockSize() int { return m.bs }

// NewSeq creates an empty sequence.
func (m *Manager) NewSeq(id SeqID) error {
	if _, ok := m.seqs[id]; ok {
		return fmt.Errorf("kvcache: new seq %d: %w", id, ErrSeqExists)
	}
	m.seqs[id] = m.newSequence()
	return nil
}

func (m *Manager) newSequence() *sequence {
	if n := len(m.spare); n > 0 {
		s := m.spare[n-1]
		m.spare = m.spare[:n-1]
		return s
	}
	return &sequence{parent: rootParent}
}

func (m *Manager) seq(op string, id SeqID) (*sequence, error) {
	s, ok := m.seqs[id]
	if !ok {
		return nil, fmt.Errorf("kvcache: %s seq %d: %w", op, id, ErrUnknownSeq)
	}
	return s, nil
}

// Len is the number of tokens stored for the sequence.
func (m *Manager) Len(id SeqID) (int, error) {
	s, err := m.seq("len of", id)
	if err != nil {
		return 0, err
	}
	return s.n, nil
}

// BlockTable is the sequence's block table: entry i is the block holding
// positions i*BlockSize .. (i+1)*BlockSize-1. It is a view into the
// Manager's state, not a copy, so that building a batch costs nothing: the
// caller must not modify it, and it is valid only until the next Append,
// Free or Drop of that sequence (copy it to keep it longer).
func (m *Manager) BlockTable(id SeqID) ([]int32, error) {
	s, err := m.seq("block table of", id)
	if err != nil {
		return nil, err
	}
	return s.table[:len(s.table):len(s.table)], nil
}

// Available is the number of blocks an allocation can use now: free blocks
// plus cached blocks, which are evicted on demand.
func (m *Manager) Available() int { return len(m.free) + m.cached }

// NeedBlocks is the number of blocks Append(id, n tokens) would take from
// the pool now, counting a copy-on-write block when the sequence's last
// block is partially filled and shared. A scheduler admitting several
// sequences in one step sums these and compares the total with Available.
func (m *Manager) NeedBlocks(id SeqID, n int) (int, error) {
	s, err := m.seq("blocks needed by", id)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("kvcache: blocks needed by seq %d: negative token count %d", id, n)
	}
	return m.need(s, n), nil
}

func (m *Manager) need(s *sequence, n int) int {
	if n == 0 {
		return 0
	}
	k := (s.n+n+m.bs-1)/m.bs - len(s.table)
	if m.mustCopy(s) {
		k++
	}
	return k
}

// mustCopy reports whether appending to s writes into a partially filled
// block that another sequence also references.
func (m *Manager) mustCopy(s *sequence) bool {
	return s.n%m.bs != 0 && m.blocks[s.table[len(s.table)-1]].ref > 1
}

// CanAppend reports whether Append(id, n tokens) would succeed now. It is
// false for unknown sequences and negative n.
func (m *Manager) CanAppend(id SeqID, n int) bool {
	s, ok := m.seqs[id]
	return ok && n >= 0 && m.need(s, n) <= m.Available()
}

// Append reserves slots for tokens at the end of the sequence and returns
// the slot of each token, in order, for compute.Backend.KVWrite. If the
// sequence's last block is partially filled and shared (after Fork), it is
// first replaced by a private copy; the returned Copy, at most one, must be
// carried out on the device before the new slots are written. On error
// nothing changes.
//
// With the prefix cache enabled, every block this call fills is registered
// at once, before its K/V is written: the engine must write the K/V of all
// tokens it appends in the step that first reads them (a batched forward
// pass does: KVWrite precedes Attention in every layer), and must end
// sequences of a step that failed with Drop, not Free.
func (m *Manager) Append(id SeqID, tokens []int32) (slots []int32, copies []Copy, err error) {
	return m.AppendSlots(nil, id, tokens)
}

// AppendSlots is Append that appends the slots to dst and returns the
// extended slice, so that a scheduler can build a batch's slot list without
// allocating. On error dst is returned unchanged.
func (m *Manager) AppendSlots(dst []int32, id SeqID, tokens []int32) ([]int32, []Copy, error) {
	s, err := m.seq("append to", id)
	if err != nil {
		return dst, nil, err
	}
	if len(tokens) == 0 {
		return dst, nil, nil
	}
	if need := m.need(s, len(tokens)); need > m.Available() {
		return dst, nil, fmt.Errorf("kvcache: append %d tokens to seq %d (length %d): needs %d blocks, %d of %d available: %w",
			len(tokens), id, s.n, need, m.Available(), len(m.blocks), ErrNoSpace)
	}
	if s.pending {
		m.hits += s.pendHits
		m.misses += s.pendMisses
		s.pendHits, s.pendMisses, s.pending = 0, 0, false
	}
	var copies []Copy
	if m.mustCopy(s) {
		last := len(s.table) - 1
		src := s.table[last]
		dstBlock := m.alloc()
		fill := s.n % m.bs
		copy(m.tokens[int(dstBlock)*m.bs:int(dstBlock)*m.bs+fill], m.tokens[int(src)*m.bs:])
		m.blocks[src].ref-- // stays > 0: src was shared
		s.table[last] = dstBlock
		copies = []Copy{{Src: src, Dst: dstBlock, Len: fill}}
	}
	for _, tok := range tokens {
		off := s.n % m.bs
		if off == 0 {
			s.table = append(s.table, m.alloc())
		}
		slot := int(s.table[len(s.table)-1])*m.bs + off
		m.tokens[slot] = tok
		dst = append(dst, int32(slot))
		s.n++
		if off == m.bs-1 && m.prefix {
			m.register(s, s.table[len(s.table)-1])
		}
	}
	return dst, copies, nil
}

// Fork makes dst a new sequence sharing every block of src (for parallel
// sampling and beam search). Full blocks stay shared; the first Append to
// either sequence that writes into a shared partial block copies it.
func (m *Manager) Fork(src, dst SeqID) error {
	s, err := m.seq("fork", src)
	if err != nil {
		return err
	}
	if _, ok := m.seqs[dst]; ok {
		return fmt.Errorf("kvcache: fork seq %d into %d: %w", src, dst, ErrSeqExists)
	}
	d := m.newSequence()
	d.table = append(d.table, s.table...)
	d.n = s.n
	d.parent = s.parent
	for _, b := range s.table {
		m.blocks[b].ref++
	}
	m.seqs[dst] = d
	return nil
}

// Free ends a sequence and releases its blocks. Blocks no longer referenced
// return to the free list, or, if registered in the prefix cache, stay
// cached for later prompts. Freeing an unknown (or already freed) id
// changes nothing and returns ErrUnknownSeq.
func (m *Manager) Free(id SeqID) error {
	s, err := m.seq("free", id)
	if err != nil {
		return err
	}
	m.release(id, s)
	return nil
}

// Drop is Free for a sequence whose K/V may not have been written, after a
// failed step: every block in its table is also removed from the prefix
// cache (even blocks still shared), so that no later prompt can match
// content that was never computed. Blocks already cached before the failed
// step are forgotten too; that costs recomputation, never correctness.
func (m *Manager) Drop(id SeqID) error {
	s, err := m.seq("drop", id)
	if err != nil {
		return err
	}
	for _, b := range s.table {
		if m.blocks[b].hashed {
			m.unregister(b)
		}
	}
	m.release(id, s)
	return nil
}

func (m *Manager) release(id SeqID, s *sequence) {
	// Last block first: it is then older in the LRU list and evicted before
	// the blocks its prefix chain hangs from.
	for i := len(s.table) - 1; i >= 0; i-- {
		m.unref(s.table[i])
	}
	delete(m.seqs, id)
	s.table = s.table[:0]
	s.n = 0
	s.parent = rootParent
	s.pendHits, s.pendMisses, s.pending = 0, 0, false
	m.spare = append(m.spare, s)
}

// Stats returns a snapshot of the pool's usage.
func (m *Manager) Stats() Stats {
	return Stats{
		Blocks:    len(m.blocks),
		BlockSize: m.bs,
		Used:      len(m.blocks) - len(m.free) - m.cached,
		Free:      len(m.free),
		Cached:    m.cached,
		Seqs:      len(m.seqs),
		Hits:      m.hits,
		Misses:    m.misses,
		Evictions: m.evictions,
	}
}
