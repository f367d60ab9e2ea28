package lowrank

import (
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
)

// TestTridiagonalizeMatchesDsytrd compares the blocked parallel reduction
// with gonum's Dsytrd (the plain reference) entry by entry: same d, e, tau
// and reflectors, up to rounding.
func TestTridiagonalizeMatchesDsytrd(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 33, 97, 130, 257, 301, 600} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			if testing.Short() && n > 301 {
				t.Skip("large")
			}
			x := randF64(uint64(n), n*n)
			g := gramT(th, x, n, n) // PSD with a wide spectrum
			for i := 0; i < n; i++ {
				g[i*n+i] += float64(i % 3) // break near-degeneracy patterns
			}
			want := append([]float64(nil), g...)
			got := append([]float64(nil), g...)
			// junk in the upper triangle must not matter
			for i := 0; i < n; i++ {
				for j := i + 1; j < n; j++ {
					got[i*n+j] = math.NaN()
				}
			}
			nm1 := max(n-1, 1)
			dw, ew, tw := make([]float64, n), make([]float64, nm1), make([]float64, nm1)
			dg, eg, tg := make([]float64, n), make([]float64, nm1), make([]float64, nm1)
			var impl gonum.Implementation
			work := make([]float64, 1)
			impl.Dsytrd(blas.Lower, n, want, n, dw, ew, tw, work, -1)
			work = make([]float64, int(work[0]))
			impl.Dsytrd(blas.Lower, n, want, n, dw, ew, tw, work, len(work))
			tridiagonalize(th, got, n, dg, eg, tg)
			scale := 0.0
			for _, v := range g {
				scale = math.Max(scale, math.Abs(v))
			}
			tol := 1e-10 * scale
			for i := range dw {
				if math.Abs(dw[i]-dg[i]) > tol || math.IsNaN(dg[i]) {
					t.Fatalf("d[%d] = %v, want %v", i, dg[i], dw[i])
				}
			}
			for i := 0; i < n-1; i++ {
				if math.Abs(ew[i]-eg[i]) > tol || math.Abs(tw[i]-tg[i]) > 1e-8 {
					t.Fatalf("e/tau[%d] = %v/%v, want %v/%v", i, eg[i], tg[i], ew[i], tw[i])
				}
			}
			for i := 0; i < n; i++ {
				for j := 0; j+1 < i; j++ {
					if d := math.Abs(want[i*n+j] - got[i*n+j]); d > 1e-7 || math.IsNaN(got[i*n+j]) {
						t.Fatalf("reflector a[%d,%d] = %v, want %v", i, j, got[i*n+j], want[i*n+j])
					}
				}
			}
		})
	}
}

// TestApplyQMatchesDorgtr compares the blocked back-transform with forming
// Q explicitly (gonum's Dorgtr) and multiplying.
func TestApplyQMatchesDorgtr(t *testing.T) {
	for _, c := range [][2]int{{2, 1}, {5, 3}, {64, 10}, {65, 7}, {200, 81}, {333, 129}} {
		n, k := c[0], c[1]
		g := gramT(th, randF64(uint64(n), n*n), n, n)
		d, e, tau := make([]float64, n), make([]float64, n-1), make([]float64, n-1)
		tridiagonalize(th, g, n, d, e, tau)
		z := randF64(uint64(k), n*k)
		got := append([]float64(nil), z...)
		applyQ(th, g, tau, n, got, k)
		q := append([]float64(nil), g...)
		var impl gonum.Implementation
		work := make([]float64, 1)
		impl.Dorgtr(blas.Lower, n, q, n, tau, work, -1)
		work = make([]float64, int(work[0]))
		impl.Dorgtr(blas.Lower, n, q, n, tau, work, len(work))
		want := make([]float64, n*k)
		refGemm(false, false, n, k, n, 1, q, n, z, k, 0, want, k)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-11*float64(n) || math.IsNaN(got[i]) {
				t.Fatalf("n=%d k=%d: Qz[%d] = %v, want %v", n, k, i, got[i], want[i])
			}
		}
	}
}

// TestTriangularProductsMatchReference checks trmmRightLower and
// trsmRightLower (blocked, parallel) against plain loops, with sizes that
// cross the solve's 256-column blocks.
func TestTriangularProductsMatchReference(t *testing.T) {
	for _, c := range [][2]int{{1, 1}, {7, 5}, {33, 300}, {130, 513}} {
		k, n := c[0], c[1]
		l := randF64(uint64(n+1), n*n)
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				l[i*n+j] = 0
			}
			for j := 0; j < i; j++ {
				l[i*n+j] /= math.Sqrt(float64(n)) // random triangular matrices are ill-conditioned otherwise
			}
			l[i*n+i] = 1 + math.Abs(l[i*n+i])
		}
		b := randF64(uint64(k), k*n)
		// trmm against the plain product
		want := make([]float64, k*n)
		refGemm(false, false, k, n, n, 1, b, n, l, n, 0, want, n)
		got := trmmRightLower(th, b, k, n, l)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12*float64(n) {
				t.Fatalf("trmm %dx%d: [%d] = %v, want %v", k, n, i, got[i], want[i])
			}
		}
		// trsm against gonum's (single-threaded, unblocked) Dtrsm, and
		// (B·L)·L⁻¹ must give B back
		x := append([]float64(nil), want...)
		trsmRightLower(th, x, k, n, l)
		y := append([]float64(nil), want...)
		blas64.Trsm(blas.Right, blas.NoTrans, 1,
			blas64.Triangular{N: n, Stride: n, Uplo: blas.Lower, Diag: blas.NonUnit, Data: l},
			blas64.General{Rows: k, Cols: n, Stride: n, Data: y})
		for i := range b {
			if math.Abs(x[i]-y[i]) > 1e-11 || math.Abs(x[i]-b[i]) > 1e-10 || math.IsNaN(x[i]) {
				t.Fatalf("trsm %dx%d: [%d] = %v, want %v (gonum %v)", k, n, i, x[i], b[i], y[i])
			}
		}
	}
}
