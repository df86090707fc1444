// Package shareddata locates the project's read-only reference data (the
// ../shared folder beside the checkout: models, llama.cpp golden logits,
// tokenizer vectors) for tests, and skips a test clearly when it is absent.
package shareddata

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared data folder: $ROCMFORGE_SHARED when set (the GPU
// machine gets a copy inside the checkout), else ../shared next to the
// directory holding go.mod. It skips tb, naming the missing path, when the
// folder does not exist.
func Dir(tb testing.TB) string {
	tb.Helper()
	if env := os.Getenv("ROCMFORGE_SHARED"); env != "" {
		if _, err := os.Stat(env); err != nil {
			tb.Skipf("reference data missing: ROCMFORGE_SHARED=%s", env)
		}
		return env
	}
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Skip("no go.mod above the test directory, so ../shared cannot be located")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(shared); err != nil {
		tb.Skipf("reference data missing: %s", shared)
	}
	return shared
}

// Path joins rel to Dir and skips tb when that file is missing.
func Path(tb testing.TB, rel ...string) string {
	tb.Helper()
	p := filepath.Join(append([]string{Dir(tb)}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("reference data missing: %s", p)
	}
	return p
}
