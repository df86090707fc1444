//go:build unix

package gguf

import (
	"fmt"
	"math"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps path read-only, falling back to reading it whole when it
// cannot be mapped (empty files, pipes, special file systems).
func mapFile(path string) ([]byte, func() error, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close() // the mapping outlives the descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if !st.Mode().IsRegular() || size <= 0 || size > math.MaxInt {
		return readWhole(path)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return readWhole(path)
	}
	unmap := func() error {
		if err := unix.Munmap(data); err != nil {
			return fmt.Errorf("munmap %s: %w", path, err)
		}
		return nil
	}
	return data, unmap, nil
}
