package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestFitGroupMatchesOneTrialAtATime checks that gathering the trials'
// sums two at a time gives the exact scale and offset of the plain search
// (fitGroupTrials unpaired: one trial at a time), bit for bit, on random,
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
				ws, wo := fitGroupTrials(x, w, nmax, false)
				if math.Float32bits(gs) != math.Float32bits(ws) || math.Float32bits(go_) != math.Float32bits(wo) {
					t.Fatalf("nmax %d n %d trial %d: (%g, %g), want (%g, %g)", nmax, n, trial, gs, go_, ws, wo)
				}
			}
		}
	}
}
