package gpu

import (
	"fmt"
	"runtime"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
)

// Info describes device 0 as Probe found it.
type Info struct {
	Device string `json:"device"` // e.g. "NVIDIA H100 80GB HBM3"
	Arch   string `json:"arch"`   // e.g. "sm_90"
	Driver int    `json:"driver"` // cuDriverGetVersion, e.g. 13000
	Free   int64  `json:"free"`   // bytes of device memory free
	Total  int64  `json:"total"`  // bytes of device memory
}

// Probe goes one step further than Available: it also makes device 0's
// context current and reads its memory, which is where a broken driver
// installation tends to fail. It compiles nothing. Callers that must
// survive a driver that crashes the process run it in a child process.
func Probe() (Info, error) {
	if err := Available(); err != nil {
		return Info{}, err
	}
	return ProbeVendor(CUDA)
}

// ProbeVendor is Probe for either vendor: it loads the runtime and the
// run-time compiler, then reads device 0's name, architecture and memory.
func ProbeVendor(v Vendor) (Info, error) {
	var info Info
	drv, _, err := v.load()
	if err != nil {
		return info, err
	}
	n, err := drv.DeviceCount()
	if err != nil {
		return info, err
	}
	if n == 0 {
		return info, fmt.Errorf("%s: runtime %s: %w", v, drv.Path(), v.errNoDevice())
	}
	if info.Driver, err = drv.Version(); err != nil {
		return info, err
	}
	dev, err := drv.DeviceGet(0)
	if err != nil {
		return info, err
	}
	if info.Device, err = drv.DeviceName(dev); err != nil {
		return info, err
	}
	major, err := drv.DeviceAttribute(dev, cuda.AttrComputeCapabilityMajor)
	if err != nil {
		return info, err
	}
	minor, err := drv.DeviceAttribute(dev, cuda.AttrComputeCapabilityMinor)
	if err != nil {
		return info, err
	}
	if info.Arch, err = v.arch(drv, dev, major, minor); err != nil {
		return info, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx, err := drv.PrimaryCtxRetain(dev)
	if err != nil {
		return info, err
	}
	defer drv.PrimaryCtxRelease(dev)
	if err := drv.SetCurrent(ctx); err != nil {
		return info, err
	}
	info.Free, info.Total, err = drv.MemGetInfo()
	return info, err
}

// MemInfo is the free and total memory of the backend's device, in bytes
// (cuMemGetInfo): what a caller checks a model's size against before
// uploading it.
func (b *Backend) MemInfo() (free, total int64, err error) {
	if err := b.enter(); err != nil {
		return 0, 0, err
	}
	defer b.leave()
	return b.drv.MemGetInfo()
}
