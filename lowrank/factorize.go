package lowrank

import (
	"context"
	"fmt"
	"math"
	"runtime"

	"gonum.org/v1/gonum/mat"
)

// Method selects what the truncation optimises.
type Method string

const (
	// MethodSVD is plain truncated SVD: minimises ||W − AB||_F.
	MethodSVD Method = "svd"
	// MethodWhiten is SVD-LLM: minimises ||(W − AB)X||_F using X Xᵀ.
	MethodWhiten Method = "whiten"
	// MethodASVD scales input columns by (mean|x_j|)^α before the SVD.
	MethodASVD Method = "asvd"
	// MethodLoRC factorises a quantisation residual W − Q(W) (pass it as w,
	// see Residual); whitened when Options.LoRCWhiten is set.
	MethodLoRC Method = "lorc"
)

// Route is the numerical algorithm used to find the top singular subspace.
type Route string

const (
	RouteAuto Route = ""
	// RouteExact is gonum's full SVD: exact, and the slowest route by far.
	RouteExact Route = "exact"
	// RouteGram is the eigendecomposition of the smaller Gram matrix.
	RouteGram Route = "gram"
	// RouteRandomized is Halko–Martinsson–Tropp randomised SVD.
	RouteRandomized Route = "randomized"
)

// Options tunes Factorize. The zero value is ready to use.
type Options struct {
	Route      Route
	ASVDAlpha  float64 // default 0.5
	LoRCWhiten bool
	// Randomised route: oversampling (default max(16, k/4)) and power
	// iterations (default 4). Seed makes runs reproducible.
	Oversample int
	PowerIters int
	Seed       uint64
	// Threads bounds the goroutines one call keeps busy (its own
	// included); 0 means GOMAXPROCS. A caller running several
	// factorisations at once gives each its share of the budget.
	Threads int
}

// threads is the resolved Threads budget.
func (o Options) threads() int {
	if o.Threads > 0 {
		return o.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// Factors is W ≈ A·B with A M×K and B K×N, row-major float32. Each rank-one
// term is balanced so that A's column and B's row have equal norms, which
// keeps both factors in the same range for later quantisation.
type Factors struct {
	A       []float32
	B       []float32
	M, N, K int
	// Sigma are the singular values, descending, of the matrix actually
	// decomposed (W, W·S, W·diag(s)). All min(M, N) of them on the exact and
	// Gram routes; the top K+oversample estimates on the randomised route.
	Sigma []float64
	Route Route
	// Whitening describes the square root used, when one was needed:
	// "cholesky", "cholesky+jitter" or "eigen"; "covariance" when the Gram
	// route used X Xᵀ directly (no square root needed).
	Whitening string
}

// Residual returns w − q element-wise (the input of MethodLoRC).
func Residual(w, q []float32) []float32 {
	if len(w) != len(q) {
		panic(fmt.Sprintf("lowrank: Residual of %d and %d values", len(w), len(q)))
	}
	r := make([]float32, len(w))
	for i := range w {
		r[i] = w[i] - q[i]
	}
	return r
}

// Reconstruct returns A·B as a row-major M×N float32 matrix.
func (f *Factors) Reconstruct() []float32 {
	th := runtime.GOMAXPROCS(0)
	a, b := widen(f.A), widen(f.B)
	out := make([]float64, f.M*f.N)
	gemm(th, false, false, f.M, f.N, f.K, 1, a, f.K, b, f.N, 0, out, f.N)
	return narrow(out)
}

// transform is the column operator T of the decomposed matrix M = W·T.
type transform struct {
	kind  string    // "identity", "diag", "whiten"
	scale []float64 // diag
	wh    *whitening
	th    int // thread budget of the products (Options.Threads)
}

func makeTransform(method Method, stats *Stats, n int, opts Options) (transform, error) {
	t, err := makeTransformOf(method, stats, n, opts)
	t.th = opts.threads()
	return t, err
}

func makeTransformOf(method Method, stats *Stats, n int, opts Options) (transform, error) {
	switch method {
	case MethodSVD:
		return transform{kind: "identity"}, nil
	case MethodLoRC:
		if !opts.LoRCWhiten {
			return transform{kind: "identity"}, nil
		}
		fallthrough
	case MethodWhiten:
		if err := stats.check(n); err != nil {
			return transform{}, err
		}
		return transform{kind: "whiten", wh: stats.whitening()}, nil
	case MethodASVD:
		if err := stats.check(n); err != nil {
			return transform{}, err
		}
		alpha := opts.ASVDAlpha
		if alpha == 0 {
			alpha = 0.5
		}
		s := stats.MeanAbs()
		mx := 0.0
		for _, v := range s {
			mx = math.Max(mx, v)
		}
		if mx == 0 {
			mx = 1
		}
		// A dead input would get scale 0 and its column would vanish from
		// the decomposition; a floor far below every live input keeps the
		// column (it costs nothing in activation error either way).
		floor := 1e-6 * mx
		for j, v := range s {
			s[j] = math.Pow(math.Max(v, floor)/mx, alpha)
		}
		return transform{kind: "diag", scale: s}, nil
	}
	return transform{}, fmt.Errorf("unknown low-rank method %q (want svd, whiten, asvd or lorc)", method)
}

// apply returns M = W·T (row-major m×n) and the whitening kind used.
func (t transform) apply(ctx context.Context, w []float64, m, n int) ([]float64, string, error) {
	th := t.th
	switch t.kind {
	case "identity":
		return w, "", nil
	case "diag":
		out := make([]float64, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				out[i*n+j] = w[i*n+j] * t.scale[j]
			}
		}
		return out, "", nil
	}
	sq, err := t.wh.sqrt(ctx)
	if err != nil {
		return nil, "", err
	}
	kind := sq.kind
	if sq.kind == "cholesky" && sq.jitter > 0 {
		kind = "cholesky+jitter"
	}
	return sq.rightMul(th, w, m), kind, nil
}

// solveRight overwrites the k×n matrix b with b·T⁻¹.
func (t transform) solveRight(ctx context.Context, b []float64, k, n int) error {
	th := t.th
	switch t.kind {
	case "identity":
		return nil
	case "diag":
		for i := 0; i < k; i++ {
			for j := 0; j < n; j++ {
				b[i*n+j] /= t.scale[j]
			}
		}
		return nil
	}
	sq, err := t.wh.sqrt(ctx)
	if err != nil {
		return err
	}
	sq.solveRight(th, b, k)
	return nil
}

// leftGram returns W·T·Tᵀ·Wᵀ (m×m). For whitening that is W·C·Wᵀ, which
// needs no square root of C at all and is exact even when C is singular.
func (t transform) leftGram(w []float64, m, n int) []float64 {
	th := t.th
	if t.kind == "whiten" {
		c := t.wh.covariance()
		wc := make([]float64, m*n)
		gemm(th, false, false, m, n, n, 1, w, n, c, n, 0, wc, n)
		g := make([]float64, m*m)
		gemmEx(th, gemmOpts{lowerC: true}, false, true, m, m, n, 1, wc, n, w, n, 0, g, m)
		symmetrizeLower(g, m)
		return g
	}
	// (W·T)ᵀ as n×m rows, so the symmetric product runs as Dsyrk chunks.
	wt := make([]float64, n*m)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			v := w[i*n+j]
			if t.kind == "diag" {
				v *= t.scale[j]
			}
			wt[j*m+i] = v
		}
	}
	return gramT(th, wt, n, m)
}

// Factorize computes a rank-k factorisation of the row-major m×n matrix w
// ([out, in], y = W x) by method, with k chosen by rank. stats are required
// for whiten, asvd and whitened lorc and must describe the n inputs.
func Factorize(ctx context.Context, w []float32, m, n int, method Method, stats *Stats, rank RankSpec, opts Options) (*Factors, error) {
	f, err := factorize64(ctx, w, m, n, method, stats, rank, opts)
	if err != nil {
		return nil, err
	}
	out := &Factors{A: narrow(f.a), B: narrow(f.b), M: m, N: n, K: f.k, Sigma: f.sigma, Route: f.route, Whitening: f.wkind}
	_, okA := allFinite32(out.A)
	_, okB := allFinite32(out.B)
	if !okA || !okB {
		return nil, fmt.Errorf("lowrank: factorize %d×%d %s: factors overflow float32", m, n, method)
	}
	return out, nil
}

func factorize64(ctx context.Context, w []float32, m, n int, method Method, stats *Stats, rank RankSpec, opts Options) (*factors64, error) {
	if m <= 0 || n <= 0 || len(w) != m*n {
		return nil, fmt.Errorf("lowrank: factorize: %d values for a %d×%d matrix", len(w), m, n)
	}
	if i, ok := allFinite32(w); !ok {
		return nil, fmt.Errorf("lowrank: factorize %d×%d: non-finite weight at row %d col %d", m, n, i/n, i%n)
	}
	if err := rank.validate(); err != nil {
		return nil, fmt.Errorf("lowrank: factorize %d×%d: %w", m, n, err)
	}
	tr, err := makeTransform(method, stats, n, opts)
	if err != nil {
		return nil, fmt.Errorf("lowrank: factorize %d×%d %s: %w", m, n, method, err)
	}
	route := opts.Route
	kHint, known := rank.fixed(m, n)
	if route == RouteAuto {
		route = chooseRoute(m, n, kHint, known)
	}
	if route == RouteRandomized && !known {
		return nil, fmt.Errorf("lowrank: factorize %d×%d: the randomized route needs a fixed rank or ratio, not an energy target", m, n)
	}
	w64 := widen(w)
	var f *factors64
	switch route {
	case RouteExact:
		f, err = factorExact(ctx, w64, m, n, tr, rank)
	case RouteGram:
		f, err = factorGram(ctx, w64, m, n, tr, rank, opts)
	case RouteRandomized:
		f, err = factorRandomized(ctx, w64, m, n, tr, kHint, opts)
	default:
		err = fmt.Errorf("unknown route %q", route)
	}
	if err != nil {
		return nil, fmt.Errorf("lowrank: factorize %d×%d %s (%s route): %w", m, n, method, route, err)
	}
	f.route = route
	return f, nil
}

// chooseRoute picks the cheapest adequate algorithm. Tiny matrices go to the
// exact SVD. A small fixed rank goes to the randomised SVD, whose cost grows
// with k; everything else to the Gram eigendecomposition, whose cost is
// dominated by tridiagonalising min(m, n)² and barely depends on k.
func chooseRoute(m, n, k int, known bool) Route {
	p := min(m, n)
	if p <= 96 {
		return RouteExact
	}
	if known && k+max(16, k/4) <= p/8 {
		return RouteRandomized
	}
	return RouteGram
}

// ComputeSpectrum returns the singular values (descending) of the matrix
// Factorize would decompose, without computing any vectors: the input of
// AllocateRanks. It costs the Gram route's tridiagonalisation, a fraction
// of a factorization.
func ComputeSpectrum(ctx context.Context, w []float32, m, n int, method Method, stats *Stats, opts Options) (Spectrum, error) {
	if m <= 0 || n <= 0 || len(w) != m*n {
		return Spectrum{}, fmt.Errorf("lowrank: spectrum: %d values for a %d×%d matrix", len(w), m, n)
	}
	if i, ok := allFinite32(w); !ok {
		return Spectrum{}, fmt.Errorf("lowrank: spectrum %d×%d: non-finite weight at row %d col %d", m, n, i/n, i%n)
	}
	tr, err := makeTransform(method, stats, n, opts)
	if err != nil {
		return Spectrum{}, fmt.Errorf("lowrank: spectrum %d×%d %s: %w", m, n, method, err)
	}
	th := tr.th
	g, _, _, err := gram(ctx, widen(w), m, n, tr)
	if err != nil {
		return Spectrum{}, fmt.Errorf("lowrank: spectrum %d×%d %s: %w", m, n, method, err)
	}
	se, err := newSymEig(ctx, th, g, min(m, n))
	if err != nil {
		return Spectrum{}, fmt.Errorf("lowrank: spectrum %d×%d %s: %w", m, n, method, err)
	}
	return Spectrum{M: m, N: n, Sigma: sigmaFromEig(se.vals)}, nil
}

// gram forms the Gram matrix on the smaller side: left (m×m, M·Mᵀ) when
// m ≤ n, else right (n×n, Mᵀ·M) together with M itself.
func gram(ctx context.Context, w []float64, m, n int, tr transform) (g, mm []float64, wkind string, err error) {
	th := tr.th
	if m <= n {
		if tr.kind == "whiten" {
			wkind = "covariance"
		}
		return tr.leftGram(w, m, n), nil, wkind, ctx.Err()
	}
	mm, wkind, err = tr.apply(ctx, w, m, n)
	if err != nil {
		return nil, nil, "", err
	}
	return gramT(th, mm, m, n), mm, wkind, ctx.Err()
}

func sigmaFromEig(vals []float64) []float64 {
	s := make([]float64, len(vals))
	for i, v := range vals {
		s[i] = math.Sqrt(math.Max(v, 0))
	}
	return s
}

// factorGram: eigenvectors of the Gram matrix give U_k (left) or V_k
// (right). Left: A = U_k, B = U_kᵀ·W, i.e. AB = U_k U_kᵀ W, the optimal
// activation-aware truncation with no inverse of T anywhere. Right:
// A = M·V_k, B = V_kᵀ·T⁻¹, i.e. AB = W T V_k V_kᵀ T⁻¹.
//
// Accuracy: eigenvalues of the Gram matrix carry an absolute error of about
// eps·σ₁², so σ_i has relative error ≈ eps·(σ₁/σ_i)²: 1e-8 at σ_i = 1e-4·σ₁,
// and σ values below ~1e-8·σ₁ are noise. The vectors of the top k are
// accurate to about eps·σ₁²/gap; since AB is formed from the orthonormal
// U_k (or V_k) and never from 1/σ, small σ_k cannot blow up the factors, and
// an inaccurately resolved pair of nearly equal σ only swaps directions of
// nearly equal value.
func factorGram(ctx context.Context, w []float64, m, n int, tr transform, rank RankSpec, opts Options) (*factors64, error) {
	th := tr.th
	g, mm, wkind, err := gram(ctx, w, m, n, tr)
	if err != nil {
		return nil, err
	}
	p := min(m, n)
	se, err := newSymEig(ctx, th, g, p)
	if err != nil {
		return nil, err
	}
	sigma := sigmaFromEig(se.vals)
	k := rank.resolve(m, n, sigma)
	vk, err := se.vectors(ctx, k, opts.Seed)
	if err != nil {
		return nil, err
	}
	var a, b []float64
	if m <= n {
		a = vk // m×k
		b = make([]float64, k*n)
		gemm(th, true, false, k, n, m, 1, vk, k, w, n, 0, b, n)
	} else {
		a = make([]float64, m*k)
		gemm(th, false, false, m, k, n, 1, mm, n, vk, k, 0, a, k)
		b = make([]float64, k*n)
		for i := 0; i < n; i++ {
			for j := 0; j < k; j++ {
				b[j*n+i] = vk[i*k+j]
			}
		}
		if err := tr.solveRight(ctx, b, k, n); err != nil {
			return nil, err
		}
	}
	return finish(a, b, m, n, k, sigma, wkind)
}

// factorExact uses gonum's SVD of M = W·T; then A = U_k, B = U_kᵀ·W.
func factorExact(ctx context.Context, w []float64, m, n int, tr transform, rank RankSpec) (*factors64, error) {
	th := tr.th
	mm, wkind, err := tr.apply(ctx, w, m, n)
	if err != nil {
		return nil, err
	}
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(m, n, append([]float64(nil), mm...)), mat.SVDThin) {
		return nil, fmt.Errorf("SVD did not converge")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sigma := svd.Values(nil)
	k := rank.resolve(m, n, sigma)
	a := leadingU(&svd, k)
	b := make([]float64, k*n)
	gemm(th, true, false, k, n, m, 1, a, k, w, n, 0, b, n)
	return finish(a, b, m, n, k, sigma, wkind)
}

// leadingU returns the first k left singular vectors of a factorized svd
// as a row-major rows×k matrix.
func leadingU(svd *mat.SVD, k int) []float64 {
	var u mat.Dense
	svd.UTo(&u)
	ur := u.RawMatrix()
	out := make([]float64, ur.Rows*k)
	for i := range ur.Rows {
		copy(out[i*k:(i+1)*k], ur.Data[i*ur.Stride:i*ur.Stride+k])
	}
	return out
}

// factors64 is the float64 result of a route before narrowing.
type factors64 struct {
	a, b    []float64
	m, n, k int
	sigma   []float64
	route   Route
	wkind   string
}

// finish balances each rank-one term (||A col|| = ||B row||), zeroes terms
// that carry nothing, and narrows to float32.
func finish(a, b []float64, m, n, k int, sigma []float64, wkind string) (*factors64, error) {
	for j := 0; j < k; j++ {
		na, nb := 0.0, 0.0
		for i := 0; i < m; i++ {
			na += a[i*k+j] * a[i*k+j]
		}
		for i := 0; i < n; i++ {
			nb += b[j*n+i] * b[j*n+i]
		}
		na, nb = math.Sqrt(na), math.Sqrt(nb)
		fa, fb := 0.0, 0.0
		if na > 0 && nb > 0 && !math.IsInf(na, 0) && !math.IsInf(nb, 0) {
			s := math.Sqrt(nb / na)
			fa, fb = s, 1/s
		}
		for i := 0; i < m; i++ {
			a[i*k+j] *= fa
		}
		for i := 0; i < n; i++ {
			b[j*n+i] *= fb
		}
	}
	if !allFinite64(a) || !allFinite64(b) {
		return nil, fmt.Errorf("factors are not finite")
	}
	return &factors64{a: a, b: b, m: m, n: n, k: k, sigma: sigma, wkind: wkind}, nil
}
