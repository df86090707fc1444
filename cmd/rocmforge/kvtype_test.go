package main

import "testing"

// TestParseKVType: the pool types by any case and the q8 alias; other GGML
// types and non-types are errors.
func TestParseKVType(t *testing.T) {
	for s, ok := range map[string]bool{"f16": true, "F16": true, " q8_0 ": true, "q8": true, "f32": true, "q4_0": false, "bf16": false, "": false, "x": false} {
		_, err := parseKVType(s)
		if (err == nil) != ok {
			t.Errorf("%q: %v", s, err)
		}
	}
}
