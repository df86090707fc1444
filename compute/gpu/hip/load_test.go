package hip

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSearchDirsOrder(t *testing.T) {
	env := map[string]string{
		"ROCM_PATH": "/x/rocm/", // cleaned, and HIP_PATH's duplicate dropped
		"HIP_PATH":  "/x/rocm",
	}
	glob := func(pattern string) ([]string, error) {
		if pattern != "/opt/rocm-*" {
			t.Errorf("glob(%q), want /opt/rocm-*", pattern)
		}
		return []string{"/opt/rocm-6.9.0", "/opt/rocm-5.7.1", "/opt/rocm-6.10.1"}, nil
	}
	got := searchDirs(func(k string) string { return env[k] }, glob)
	want := []string{
		"/x/rocm/lib", "/x/rocm/lib64", "/x/rocm",
		"/opt/rocm/lib", "/opt/rocm/lib64", "/opt/rocm",
		"/opt/rocm-6.10.1/lib", "/opt/rocm-6.10.1/lib64", "/opt/rocm-6.10.1",
		"/opt/rocm-6.9.0/lib", "/opt/rocm-6.9.0/lib64", "/opt/rocm-6.9.0",
		"/opt/rocm-5.7.1/lib", "/opt/rocm-5.7.1/lib64", "/opt/rocm-5.7.1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("searchDirs:\n got %q\nwant %q", got, want)
	}

	// ROCMFORGE_HIP_PATH comes before everything else.
	env["ROCMFORGE_HIP_PATH"] = "/mine"
	got = searchDirs(func(k string) string { return env[k] }, func(string) ([]string, error) { return nil, nil })
	if got[0] != "/mine/lib" || got[3] != "/x/rocm/lib" {
		t.Errorf("with ROCMFORGE_HIP_PATH: %q", got)
	}
}

func TestVersionLess(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"/opt/rocm-6.9.0", "/opt/rocm-6.10.0", true},
		{"/opt/rocm-6.10.0", "/opt/rocm-6.9.0", false},
		{"/opt/rocm-6.2", "/opt/rocm-6.2.1", true},
		{"/opt/rocm-5.7.1", "/opt/rocm-6.0.0", true},
		{"/opt/rocm-6.0.0", "/opt/rocm-6.0.0", false},
	} {
		if got := versionLess(c.a, c.b); got != c.want {
			t.Errorf("versionLess(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// fakeFS is a finder over a set of files, recording every dlopen.
func fakeFS(dirs []string, files map[string]error) (finder, *[]string) {
	var opened []string
	return finder{
		dirs: dirs,
		exists: func(p string) bool {
			_, ok := files[p]
			return ok
		},
		open: func(p string) (uintptr, error) {
			opened = append(opened, p)
			if err, ok := files[p]; ok {
				if err != nil {
					return 0, err
				}
				return 1, nil
			}
			return 0, fmt.Errorf("%s: cannot open shared object file", p)
		},
	}, &opened
}

func TestOpenLibOrder(t *testing.T) {
	dirs := []string{"/env/lib", "/opt/rocm/lib", "/opt/rocm-6.2.0/lib"}
	tests := []struct {
		name     string
		files    map[string]error
		wantPath string
		wantOpen []string
	}{
		{
			name:     "first directory wins over later ones",
			files:    map[string]error{"/opt/rocm/lib/libamdhip64.so": nil, "/opt/rocm-6.2.0/lib/libamdhip64.so": nil},
			wantPath: "/opt/rocm/lib/libamdhip64.so",
			wantOpen: []string{"/opt/rocm/lib/libamdhip64.so"},
		},
		{
			name:     "within a directory the unversioned name first",
			files:    map[string]error{"/env/lib/libamdhip64.so.6": nil, "/env/lib/libamdhip64.so": nil},
			wantPath: "/env/lib/libamdhip64.so",
			wantOpen: []string{"/env/lib/libamdhip64.so"},
		},
		{
			name:     "a versioned name in an earlier directory beats a later directory",
			files:    map[string]error{"/env/lib/libamdhip64.so.6": nil, "/opt/rocm/lib/libamdhip64.so": nil},
			wantPath: "/env/lib/libamdhip64.so.6",
			wantOpen: []string{"/env/lib/libamdhip64.so.6"},
		},
		{
			name:     "a file that fails to load is skipped",
			files:    map[string]error{"/env/lib/libamdhip64.so": errors.New("wrong ELF class"), "/opt/rocm/lib/libamdhip64.so": nil},
			wantPath: "/opt/rocm/lib/libamdhip64.so",
			wantOpen: []string{"/env/lib/libamdhip64.so", "/opt/rocm/lib/libamdhip64.so"},
		},
		{
			name:     "then the system loader by soname",
			files:    map[string]error{"libamdhip64.so.5": nil},
			wantPath: "libamdhip64.so.5",
			wantOpen: []string{"libamdhip64.so", "libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, opened := fakeFS(dirs, tc.files)
			_, path, err := f.openLib("the HIP runtime", runtimeNames)
			if err != nil {
				t.Fatal(err)
			}
			if path != tc.wantPath {
				t.Errorf("loaded %s, want %s", path, tc.wantPath)
			}
			if !slices.Equal(*opened, tc.wantOpen) {
				t.Errorf("dlopen calls %q, want %q", *opened, tc.wantOpen)
			}
		})
	}
}

func TestOpenLibRTCFallsBackToRuntime(t *testing.T) {
	// ROCm 5 has no libhiprtc: hipRTC comes from libamdhip64.
	f, _ := fakeFS([]string{"/opt/rocm/lib"}, map[string]error{"/opt/rocm/lib/libamdhip64.so": nil})
	_, path, err := f.openLib("hipRTC", rtcNames)
	if err != nil || path != "/opt/rocm/lib/libamdhip64.so" {
		t.Errorf("got %q, %v; want /opt/rocm/lib/libamdhip64.so", path, err)
	}
	f, _ = fakeFS([]string{"/opt/rocm/lib"}, map[string]error{"/opt/rocm/lib/libamdhip64.so": nil, "/opt/rocm/lib/libhiprtc.so": nil})
	if _, path, _ = f.openLib("hipRTC", rtcNames); path != "/opt/rocm/lib/libhiprtc.so" {
		t.Errorf("with libhiprtc present got %q", path)
	}
}

// TestOpenLibNotFound runs the real dlopen on names that exist nowhere: the
// error must name every directory searched, the sonames and the loader's
// answer.
func TestOpenLibNotFound(t *testing.T) {
	dir := t.TempDir()
	f := defaultFinder()
	f.dirs = []string{dir, filepath.Join(dir, "lib")}
	names := []string{"librocmforge-absent.so", "librocmforge-absent.so.9"}
	_, _, err := f.openLib("the HIP runtime (libamdhip64.so)", names)
	if err == nil {
		t.Fatal("loaded a library that does not exist")
	}
	msg := err.Error()
	for _, want := range []string{"the HIP runtime (libamdhip64.so) not found", dir + ", " + filepath.Join(dir, "lib"),
		"librocmforge-absent.so, librocmforge-absent.so.9", "loader: librocmforge-absent.so (", "loader: librocmforge-absent.so.9 ("} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	t.Log(msg)
}

// TestLoadDriverHere loads the real runtime the way the backend will. On a
// machine without ROCm that must be a "not found" error naming the search;
// with a ROCm runtime but no AMD GPU (Debian's libamdhip64 installed by
// scripts/hip-check.sh) hipInit must fail with a named hipError_t.
func TestLoadDriverHere(t *testing.T) {
	d, err := LoadDriver()
	switch {
	case err == nil:
		n, err := d.DeviceCount()
		if err != nil {
			t.Fatalf("runtime %s initialised but hipGetDeviceCount failed: %v", d.Path(), err)
		}
		t.Logf("HIP runtime %s with %d device(s)", d.Path(), n)
		for i := range n {
			arch, err := d.DeviceArch(Device(i))
			if err != nil {
				t.Errorf("device %d: %v", i, err)
				continue
			}
			warp, err := d.WarpSize(Device(i))
			if err != nil {
				t.Errorf("device %d: %v", i, err)
			}
			t.Logf("device %d: %s, warp %d", i, arch, warp)
		}
	case strings.Contains(err.Error(), "not found"):
		for _, want := range []string{"/opt/rocm/lib", "libamdhip64.so", "loader: libamdhip64.so"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("not-found error does not name %q:\n%v", want, err)
			}
		}
		t.Logf("no ROCm here: %v", err)
	default:
		var he *Error
		if !errors.As(err, &he) {
			t.Fatalf("runtime found but the error is not a *hip.Error: %v", err)
		}
		if he.Func != "hipInit" || !strings.HasPrefix(he.Name, "hipError") {
			t.Errorf("want a named hipInit error, got %#v", he)
		}
		if !errors.Is(err, ErrNoDevice) {
			t.Logf("note: hipInit failed with %s, which is not matched as ErrNoDevice", he.Name)
		}
		t.Logf("ROCm runtime without a usable GPU: %v", err)
	}
}
