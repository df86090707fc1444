package main

import (
	"fmt"
	"strings"

	"github.com/rocmforge/rocmforge/ggml"
)

// kvTypeUsage describes the --kv-type values for flag help.
const kvTypeUsage = "KV cache element `type`: f16 (llama.cpp's default; half of f32's memory), q8_0 (about a quarter; K/V widths must be multiples of 32) or f32"

// parseKVType reads a --kv-type value.
func parseKVType(s string) (ggml.Type, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "f32":
		return ggml.F32, nil
	case "f16":
		return ggml.F16, nil
	case "q8_0", "q8":
		return ggml.Q8_0, nil
	}
	return 0, fmt.Errorf("--kv-type %q: want f16, q8_0 or f32", s)
}
