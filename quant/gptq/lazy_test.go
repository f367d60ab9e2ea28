package gptq

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestLazyUpdateMatchesRef checks the GEMM lazy update against the plain
// column-by-column loop in float64 on odd sizes, with zero errors and
// partial last blocks: each element must be the reference rounded to
// float32, to within a few float32 ulps of the terms' magnitude (the GEMM
// sums in another order). Columns before b1 must not change.
func TestLazyUpdateMatchesRef(t *testing.T) {
	for _, c := range []struct{ rb, n, bs, b0 int }{
		{1, 2, 1, 0}, {3, 7, 3, 0}, {5, 37, 8, 8}, {2, 130, 128, 0}, {7, 301, 32, 96}, {4, 300, 33, 264}, {33, 700, 128, 128},
	} {
		t.Run(fmt.Sprintf("%+v", c), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(c.n), uint64(c.bs)))
			b1 := min(c.b0+c.bs, c.n)
			u := make([]float64, c.n*c.n)
			for i := range c.n {
				for j := i; j < c.n; j++ {
					u[i*c.n+j] = rng.NormFloat64()
				}
			}
			wb := make([]float32, c.rb*c.n)
			for i := range wb {
				if rng.IntN(8) > 0 {
					wb[i] = float32(rng.NormFloat64())
				}
			}
			errs := make([]float32, c.rb*c.bs)
			for i := range errs {
				if rng.IntN(3) > 0 {
					errs[i] = float32(rng.NormFloat64() * 0.1)
				}
			}
			want, mag := lazyUpdateRef(wb, c.rb, c.n, c.b0, b1, errs, c.bs, u)
			got := append([]float32(nil), wb...)
			s := newLazyScratch(c.rb, c.n, c.bs)
			lazyUpdate(got, c.rb, c.n, c.b0, b1, errs, c.bs, u, &s)
			for i := range got {
				if i%c.n < b1 {
					if math.Float32bits(got[i]) != math.Float32bits(wb[i]) {
						t.Fatalf("element %d (column %d, before the update's columns) changed: %v → %v", i, i%c.n, wb[i], got[i])
					}
					continue
				}
				if d := math.Abs(float64(got[i]) - want[i]); d > 4*0x1p-24*mag[i]+0x1p-24*math.Abs(want[i]) {
					t.Fatalf("element %d = %v, want %v (±%g)", i, got[i], want[i], mag[i])
				}
			}
		})
	}
}

// lazyUpdateRef is the plain column-by-column update in float64: the exact
// result (to float64 rounding) and each element's Σ|terms|.
func lazyUpdateRef(wb []float32, rb, n, b0, b1 int, errs []float32, bs int, u []float64) (res, mag []float64) {
	res, mag = make([]float64, len(wb)), make([]float64, len(wb))
	for r := range rb {
		for k := b1; k < n; k++ {
			v := float64(wb[r*n+k])
			m := math.Abs(v)
			for jj := b0; jj < b1; jj++ {
				t := float64(errs[r*bs+jj-b0]) * u[jj*n+k]
				v -= t
				m += math.Abs(t)
			}
			res[r*n+k], mag[r*n+k] = v, m
		}
	}
	return res, mag
}

// BenchmarkLazyUpdate is one 128-column block's update of 32 rows (a
// worker's row block) of a 2048-wide layer.
func BenchmarkLazyUpdate(b *testing.B) {
	const rb, n, bs, b0 = DefaultRowBlock, 2048, 128, 0
	rng := rand.New(rand.NewPCG(1, 2))
	u := make([]float64, n*n)
	for i := range u {
		u[i] = rng.NormFloat64()
	}
	wb := make([]float32, rb*n)
	errs := make([]float32, rb*bs)
	for i := range errs {
		errs[i] = float32(rng.NormFloat64() * 1e-3)
	}
	s := newLazyScratch(rb, n, bs)
	for b.Loop() {
		lazyUpdate(wb, rb, n, b0, b0+bs, errs, bs, u, &s)
	}
}
