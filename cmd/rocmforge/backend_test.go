package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/gpu"
	"github.com/rocmforge/rocmforge/ggml"
	"github.com/rocmforge/rocmforge/gguf"
)

// TestMain lets the test binary answer the GPU probe it is re-executed for,
// as the rocmforge binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == probeCommand {
		os.Exit(runProbeCommand(os.Stdout, os.Args[2:]))
	}
	os.Exit(m.Run())
}

// logTo is a logger that writes text lines into buf.
func logTo(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, nil))
}

// realOpener is the default opener with its log captured.
func realOpener(buf *bytes.Buffer) *backendOpener {
	o := defaultOpener()
	o.getenv = func(string) string { return "" }
	o.log = logTo(buf)
	return o
}

// TestAutoWithoutGPU: on a machine without a usable GPU (CI's), auto probes
// in a child process, falls back to the CPU and logs one line with why.
func TestAutoWithoutGPU(t *testing.T) {
	if err := gpu.Available(); err == nil {
		t.Skip("a usable CUDA GPU is present; this test is for machines without one")
	}
	var log bytes.Buffer
	be, err := realOpener(&log).open("auto", 1)
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	defer closeBackend(be)
	if !strings.HasPrefix(be.Name(), "cpu") {
		t.Errorf("auto chose %q, want the CPU backend", be.Name())
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "no usable GPU, using the CPU backend") || !strings.Contains(lines[0], "reason=") {
		t.Errorf("log %q: want one line saying the CPU is used and why", log.String())
	}
	t.Logf("log: %s", lines[0])
}

// TestCUDAWithoutGPU: asking for cuda without a GPU is an error that names
// the flag and the reason, and nothing falls back.
func TestCUDAWithoutGPU(t *testing.T) {
	if err := gpu.Available(); err == nil {
		t.Skip("a usable CUDA GPU is present; this test is for machines without one")
	}
	var log bytes.Buffer
	be, err := realOpener(&log).open("cuda", 1)
	if err == nil {
		closeBackend(be)
		t.Fatalf("cuda without a GPU gave backend %q, want an error", be.Name())
	}
	if !strings.Contains(err.Error(), "--backend cuda: ") || len(err.Error()) < len("--backend cuda: ")+10 {
		t.Errorf("error %q: want it to name --backend cuda and the reason", err)
	}
	if log.Len() != 0 {
		t.Errorf("logged %q; an explicit backend should not log a fallback", log.String())
	}
	t.Logf("error: %v", err)
}

// fakeGPU is a reference backend standing in for an opened GPU.
type fakeGPU struct {
	compute.Backend
	v gpu.Vendor
}

func (f fakeGPU) Name() string {
	if f.v == gpu.HIP {
		return "fake-hip"
	}
	return "fake-gpu"
}

func TestOpenBackendChoices(t *testing.T) {
	probeOK := func(_ context.Context, v gpu.Vendor) (gpu.Info, error) {
		if v == gpu.HIP {
			return gpu.Info{}, errors.New("hip: libamdhip64.so not found")
		}
		return gpu.Info{Device: "Fake H100", Arch: "sm_90"}, nil
	}
	probeNone := func(_ context.Context, v gpu.Vendor) (gpu.Info, error) {
		if v == gpu.HIP {
			return gpu.Info{}, errors.New("hip: libamdhip64.so not found")
		}
		return gpu.Info{}, errors.New("cuda: libcuda.so.1 not found")
	}
	probeAMD := func(_ context.Context, v gpu.Vendor) (gpu.Info, error) {
		if v == gpu.HIP {
			return gpu.Info{Device: "Fake MI250X", Arch: "gfx90a"}, nil
		}
		return gpu.Info{}, errors.New("cuda: libcuda.so.1 not found")
	}
	openOK := func(v gpu.Vendor) (compute.Backend, error) { return fakeGPU{compute.NewReference(), v}, nil }
	openFail := func(gpu.Vendor) (compute.Backend, error) { return nil, errors.New("NVRTC compile failed") }
	for _, tc := range []struct {
		name, flag, env string
		probe           func(context.Context, gpu.Vendor) (gpu.Info, error)
		open            func(gpu.Vendor) (compute.Backend, error)
		want            string // backend name prefix, or "" for an error
		errHas, logHas  string
	}{
		{"auto with GPU", "auto", "", probeOK, openOK, "fake-gpu", "", ""},
		{"empty is auto", "", "", probeOK, openOK, "fake-gpu", "", ""},
		{"auto without GPU", "auto", "", probeNone, openOK, "cpu", "", "libcuda.so.1 not found"},
		{"auto, open fails", "auto", "", probeOK, openFail, "cpu", "", "Fake H100 (sm_90) but opening it failed: NVRTC compile failed"},
		{"cuda", "cuda", "", probeOK, openOK, "fake-gpu", "", ""},
		{"cuda without GPU", "cuda", "", probeNone, openOK, "", "--backend cuda: cuda: libcuda.so.1 not found", ""},
		{"cuda, open fails", "cuda", "", probeOK, openFail, "", "opening it failed: NVRTC compile failed", ""},
		{"env picks cpu", "auto", "cpu", probeOK, openOK, "cpu", "", ""},
		{"env picks ref", "", "ref", probeOK, openOK, "reference", "", ""},
		{"env picks cuda", "auto", "cuda", probeNone, openOK, "", "ROCMFORGE_BACKEND cuda: cuda: libcuda.so.1", ""},
		{"flag beats env", "cpu", "cuda", probeNone, openOK, "cpu", "", ""},
		{"bad env", "auto", "tpu", probeOK, openOK, "", `ROCMFORGE_BACKEND "tpu": want auto, cuda, cpu, ref or hip`, ""},
		{"hip without AMD GPU", "hip", "", probeOK, openOK, "", "--backend hip: hip: libamdhip64.so not found", ""},
		{"hip", "hip", "", probeAMD, openOK, "fake-hip", "", ""},
		{"auto finds AMD", "auto", "", probeAMD, openOK, "fake-hip", "", ""},
		{"auto without either", "", "", probeNone, openOK, "cpu", "", "libamdhip64.so not found"},
		{"unknown", "tpu", "", probeOK, openOK, "", `--backend "tpu"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			o := &backendOpener{
				getenv: func(k string) string {
					if k == backendEnv {
						return tc.env
					}
					return ""
				},
				probe: tc.probe, openGPU: tc.open, log: logTo(&log),
			}
			be, err := o.open(tc.flag, 1)
			if tc.want == "" {
				if err == nil {
					closeBackend(be)
					t.Fatalf("got backend %q, want an error containing %q", be.Name(), tc.errHas)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q, want it to contain %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, want backend %s", err, tc.want)
			}
			defer closeBackend(be)
			if !strings.HasPrefix(be.Name(), tc.want) {
				t.Errorf("backend %q, want %s", be.Name(), tc.want)
			}
			if tc.logHas != "" && (!strings.Contains(log.String(), tc.logHas) || strings.Count(log.String(), "\n") != 1) {
				t.Errorf("log %q: want one line containing %q", log.String(), tc.logHas)
			}
			if tc.logHas == "" && log.Len() != 0 {
				t.Errorf("unexpected log %q", log.String())
			}
		})
	}
}

// TestRunProbeFailures: a probe child that crashes, hangs, prints garbage
// or reports an error gives an error saying which; a good answer decodes.
func TestRunProbeFailures(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skipf("no /bin/sh: %v", err)
	}
	for _, tc := range []struct {
		name, script string
		timeout      time.Duration
		errHas       string
		device       string
	}{
		{"crash", "echo 'driver exploded' >&2; kill -SEGV $$", 10 * time.Second, "GPU probe failed (signal: segmentation fault): driver exploded", ""},
		{"exit code", "exit 3", 10 * time.Second, "GPU probe failed (exit status 3)", ""},
		{"hang", "exec sleep 30", 200 * time.Millisecond, "did not answer in time", ""},
		{"garbage", "echo hello", 10 * time.Second, `printed "hello\n", not its JSON answer`, ""},
		{"no device", `echo '{"error":"cuda: no CUDA device"}'`, 10 * time.Second, "cuda: no CUDA device", ""},
		{"device", `echo '{"device":"NVIDIA H100 80GB HBM3","arch":"sm_90","free":80000000000,"total":85000000000}'`, 10 * time.Second, "", "NVIDIA H100 80GB HBM3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			info, err := runProbe(ctx, "/bin/sh", "-c", tc.script)
			if tc.errHas == "" {
				if err != nil || info.Device != tc.device || info.Arch != "sm_90" || info.Free != 80000000000 {
					t.Fatalf("got %+v, %v; want device %q", info, err, tc.device)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %v, want it to contain %q", err, tc.errHas)
			}
		})
	}
}

// TestProbeCommand: the hidden subcommand prints one JSON line and exits 0
// whether or not there is a GPU.
func TestProbeCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := mainErr([]string{probeCommand}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	line := strings.TrimSpace(out.String())
	if strings.Count(line, "\n") != 0 || !strings.HasPrefix(line, "{") {
		t.Fatalf("output %q: want one JSON line", out.String())
	}
	hasGPU := gpu.Available() == nil
	if hasGPU != !strings.Contains(line, `"error"`) {
		t.Errorf("output %q with gpu.Available() == nil being %v", line, hasGPU)
	}
}

// memBackend is a reference backend that reports device memory.
type memBackend struct {
	compute.Backend
	free, total int64
}

func (m memBackend) MemInfo() (int64, int64, error) { return m.free, m.total, nil }
func (memBackend) Name() string                     { return "cuda:0 Fake" }

// TestDeviceMemoryCheck: the plan of a synthetic model counts its weights,
// KV cache and scratch; a device with less free memory gives an error that
// says how much is missing.
func TestDeviceMemoryCheck(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.gguf")
	if _, _, err := runCmd(t, synthArgs(out, "F16")...); err != nil {
		t.Fatalf("synth: %v", err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := planMemory(f, 0, 0, ggml.F32, 0)
	if err != nil {
		t.Fatal(err)
	}
	// An F16 pool is half as large; a byte budget sets the tokens.
	if p16, err := planMemory(f, 0, 0, ggml.F16, 0); err != nil || p16.kv != p.kv/2 {
		t.Errorf("F16 plan KV %d bytes (err %v), want half of F32's %d", p16.kv, err, p.kv)
	}
	if pb, err := planMemory(f, 0, 0, ggml.F16, 1000*2*2*64); err != nil || pb.kvTokens != 1000 {
		t.Errorf("F16 plan under a 1000-token budget: %d tokens (err %v)", pb.kvTokens, err)
	}
	if _, err := planMemory(f, 0, 0, ggml.Q4_0, 0); err == nil {
		t.Error("a Q4_0 KV plan: no error")
	}
	wBytes, _ := weightStats(f)
	// synthArgs: 2 layers, K and V 32 wide each, ctx 64 (the training
	// context, plus 16 slots of rounding and 16 of spare block), 64-row
	// batches (the context caps the default 512).
	if wantKV := int64(4 * 2 * (64 + 32) * (32 + 32)); p.kv != wantKV || p.kvTokens != 64 || p.rows != 64 {
		t.Errorf("plan %+v: want KV %d bytes for 64 tokens, 64 rows", p, wantKV)
	}
	if p.weights < wBytes || p.scratch <= 0 || p.reserve != gpuReserve {
		t.Errorf("plan %+v: weights below the file's %d bytes, or no scratch/reserve", p, wBytes)
	}
	need := p.total()
	if _, err := checkDeviceMemory(memBackend{free: need, total: 2 * need}, memBackend{free: need, total: 2 * need}, p); err != nil {
		t.Errorf("exactly enough memory: %v", err)
	}
	short := memBackend{free: need - 3<<20, total: 80 << 30}
	_, err = checkDeviceMemory(short, short, p)
	if err == nil {
		t.Fatal("3 MiB short: no error")
	}
	for _, want := range []string{"does not fit on cuda:0 Fake", "3.0 MiB missing", "80.00 GiB", "--backend cpu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q: want it to contain %q", err, want)
		}
	}
}
