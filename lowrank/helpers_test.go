package lowrank

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

func randMat(r *rand.Rand, m, n int) []float32 {
	w := make([]float32, m*n)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	return w
}

// lowRankPlus returns U·diag(sv)·Vᵀ + noise·G with orthonormal random U, V.
func lowRankPlus(r *rand.Rand, m, n int, sv []float64, noise float64) (w []float32, u []float64) {
	k := len(sv)
	u = orthoCols(r, m, k)
	v := orthoCols(r, n, k)
	w = make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := noise * r.NormFloat64()
			for t := 0; t < k; t++ {
				s += u[i*k+t] * sv[t] * v[j*k+t]
			}
			w[i*n+j] = float32(s)
		}
	}
	return w, u
}

func orthoCols(r *rand.Rand, m, k int) []float64 {
	a := make([]float64, m*k)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	orthonormalize(a, m, k)
	return a
}

// activations returns N activation vectors (rows×n row-major) with
// per-feature scales and a few correlated directions, plus their stats.
func activations(r *rand.Rand, n, rows int, scale func(j int) float64) ([]float32, *Stats) {
	x := make([]float32, rows*n)
	mix := make([]float64, n)
	for j := range mix {
		mix[j] = r.NormFloat64()
	}
	for t := 0; t < rows; t++ {
		common := r.NormFloat64()
		for j := 0; j < n; j++ {
			x[t*n+j] = float32(scale(j) * (r.NormFloat64() + 0.5*common*mix[j]))
		}
	}
	s := NewStats(n)
	s.AddBatch(x, rows)
	return x, s
}

// actErr2 is ||(W − W')·X||_F² with X given as rows×n (one input per row),
// in float64.
func actErr2(w []float32, wp []float64, m, n int, x []float32, rows int) float64 {
	d := make([]float64, m*n)
	for i := range d {
		d[i] = float64(w[i]) - wp[i]
	}
	xx := widen(x)
	out := make([]float64, m*rows)
	gemm(th, false, true, m, rows, n, 1, d, n, xx, n, 0, out, rows)
	s := 0.0
	for _, v := range out {
		s += v * v
	}
	return s
}

func product64(f *factors64) []float64 {
	out := make([]float64, f.m*f.n)
	gemm(th, false, false, f.m, f.n, f.k, 1, f.a, f.k, f.b, f.n, 0, out, f.n)
	return out
}

func productF(f *Factors) []float64 { return widen(f.Reconstruct()) }

func frob2(w []float32, wp []float64) float64 {
	s := 0.0
	for i := range w {
		d := float64(w[i]) - wp[i]
		s += d * d
	}
	return s
}

func tail2(sigma []float64, k int) float64 {
	s := 0.0
	for _, v := range sigma[min(k, len(sigma)):] {
		s += v * v
	}
	return s
}

func gonumSVDValues(t *testing.T, a []float64, m, n int) []float64 {
	t.Helper()
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(m, n, append([]float64(nil), a...)), mat.SVDNone) {
		t.Fatal("gonum SVD failed")
	}
	return svd.Values(nil)
}

func checkFinite(t *testing.T, name string, x []float32) {
	t.Helper()
	if i, ok := allFinite32(x); !ok {
		t.Fatalf("%s: non-finite value %v at %d", name, x[i], i)
	}
}

// principalCosines returns the cosines of the principal angles between the
// column spans of the orthonormal m×k matrix u and of the m×r matrix a.
func principalCosines(u []float64, k int, a []float64, m, r int) []float64 {
	q := append([]float64(nil), a...)
	orthonormalize(q, m, r)
	p := make([]float64, k*r)
	gemm(th, true, false, k, r, m, 1, u, k, q, r, 0, p, r)
	var svd mat.SVD
	svd.Factorize(mat.NewDense(k, r, p), mat.SVDNone)
	return svd.Values(nil)
}

func relErr(a, b float64) float64 {
	if a == b {
		return 0
	}
	return math.Abs(a-b) / math.Max(math.Abs(a), math.Abs(b))
}

// th is the thread budget the tests give the parallel routines: odd, so
// that row and tile splits are uneven.
const th = 3
