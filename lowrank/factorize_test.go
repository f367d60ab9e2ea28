package lowrank

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
)

var ctx = context.Background()

var allRoutes = []Route{RouteExact, RouteGram, RouteRandomized}

// TestPlantedSubspace: a rank-r matrix plus small noise; the top-r factors
// must span the planted column space on every route and shape.
func TestPlantedSubspace(t *testing.T) {
	r := newRand(2)
	for _, shape := range [][2]int{{150, 110}, {110, 150}, {37, 53}} {
		m, n := shape[0], shape[1]
		rank := 6
		sv := []float64{50, 40, 30, 20, 15, 10}
		w, u := lowRankPlus(r, m, n, sv, 1e-3)
		for _, route := range allRoutes {
			t.Run(fmt.Sprintf("%dx%d/%s", m, n, route), func(t *testing.T) {
				f, err := factorize64(ctx, w, m, n, MethodSVD, nil, RankSpec{Rank: rank}, Options{Route: route, Seed: 3})
				if err != nil {
					t.Fatal(err)
				}
				cos := principalCosines(u, rank, f.a, m, rank)
				for i, c := range cos {
					if c < 1-1e-6 {
						t.Fatalf("principal cosine %d = %v", i, c)
					}
				}
				for i := 0; i < rank; i++ {
					if relErr(f.sigma[i], sv[i]) > 1e-3 {
						t.Fatalf("σ%d = %v, planted %v", i, f.sigma[i], sv[i])
					}
				}
			})
		}
	}
}

// TestWhitenIdentity: SVD-LLM's ||(W − AB)X||_F² = Σ_{i>k} σ_i(W·S)², on
// both Gram sides and on the exact route, in float64 and (looser) float32.
func TestWhitenIdentity(t *testing.T) {
	r := newRand(4)
	for _, shape := range [][2]int{{60, 90}, {90, 60}, {37, 53}, {53, 37}} {
		m, n := shape[0], shape[1]
		w := randMat(r, m, n)
		rows := 3 * n
		x, st := activations(r, n, rows, func(j int) float64 { return 1 + float64(j%7) })
		for _, route := range []Route{RouteExact, RouteGram} {
			for _, k := range []int{1, min(m, n) / 3, min(m, n) - 1} {
				t.Run(fmt.Sprintf("%dx%d/%s/k%d", m, n, route, k), func(t *testing.T) {
					f, err := factorize64(ctx, w, m, n, MethodWhiten, st, RankSpec{Rank: k}, Options{Route: route})
					if err != nil {
						t.Fatal(err)
					}
					// Stats are normalised by the count, so σ² is per vector.
					want := tail2(f.sigma, k) * float64(rows)
					got := actErr2(w, product64(f), m, n, x, rows)
					if relErr(got, want) > 1e-6 {
						t.Fatalf("activation error %v, Σ dropped σ² %v (rel %v)", got, want, relErr(got, want))
					}
					ref := gonumSVDValues(t, widen(w), m, n)
					_ = ref
					f32, err := Factorize(ctx, w, m, n, MethodWhiten, st, RankSpec{Rank: k}, Options{Route: route})
					if err != nil {
						t.Fatal(err)
					}
					got32 := actErr2(w, productF(f32), m, n, x, rows)
					if relErr(got32, want) > 1e-3 {
						t.Fatalf("float32 factors: activation error %v, want %v", got32, want)
					}
				})
			}
		}
	}
}

// TestWhitenBeatsSVD: with strongly anisotropic inputs the whitened
// factorisation has lower activation error than plain SVD at equal rank.
func TestWhitenBeatsSVD(t *testing.T) {
	r := newRand(5)
	m, n := 64, 96
	w := randMat(r, m, n)
	rows := 4 * n
	x, st := activations(r, n, rows, func(j int) float64 { return math.Pow(1.08, float64(j)) })
	for _, k := range []int{4, 16, 40} {
		plain, err := Factorize(ctx, w, m, n, MethodSVD, nil, RankSpec{Rank: k}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		wh, err := Factorize(ctx, w, m, n, MethodWhiten, st, RankSpec{Rank: k}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		as, err := Factorize(ctx, w, m, n, MethodASVD, st, RankSpec{Rank: k}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ep := actErr2(w, productF(plain), m, n, x, rows)
		ew := actErr2(w, productF(wh), m, n, x, rows)
		ea := actErr2(w, productF(as), m, n, x, rows)
		if !(ew < 0.9*ep) {
			t.Errorf("k=%d: whitened activation error %v not clearly below plain SVD's %v", k, ew, ep)
		}
		if !(ea < ep) {
			t.Errorf("k=%d: asvd activation error %v not below plain SVD's %v", k, ea, ep)
		}
		if !(ew <= ea*(1+1e-9)) {
			t.Errorf("k=%d: whitened (optimal) error %v above asvd's %v", k, ew, ea)
		}
	}
}

// TestSingularStats: dead, duplicated and all-zero inputs give finite
// factors on every route, and whitening still beats plain SVD.
func TestSingularStats(t *testing.T) {
	r := newRand(6)
	cases := []struct {
		name string
		m, n int
		rows int
		edit func(x []float32, rows, n int)
	}{
		{"dead", 40, 50, 200, func(x []float32, rows, n int) {
			for t := 0; t < rows; t++ {
				x[t*n+3], x[t*n+17], x[t*n+n-1] = 0, 0, 0
			}
		}},
		{"duplicated", 50, 40, 200, func(x []float32, rows, n int) {
			for t := 0; t < rows; t++ {
				x[t*n+5] = x[t*n+4]
				x[t*n+9] = 2 * x[t*n+4]
			}
		}},
		{"fewer-samples-than-features", 30, 60, 12, func([]float32, int, int) {}},
		{"all-zero", 20, 30, 10, func(x []float32, _, _ int) { clear(x) }},
	}
	for _, c := range cases {
		for _, route := range allRoutes {
			for _, method := range []Method{MethodWhiten, MethodASVD} {
				t.Run(fmt.Sprintf("%s/%s/%s", c.name, route, method), func(t *testing.T) {
					x := randMat(r, c.rows, c.n)
					c.edit(x, c.rows, c.n)
					st := NewStats(c.n)
					st.AddBatch(x, c.rows)
					w := randMat(r, c.m, c.n)
					k := 5
					f, err := Factorize(ctx, w, c.m, c.n, method, st, RankSpec{Rank: k}, Options{Route: route})
					if err != nil {
						t.Fatal(err)
					}
					checkFinite(t, "A", f.A)
					checkFinite(t, "B", f.B)
					if !allFinite64(f.Sigma) {
						t.Fatal("non-finite σ")
					}
					if method != MethodWhiten || c.name == "all-zero" {
						return
					}
					plain, err := Factorize(ctx, w, c.m, c.n, MethodSVD, nil, RankSpec{Rank: k}, Options{})
					if err != nil {
						t.Fatal(err)
					}
					ew := actErr2(w, productF(f), c.m, c.n, x, c.rows)
					ep := actErr2(w, productF(plain), c.m, c.n, x, c.rows)
					// Randomised is approximate; the others are optimal.
					slack := 1e-6
					if route == RouteRandomized {
						slack = 0.05
					}
					if ew > ep*(1+slack) {
						t.Fatalf("whitened activation error %v above plain SVD's %v", ew, ep)
					}
				})
			}
		}
	}
}

// TestRoutesAgree: the fast routes against gonum's SVD on a random and on a
// structured (geometrically decaying) matrix: singular values and
// reconstruction error relative to the optimum.
func TestRoutesAgree(t *testing.T) {
	r := newRand(7)
	type tc struct {
		name string
		m, n int
		w    []float32
	}
	var cases []tc
	for _, s := range [][2]int{{160, 120}, {120, 161}, {37, 53}} {
		cases = append(cases, tc{fmt.Sprintf("random%dx%d", s[0], s[1]), s[0], s[1], randMat(r, s[0], s[1])})
	}
	sv := make([]float64, 100)
	for i := range sv {
		sv[i] = 100 * math.Pow(0.93, float64(i))
	}
	ws, _ := lowRankPlus(r, 170, 130, sv, 1e-3)
	cases = append(cases, tc{"structured170x130", 170, 130, ws})
	for _, c := range cases {
		for _, k := range []int{3, 12, 50} {
			ref, err := factorize64(ctx, c.w, c.m, c.n, MethodSVD, nil, RankSpec{Rank: k}, Options{Route: RouteExact})
			if err != nil {
				t.Fatal(err)
			}
			opt := frob2(c.w, product64(ref))
			for _, route := range []Route{RouteGram, RouteRandomized} {
				if route == RouteRandomized && 2*k > min(c.m, c.n)/2 {
					continue // not the randomised route's regime (flat tail, large k)
				}
				t.Run(fmt.Sprintf("%s/k%d/%s", c.name, k, route), func(t *testing.T) {
					f, err := factorize64(ctx, c.w, c.m, c.n, MethodSVD, nil, RankSpec{Rank: k}, Options{Route: route, Seed: 11})
					if err != nil {
						t.Fatal(err)
					}
					tol := 1e-9
					if route == RouteRandomized {
						tol = 2e-2
					}
					for i := 0; i < f.k; i++ {
						if e := relErr(f.sigma[i], ref.sigma[i]); e > tol {
							t.Fatalf("σ%d: %v vs exact %v (rel %v)", i, f.sigma[i], ref.sigma[i], e)
						}
					}
					if route == RouteGram {
						for i := range ref.sigma {
							if math.Abs(f.sigma[i]-ref.sigma[i]) > 1e-7*ref.sigma[0] {
								t.Fatalf("full spectrum σ%d: %v vs %v", i, f.sigma[i], ref.sigma[i])
							}
						}
					}
					got := frob2(c.w, product64(f))
					if got > opt*1.01+1e-9 {
						t.Fatalf("reconstruction error %v, optimal %v", got, opt)
					}
				})
			}
		}
	}
}

// TestOddSizesAllMethods exercises every method × route on odd shapes and
// on shapes that select each route automatically; nothing may be NaN.
func TestOddSizesAllMethods(t *testing.T) {
	r := newRand(8)
	shapes := [][2]int{{37, 53}, {53, 37}, {1, 9}, {9, 1}, {2, 2}, {130, 97}, {97, 200}}
	for _, s := range shapes {
		m, n := s[0], s[1]
		w := randMat(r, m, n)
		_, st := activations(r, n, 2*n+3, func(j int) float64 { return 1 })
		for _, method := range []Method{MethodSVD, MethodWhiten, MethodASVD, MethodLoRC} {
			for _, route := range []Route{RouteAuto, RouteExact, RouteGram, RouteRandomized} {
				for _, spec := range []RankSpec{{Rank: 1}, {Ratio: 0.5}, {Energy: 0.9}} {
					if route == RouteRandomized && spec.Energy > 0 {
						continue
					}
					name := fmt.Sprintf("%dx%d/%s/%s/%+v", m, n, method, route, spec)
					opts := Options{Route: route, LoRCWhiten: m%2 == 1}
					f, err := Factorize(ctx, w, m, n, method, st, spec, opts)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if f.K < 1 || f.K > min(m, n) || len(f.A) != m*f.K || len(f.B) != f.K*n {
						t.Fatalf("%s: bad shape K=%d", name, f.K)
					}
					checkFinite(t, name+" A", f.A)
					checkFinite(t, name+" B", f.B)
					// Reconstruction error never exceeds ||W||².
					if e, base := frob2(w, productF(f)), frob2(w, make([]float64, m*n)); method == MethodSVD && e > base*(1+1e-5) {
						t.Fatalf("%s: error %v above ||W||² %v", name, e, base)
					}
				}
			}
		}
	}
}

// TestLoRC: a rank-r approximation of the quantisation residual reduces the
// error of Q(W) (rounding quantiser and the real q8 codec), plain and
// whitened.
func TestLoRC(t *testing.T) {
	r := newRand(9)
	m, n := 48, 64
	w := randMat(r, m, n)
	// Give the residual structure: a low-rank outlier component that the
	// coarse rounding grid cannot represent exactly.
	big, _ := lowRankPlus(r, m, n, []float64{20, 10}, 0)
	for i := range w {
		w[i] += big[i]
	}
	x, st := activations(r, n, 3*n, func(j int) float64 { return 1 + float64(j%5) })
	round := func(w []float32) []float32 {
		q := make([]float32, len(w))
		for i, v := range w {
			q[i] = float32(math.Round(float64(v)*2) / 2)
		}
		return q
	}
	q8 := func(w []float32) []float32 { return testshared.RoundTrip(t, quant.Q8, w, m, n) }
	for name, quantize := range map[string]func([]float32) []float32{"round": round, "q8": q8} {
		for _, whiten := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/whiten=%v", name, whiten), func(t *testing.T) {
				q := quantize(w)
				res := Residual(w, q)
				base, base2 := frob2(w, widen(q)), actErr2(w, widen(q), m, n, x, 3*n)
				prev, prevAct := base, base2
				for _, k := range []int{2, 8, 24} {
					f, err := Factorize(ctx, res, m, n, MethodLoRC, st, RankSpec{Rank: k}, Options{LoRCWhiten: whiten})
					if err != nil {
						t.Fatal(err)
					}
					ab := productF(f)
					for i := range ab {
						ab[i] += float64(q[i])
					}
					e, ea := frob2(w, ab), actErr2(w, ab, m, n, x, 3*n)
					if !(e < base) && !whiten {
						t.Fatalf("k=%d: ||W−(Q+AB)||² = %v not below ||W−Q||² = %v", k, e, base)
					}
					if !(ea < base2) {
						t.Fatalf("k=%d: activation error %v not below %v", k, ea, base2)
					}
					if !whiten && e > prev*(1+1e-6) || whiten && ea > prevAct*(1+1e-6) {
						t.Fatalf("k=%d: error grew with rank", k)
					}
					prev, prevAct = e, ea
				}
			})
		}
	}
}

func TestFactorizeErrors(t *testing.T) {
	w := make([]float32, 6)
	st := NewStats(3)
	nan := []float32{1, float32(math.NaN()), 0, 0, 0, 0}
	cases := []struct {
		name   string
		w      []float32
		m, n   int
		method Method
		stats  *Stats
		spec   RankSpec
	}{
		{"shape", w, 4, 2, MethodSVD, nil, RankSpec{Rank: 1}},
		{"nan", nan, 2, 3, MethodSVD, nil, RankSpec{Rank: 1}},
		{"nostats", w, 2, 3, MethodWhiten, nil, RankSpec{Rank: 1}},
		{"emptystats", w, 2, 3, MethodWhiten, st, RankSpec{Rank: 1}},
		{"wrongstats", w, 2, 3, MethodASVD, NewStats(4), RankSpec{Rank: 1}},
		{"method", w, 2, 3, "pca", nil, RankSpec{Rank: 1}},
		{"nospec", w, 2, 3, MethodSVD, nil, RankSpec{}},
		{"energy", w, 2, 3, MethodSVD, nil, RankSpec{Energy: 1.5}},
	}
	for _, c := range cases {
		if _, err := Factorize(ctx, c.w, c.m, c.n, c.method, c.stats, c.spec, Options{}); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Factorize(cctx, randMat(newRand(1), 200, 200), 200, 200, MethodSVD, nil, RankSpec{Rank: 100}, Options{}); err == nil {
		t.Error("cancelled context: no error")
	}
}

// TestBalancedAndOrdered: factors are balanced per term and σ descending.
func TestBalancedAndOrdered(t *testing.T) {
	r := newRand(10)
	m, n := 70, 45
	w := randMat(r, m, n)
	for _, route := range allRoutes {
		f, err := Factorize(ctx, w, m, n, MethodSVD, nil, RankSpec{Rank: 9}, Options{Route: route})
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < f.K; j++ {
			na, nb := 0.0, 0.0
			for i := 0; i < m; i++ {
				na += float64(f.A[i*f.K+j] * f.A[i*f.K+j])
			}
			for i := 0; i < n; i++ {
				nb += float64(f.B[j*n+i] * f.B[j*n+i])
			}
			if relErr(na, nb) > 1e-4 {
				t.Fatalf("%s term %d: ||a||²=%v ||b||²=%v", route, j, na, nb)
			}
			if relErr(math.Sqrt(na*nb), f.Sigma[j]) > 1e-4 {
				t.Fatalf("%s term %d: ||a||·||b|| = %v, σ = %v", route, j, math.Sqrt(na*nb), f.Sigma[j])
			}
		}
		for i := 1; i < len(f.Sigma); i++ {
			if f.Sigma[i] > f.Sigma[i-1] {
				t.Fatalf("%s: σ not descending at %d", route, i)
			}
		}
	}
}

func TestComputeSpectrumMatchesFactorize(t *testing.T) {
	r := newRand(12)
	for _, s := range [][2]int{{40, 70}, {70, 40}} {
		m, n := s[0], s[1]
		w := randMat(r, m, n)
		_, st := activations(r, n, 2*n, func(j int) float64 { return 1 + float64(j%3) })
		for _, method := range []Method{MethodSVD, MethodWhiten, MethodASVD} {
			sp, err := ComputeSpectrum(ctx, w, m, n, method, st, Options{})
			if err != nil {
				t.Fatal(err)
			}
			f, err := Factorize(ctx, w, m, n, method, st, RankSpec{Rank: 3}, Options{Route: RouteExact})
			if err != nil {
				t.Fatal(err)
			}
			if sp.M != m || sp.N != n || len(sp.Sigma) != min(m, n) {
				t.Fatalf("spectrum shape %d×%d len %d", sp.M, sp.N, len(sp.Sigma))
			}
			for i := range sp.Sigma {
				if math.Abs(sp.Sigma[i]-f.Sigma[i]) > 1e-6*f.Sigma[0] {
					t.Fatalf("%s %dx%d σ%d: %v vs exact %v", method, m, n, i, sp.Sigma[i], f.Sigma[i])
				}
			}
		}
	}
}

// TestWhitenFastPathsAgree runs whitened factorisations on shapes large
// enough to take every fast path (packed parallel products, blocked
// tridiagonalisation, blocked back-transform, blocked triangular solve) on
// both Gram sides, with a trained-like power-law spectrum and anisotropic
// activations, at rank ratio 0.8 (k ≈ 0.4·min(m, n), as in the converter),
// against the exact route: singular values, and the activation error within
// 1% of the optimum.
func TestWhitenFastPathsAgree(t *testing.T) {
	shapes := [][2]int{{421, 300}, {300, 517}, {112, 517}}
	if !testing.Short() {
		shapes = append(shapes, [2]int{700, 640})
	}
	for si, s := range shapes {
		m, n := s[0], s[1]
		t.Run(fmt.Sprintf("%dx%d", m, n), func(t *testing.T) {
			r := newRand(uint64(40 + si))
			p := min(m, n)
			sv := make([]float64, p/2)
			for i := range sv {
				sv[i] = 3 / math.Sqrt(float64(i+1))
			}
			w, _ := lowRankPlus(r, m, n, sv, 0.02)
			x, st := activations(r, n, 2*n, func(j int) float64 { return math.Exp(1.5 * math.Sin(float64(j))) })
			ref, err := factorize64(ctx, w, m, n, MethodWhiten, st, RankSpec{Ratio: 0.8}, Options{Route: RouteExact})
			if err != nil {
				t.Fatal(err)
			}
			f, err := factorize64(ctx, w, m, n, MethodWhiten, st, RankSpec{Ratio: 0.8}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if f.route != RouteGram || f.k != ref.k {
				t.Fatalf("route %s k %d, want gram k %d", f.route, f.k, ref.k)
			}
			for i := range ref.sigma {
				if math.Abs(f.sigma[i]-ref.sigma[i]) > 1e-7*ref.sigma[0] {
					t.Fatalf("σ%d: %v vs exact %v", i, f.sigma[i], ref.sigma[i])
				}
			}
			if !allFinite64(f.a) || !allFinite64(f.b) {
				t.Fatal("non-finite factors")
			}
			opt := actErr2(w, product64(ref), m, n, x, 2*n)
			got := actErr2(w, product64(f), m, n, x, 2*n)
			if got > opt*1.01 {
				t.Fatalf("activation error %v, optimal %v", got, opt)
			}
			t.Logf("k=%d activation error %.6g (exact route %.6g)", f.k, got, opt)
		})
	}
}
