package kvcache

import (
	"fmt"
	"testing"
)

// BenchmarkAppendFree measures Append plus the share of Free, per token:
// decode appends one token per call, prefill a chunk of 512. A sequence
// grows to 1024 tokens, then is freed and a new one started.
func BenchmarkAppendFree(b *testing.B) {
	for _, prefix := range []bool{false, true} {
		for _, chunk := range []int{1, 512} {
			b.Run(fmt.Sprintf("prefix=%v/chunk=%d", prefix, chunk), func(b *testing.B) {
				const seqLen = 1024
				m, err := New(Config{Blocks: 4096, BlockSize: DefaultBlockSize, EnablePrefixCache: prefix})
				if err != nil {
					b.Fatal(err)
				}
				toks := make([]int32, seqLen)
				for i := range toks {
					toks[i] = int32(i*7919) % 32000
				}
				slots := make([]int32, 0, chunk)
				id := SeqID(0)
				if err := m.NewSeq(id); err != nil {
					b.Fatal(err)
				}
				n := 0
				b.ReportAllocs()
				b.ResetTimer()
				for done := 0; done < b.N; done += chunk {
					if n == seqLen {
						if err := m.Free(id); err != nil {
							b.Fatal(err)
						}
						id++
						if err := m.NewSeq(id); err != nil {
							b.Fatal(err)
						}
						n = 0
					}
					// Vary the content per sequence so the prefix cache keeps
					// registering new blocks (and evicting) instead of deduping.
					toks[n] = int32(id)
					slots, _, err = m.AppendSlots(slots[:0], id, toks[n:n+chunk])
					if err != nil {
						b.Fatal(err)
					}
					n += chunk
				}
			})
		}
	}
}
