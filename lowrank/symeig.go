package lowrank

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/lapack/gonum"
)

// symEig is a partial symmetric eigendecomposition: all eigenvalues, and the
// eigenvectors of only the largest ones on request.
//
// gonum's Dsyev computes every eigenvector with implicit QL and accumulates
// the rotations into an n×n matrix column by column, O(n³) work done
// serially. Truncation needs only the top k vectors, so after the Householder
// tridiagonalisation (tridiagonalize, parallel) and Dsterf (all eigenvalues,
// O(n²)) we run inverse iteration on the tridiagonal matrix for those k
// eigenvalues (O(n) per solve, with Gram–Schmidt inside clusters of close
// eigenvalues, as LAPACK's Dstein does) and map them back with the
// reflectors in blocks (applyQ).
type symEig struct {
	n    int
	th   int       // thread budget of the back-transform
	a    []float64 // tridiagonalize output: reflectors below the subdiagonal
	tau  []float64
	d, e []float64 // tridiagonal matrix; e is zeroed where it was split
	norm float64   // max-norm bound of the tridiagonal matrix
	// vals holds all eigenvalues in descending order, blk their block.
	vals []float64
	blk  []int
	lo   []int // block b covers rows lo[b] .. lo[b+1]-1
}

// newSymEig tridiagonalises the row-major symmetric n×n matrix a (only its
// lower triangle is read; a is overwritten) and computes all eigenvalues.
func newSymEig(ctx context.Context, th int, a []float64, n int) (*symEig, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &symEig{n: n, th: th, a: a, d: make([]float64, n)}
	if n == 0 {
		return s, nil
	}
	var impl gonum.Implementation
	s.e = make([]float64, n-1)
	s.tau = make([]float64, n-1)
	if n > 1 {
		tridiagonalize(th, a, n, s.d, s.e, s.tau)
	} else {
		s.d[0] = a[0]
	}
	if !allFinite64(s.d) || !allFinite64(s.e) {
		return nil, fmt.Errorf("eigendecomposition of %d×%d Gram matrix: non-finite values", n, n)
	}
	for i := 0; i < n; i++ {
		v := math.Abs(s.d[i])
		if i > 0 {
			v += math.Abs(s.e[i-1])
		}
		if i < n-1 {
			v += math.Abs(s.e[i])
		}
		s.norm = math.Max(s.norm, v)
	}
	// Splitting where an off-diagonal is below eps·||T|| perturbs the
	// eigenvalues by no more than the reduction's own rounding did, and exactly
	// repeated eigenvalues (which an unreduced tridiagonal matrix cannot
	// have) show up as such splits.
	tol := 2 * eps * s.norm
	s.lo = append(s.lo, 0)
	for i := 0; i < n-1; i++ {
		if math.Abs(s.e[i]) <= tol {
			s.e[i] = 0
			s.lo = append(s.lo, i+1)
		}
	}
	s.lo = append(s.lo, n)
	type ev struct {
		v float64
		b int
	}
	evs := make([]ev, 0, n)
	for b := 0; b+1 < len(s.lo); b++ {
		lo, hi := s.lo[b], s.lo[b+1]
		dd := append([]float64(nil), s.d[lo:hi]...)
		ee := append([]float64(nil), s.e[lo:hi-1]...)
		if !impl.Dsterf(hi-lo, dd, ee) {
			return nil, fmt.Errorf("eigenvalues of %d×%d Gram matrix: tridiagonal QL did not converge", n, n)
		}
		for _, v := range dd {
			evs = append(evs, ev{v, b})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].v > evs[j].v })
	s.vals = make([]float64, n)
	s.blk = make([]int, n)
	for i, x := range evs {
		s.vals[i], s.blk[i] = x.v, x.b
	}
	return s, nil
}

const eps = 0x1p-52

// vectors returns the eigenvectors of the k largest eigenvalues as the
// columns of a row-major n×k matrix, in the order of vals.
func (s *symEig) vectors(ctx context.Context, k int, seed uint64) ([]float64, error) {
	n := s.n
	if k > n {
		k = n
	}
	z := make([]float64, n*k)
	if k == 0 {
		return z, nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	// Group the wanted eigenvalues by block, keeping descending order.
	byBlock := make(map[int][]int)
	var order []int
	for j := 0; j < k; j++ {
		b := s.blk[j]
		if _, ok := byBlock[b]; !ok {
			order = append(order, b)
		}
		byBlock[b] = append(byBlock[b], j)
	}
	for _, b := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		lo, hi := s.lo[b], s.lo[b+1]
		cols := byBlock[b]
		lams := make([]float64, len(cols))
		for i, j := range cols {
			lams[i] = s.vals[j]
		}
		vecs := tridiagInverseIteration(s.d[lo:hi], s.e[lo:hi-1], lams, s.norm, rng)
		for i, j := range cols {
			x := vecs[i]
			for r := range x {
				z[(lo+r)*k+j] = x[r]
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n == 1 {
		return z, nil
	}
	// Back-transform: A = Q T Qᵀ, so A's eigenvectors are Q·z.
	applyQ(s.th, s.a, s.tau, n, z, k)
	return z, nil
}

// tridiagInverseIteration computes unit eigenvectors of the unreduced (or
// split-free) symmetric tridiagonal matrix with diagonal d and off-diagonal
// e for the eigenvalues lams (descending). norm bounds ||T||.
func tridiagInverseIteration(d, e, lams []float64, norm float64, rng *rand.Rand) [][]float64 {
	n := len(d)
	out := make([][]float64, len(lams))
	if n == 1 {
		for i := range out {
			out[i] = []float64{1}
		}
		return out
	}
	if norm == 0 {
		norm = 1
	}
	// Work on T/||T|| so that pivots, growth and tolerances are all relative.
	ds := make([]float64, n)
	es := make([]float64, n-1)
	for i := range d {
		ds[i] = d[i] / norm
	}
	for i := range e {
		es[i] = e[i] / norm
	}
	// Eigenvalues closer than ortol get their vectors orthogonalised against
	// each other. The computed vector's error is about eps/gap, so 1e-6 keeps
	// orthogonality near 1e-10 without LAPACK's 1e-3, which would make a
	// 2048-wide random spectrum one giant cluster costing O(n·k²).
	const ortol = 1e-6
	pertol := 10 * eps
	f := newTriLU(n)
	x := make([]float64, n)
	var cluster [][]float64
	prev := math.Inf(1)
	prevUsed := math.Inf(1)
	for i, lam0 := range lams {
		lam := lam0 / norm
		if prev-lam >= ortol {
			cluster = cluster[:0]
		}
		prev = lam
		// Equal eigenvalues would give identical factorisations; shifting
		// each a little below the previous keeps the iterations apart.
		if lam > prevUsed-pertol {
			lam = prevUsed - pertol
		}
		prevUsed = lam
		f.factor(ds, es, lam)
		randomize(x, rng)
		for it := 0; it < 3; it++ {
			normalize(x)
			f.solve(x)
			projectOut(x, cluster)
		}
		if normalize(x) == 0 {
			// Everything was removed by reorthogonalisation: the cluster is
			// wider than its vectors (cannot happen for an unreduced matrix
			// in exact arithmetic); restart from a fresh random vector.
			randomize(x, rng)
			projectOut(x, cluster)
			normalize(x)
		}
		v := append([]float64(nil), x...)
		out[i] = v
		cluster = append(cluster, v)
	}
	return out
}

// randomize fills x with uniform values in [−1, 1), a start vector with
// components along every eigenvector.
func randomize(x []float64, rng *rand.Rand) {
	for r := range x {
		x[r] = rng.Float64()*2 - 1
	}
}

// projectOut removes from x its components along the unit vectors of
// cluster, one after another (modified Gram–Schmidt).
func projectOut(x []float64, cluster [][]float64) {
	for _, q := range cluster {
		dot := 0.0
		for r := range x {
			dot += x[r] * q[r]
		}
		for r := range x {
			x[r] -= dot * q[r]
		}
	}
}

func normalize(x []float64) float64 {
	mx := 0.0
	for _, v := range x {
		mx = math.Max(mx, math.Abs(v))
	}
	if mx == 0 || math.IsInf(mx, 0) || math.IsNaN(mx) {
		return 0
	}
	s := 0.0
	for i := range x {
		x[i] /= mx
		s += x[i] * x[i]
	}
	s = math.Sqrt(s)
	for i := range x {
		x[i] /= s
	}
	return s * mx
}

// triLU is T − λI = P·L·U for a tridiagonal T by Gaussian elimination with
// partial pivoting; U has two superdiagonals.
type triLU struct {
	u0, u1, u2 []float64 // U diagonal, first and second superdiagonal
	l          []float64 // multipliers
	swap       []bool
}

func newTriLU(n int) *triLU {
	return &triLU{
		u0: make([]float64, n), u1: make([]float64, n), u2: make([]float64, n),
		l: make([]float64, n), swap: make([]bool, n),
	}
}

func (f *triLU) factor(d, e []float64, lam float64) {
	n := len(d)
	// A zero pivot means λ is an exact eigenvalue of a leading block; eps
	// (T is scaled to norm 1) in its place is the usual inverse-iteration
	// remedy and only makes the solve grow faster along the eigenvector.
	const tiny = eps
	r0, r1 := d[0]-lam, 0.0
	if n > 1 {
		r1 = e[0]
	}
	for i := 0; i < n-1; i++ {
		s0, s1, s2 := e[i], d[i+1]-lam, 0.0
		if i+1 < n-1 {
			s2 = e[i+1]
		}
		if math.Abs(s0) <= math.Abs(r0) {
			if r0 == 0 {
				r0 = tiny
			}
			m := s0 / r0
			f.u0[i], f.u1[i], f.u2[i] = r0, r1, 0
			f.l[i], f.swap[i] = m, false
			r0, r1 = s1-m*r1, s2
		} else {
			m := r0 / s0
			f.u0[i], f.u1[i], f.u2[i] = s0, s1, s2
			f.l[i], f.swap[i] = m, true
			r0, r1 = r1-m*s1, -m*s2
		}
	}
	if math.Abs(r0) < tiny {
		r0 = math.Copysign(tiny, r0)
	}
	f.u0[n-1] = r0
}

// solve overwrites x with (T − λI)⁻¹ x.
func (f *triLU) solve(x []float64) {
	n := len(x)
	for i := 0; i < n-1; i++ {
		if f.swap[i] {
			x[i], x[i+1] = x[i+1], x[i]
		}
		x[i+1] -= f.l[i] * x[i]
	}
	const tiny = eps
	for i := n - 1; i >= 0; i-- {
		v := x[i]
		if i+1 < n {
			v -= f.u1[i] * x[i+1]
		}
		if i+2 < n {
			v -= f.u2[i] * x[i+2]
		}
		p := f.u0[i]
		if math.Abs(p) < tiny {
			p = math.Copysign(tiny, p)
		}
		x[i] = v / p
		// Keep the growth within range; the direction is all that matters.
		if a := math.Abs(x[i]); a > 1e250 {
			for j := range x {
				x[j] *= 1e-250
			}
		}
	}
}
