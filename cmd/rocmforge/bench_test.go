package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/rocmforge/rocmforge/gguf"
)

func TestBenchJSON(t *testing.T) {
	model := stories260K(t)
	out, errOut, err := runCmd(t, "bench", "-m", model, "-p", "16", "-n", "8", "-r", "2", "--json")
	if err != nil {
		t.Fatalf("bench: %v (stderr %q)", err, errOut)
	}
	var rep benchReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	f, err := gguf.Open(model)
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, wantParams := weightStats(f)
	f.Close()
	if rep.WeightBytes != wantBytes || rep.Params != wantParams || rep.Type != "F32" || rep.Arch != "llama" || rep.KVType != "F16" {
		t.Errorf("report header %+v; want %d weight bytes, %d params, F32 llama, an F16 KV cache (the default)", rep, wantBytes, wantParams)
	}
	if len(rep.Results) != 2 || rep.Results[0].Test != "pp16" || rep.Results[1].Test != "tg8" {
		t.Fatalf("results %+v, want pp16 and tg8", rep.Results)
	}
	for _, r := range rep.Results {
		if len(r.SamplesNS) != 2 || len(r.SamplesTS) != 2 || r.Reps != 2 {
			t.Errorf("%s: %d/%d samples, want 2", r.Test, len(r.SamplesNS), len(r.SamplesTS))
		}
		for i, ts := range r.SamplesTS {
			if !(ts > 0) || r.SamplesNS[i] <= 0 {
				t.Errorf("%s: sample %d is %v tok/s over %d ns", r.Test, i, ts, r.SamplesNS[i])
			}
		}
		if !(r.MinTS > 0 && r.MinTS <= r.MedianTS && r.MedianTS <= r.MaxTS && r.StddevTS >= 0) {
			t.Errorf("%s: inconsistent statistics %+v", r.Test, r)
		}
	}
	tg := rep.Results[1]
	if want := float64(wantBytes) * tg.MedianTS / 1e9; tg.WeightGBps != want {
		t.Errorf("tg weight_gbps %v, want weight bytes × median t/s = %v", tg.WeightGBps, want)
	}
	if rep.Results[0].WeightGBps != 0 {
		t.Errorf("pp has a bandwidth figure: %v", rep.Results[0].WeightGBps)
	}
}

func TestBenchTable(t *testing.T) {
	model := stories260K(t)
	out, errOut, err := runCmd(t, "bench", "-m", model, "-p", "8", "-n", "0", "-r", "1", "--backend", "ref", "--no-warmup")
	if err != nil {
		t.Fatalf("bench: %v (stderr %q)", err, errOut)
	}
	mustContain(t, out, "weights (1171200 bytes)", "| model ", "| t/s (median ± sd) |", " pp8 |", "| reference |")
	if strings.Contains(out, "tg0") {
		t.Errorf("-n 0 should skip the tg test:\n%s", out)
	}
}

func TestBenchBadFlags(t *testing.T) {
	model := stories260K(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-m", model, "-r", "0"}, "-r 0"},
		{[]string{"-m", model, "-p", "-1"}, "-p -1"},
		{[]string{"-m", model, "-n", "-5"}, "-n -5"},
		{[]string{"-m", model, "-p", "0", "-n", "0"}, "nothing to measure"},
		{[]string{"-m", model, "extra"}, "unexpected arguments"},
		{[]string{"-p", "4"}, "no model"},
		{[]string{"-m", model, "--kv-type", "q4_0"}, "q4_0"},
	} {
		_, _, err := runCmd(t, append([]string{"bench"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %q: err = %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestBenchSummarize(t *testing.T) {
	r := benchResult{SamplesTS: []float64{30, 10, 20, 40}}
	r.summarize()
	if r.MedianTS != 25 || r.MinTS != 10 || r.MaxTS != 40 || r.AvgTS != 25 {
		t.Errorf("summarize = %+v; want median 25, min 10, max 40, avg 25", r)
	}
	// Sample standard deviation of 10, 20, 30, 40.
	if d := r.StddevTS - 12.909944487358056; d > 1e-9 || d < -1e-9 {
		t.Errorf("stddev %v, want 12.9099...", r.StddevTS)
	}
	one := benchResult{SamplesTS: []float64{5}}
	one.summarize()
	if one.MedianTS != 5 || one.StddevTS != 0 {
		t.Errorf("one sample: %+v", one)
	}
}

// TestBenchParallel runs the batched bench on the CPU: every level's
// requests generate exactly -n tokens each (EOS ignored), and the figures
// agree with one another.
func TestBenchParallel(t *testing.T) {
	model := stories260K(t)
	out, errOut, err := runCmd(t, "bench", "-m", model, "--backend", "cpu", "--threads", "1", "-p", "12", "-n", "6",
		"-r", "2", "--parallel", "1,3", "--seed", "7", "--kv-type", "q8_0", "--json")
	if err != nil {
		t.Fatalf("bench --parallel: %v (stderr %q)", err, errOut)
	}
	var rep parReport
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	if rep.NPrompt != 12 || rep.NGen != 6 || rep.Seed != 7 || rep.Arch != "llama" || rep.KVType != "Q8_0" {
		t.Errorf("report header %+v; want 12-token prompts, 6 new tokens, seed 7, llama, a Q8_0 KV cache", rep)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want par1 and par3: %+v", len(rep.Results), rep.Results)
	}
	for i, n := range []int{1, 3} {
		r := rep.Results[i]
		if r.Test != fmt.Sprintf("par%d", n) || r.Parallel != n || r.Reps != 2 {
			t.Errorf("result %d: %s parallel %d reps %d, want par%d, 2 reps", i, r.Test, r.Parallel, r.Reps, n)
		}
		if r.Generated != 6*n || r.PromptToks != 12*n {
			t.Errorf("%s: %d generated, %d prompt tokens; want %d and %d", r.Test, r.Generated, r.PromptToks, 6*n, 12*n)
		}
		if len(r.SamplesNS) != 2 || len(r.GenTS) != 2 {
			t.Errorf("%s: %d/%d samples, want 2", r.Test, len(r.SamplesNS), len(r.GenTS))
		}
		for j, ts := range r.GenTS {
			// Every sample's rate is its tokens over its time.
			if want := float64(6*n) / (float64(r.SamplesNS[j]) / 1e9); math.Abs(ts-want) > 1e-6*want {
				t.Errorf("%s sample %d: %v tok/s, want %d tokens / %d ns = %v", r.Test, j, ts, 6*n, r.SamplesNS[j], want)
			}
		}
		if !(r.MinGen > 0 && r.MinGen <= r.MedianGen && r.MedianGen <= r.MaxGen) {
			t.Errorf("%s: inconsistent generation rates %+v", r.Test, r)
		}
		if !(r.PromptTS > 0 && r.TotalS > 0 && r.FirstAllS > 0 && r.FirstAllS < r.TotalS) {
			t.Errorf("%s: prompt %v tok/s, total %v s, last first token at %v s", r.Test, r.PromptTS, r.TotalS, r.FirstAllS)
		}
		// At least one step per generated token of a sequence.
		if r.Steps < 6 || r.StepMS <= 0 {
			t.Errorf("%s: %v steps of %v ms for 6 tokens a sequence", r.Test, r.Steps, r.StepMS)
		}
		// Every sequence decodes together after the prompts: such steps exist.
		if !(r.DecodeStepMS > 0) || r.ArgmaxShare < 0 || r.ArgmaxShare > 1 {
			t.Errorf("%s: decode step %v ms, argmax share %v", r.Test, r.DecodeStepMS, r.ArgmaxShare)
		}
	}
	mustContain(t, errOut, "prompt seed 7")

	table, errOut, err := runCmd(t, "bench", "-m", model, "--backend", "ref", "-p", "4", "-n", "3", "-r", "1",
		"--parallel", "2", "--no-warmup")
	if err != nil {
		t.Fatalf("bench --parallel table: %v (stderr %q)", err, errOut)
	}
	mustContain(t, table, "4-token prompts, 3 new tokens per sequence", "| gen t/s (median) |", "| par2 ", "| reference ")
}

func TestBenchParallelBadFlags(t *testing.T) {
	model := stories260K(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--parallel", "1,x"}, `"x" is not a sequence count`},
		{[]string{"--parallel", "0"}, `"0" is not a sequence count`},
		{[]string{"--parallel", "2", "-p", "0"}, "needs prompts"},
		{[]string{"--parallel", "2", "-n", "0"}, "measures generation"},
		{[]string{"--parallel", "2", "-p", "100000"}, "more than the model's context"},
	} {
		_, _, err := runCmd(t, append([]string{"bench", "-m", model, "--backend", "ref"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %q: err = %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
