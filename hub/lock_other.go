//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package hub

import "os"

// lockFile does nothing where flock is not available: concurrent downloads
// of one file are then the user's to avoid.
func lockFile(*os.File) error { return nil }
