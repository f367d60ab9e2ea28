package gptq

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLazyUpdateMatchesRef checks the four-column lazy update bit for bit
// against the plain loop on odd sizes, with zero errors (skipped), signed
// zeros in the weights and partial last blocks.
func TestLazyUpdateMatchesRef(t *testing.T) {
	for _, c := range []struct{ rb, n, bs, b0 int }{
		{1, 2, 1, 0}, {3, 7, 3, 0}, {5, 37, 8, 8}, {2, 130, 128, 0}, {7, 301, 32, 96}, {4, 300, 33, 264},
	} {
		rng := rand.New(rand.NewPCG(uint64(c.n), uint64(c.bs)))
		b1 := min(c.b0+c.bs, c.n)
		u := make([]float32, c.n*c.n)
		for i := range u {
			u[i] = float32(rng.NormFloat64())
		}
		wb := make([]float32, c.rb*c.n)
		for i := range wb {
			switch rng.IntN(8) {
			case 0:
				wb[i] = float32(math.Copysign(0, -1))
			case 1:
				wb[i] = 0
			default:
				wb[i] = float32(rng.NormFloat64())
			}
		}
		errs := make([]float32, c.rb*c.bs)
		for i := range errs {
			if rng.IntN(3) > 0 {
				errs[i] = float32(rng.NormFloat64() * 0.1)
			}
		}
		want := append([]float32(nil), wb...)
		lazyUpdateRef(want, c.rb, c.n, c.b0, b1, errs, c.bs, u)
		lazyUpdate(wb, c.rb, c.n, c.b0, b1, errs, c.bs, u, nil)
		for i := range wb {
			if math.Float32bits(wb[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: element %d = %v, want %v", c, i, wb[i], want[i])
			}
		}
	}
}

// lazyUpdateRef is the plain column-by-column loop lazyUpdate must match.
func lazyUpdateRef(wb []float32, rb, n, b0, b1 int, errs []float32, bs int, u []float32) {
	for r := range rb {
		row := wb[r*n+b1 : (r+1)*n]
		for jj := b0; jj < b1; jj++ {
			ev := errs[r*bs+jj-b0]
			if ev == 0 {
				continue
			}
			ur := u[jj*n+b1 : (jj+1)*n]
			for k, uv := range ur {
				row[k] -= ev * uv
			}
		}
	}
}

// BenchmarkLazyUpdate is one 128-column block's update of 64 rows of a
// 2048-wide layer: lazyUpdate against the plain loop.
func BenchmarkLazyUpdate(b *testing.B) {
	const rb, n, bs, b0 = 64, 2048, 128, 0
	rng := rand.New(rand.NewPCG(1, 2))
	u := make([]float32, n*n)
	for i := range u {
		u[i] = float32(rng.NormFloat64())
	}
	wb := make([]float32, rb*n)
	errs := make([]float32, rb*bs)
	for i := range errs {
		errs[i] = float32(rng.NormFloat64() * 1e-3)
	}
	b.Run("four", func(b *testing.B) {
		var nz []int
		for b.Loop() {
			nz = lazyUpdate(wb, rb, n, b0, b0+bs, errs, bs, u, nz)
		}
	})
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			lazyUpdateRef(wb, rb, n, b0, b0+bs, errs, bs, u)
		}
	})
}
