package main

import (
	"fmt"
	"strings"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/ggml"
)

// kvTypeUsage describes the --kv-type values for flag help.
const kvTypeUsage = "KV cache element `type`: f16 (llama.cpp's default; half of f32's memory), q8_0 (about a quarter; K/V widths must be multiples of 32) or f32"

// parseKVType reads a --kv-type value: a GGML type name (parseType) that
// a KV pool can hold, or "q8" for q8_0.
func parseKVType(s string) (ggml.Type, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "q8") {
		s = "q8_0"
	}
	t, err := parseType("--kv-type", s)
	if err != nil || !compute.KVType(t) {
		return 0, fmt.Errorf("--kv-type %q: want f16, q8_0 or f32", s)
	}
	return t, nil
}
