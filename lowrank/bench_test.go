package lowrank

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// benchStats builds statistics resembling LLM activations cheaply: a
// 256-sample outer product (correlated directions) plus a log-normal
// diagonal (per-channel scales with outliers), so C is full rank and
// strongly anisotropic.
func benchStats(n int) *Stats {
	r := newRand(uint64(n))
	rows := 256
	z := randMat(r, rows, n)
	s := NewStats(n)
	s.AddBatch(z, rows)
	for j := 0; j < n; j++ {
		s.XXt[j*n+j] += float64(rows) * math.Exp(2*r.NormFloat64())
	}
	return s
}

// BenchmarkFactorize runs the TinyLlama-1.1B projection shapes at rank ratio
// 0.8 with whitening, one factorisation per iteration (use -benchtime 1x).
func BenchmarkFactorize(b *testing.B) {
	shapes := []struct {
		name string
		m, n int
	}{
		{"kv_256x2048", 256, 2048},
		{"qo_2048x2048", 2048, 2048},
		{"gateup_5632x2048", 5632, 2048},
		{"down_2048x5632", 2048, 5632},
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			if testing.Short() && s.m*s.n > 1<<20 {
				b.Skip("large shape")
			}
			w := randMat(newRand(1), s.m, s.n)
			for i := range w {
				w[i] *= 0.02
			}
			st := benchStats(s.n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st.invalidate() // count the whitening decomposition every time
				start := time.Now()
				f, err := Factorize(ctx, w, s.m, s.n, MethodWhiten, st, RankSpec{Ratio: 0.8}, Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "s/matrix")
				b.Logf("%s: k=%d route=%s whitening=%s %.2fs", s.name, f.K, f.Route, f.Whitening, time.Since(start).Seconds())
			}
		})
	}
}

// BenchmarkRoutes compares the three routes on a 1024² plain SVD.
func BenchmarkRoutes(b *testing.B) {
	m, n := 1024, 1024
	w := randMat(newRand(2), m, n)
	for _, route := range allRoutes {
		for _, k := range []int{32, 409} {
			b.Run(fmt.Sprintf("%s/k%d", route, k), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if _, err := Factorize(ctx, w, m, n, MethodSVD, nil, RankSpec{Rank: k}, Options{Route: route}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
