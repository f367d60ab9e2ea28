//go:build !noasm && gc

package lowrank

import (
	"math"
	"testing"
)

// TestKernelsAmd64 checks each assembly micro-kernel the CPU supports
// against a plain loop, whichever one microKernel dispatches to.
func TestKernelsAmd64(t *testing.T) {
	kernels := []struct {
		name  string
		ok    bool
		width int
		run   func(k int, a, b, c *float64, ldc int, acc int)
	}{
		{"fma6x8", kernelFMA, 8, dkern6x8fma},
		{"avx512_6x16", kernel512, 16, dkern6x16avx512},
	}
	for _, kn := range kernels {
		if !kn.ok {
			t.Logf("%s: not supported by this CPU", kn.name)
			continue
		}
		for _, k := range []int{1, 2, 5, 300} {
			for _, acc := range []int{0, 1} {
				a, b := randF64(7, k*mr), randF64(8, k*kn.width)
				ldc := kn.width + 5
				c := randF64(9, mr*ldc)
				want := append([]float64(nil), c...)
				for i := 0; i < mr; i++ {
					for j := 0; j < kn.width; j++ {
						s := 0.0
						for p := 0; p < k; p++ {
							s += a[p*mr+i] * b[p*kn.width+j]
						}
						if acc == 1 {
							want[i*ldc+j] += s
						} else {
							want[i*ldc+j] = s
						}
					}
				}
				kn.run(k, &a[0], &b[0], &c[0], ldc, acc)
				for i := range c {
					if math.Abs(c[i]-want[i]) > 1e-12*float64(k+1) {
						t.Fatalf("%s k=%d acc=%d: c[%d] = %v, want %v", kn.name, k, acc, i, c[i], want[i])
					}
				}
			}
		}
	}
}
