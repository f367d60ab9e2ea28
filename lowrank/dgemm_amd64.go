//go:build amd64 && !noasm

package lowrank

import "golang.org/x/sys/cpu"

//go:noescape
func dkern6x8fma(k int, a, b, c *float64, ldc int, acc int)

//go:noescape
func dkern6x16avx512(k int, a, b, c *float64, ldc int, acc int)

//go:noescape
func dotAxpyFMA(n int, row, x, y *float64, s float64) float64

// kernelFMA reports whether the AVX2/FMA micro-kernel can run; it is fixed
// at start-up, not mutable state.
var kernelFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel512 selects the 6×16 AVX-512 micro-kernel; nr is the micro-panel
// width of op(B) the packing must produce for the chosen kernel.
var (
	kernel512 = cpu.X86.HasAVX512F
	nr        = microPanelWidth()
)

func microPanelWidth() int {
	if cpu.X86.HasAVX512F {
		return 16
	}
	return 8
}

// microKernel adds (acc) or writes (!acc) the product of packed
// micro-panels a (k×6) and b (k×nr) into the 6×nr block of c with row
// stride ldc.
func microKernel(k int, a, b, c []float64, ldc int, acc bool) {
	if (kernelFMA || kernel512) && k > 0 {
		_ = c[5*ldc+nr-1] // bounds: the assembly writes six rows of nr
		_ = a[k*mr-1]
		_ = b[k*nr-1]
		f := 0
		if acc {
			f = 1
		}
		if kernel512 {
			dkern6x16avx512(k, &a[0], &b[0], &c[0], ldc, f)
		} else {
			dkern6x8fma(k, &a[0], &b[0], &c[0], ldc, f)
		}
		return
	}
	microKernelGo(k, a, b, c, ldc, acc)
}

// dotAxpy returns row·x and adds s·row to y in the same pass over row.
func dotAxpy(row, x, y []float64, s float64) float64 {
	n := len(row)
	x, y = x[:n], y[:n]
	d := 0.0
	j := 0
	if kernelFMA && n >= 8 {
		j = n &^ 7
		d = dotAxpyFMA(j, &row[0], &x[0], &y[0], s)
	}
	return d + dotAxpyGo(row[j:], x[j:], y[j:], s)
}
