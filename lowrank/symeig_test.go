package lowrank

import (
	"context"
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestSymEigMatchesGonum compares the partial eigensolver (tridiagonal
// inverse iteration) with gonum's full EigenSym on random and on awkward
// spectra: repeated eigenvalues, zero blocks, rank deficiency, 1×1.
func TestSymEigMatchesGonum(t *testing.T) {
	r := newRand(1)
	type tc struct {
		name string
		n    int
		make func(n int) []float64
	}
	randomSym := func(n int) []float64 {
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				v := r.NormFloat64()
				a[i*n+j], a[j*n+i] = v, v
			}
		}
		return a
	}
	withSpectrum := func(vals func(i int) float64) func(n int) []float64 {
		return func(n int) []float64 {
			q := orthoCols(r, n, n)
			a := make([]float64, n*n)
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					s := 0.0
					for t := 0; t < n; t++ {
						s += q[i*n+t] * vals(t) * q[j*n+t]
					}
					a[i*n+j] = s
				}
			}
			return a
		}
	}
	gramLowRank := func(n int) []float64 {
		// Gram of a rank-5 matrix with two dead coordinates.
		k := 5
		b := make([]float64, n*k)
		for i := range b {
			b[i] = r.NormFloat64()
		}
		for t := 0; t < k; t++ {
			b[0*k+t], b[(n-1)*k+t] = 0, 0
		}
		a := make([]float64, n*n)
		gemm(th, false, true, n, n, k, 1, b, k, b, k, 0, a, n)
		return a
	}
	cases := []tc{
		{"1x1", 1, randomSym},
		{"2x2", 2, randomSym},
		{"random7", 7, randomSym},
		{"random37", 37, randomSym},
		{"random130", 130, randomSym},
		{"repeated", 40, withSpectrum(func(i int) float64 {
			if i < 6 {
				return 3
			}
			if i < 20 {
				return 1
			}
			return 0
		})},
		{"geometric", 53, withSpectrum(func(i int) float64 { return math.Pow(0.7, float64(i)) })},
		{"gramLowRank", 33, gramLowRank},
		{"zero", 9, func(n int) []float64 { return make([]float64, n*n) }},
		{"diagonal", 12, func(n int) []float64 {
			a := make([]float64, n*n)
			for i := 0; i < n; i++ {
				a[i*n+i] = float64((i * 7) % 5)
			}
			return a
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := c.n
			a := c.make(n)
			var es mat.EigenSym
			if !es.Factorize(mat.NewSymDense(n, append([]float64(nil), a...)), false) {
				t.Fatal("gonum EigenSym failed")
			}
			ref := es.Values(nil) // ascending
			scale := math.Max(math.Abs(ref[0]), math.Abs(ref[n-1]))
			if scale == 0 {
				scale = 1
			}
			se, err := newSymEig(context.Background(), th, append([]float64(nil), a...), n)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if d := math.Abs(se.vals[i] - ref[n-1-i]); d > 1e-12*scale*float64(n) {
					t.Fatalf("eigenvalue %d: got %v want %v", i, se.vals[i], ref[n-1-i])
				}
			}
			for _, k := range []int{1, (n + 1) / 2, n} {
				v, err := se.vectors(context.Background(), k, 7)
				if err != nil {
					t.Fatal(err)
				}
				checkEigenvectors(t, fmt.Sprintf("k=%d", k), a, n, v, k, se.vals, scale)
			}
		})
	}
}

func checkEigenvectors(t *testing.T, name string, a []float64, n int, v []float64, k int, vals []float64, scale float64) {
	t.Helper()
	av := make([]float64, n*k)
	gemm(th, false, false, n, k, n, 1, a, n, v, k, 0, av, k)
	for j := 0; j < k; j++ {
		res := 0.0
		for i := 0; i < n; i++ {
			d := av[i*k+j] - vals[j]*v[i*k+j]
			res += d * d
		}
		if math.Sqrt(res) > 1e-10*scale*float64(n) {
			t.Fatalf("%s: residual of vector %d is %g (scale %g)", name, j, math.Sqrt(res), scale)
		}
	}
	g := make([]float64, k*k)
	gemm(th, true, false, k, k, n, 1, v, k, v, k, 0, g, k)
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(g[i*k+j]-want) > 1e-8 {
				t.Fatalf("%s: VᵀV[%d,%d] = %v", name, i, j, g[i*k+j])
			}
		}
	}
}
