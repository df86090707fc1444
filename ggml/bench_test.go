package ggml

import (
	"math/rand/v2"
	"testing"
)

// benchTypes are the types both benchmarks cover.
var benchTypes = []Type{F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K}

// benchInput is a 4096x256-element buffer of Gaussian values.
func benchInput() []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 4096*256)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// BenchmarkDequantize reports output throughput (bytes of float32 written).
func BenchmarkDequantize(b *testing.B) {
	x := benchInput()
	dst := make([]float32, len(x))
	for _, typ := range benchTypes {
		src, err := Quantize(typ, x)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(dst)))
			for b.Loop() {
				if err := Dequantize(typ, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQuantize reports input throughput (bytes of float32 read).
func BenchmarkQuantize(b *testing.B) {
	x := benchInput()
	for _, typ := range benchTypes {
		dst := make([]byte, typ.TypeSize()*len(x)/typ.BlockSize())
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if err := QuantizeInto(typ, dst, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
