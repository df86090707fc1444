//go:build !unix

package gguf

// mapFile reads the whole file: this platform has no mmap support here.
func mapFile(path string) ([]byte, func() error, error) { return readWhole(path) }
