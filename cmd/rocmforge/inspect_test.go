package main

import (
	"bytes"
	"encoding/json"
	"github.com/rocmforge/rocmforge/internal/shareddata"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
)

// sharedDir returns ../shared next to the repository root (the directory
// holding go.mod), skipping the test when it is absent.
func sharedDir(t *testing.T) string {
	t.Helper()
	return shareddata.Dir(t)
}

func stories260K(t *testing.T) string {
	t.Helper()
	p := filepath.Join(sharedDir(t), "models", "stories260K.gguf")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("model %s is missing", p)
	}
	return p
}

// inspect runs the subcommand and returns its standard output.
func inspect(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := runInspect(args, &stdout, &stderr); err != nil {
		t.Fatalf("inspect %v: %v (stderr %q)", args, err, stderr.String())
	}
	return stdout.String()
}

func mustContain(t *testing.T, out string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Errorf("output lacks %q; output:\n%s", p, out)
		}
	}
}

// inspectJSONDoc decodes --json output.
type inspectJSONDoc struct {
	Version       uint32 `json:"version"`
	Alignment     uint64 `json:"alignment"`
	TensorCount   int    `json:"tensor_count"`
	TotalElements int64  `json:"total_elements"`
	TotalBytes    int64  `json:"total_bytes"`
	Metadata      []struct {
		Key   string          `json:"key"`
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	} `json:"metadata"`
	Tensors []struct {
		Name     string   `json:"name"`
		Type     string   `json:"type"`
		Shape    []uint64 `json:"shape"`
		Elements int64    `json:"elements"`
		Bytes    int64    `json:"bytes"`
	} `json:"tensors"`
}

type jsonArrayDoc struct {
	Elem      string            `json:"elem_type"`
	Len       int               `json:"len"`
	Values    []json.RawMessage `json:"values"`
	Truncated bool              `json:"truncated"`
}

func decodeInspect(t *testing.T, out string) inspectJSONDoc {
	t.Helper()
	var doc inspectJSONDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	return doc
}

func (d inspectJSONDoc) value(t *testing.T, key string) json.RawMessage {
	t.Helper()
	for _, kv := range d.Metadata {
		if kv.Key == key {
			return kv.Value
		}
	}
	t.Fatalf("JSON metadata lacks %s", key)
	return nil
}

func TestInspectStories260K(t *testing.T) {
	path := stories260K(t)
	out := inspect(t, path)
	mustContain(t, out,
		"version:      3\n",
		"alignment:    32\n",
		"tensors:      48\n",
		"metadata:     19 keys\n",
		`tokenizer.ggml.tokens                   array    [string x 512] ["<unk>", "<s>", "</s>", "<0x00>", "<0x01>", "<0x02>", ...]`,
		"llama.embedding_length                  uint32   64\n",
		"llama.attention.layer_norm_rms_epsilon  float32  1e-05\n",
		"token_embd.weight         F32   [64 512]     32768  131072        0\n",
		"blk.4.ffn_norm.weight     F32   [64]            64     256  1170944\n",
		"total: 48 tensors, 292800 elements, 1171200 bytes (1.12 MiB)\n",
	)
	// Metadata keys come out in file order.
	if strings.Index(out, "tokenizer.ggml.tokens") > strings.Index(out, "general.architecture") {
		t.Error("metadata not in file order")
	}

	noTensors := inspect(t, "--no-tensors", path)
	if strings.Contains(noTensors, "token_embd.weight") || strings.Contains(noTensors, "total:") {
		t.Errorf("--no-tensors still lists tensors:\n%s", noTensors)
	}
	mustContain(t, noTensors, "tensors:      48\n", "llama.embedding_length")

	doc := decodeInspect(t, inspect(t, path, "--json")) // flags after the file work too
	if doc.Version != 3 || doc.Alignment != 32 || doc.TensorCount != 48 || len(doc.Tensors) != 48 {
		t.Errorf("JSON: version %d alignment %d tensor_count %d, %d tensors", doc.Version, doc.Alignment, doc.TensorCount, len(doc.Tensors))
	}
	if doc.TotalBytes != 1171200 || doc.TotalElements != 292800 {
		t.Errorf("JSON totals %d bytes %d elements", doc.TotalBytes, doc.TotalElements)
	}
	if tt := doc.Tensors[0]; tt.Name != "token_embd.weight" || tt.Type != "F32" || len(tt.Shape) != 2 || tt.Shape[0] != 64 || tt.Shape[1] != 512 || tt.Bytes != 131072 {
		t.Errorf("JSON first tensor %+v", tt)
	}
	var toks jsonArrayDoc
	if err := json.Unmarshal(doc.value(t, "tokenizer.ggml.tokens"), &toks); err != nil {
		t.Fatal(err)
	}
	if toks.Elem != "string" || toks.Len != 512 || len(toks.Values) != inspectArrayElems || !toks.Truncated || string(toks.Values[0]) != `"<unk>"` {
		t.Errorf("JSON tokens %s x %d, %d shown, truncated %v, first %s", toks.Elem, toks.Len, len(toks.Values), toks.Truncated, toks.Values[0])
	}
	if v := string(doc.value(t, "llama.embedding_length")); v != "64" {
		t.Errorf("JSON llama.embedding_length = %s", v)
	}
	if v := string(doc.value(t, "llama.attention.layer_norm_rms_epsilon")); v != "1e-05" {
		t.Errorf("JSON epsilon = %s, want 1e-05 (shortest float32 form)", v)
	}

	full := decodeInspect(t, inspect(t, "--json", "--full", "--no-tensors", path))
	if len(full.Tensors) != 0 || full.TensorCount != 48 {
		t.Errorf("--no-tensors JSON: %d tensors listed, count %d", len(full.Tensors), full.TensorCount)
	}
	var all jsonArrayDoc
	if err := json.Unmarshal(full.value(t, "tokenizer.ggml.tokens"), &all); err != nil {
		t.Fatal(err)
	}
	if len(all.Values) != 512 || all.Truncated {
		t.Errorf("--full: %d tokens shown, truncated %v", len(all.Values), all.Truncated)
	}
}

// writeSynthetic writes a file with a custom alignment, unusual values and
// tensors of types the ggml package cannot dequantize.
func writeSynthetic(t *testing.T) string {
	t.Helper()
	w := gguf.NewWriter()
	set := func(k string, v any) {
		t.Helper()
		if err := w.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	set("general.architecture", "synthetic")
	set("x.nan", float32(math.NaN()))
	set("x.inf", math.Inf(-1))
	set("x.int8", int8(-5))
	set("x.long", strings.Repeat("é", 100))
	set("x.nested", gguf.Array{Elem: gguf.TypeArray, V: []gguf.Array{
		{Elem: gguf.TypeInt16, V: []int16{1, 2, 3, 4, 5, 6, 7, 8}},
		{Elem: gguf.TypeBool, V: []bool{true}},
	}})
	set("x.empty", []string{})
	if err := w.SetAlignment(64); err != nil {
		t.Fatal(err)
	}
	add := func(name string, typ ggml.Type, dims ...uint64) {
		t.Helper()
		n := int64(1)
		for _, d := range dims {
			n *= int64(d)
		}
		size, err := typ.RowSize(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(name, typ, dims, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	add("a.weight", ggml.IQ2_XXS, 256, 3)
	add("b.weight", ggml.MXFP4, 64, 1, 2)
	add("c.bias", ggml.F32, 7)
	path := filepath.Join(t.TempDir(), "synthetic.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInspectSynthetic(t *testing.T) {
	path := writeSynthetic(t)
	out := inspect(t, path)
	mustContain(t, out,
		"alignment:    64\n",
		"tensors:      3\n",
		"general.alignment     uint32   64\n",
		"x.nan                 float32  NaN\n",
		"x.inf                 float64  -Inf\n",
		"x.int8                int8     -5\n",
		`x.long                string   "`+strings.Repeat("é", inspectStringLen/2)+`"... (200 bytes)`,
		"x.nested              array    [array x 2] [[int16 x 8] [1, 2, 3, 4, 5, 6, ...], [bool x 1] [true]]\n",
		"x.empty               array    [string x 0] []\n",
		"  a.weight  IQ2_XXS  [256 3]        768    198       0\n",
		"  b.weight  MXFP4    [64 1 2]       128     68     256\n",
		"  c.bias    F32      [7]              7     28     384\n",
		"total: 3 tensors, 903 elements, 294 bytes (294 B)\n",
	)
	full := inspect(t, "--full", "--no-tensors", path)
	mustContain(t, full, `"`+strings.Repeat("é", 100)+`"`+"\n", "[int16 x 8] [1, 2, 3, 4, 5, 6, 7, 8]")

	doc := decodeInspect(t, inspect(t, "--json", path))
	if v := string(doc.value(t, "x.nan")); v != `"NaN"` {
		t.Errorf("JSON NaN = %s", v)
	}
	if v := string(doc.value(t, "x.inf")); v != `"-Inf"` {
		t.Errorf("JSON -Inf = %s", v)
	}
	var nested jsonArrayDoc
	if err := json.Unmarshal(doc.value(t, "x.nested"), &nested); err != nil {
		t.Fatal(err)
	}
	if nested.Elem != "array" || nested.Len != 2 || len(nested.Values) != 2 {
		t.Fatalf("JSON nested array %+v", nested)
	}
	var inner jsonArrayDoc
	if err := json.Unmarshal(nested.Values[0], &inner); err != nil {
		t.Fatal(err)
	}
	if inner.Elem != "int16" || inner.Len != 8 || len(inner.Values) != inspectArrayElems || !inner.Truncated {
		t.Errorf("JSON inner array %+v", inner)
	}
	if len(doc.Tensors) != 3 || doc.Tensors[1].Type != "MXFP4" || doc.Tensors[1].Elements != 128 {
		t.Errorf("JSON tensors %+v", doc.Tensors)
	}
}

func TestInspectEveryShared(t *testing.T) {
	root := sharedDir(t)
	var paths []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".gguf" {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skipf("no .gguf files under %s", root)
	}
	for _, p := range paths {
		out := inspect(t, p)
		mustContain(t, out, "general.architecture", "version:")
		doc := decodeInspect(t, inspect(t, "--json", p))
		if len(doc.Tensors) != doc.TensorCount {
			t.Errorf("%s: %d tensors listed, count %d", p, len(doc.Tensors), doc.TensorCount)
		}
	}
}

func TestInspectErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.gguf")
	if err := os.WriteFile(junk, []byte("GGUF\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{nil, "want one GGUF file"},
		{[]string{"a.gguf", "b.gguf"}, "want one GGUF file, got 2"},
		{[]string{"--bogus", "a.gguf"}, "bogus"},
		{[]string{filepath.Join(dir, "missing.gguf")}, "missing.gguf"},
		{[]string{junk}, "version 1"},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		err := runInspect(c.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("inspect %v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if err := runInspect([]string{"-h"}, &stdout, &stderr); err != nil {
		t.Errorf("-h: %v", err)
	}
	if !strings.Contains(stderr.String(), "usage: rocmforge inspect") {
		t.Errorf("-h printed %q", stderr.String())
	}
}
