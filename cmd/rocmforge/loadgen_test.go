package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseLevels(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"1", []int{1}},
		{"1,8,32,64", []int{1, 8, 32, 64}},
		{" 4 , 2", []int{4, 2}},
		{"", nil},
		{"0", nil},
		{"1,,2", nil},
		{"-3", nil},
		{"two", nil},
		{"2000", nil},
	} {
		got, err := parseLevels(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("parseLevels(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseLevels(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestLoadgenCommand runs loadgen --json against serve on stories260K.
func TestLoadgenCommand(t *testing.T) {
	model := stories260K(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	addr := make(chan string, 1)
	ready := make(chan struct{})
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, []string{"-m", model, "--port", "0", "--backend", "ref", "--api-key", "lg"}, &logs,
			serveHooks{listening: func(a string) { addr <- a }, ready: func() { close(ready) }})
	}()
	var base string
	select {
	case base = <-addr:
	case err := <-served:
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	select {
	case <-ready:
	case err := <-served:
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}

	var stdout, stderr bytes.Buffer
	err := runLoadgen([]string{"--url", "http://" + base, "--api-key", "lg", "-c", "1,3", "--requests-per-client", "2",
		"--prompt-tokens", "20", "--max-tokens", "6", "--temperature", "1", "--top-k", "40", "--json"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("loadgen: %v\n%s", err, stderr.String())
	}
	var rep loadgenReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("loadgen --json output: %v\n%s", err, stdout.String())
	}
	if rep.Model != "stories260K" || len(rep.Results) != 2 || rep.Seed == 0 {
		t.Fatalf("report %+v: want stories260K, 2 levels and the random seed", rep)
	}
	for i, c := range []int{1, 3} {
		r := rep.Results[i]
		if r.Concurrency != c || r.Requests != 2*c || r.Errors != 0 || r.CompletionTokens != 12*c || r.GenTokensPerSec <= 0 || r.CachedTokens != 0 {
			t.Errorf("level %d: %+v: want %d clients, %d requests, no errors, %d tokens, positive throughput, no cached tokens", i, r, c, 2*c, 12*c)
		}
	}

	// The table, and a refusal before any load when the prompt cannot fit.
	stdout.Reset()
	if err := runLoadgen([]string{"--url", "http://" + base, "--api-key", "lg", "-c", "2", "--requests-per-client", "1",
		"--prompt-tokens", "8", "--max-tokens", "2"}, &stdout, &stderr); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "gen tok/s") || strings.Count(out, "\n") != 2 {
		t.Errorf("table output:\n%s", out)
	}
	// The first run's seed again: the same prompts, found in the prefix
	// cache (a 20-token prompt has one full 16-token block to reuse).
	stdout.Reset()
	if err := runLoadgen([]string{"--url", "http://" + base, "--api-key", "lg", "-c", "1", "--requests-per-client", "2",
		"--prompt-tokens", "20", "--max-tokens", "6", "--seed", strconv.FormatUint(rep.Seed, 10), "--json"}, &stdout, &stderr); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, stderr.String())
	}
	var again loadgenReport
	if err := json.Unmarshal(stdout.Bytes(), &again); err != nil || len(again.Results) != 1 {
		t.Fatalf("loadgen --json output: %v\n%s", err, stdout.String())
	}
	if got := again.Results[0].CachedTokens; again.Seed != rep.Seed || got != 2*16 {
		t.Errorf("rerun with seed %d: seed %d, %d cached prompt tokens: want the seed and 32", rep.Seed, again.Seed, got)
	}
	err = runLoadgen([]string{"--url", "http://" + base, "--api-key", "lg", "--prompt-tokens", "100", "--max-tokens", "100"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "context of 128") {
		t.Errorf("loadgen over the context: %v, want an error naming the context", err)
	}

	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestLoadgenBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-c", "0"},
		{"--requests-per-client", "-1"},
		{"--duration", "-1s"},
		{"--temperature", "-1"},
		{"--top-k", "-2"},
		{"extra"},
		{"--url", "not a url"},
	} {
		var stdout, stderr bytes.Buffer
		if err := runLoadgen(args, &stdout, &stderr); err == nil {
			t.Errorf("loadgen %q: no error", args)
		}
	}
}
