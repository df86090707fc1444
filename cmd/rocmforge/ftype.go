package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
)

// fileTypes maps llama.cpp's general.file_type values (enum llama_ftype) to
// the names llama.cpp prints for them.
var fileTypes = map[uint32]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
	22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
	28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
	37: "TQ2_0", 38: "MXFP4_MOE",
}

// fileTypeOf is the general.file_type a synthetic model whose matrices are
// all of type t declares. K-quant mixes have no exact match: a file of pure
// Q4_K is declared Q4_K_M, as llama.cpp's nearest name.
func fileTypeOf(t ggml.Type) (uint32, bool) {
	want := t.String()
	switch t {
	case ggml.Q3_K, ggml.Q4_K, ggml.Q5_K:
		want += "_M"
	}
	for id, name := range fileTypes {
		if name == want {
			return id, true
		}
	}
	return 0, false
}

// parseType looks a GGML type up by name, case-insensitively ("q4_0").
func parseType(flagName, s string) (ggml.Type, error) {
	var names []string
	for id := ggml.Type(0); id < 64; id++ {
		if !id.Known() {
			continue
		}
		if strings.EqualFold(id.String(), s) {
			if !id.Supported() {
				return 0, fmt.Errorf("%s %s: type not implemented yet", flagName, s)
			}
			return id, nil
		}
		if id.Supported() {
			names = append(names, id.String())
		}
	}
	sort.Strings(names)
	return 0, fmt.Errorf("%s %q: unknown type; want one of %s", flagName, s, strings.Join(names, ", "))
}

// modelType names a model's weight type for reports: its general.file_type,
// else the type holding the most bytes among its matrices.
func modelType(f *gguf.File) string {
	if ft, err := f.GetUint32("general.file_type"); err == nil {
		if name, ok := fileTypes[ft]; ok {
			return name
		}
	}
	bytes := map[ggml.Type]int64{}
	for _, ti := range f.Tensors {
		if len(ti.Dims) >= 2 {
			bytes[ti.Type] += ti.Size
		}
	}
	best, bestN := "?", int64(-1)
	for t, n := range bytes {
		if n > bestN || n == bestN && t.String() < best {
			best, bestN = t.String(), n
		}
	}
	return best
}

// weightStats are the total bytes and elements of a file's tensors.
func weightStats(f *gguf.File) (bytes, params int64) {
	for i := range f.Tensors {
		bytes += f.Tensors[i].Size
		params += f.Tensors[i].Elems()
	}
	return bytes, params
}
