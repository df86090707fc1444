package tokenizer

import (
	"fmt"
	"testing"
)

// TestConformance runs llama.cpp's test-tokenizer-0 vectors: every case of
// every vocabulary must give exactly upstream's ids (addSpecial=false,
// parseSpecial=false).
func TestConformance(t *testing.T) {
	for _, v := range conformanceVocabs {
		t.Run(v.name, func(t *testing.T) {
			tok := loadVocab(t, v.name)
			if tok.Model() != v.model {
				t.Fatalf("model %q, want %q", tok.Model(), v.model)
			}
			for i, c := range readVectors(t, v.name) {
				t.Run(fmt.Sprintf("case%02d", i), func(t *testing.T) {
					got, err := tok.Encode(c.text, false, false)
					if err != nil {
						t.Fatalf("Encode(%q): %v", c.text, err)
					}
					if !equalIDs(got, c.ids) {
						t.Errorf("Encode(%q)\n got  %s\n want %s", c.text, describe(tok, got), describe(tok, c.ids))
					}
				})
			}
		})
	}
}
