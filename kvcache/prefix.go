package kvcache

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
)

// Prefix caching.
//
// A full block is identified by its tokens together with the identity of
// the block before it, so that the same tokens after different prefixes are
// different blocks (their K/V differ). Each registration of a block gets a
// serial number that is never reused, and the index key is (serial of the
// registered previous block, hash of the block's tokens). A lookup walks a
// prompt from its first block, each step keyed by the serial found in the
// step before, so it can only reach blocks whose whole prefix matches.
//
// The hash is maphash with a per-Manager random seed. It only locates a
// candidate: every hit is verified by comparing the block's stored tokens
// with the prompt's, and the previous block is pinned exactly by its serial
// (not by a hash), so a hash collision, even a crafted one, costs a cache
// miss and can never attach the wrong K/V. Serials (uint64) also keep a
// block that was evicted and refilled from matching children registered
// under its old content.

// prefixKey indexes a registered full block.
type prefixKey struct {
	parent uint64 // serial of the registered previous block; 0 for a sequence's first block
	hash   uint64 // of the block's tokens
}

// parentRef names the registered block whose content equals a sequence's
// last full block. It is valid while that block is still registered with
// that serial; once not, the sequence's later blocks are not registered
// (a lookup could never reach them).
type parentRef struct {
	block  int32 // -1 for the empty prefix
	serial uint64
}

var rootParent = parentRef{block: -1}

func (m *Manager) parentValid(p parentRef) bool {
	if p.block < 0 {
		return p.serial == 0
	}
	b := &m.blocks[p.block]
	return b.hashed && b.serial == p.serial
}

func (m *Manager) hashTokens(toks []int32) uint64 {
	for i, t := range toks {
		binary.LittleEndian.PutUint32(m.hashBuf[4*i:], uint32(t))
	}
	return maphash.Bytes(m.seed, m.hashBuf[:4*len(toks)])
}

func (m *Manager) blockTokens(b int32) []int32 {
	return m.tokens[int(b)*m.bs : int(b+1)*m.bs]
}

// register enters s's just-filled last block b in the prefix index, unless
// a block with the same prefix and tokens is already there (then that one
// stays the canonical copy and s's chain continues from it).
func (m *Manager) register(s *sequence, b int32) {
	if !m.parentValid(s.parent) {
		s.parent = parentRef{block: -1, serial: ^uint64(0)} // stays invalid
		return
	}
	toks := m.blockTokens(b)
	key := prefixKey{parent: s.parent.serial, hash: m.hash(m, toks)}
	if c, ok := m.index[key]; ok {
		if slices.Equal(m.blockTokens(c), toks) {
			s.parent = parentRef{block: c, serial: m.blocks[c].serial}
		} else {
			// Hash collision: the slot is taken by other content. Leave b
			// unregistered and stop registering this sequence's chain.
			s.parent = parentRef{block: -1, serial: ^uint64(0)}
		}
		return
	}
	m.nextSerial++
	m.blocks[b].hashed = true
	m.blocks[b].serial = m.nextSerial
	m.blocks[b].key = key
	m.index[key] = b
	s.parent = parentRef{block: b, serial: m.nextSerial}
}

// unregister removes b from the prefix index. Children registered under it
// become unreachable and age out of the cache.
func (m *Manager) unregister(b int32) {
	blk := &m.blocks[b]
	delete(m.index, blk.key)
	blk.hashed = false
	blk.key = prefixKey{}
	blk.serial = 0
}

// MatchPrefix attaches to the empty sequence id the longest run of cached
// full blocks matching the start of prompt and returns the number of
// prompt tokens they cover: a multiple of BlockSize, always less than
// len(prompt) so that at least one token is computed (its logits start
// generation). The caller then Appends prompt[cached:]. Attached blocks
// that were cached (unreferenced) become used, so Available can shrink.
// With the prefix cache disabled it attaches nothing and returns 0.
//
// The match enters Stats's Hits and Misses at the sequence's first Append,
// not here: a caller that matches and then finds no room for the rest (and
// frees the sequence) has not served the prompt from the cache.
func (m *Manager) MatchPrefix(id SeqID, prompt []int32) (cached int, err error) {
	s, err := m.seq("match prefix for", id)
	if err != nil {
		return 0, err
	}
	if s.n != 0 {
		return 0, fmt.Errorf("kvcache: match prefix for seq %d: sequence already holds %d tokens, want an empty one", id, s.n)
	}
	if !m.prefix || len(prompt) == 0 {
		return 0, nil
	}
	parent := rootParent
	full := (len(prompt) - 1) / m.bs
	for k := 0; k < full; k++ {
		toks := prompt[k*m.bs : (k+1)*m.bs]
		c, ok := m.index[prefixKey{parent: parent.serial, hash: m.hash(m, toks)}]
		if !ok || !slices.Equal(m.blockTokens(c), toks) {
			break
		}
		m.ref(c)
		s.table = append(s.table, c)
		parent = parentRef{block: c, serial: m.blocks[c].serial}
	}
	s.n = len(s.table) * m.bs
	s.parent = parent
	s.pendHits, s.pendMisses, s.pending = int64(s.n), int64(len(prompt)-s.n), true
	return s.n, nil
}
