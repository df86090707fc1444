package cuda

import (
	"testing"
	"unsafe"
)

// TestLaunchConfigLayout pins launchConfig and launchAttribute to the C
// layouts of CUlaunchConfig and CUlaunchAttribute (64-bit).
func TestLaunchConfigLayout(t *testing.T) {
	var c launchConfig
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"smem", unsafe.Offsetof(c.smem), 24},
		{"stream", unsafe.Offsetof(c.stream), 32},
		{"attrs", unsafe.Offsetof(c.attrs), 40},
		{"numAttrs", unsafe.Offsetof(c.numAttrs), 48},
		{"attr (past CUlaunchConfig's 56 bytes)", unsafe.Offsetof(c.attr), 56},
		{"CUlaunchAttribute size", unsafe.Sizeof(c.attr), 72},
		{"CUlaunchAttribute value", unsafe.Offsetof(c.attr.val), 8},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, want %d", f.name, f.got, f.want)
		}
	}
}
