package lowrank

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// widen converts float32 to a new float64 slice.
func widen(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// narrow converts float64 to float32.
func narrow(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func allFinite32(x []float32) (int, bool) {
	for i, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return i, false
		}
	}
	return 0, true
}

func allFinite64(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// symmetrize copies the upper triangle of the row-major n×n matrix a onto
// its lower triangle.
func symmetrize(a []float64, n int) {
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			a[j*n+i] = a[i*n+j]
		}
	}
}

// parallelRows splits [0, m) into one contiguous chunk per thread of the
// budget th and runs fn on each concurrently. Used to parallelise BLAS-3 routines that gonum runs
// on one goroutine (Dtrmm, Dsyrk), which do half the flops of Dgemm.
func parallelRows(th, m int, fn func(r0, r1 int)) {
	p := max(1, min(th, m/64))
	parallel(p, p, func(i int) { fn(i*m/p, (i+1)*m/p) })
}

// trmmRightLower returns W·L for row-major W (m×n) and lower-triangular L
// (n×n, zeros above the diagonal): the product skips L's zero blocks.
func trmmRightLower(th int, w []float64, m, n int, l []float64) []float64 {
	out := make([]float64, m*n)
	gemmEx(th, gemmOpts{lowerB: true}, false, false, m, n, n, 1, w, n, l, n, 0, out, n)
	return out
}

// gramT returns the full symmetric Mᵀ·M (n×n) of row-major M (m×n); only
// the lower triangle is multiplied out.
func gramT(th int, mm []float64, m, n int) []float64 {
	g := make([]float64, n*n)
	gemmEx(th, gemmOpts{lowerC: true}, true, false, n, n, m, 1, mm, n, mm, n, 0, g, n)
	symmetrizeLower(g, n)
	return g
}

// symmetrizeLower copies the lower triangle of the row-major n×n matrix a
// onto its upper triangle.
func symmetrizeLower(a []float64, n int) {
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			a[i*n+j] = a[j*n+i]
		}
	}
}

// trsmRightLower overwrites the row-major k×n matrix b with b·L⁻¹ for the
// lower-triangular n×n L. Column blocks are solved right to left: block J
// first receives −X_{>J}·L_{>J,J} (a parallel product, nearly all the
// flops) and is then solved against the small diagonal block, with rows
// split across cores.
func trsmRightLower(th int, b []float64, k, n int, l []float64) {
	const bs = 256
	for j0 := ((n - 1) / bs) * bs; j0 >= 0; j0 -= bs {
		j1 := min(j0+bs, n)
		if j1 < n {
			gemm(th, false, false, k, j1-j0, n-j1, -1, b[j1:], n, l[j1*n+j0:], n, 1, b[j0:], n)
		}
		parallelRows(th, k, func(r0, r1 int) {
			blas64.Trsm(blas.Right, blas.NoTrans, 1,
				blas64.Triangular{N: j1 - j0, Stride: n, Uplo: blas.Lower, Diag: blas.NonUnit, Data: l[j0*n+j0:]},
				blas64.General{Rows: r1 - r0, Cols: j1 - j0, Stride: n, Data: b[r0*n+j0:]})
		})
	}
}
