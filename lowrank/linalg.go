package lowrank

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// gemm computes c = alpha·op(a)·op(b) + beta·c for row-major float64
// matrices, op(a) m×k and op(b) k×n. It goes through gonum's Dgemm, which
// splits large products across GOMAXPROCS goroutines, so every large product
// in this package uses all cores without a pool of our own.
func gemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if tA {
		ta = blas.Trans
	}
	if tB {
		tb = blas.Trans
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	blas64.Implementation().Dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

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

// parallelRows splits [0, m) into one contiguous chunk per core and runs fn
// on each concurrently. Used to parallelise BLAS-3 routines that gonum runs
// on one goroutine (Dtrmm, Dsyrk), which do half the flops of Dgemm.
func parallelRows(m int, fn func(r0, r1 int)) {
	p := max(1, min(runtime.GOMAXPROCS(0), m/64))
	if p == 1 {
		fn(0, m)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < p; i++ {
		r0, r1 := i*m/p, (i+1)*m/p
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(r0, r1)
		}()
	}
	wg.Wait()
}

// trmmRightLower returns W·L for row-major W (m×n) and lower-triangular L
// (n×n), half the flops of a general product.
func trmmRightLower(w []float64, m, n int, l []float64) []float64 {
	out := append([]float64(nil), w...)
	parallelRows(m, func(r0, r1 int) {
		blas64.Trmm(blas.Right, blas.NoTrans, 1,
			blas64.Triangular{N: n, Stride: n, Uplo: blas.Lower, Diag: blas.NonUnit, Data: l},
			blas64.General{Rows: r1 - r0, Cols: n, Stride: n, Data: out[r0*n : r1*n]})
	})
	return out
}

// gramT returns the full symmetric Mᵀ·M (n×n) of row-major M (m×n) with one
// Dsyrk per row chunk, summed: half the flops of Dgemm, on every core.
func gramT(mm []float64, m, n int) []float64 {
	p := max(1, min(runtime.GOMAXPROCS(0), m/64))
	parts := make([][]float64, p)
	var wg sync.WaitGroup
	for i := 0; i < p; i++ {
		r0, r1 := i*m/p, (i+1)*m/p
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := make([]float64, n*n)
			blas64.Syrk(blas.Trans, 1, blas64.General{Rows: r1 - r0, Cols: n, Stride: n, Data: mm[r0*n : r1*n]},
				0, blas64.Symmetric{N: n, Stride: n, Uplo: blas.Upper, Data: g})
			parts[i] = g
		}()
	}
	wg.Wait()
	g := parts[0]
	for _, q := range parts[1:] {
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				g[i*n+j] += q[i*n+j]
			}
		}
	}
	symmetrize(g, n)
	return g
}
