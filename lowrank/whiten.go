package lowrank

import (
	"context"
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// whitening holds the decompositions of one Stats' covariance C = X Xᵀ/N,
// each computed on first use: several projections share an input.
type whitening struct {
	stats *Stats

	covOnce sync.Once
	cov     []float64

	sqOnce sync.Once
	sq     *sqrtCov
	sqErr  error
}

func (w *whitening) covariance() []float64 {
	w.covOnce.Do(func() { w.cov = w.stats.Covariance() })
	return w.cov
}

func (w *whitening) sqrt(ctx context.Context) (*sqrtCov, error) {
	w.sqOnce.Do(func() { w.sq, w.sqErr = newSqrtCov(ctx, w.covariance(), w.stats.N) })
	return w.sq, w.sqErr
}

// sqrtCov is a square root S of the (regularised) covariance, C' = S Sᵀ.
type sqrtCov struct {
	n int
	// s is n×n row-major: lower triangular for Cholesky, Q·diag(d) for the
	// eigendecomposition route.
	s []float64
	// Eigendecomposition route only: S⁻¹ = diag(1/d)·Qᵀ.
	q, d []float64
	// Jitter is the multiple of I added to C (Cholesky route).
	jitter float64
	kind   string // "cholesky" or "eigen"
}

// maxJitterSteps bounds the escalation 1e-6·mean(diag)·10^t, t = 0..6: at
// t = 6 the jitter equals the mean variance, which any positive
// semi-definite matrix survives; failing that the input is not PSD (rounding
// garbage) and the eigendecomposition route takes over.
const maxJitterSteps = 7

func newSqrtCov(ctx context.Context, c []float64, n int) (*sqrtCov, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mean := 0.0
	for i := 0; i < n; i++ {
		mean += c[i*n+i]
	}
	mean /= float64(n)
	if mean == 0 || math.IsNaN(mean) {
		// All-zero activations carry no information; fall back to the
		// identity, which turns whitening into plain SVD.
		s := make([]float64, n*n)
		for i := 0; i < n; i++ {
			s[i*n+i] = 1
		}
		return &sqrtCov{n: n, s: s, kind: "cholesky", jitter: 1}, nil
	}
	a := make([]float64, n*n)
	// Exact Cholesky first, so that full-rank statistics give exactly the
	// SVD-LLM transform; then escalating jitter.
	for t := -1; t < maxJitterSteps; t++ {
		lam := 0.0
		if t >= 0 {
			lam = 1e-6 * mean * math.Pow(10, float64(t))
		}
		copy(a, c)
		for i := 0; i < n; i++ {
			a[i*n+i] += lam
		}
		tri, ok := lapack64.Potrf(blas64.Symmetric{N: n, Stride: n, Uplo: blas.Lower, Data: a})
		if ok && choleskyUsable(tri.Data, n, mean) {
			for i := 0; i < n; i++ {
				for j := i + 1; j < n; j++ {
					a[i*n+j] = 0
				}
			}
			return &sqrtCov{n: n, s: a, jitter: lam, kind: "cholesky"}, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return eigenSqrt(c, n, mean)
}

// choleskyUsable rejects factors whose pivots are so small relative to the
// mean variance that S⁻¹ would amplify rounding noise by more than ~1e7.
func choleskyUsable(l []float64, n int, mean float64) bool {
	floor := 1e-7 * math.Sqrt(mean)
	for i := 0; i < n; i++ {
		v := l[i*n+i]
		if !(v > floor) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// eigenSqrt is SVD-LLM V2's route: C = Q Λ Qᵀ, S = Q·diag(sqrt(max(λ, ε))).
// Clamping at ε rather than dropping keeps S invertible; directions the
// activations never visit get a tiny weight, so W's component there is kept
// (it costs nothing in activation error) instead of producing NaN.
func eigenSqrt(c []float64, n int, mean float64) (*sqrtCov, error) {
	var es mat.EigenSym
	if !es.Factorize(mat.NewSymDense(n, append([]float64(nil), c...)), true) {
		return nil, fmt.Errorf("eigendecomposition of %d×%d activation covariance did not converge", n, n)
	}
	vals := es.Values(nil)
	var qd mat.Dense
	es.VectorsTo(&qd)
	q := qd.RawMatrix()
	floor := 1e-10 * mean
	d := make([]float64, n)
	for i, v := range vals {
		d[i] = math.Sqrt(math.Max(v, floor))
	}
	s := make([]float64, n*n)
	qq := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			v := q.Data[i*q.Stride+j]
			qq[i*n+j] = v
			s[i*n+j] = v * d[j]
		}
	}
	return &sqrtCov{n: n, s: s, q: qq, d: d, kind: "eigen"}, nil
}

// rightMul returns W·S for the row-major m×n matrix W.
func (s *sqrtCov) rightMul(th int, w []float64, m int) []float64 {
	n := s.n
	if s.kind == "cholesky" {
		return trmmRightLower(th, w, m, n, s.s)
	}
	out := make([]float64, m*n)
	gemm(th, false, false, m, n, n, 1, w, n, s.s, n, 0, out, n)
	return out
}

// solveRight overwrites the row-major k×n matrix b with b·S⁻¹.
func (s *sqrtCov) solveRight(th int, b []float64, k int) {
	n := s.n
	if k == 0 {
		return
	}
	if s.kind == "cholesky" {
		trsmRightLower(th, b, k, n, s.s)
		return
	}
	for i := 0; i < k; i++ {
		row := b[i*n : (i+1)*n]
		for j := range row {
			row[j] /= s.d[j]
		}
	}
	tmp := make([]float64, k*n)
	gemm(th, false, true, k, n, n, 1, b, n, s.q, n, 0, tmp, n)
	copy(b, tmp)
}
