//go:build !amd64 || purego

package cpu

// asmAttnMath has no assembly here: the Go arithmetic.
func asmAttnMath() attnMath { return goAttnMath() }
