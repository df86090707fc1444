package engine

import (
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/model"
)

// TestKVTypes: an engine with an F16 or Q8_0 pool sizes its default pool
// by that type's bytes per token, keeps batch invariance (8 requests
// batched give what each gives alone, bit for bit, on the CPU backend),
// and an unsupported type is a config error naming it.
func TestKVTypes(t *testing.T) {
	for _, kt := range []ggml.Type{ggml.F16, ggml.Q8_0} {
		t.Run(kt.String(), func(t *testing.T) {
			be := testBackends[1] // cpu
			s := loadStories(t, be.new)
			perToken, err := model.CacheBytesPerToken(s.m.HParams, kt)
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.KVType = kt
			cfg.KVCacheBytes = 700 * perToken
			e := startEngine(t, s, cfg)
			if got := e.Config().KVCacheTokens; got != 700 {
				t.Errorf("KVCacheTokens %d under a 700-token %s budget", got, kt)
			}
			reqs := invarianceRequests(t, s, true)
			solo := runEach(t, e, reqs)
			cfg.EnablePrefixCache = false
			e2 := startEngine(t, loadStories(t, be.new), cfg)
			batched := runAll(t, e2, reqs)
			for i := range reqs {
				if d := sameOutput(batched[i], solo[i]); d != "" {
					t.Errorf("request %d: batched vs alone with a %s cache: %s", i, kt, d)
				}
				if len(solo[i].tokens) == 0 {
					t.Errorf("request %d: no tokens with a %s cache", i, kt)
				}
			}
			t.Logf("%s cache: %d bytes per token; request 0 gave %q", kt, perToken, solo[0].text)
		})
	}
	s := loadStories(t, refBackend)
	_, err := New(s.m, s.tok, Config{KVType: ggml.Q4_0})
	if err == nil || !strings.Contains(err.Error(), "KVType") || !strings.Contains(err.Error(), "Q4_0") {
		t.Errorf("a Q4_0 pool: err %v, want a KVType error naming Q4_0", err)
	}
}
