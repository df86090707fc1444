package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// storiesGolden locates ../shared's stories260K model and its llama.cpp
// golden logits, or skips.
func storiesGolden(t *testing.T) (modelPath, goldenPath string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Skip("no go.mod above the test directory, so ../shared cannot be located")
		}
		dir = filepath.Dir(dir)
	}
	shared := filepath.Join(dir, "..", "shared")
	modelPath = filepath.Join(shared, "models", "stories260K.gguf")
	goldenPath = filepath.Join(shared, "testdata", "golden", "stories260k", "once_upon.json")
	for _, p := range []string{modelPath, goldenPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("reference data missing: %s", p)
		}
	}
	return modelPath, goldenPath
}

func TestLogitsMatchesGolden(t *testing.T) {
	modelPath, goldenPath := storiesGolden(t)
	var g struct {
		Tokens    []int32  `json:"tokens"`
		LogitsB64 []string `json:"logits_b64"`
	}
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(g.Tokens))
	for i, id := range g.Tokens {
		ids[i] = strconv.Itoa(int(id))
	}
	golden := func(i int) []float32 {
		raw, err := base64.StdEncoding.DecodeString(g.LogitsB64[i])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float32, len(raw)/4)
		for j := range out {
			out[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
		}
		return out
	}

	for _, all := range []bool{true, false} {
		args := []string{"-m", modelPath, "--tokens", strings.Join(ids, ",")}
		first := len(g.Tokens) - 1
		if all {
			args = append(args, "--all")
			first = 0
		}
		var stdout, stderr bytes.Buffer
		if err := runLogits(args, &stdout, &stderr); err != nil {
			t.Fatalf("logits %v: %v (stderr %q)", args, err, stderr.String())
		}
		var out logitsOutput
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("output is not JSON: %v", err)
		}
		if len(out.Tokens) != len(g.Tokens) {
			t.Errorf("--all=%v: %d tokens echoed, want %d", all, len(out.Tokens), len(g.Tokens))
		}
		if want := len(g.Tokens) - first; len(out.Logits) != want {
			t.Fatalf("--all=%v: %d rows of logits, want %d", all, len(out.Logits), want)
		}
		var maxAbs float64
		for r, row := range out.Logits {
			want := golden(first + r)
			if len(row) != len(want) {
				t.Fatalf("row %d has %d logits, want %d", r, len(row), len(want))
			}
			for j := range row {
				maxAbs = math.Max(maxAbs, math.Abs(float64(row[j])-float64(want[j])))
			}
		}
		t.Logf("--all=%v: max|Δ| %.3g against llama.cpp", all, maxAbs)
		// README threshold for stories260k (F32, logit std 6.7).
		if maxAbs > 1e-3 {
			t.Errorf("--all=%v: max|Δ| %.3g exceeds 1e-3", all, maxAbs)
		}
	}
}

func TestLogitsBadArgs(t *testing.T) {
	modelPath, _ := storiesGolden(t)
	tests := []struct {
		args   []string
		substr string
	}{
		{[]string{"--tokens", "1,2"}, "-m"},
		{[]string{"-m", modelPath}, "--tokens"},
		{[]string{"-m", modelPath, "--tokens", "1,x"}, `"x"`},
		{[]string{"-m", modelPath, "--tokens", "1,-2"}, `"-2"`},
		{[]string{"-m", modelPath, "--tokens", "1,512"}, "512"},
		{[]string{"-m", modelPath, "--tokens", "1", "--backend", "tpu"}, "tpu"},
		{[]string{"-m", filepath.Join(t.TempDir(), "none.gguf"), "--tokens", "1"}, "none.gguf"},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		err := runLogits(tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("logits %q: error %v, want one mentioning %s", tc.args, err, tc.substr)
		}
		if stdout.Len() != 0 {
			t.Errorf("logits %q: printed %q on failure", tc.args, stdout.String())
		}
	}
}
