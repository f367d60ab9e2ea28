package cpu

import xcpu "golang.org/x/sys/cpu"

// Features are the instruction-set levels; each implies the ones before it.
type Features struct {
	AVX2   bool // AVX, AVX2, FMA and F16C: the float row kernels, the VPMADDUBSW q8 kernels, the AVX2 GEMM
	AVX512 bool // AVX-512 F and VL: the register-tiled float kernels, the activations, the AVX-512 GEMM
	VNNI   bool // AVX-512 BW and VNNI: the VPDPBUSD q8 kernels
}

var (
	detected = detect()
	current  = detected
)

func detect() Features {
	x := &xcpu.X86
	f := Features{AVX2: x.HasAVX && x.HasAVX2 && x.HasFMA && x.HasF16C}
	f.AVX512 = f.AVX2 && x.HasAVX512F && x.HasAVX512VL
	f.VNNI = f.AVX512 && x.HasAVX512BW && x.HasAVX512VNNI
	return f
}

// X86 returns the levels the kernels may use: this CPU's, unless a test
// lowered them.
func X86() Features { return current }

// Detected returns this CPU's levels, whatever a test set.
func Detected() Features { return detected }

// SetForTesting limits X86 to the levels in f that this CPU has (and the
// levels they imply) until restore is called. It is for tests only: the
// change is not synchronized with kernels running on other goroutines.
func SetForTesting(f Features) (restore func()) {
	prev := current
	current = Features{
		AVX2:   f.AVX2 && detected.AVX2,
		AVX512: f.AVX512 && f.AVX2 && detected.AVX512,
		VNNI:   f.VNNI && f.AVX512 && f.AVX2 && detected.VNNI,
	}
	return func() { current = prev }
}
