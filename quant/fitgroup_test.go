package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFitGroupMatchesOneTrialAtATime checks that gathering the trials'
// sums two at a time gives the exact scale and offset of the plain search
// (fitGroupOneAtATime, the earlier definition), bit for bit, on random,
// constant, all-negative and weighted groups of every length a group has.
func TestFitGroupMatchesOneTrialAtATime(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, nmax := range []int{3, 7, 15, 31, 63} {
		for n := 1; n <= 128; n += 1 + n/8 {
			for trial := range 40 {
				x := make([]float32, n)
				w := make([]float32, n)
				for i := range x {
					x[i] = float32(rng.NormFloat64() * 0.02)
					w[i] = 1
					switch trial % 4 {
					case 1:
						w[i] = float32(rng.ExpFloat64())
					case 2:
						x[i] = -float32(math.Abs(float64(x[i])))
					case 3:
						if trial%8 == 3 {
							x[i] = 0.5
						}
					}
				}
				gs, go_ := fitGroup(x, w, nmax)
				ws, wo := fitGroupOneAtATime(x, w, nmax)
				if math.Float32bits(gs) != math.Float32bits(ws) || math.Float32bits(go_) != math.Float32bits(wo) {
					t.Fatalf("nmax %d n %d trial %d: (%g, %g), want (%g, %g)", nmax, n, trial, gs, go_, ws, wo)
				}
			}
		}
	}
}

func fitGroupOneAtATime(x, w []float32, nmax int) (scale, off float32) {
	xmin, xmax := x[0], x[0]
	for _, v := range x[1:] {
		xmin = min(xmin, v)
		xmax = max(xmax, v)
	}
	xmin = min(xmin, 0)
	if xmax == xmin {
		return 0, -xmin
	}
	fn := float32(nmax)
	// Σw, Σw·x and Σw·x² do not depend on the levels; the trial loop only
	// gathers Σw·l, Σw·l² and Σw·x·l. u holds x − min (the rounding
	// argument) and wx the products w·x.
	var buf [2 * 128]float32
	u, wx := buf[:len(x)], buf[128:128+len(x)]
	var sw, sx float32
	var sxx float64
	for i, v := range x {
		u[i] = v - xmin
		wx[i] = w[i] * v
		sw += w[i]
		sx += wx[i]
		sxx += float64(wx[i] * v)
	}
	best := math.MaxFloat64
	scale, off = (xmax-xmin)/fn, -xmin
	for step := -1; step <= fitSteps; step++ {
		is := fn / (xmax - xmin)
		if step >= 0 {
			is = (fn + fitLo + fitStep*float32(step)) / (xmax - xmin)
		}
		// is·u ≥ 0 and < 2^22, so adding 1.5·2^23 and taking it away
		// again rounds it to an integer (ties to even); the conversion
		// keeps the product from being fused into the addition.
		var sl, sll, sxl float32
		for i, v := range u {
			l := min(float32(is*v)+roundMagic-roundMagic, fn)
			wl := w[i] * l
			sl += wl
			sll += wl * l
			sxl += wx[i] * l
		}
		det := sw*sll - sl*sl
		var s, b float32
		if det > 0 {
			s = (sw*sxl - sx*sl) / det
			b = (sll*sx - sl*sxl) / det
		}
		if det <= 0 || b > 0 {
			b = 0
			if sll > 0 {
				s = sxl / sll
			}
		}
		if !(s > 0) {
			continue
		}
		// Σw(s·l + b − x)² expanded over the sums already gathered.
		S, B := float64(s), float64(b)
		err := S*S*float64(sll) + 2*S*B*float64(sl) + B*B*float64(sw) - 2*S*float64(sxl) - 2*B*float64(sx) + sxx
		if err < best {
			best, scale, off = err, s, -b
		}
	}
	return scale, off
}
