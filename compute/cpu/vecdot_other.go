//go:build !amd64 || purego

package cpu

import "github.com/rocmforge/rocmforge/ggml"

// asmSupported reports whether this build has assembly kernels for the CPU
// it runs on: never, on this architecture (or with the purego tag).
func asmSupported() bool { return false }

// addAsmKernels has no assembly to add here.
func addAsmKernels(map[ggml.Type]*kernel) {}
