package main

import (
	"fmt"
	"runtime"

	"github.com/rocmforge/rocmforge/compute"
	"github.com/rocmforge/rocmforge/compute/cpu"
)

// backendUsage describes the --backend values for flag help.
const backendUsage = "compute `backend`: cpu (fast CPU kernels) or ref (plain-Go reference)"

// openBackend makes the compute backend a --backend flag names, with work
// split over threads goroutines where the backend is parallel (threads <= 0:
// one per CPU). It is the one place the commands pick a backend.
func openBackend(name string, threads int) (compute.Backend, error) {
	if threads < 0 {
		return nil, fmt.Errorf("--threads %d: want >= 0 (0 = one per CPU)", threads)
	}
	switch name {
	case "cpu":
		if threads == 0 {
			threads = runtime.NumCPU()
		}
		return cpu.New(threads), nil
	case "ref", "reference":
		return compute.NewReference(), nil
	default:
		return nil, fmt.Errorf("--backend %q: want cpu or ref", name)
	}
}

// closeBackend releases what a backend holds (the CPU backend's worker
// goroutines), for backends that hold anything.
func closeBackend(b compute.Backend) {
	if c, ok := b.(interface{ Close() }); ok {
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
