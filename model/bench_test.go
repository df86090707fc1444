package model

import (
	"path/filepath"
	"testing"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/gguf"
)

// benchStories loads the real stories260K model on a backend, or skips.
func benchStories(b *testing.B, newBackend func() compute.Backend) *Model {
	b.Helper()
	path := filepath.Join(sharedDirTB(b), "models", "stories260K.gguf")
	f, err := gguf.Open(path)
	if err != nil {
		b.Skipf("reference model missing: %v", err)
	}
	b.Cleanup(func() { f.Close() })
	m, err := Load(f, newBackend())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

// BenchmarkStoriesPrefill64 measures a 64-token prompt in one batch.
func BenchmarkStoriesPrefill64(b *testing.B) {
	m := benchStories(b, newReference)
	s, err := NewSession(m, 64)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	prompt := make([]int32, 64)
	for i := range prompt {
		prompt[i] = int32(3 + i*7%500)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		if _, err := s.Eval(prompt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkStoriesDecode measures one-token steps at positions 0..127.
func BenchmarkStoriesDecode(b *testing.B) {
	m := benchStories(b, newReference)
	s, err := NewSession(m, 128)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	tok := []int32{1}
	for b.Loop() {
		if s.Len() == s.Ctx() {
			s.Reset()
		}
		if _, err := s.Eval(tok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}
