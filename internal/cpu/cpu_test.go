package cpu

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"testing"
)

// procFlags reads the feature flags of the first processor in
// /proc/cpuinfo; the kernel lists only what it enables (an extension whose
// register state the OS does not save is left out), as x/sys/cpu checks.
func procFlags(t *testing.T) map[string]bool {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		t.Skipf("no /proc/cpuinfo: %v", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "flags" {
			m := map[string]bool{}
			for _, w := range strings.Fields(v) {
				m[w] = true
			}
			return m
		}
	}
	t.Fatalf("/proc/cpuinfo: no flags line (%v)", s.Err())
	return nil
}

// TestFeaturesDetected checks the levels against the flags Linux reports.
func TestFeaturesDetected(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		if Detected() != (Features{}) {
			t.Fatalf("%s/%s: detected %+v, want no x86 levels", runtime.GOOS, runtime.GOARCH, Detected())
		}
		return
	}
	fl := procFlags(t)
	want := Features{AVX2: fl["avx"] && fl["avx2"] && fl["fma"] && fl["f16c"]}
	want.AVX512 = want.AVX2 && fl["avx512f"] && fl["avx512vl"]
	want.VNNI = want.AVX512 && fl["avx512bw"] && fl["avx512_vnni"]
	if got := Detected(); got != want {
		t.Fatalf("detected %+v, /proc/cpuinfo says %+v", got, want)
	}
	if X86() != Detected() {
		t.Fatalf("X86() = %+v without a test limit, want %+v", X86(), Detected())
	}
	t.Logf("levels: %+v", want)
}

func TestSetForTesting(t *testing.T) {
	d := Detected()
	for _, tc := range []struct {
		name string
		set  Features
		want Features
	}{
		{"none", Features{}, Features{}},
		{"avx2", Features{AVX2: true}, Features{AVX2: d.AVX2}},
		{"avx512", Features{AVX2: true, AVX512: true}, Features{AVX2: d.AVX2, AVX512: d.AVX512}},
		{"all", Features{AVX2: true, AVX512: true, VNNI: true}, d},
		{"vnni without its base", Features{VNNI: true}, Features{}},
	} {
		restore := SetForTesting(tc.set)
		got := X86()
		restore()
		if got != tc.want {
			t.Errorf("%s: X86() = %+v, want %+v", tc.name, got, tc.want)
		}
		if X86() != d {
			t.Fatalf("%s: after restore X86() = %+v, want %+v", tc.name, X86(), d)
		}
	}
}
