package gpu

import (
	"fmt"

	"github.com/rocmforge/rocmforge/compute/gpu/cuda"
	"github.com/rocmforge/rocmforge/compute/gpu/hip"
)

// Vendor is a GPU stack the backend runs on: NVIDIA through the CUDA
// driver API and NVRTC, or AMD through the HIP runtime and hipRTC. The
// kernels and the backend's code are the same on both.
type Vendor int

// The vendors.
const (
	CUDA Vendor = iota
	HIP
)

// String is "cuda" or "hip", the prefix of the backend's Name.
func (v Vendor) String() string {
	switch v {
	case CUDA:
		return "cuda"
	case HIP:
		return "hip"
	}
	return fmt.Sprintf("vendor(%d)", int(v))
}

// load opens the vendor's runtime and run-time compiler.
func (v Vendor) load() (driverAPI, rtcAPI, error) {
	switch v {
	case CUDA:
		drv, err := cuda.LoadDriver()
		if err != nil {
			return nil, nil, err
		}
		nv, err := cuda.LoadNVRTC()
		if err != nil {
			return nil, nil, err
		}
		return drv, nv, nil
	case HIP:
		rt, err := hip.LoadDriver()
		if err != nil {
			return nil, nil, err
		}
		rtc, err := hip.LoadHIPRTC()
		if err != nil {
			return nil, nil, err
		}
		return &hipDriver{rt: rt}, rtc, nil
	}
	return nil, nil, fmt.Errorf("gpu: unknown vendor %d", int(v))
}

// errNoDevice is the vendor's "no device" error, for errors.Is.
func (v Vendor) errNoDevice() error {
	if v == HIP {
		return hip.ErrNoDevice
	}
	return cuda.ErrNoDevice
}

// arch is the compile target of dev: "sm_90" from the compute capability
// on CUDA, the target ID ("gfx90a:sramecc+:xnack-") on HIP, where the
// capability numbers say too little.
func (v Vendor) arch(drv driverAPI, dev cuda.Device, major, minor int) (string, error) {
	if v != HIP {
		return fmt.Sprintf("sm_%d%d", major, minor), nil
	}
	h, ok := drv.(*hipDriver)
	if !ok {
		return "", fmt.Errorf("gpu: HIP vendor with a %T driver", drv)
	}
	h.dev = hip.Device(dev)
	return h.rt.DeviceArch(hip.Device(dev))
}

// compileOptions are the run-time compiler's options for arch and warp.
// lineInfo (source lines for profilers) applies to NVRTC only.
func (v Vendor) compileOptions(arch string, warp int, lineInfo bool) ([]string, error) {
	if v == HIP {
		return hip.CompileOptions(arch, warp, "--std=c++17")
	}
	return compileOptions(arch, warp, lineInfo), nil
}
