package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/cpu"
	"github.com/rocmforge/rocmforge/compute/gpu"
)

// defaultBackend is the --backend default of run, bench, serve and logits.
const defaultBackend = "auto"

// backendUsage describes the --backend values for flag help.
const backendUsage = "compute `backend`: auto (the GPU when one works, else cpu), cuda, cpu, ref (plain-Go reference) or hip; " +
	backendEnv + " replaces auto"

// backendEnv names the variable that picks the backend where --backend is
// auto (the default).
const backendEnv = "ROCMFORGE_BACKEND"

// probeCommand is the hidden subcommand the GPU probe re-executes the
// binary with.
const probeCommand = "__probe-gpu"

// probeTimeout bounds the GPU probe: a driver that hangs in cuInit must not
// hang the command.
const probeTimeout = 30 * time.Second

// gpuProbe is what the probe child prints: the device, or why there is none.
type gpuProbe struct {
	gpu.Info
	Error string `json:"error,omitempty"`
}

// backendOpener chooses and opens backends. Its functions are fields so
// tests can stand in for the GPU.
type backendOpener struct {
	getenv  func(string) string
	probe   func(ctx context.Context, v gpu.Vendor) (gpu.Info, error) // in a child process
	openGPU func(v gpu.Vendor) (compute.Backend, error)
	log     *slog.Logger
}

// defaultOpener probes the GPU by re-running this binary and logs to the
// default logger (stderr).
func defaultOpener() *backendOpener {
	return &backendOpener{
		getenv: os.Getenv,
		probe:  probeGPUChild,
		openGPU: func(v gpu.Vendor) (compute.Backend, error) {
			if v == gpu.HIP {
				return gpu.NewHIP()
			}
			return gpu.New()
		},
		log: slog.Default(),
	}
}

// openBackend makes the compute backend a --backend flag names, with work
// split over threads goroutines where the backend is parallel (threads <= 0:
// one per CPU). It is the one place the commands pick a backend.
func openBackend(name string, threads int) (compute.Backend, error) {
	return defaultOpener().open(name, threads)
}

// open implements openBackend. auto takes ROCMFORGE_BACKEND when it is set,
// else an NVIDIA GPU when the probe finds a working one, else an AMD one,
// else the CPU, saying why in one log line. cuda and hip are that GPU or an
// error.
func (o *backendOpener) open(name string, threads int) (compute.Backend, error) {
	if threads < 0 {
		return nil, fmt.Errorf("--threads %d: want >= 0 (0 = one per CPU)", threads)
	}
	from := "--backend"
	if name == "" || name == "auto" {
		if env := strings.TrimSpace(o.getenv(backendEnv)); env != "" {
			name, from = env, backendEnv
		} else {
			name = "auto"
		}
	}
	switch name {
	case "auto":
		be, err := o.openGPUVendor(gpu.CUDA)
		if err == nil {
			return be, nil
		}
		be, herr := o.openGPUVendor(gpu.HIP)
		if herr == nil {
			return be, nil
		}
		o.log.Info("no usable GPU, using the CPU backend", "reason", err.Error(), "hip", herr.Error())
		return newCPU(threads), nil
	case "cuda", "gpu":
		be, err := o.openGPUVendor(gpu.CUDA)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", from, name, err)
		}
		return be, nil
	case "cpu":
		return newCPU(threads), nil
	case "ref", "reference":
		return compute.NewReference(), nil
	case "hip", "rocm":
		be, err := o.openGPUVendor(gpu.HIP)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", from, name, err)
		}
		return be, nil
	default:
		return nil, fmt.Errorf("%s %q: want auto, cuda, cpu, ref or hip", from, name)
	}
}

func newCPU(threads int) compute.Backend {
	if threads == 0 {
		threads = runtime.NumCPU()
	}
	return cpu.New(threads)
}

// openGPUVendor probes the vendor's GPU out of process, then opens it here.
func (o *backendOpener) openGPUVendor(v gpu.Vendor) (compute.Backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	info, err := o.probe(ctx, v)
	if err != nil {
		return nil, err
	}
	be, err := o.openGPU(v)
	if err != nil {
		return nil, fmt.Errorf("the probe found %s (%s) but opening it failed: %w", info.Device, info.Arch, err)
	}
	return be, nil
}

// probeGPUChild runs `<this binary> __probe-gpu cuda|hip` and reads its
// answer, so that a driver that crashes or hangs takes down only the child.
func probeGPUChild(ctx context.Context, v gpu.Vendor) (gpu.Info, error) {
	exe, err := os.Executable()
	if err != nil {
		return gpu.Info{}, fmt.Errorf("GPU probe: cannot find this program to run it: %w", err)
	}
	return runProbe(ctx, exe, probeCommand, v.String())
}

// runProbe runs a probe command and decodes the gpuProbe JSON line it
// prints. A crash, a timeout or output that is not that line is an error
// that says so.
func runProbe(ctx context.Context, name string, args ...string) (gpu.Info, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return gpu.Info{}, fmt.Errorf("GPU probe did not answer in time (%v): the driver may be hung", ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = "…" + msg[len(msg)-300:]
		}
		if msg != "" {
			return gpu.Info{}, fmt.Errorf("GPU probe failed (%v): %s", err, msg)
		}
		return gpu.Info{}, fmt.Errorf("GPU probe failed (%v)", err)
	}
	var p gpuProbe
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &p); err != nil {
		return gpu.Info{}, fmt.Errorf("GPU probe printed %q, not its JSON answer: %w", truncate(stdout.String(), 200), err)
	}
	if p.Error != "" {
		return gpu.Info{}, errors.New(p.Error)
	}
	return p.Info, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// runProbeCommand is the hidden __probe-gpu subcommand: one JSON line with
// the device of the vendor named in args (cuda when none) or the reason
// there is none. It exits 0 either way; only a crash exits otherwise.
func runProbeCommand(stdout io.Writer, args []string) int {
	var p gpuProbe
	var info gpu.Info
	var err error
	switch {
	case len(args) == 0 || args[0] == "cuda":
		info, err = gpu.Probe()
	case args[0] == "hip":
		info, err = gpu.ProbeVendor(gpu.HIP)
	default:
		err = fmt.Errorf("GPU probe: unknown vendor %q, want cuda or hip", args[0])
	}
	if err != nil {
		p.Error = err.Error()
	} else {
		p.Info = info
	}
	if err := json.NewEncoder(stdout).Encode(p); err != nil {
		return 1
	}
	return 0
}

// closeBackend releases what a backend holds (the CPU backend's worker
// goroutines, the GPU's context), for backends that hold anything.
func closeBackend(b compute.Backend) {
	switch c := b.(type) {
	case interface{ Close() }:
		c.Close()
	case interface{ Close() error }:
		c.Close()
	}
}

// backendThreads is the number of threads a backend computes with, for
// reports.
func backendThreads(b compute.Backend) int {
	if t, ok := b.(interface{ Threads() int }); ok {
		return t.Threads()
	}
	return 1
}
