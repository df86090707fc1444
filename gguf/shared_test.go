package gguf

import (
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"os"
	"path/filepath"
	"testing"
)

// sharedDir returns ../shared next to the repository root (the directory
// holding go.mod), skipping the test when it is absent.
func sharedDir(t testing.TB) string {
	t.Helper()
	return shareddata.Dir(t)
}

// sharedFile returns a file under ../shared, skipping the test when it is absent.
func sharedFile(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(sharedDir(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared file %s is missing", p)
	}
	return p
}

// sharedGGUFs lists every .gguf file under ../shared.
func sharedGGUFs(t testing.TB) []string {
	t.Helper()
	root := sharedDir(t)
	var paths []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Ext(p) == ".gguf" {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skipf("no .gguf files under %s", root)
	}
	return paths
}

func TestOpenShared(t *testing.T) {
	for _, p := range sharedGGUFs(t) {
		rel, _ := filepath.Rel(sharedDir(t), p)
		t.Run(rel, func(t *testing.T) {
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Version != 2 && f.Version != 3 {
				t.Errorf("version %d", f.Version)
			}
			if _, err := f.Architecture(); err != nil {
				t.Error(err)
			}
			if len(f.Tensors) > 0 && f.DataOffset%int64(f.Alignment) != 0 {
				t.Errorf("data offset %d not aligned to %d", f.DataOffset, f.Alignment)
			}
			var total int64
			for i := range f.Tensors {
				ti := &f.Tensors[i]
				b, err := f.TensorData(ti)
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(b)) != ti.Size {
					t.Errorf("tensor %s: %d bytes, want %d", ti.Name, len(b), ti.Size)
				}
				if got, ok := f.Tensor(ti.Name); !ok || got != ti {
					t.Errorf("Tensor(%q) does not find it", ti.Name)
				}
				total += ti.Size
			}
			if total > f.Size()-f.DataOffset {
				t.Errorf("tensors total %d bytes, more than the %d-byte data section", total, f.Size()-f.DataOffset)
			}
			if err := f.Close(); err != nil {
				t.Error(err)
			}
			if _, err := f.TensorData(&TensorInfo{Name: "x"}); err == nil {
				t.Error("TensorData after Close succeeded")
			}
		})
	}
}

func TestOpenStories260K(t *testing.T) {
	f, err := Open(sharedFile(t, "models/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if arch, err := f.Architecture(); err != nil || arch != "llama" {
		t.Errorf("architecture %q, %v; want llama", arch, err)
	}
	if len(f.Tensors) != 48 {
		t.Errorf("%d tensors, want 48", len(f.Tensors))
	}
	if n, err := f.GetUint32("llama.embedding_length"); err != nil || n != 64 {
		t.Errorf("llama.embedding_length = %d, %v; want 64", n, err)
	}
	if n, err := f.GetInt64("llama.embedding_length"); err != nil || n != 64 {
		t.Errorf("GetInt64(llama.embedding_length) = %d, %v; want 64", n, err)
	}
	toks, err := f.GetStrings("tokenizer.ggml.tokens")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 512 || toks[0] != "<unk>" || toks[1] != "<s>" || toks[2] != "</s>" {
		t.Errorf("tokens: %d, first %q", len(toks), toks[:min(3, len(toks))])
	}
	scores, err := f.GetFloat32s("tokenizer.ggml.scores")
	if err != nil || len(scores) != 512 {
		t.Errorf("scores: %d, %v", len(scores), err)
	}
	types, err := f.GetInt32s("tokenizer.ggml.token_type")
	if err != nil || len(types) != 512 || types[0] != 2 {
		t.Errorf("token types: %d, %v", len(types), err)
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		t.Fatal("no token_embd.weight")
	}
	if len(emb.Dims) != 2 || emb.Dims[0] != 64 || emb.Dims[1] != 512 || emb.Elems() != 64*512 {
		t.Errorf("token_embd.weight dims %v", emb.Dims)
	}
}

// BenchmarkOpenStories260K measures Open (mmap) plus parsing the metadata
// (a 512-token vocabulary) and the tensor table of a real model.
func BenchmarkOpenStories260K(b *testing.B) {
	path := sharedFile(b, "models/stories260K.gguf")
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkParseVocab measures parsing a large vocabulary from memory.
func BenchmarkParseVocab(b *testing.B) {
	data, err := os.ReadFile(sharedFile(b, "testdata/tokenizer/ggml-vocab-deepseek-llm.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
