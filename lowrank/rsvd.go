package lowrank

import (
	"context"
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

// factorRandomized is the randomised range finder with power iterations
// (Halko, Martinsson & Tropp 2011, Alg. 4.4) on M = W·T, followed by an exact
// SVD of the small projected matrix. Its cost is O(m·n·(k+p)·(2q+2)) and it
// suits small k; the top-k subspace it returns is approximate, with error
// shrinking like (σ_{k+p+1}/σ_k)^(2q+1).
func factorRandomized(ctx context.Context, w []float64, m, n int, tr transform, k int, opts Options) (*factors64, error) {
	th := tr.th
	mm, wkind, err := tr.apply(ctx, w, m, n)
	if err != nil {
		return nil, err
	}
	p := min(m, n)
	k = min(k, p)
	over := opts.Oversample
	if over <= 0 {
		over = max(16, k/4)
	}
	l := min(k+over, p)
	q := opts.PowerIters
	if q <= 0 {
		q = 4
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x7a11))
	omega := make([]float64, n*l)
	for i := range omega {
		omega[i] = rng.NormFloat64()
	}
	y := make([]float64, m*l)
	z := make([]float64, n*l)
	gemm(th, false, false, m, l, n, 1, mm, n, omega, l, 0, y, l)
	orthonormalize(y, m, l)
	for it := 0; it < q; it++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		gemm(th, true, false, n, l, m, 1, mm, n, y, l, 0, z, l)
		orthonormalize(z, n, l)
		gemm(th, false, false, m, l, n, 1, mm, n, z, l, 0, y, l)
		orthonormalize(y, m, l)
	}
	bs := make([]float64, l*n)
	gemm(th, true, false, l, n, m, 1, y, l, mm, n, 0, bs, n)
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(l, n, bs), mat.SVDThin) {
		return nil, fmt.Errorf("SVD of the %d×%d projected matrix did not converge", l, n)
	}
	sigma := svd.Values(nil)
	uk := leadingU(&svd, k)
	a := make([]float64, m*k)
	gemm(th, false, false, m, k, l, 1, y, l, uk, k, 0, a, k)
	b := make([]float64, k*n)
	gemm(th, true, false, k, n, m, 1, a, k, w, n, 0, b, n)
	return finish(a, b, m, n, k, sigma, wkind)
}

// orthonormalize replaces the columns of the row-major m×l matrix a (m ≥ l)
// by an orthonormal basis of their span (Householder QR).
func orthonormalize(a []float64, m, l int) {
	var impl gonum.Implementation
	tau := make([]float64, l)
	work := make([]float64, 1)
	impl.Dgeqrf(m, l, a, l, tau, work, -1)
	lw := int(work[0])
	impl.Dorgqr(m, l, l, a, l, tau, work, -1)
	lw = max(lw, int(work[0]))
	work = make([]float64, lw)
	impl.Dgeqrf(m, l, a, l, tau, work, lw)
	impl.Dorgqr(m, l, l, a, l, tau, work, lw)
}
