package runtime

import (
	"fmt"
	"math"

	"github.com/shrink-llm/shrink/format"
)

// ropeInvFreq returns the rotary inverse frequencies θ^(−2i/d) for
// i < d/2, rounded through float32 at the same steps as Hugging Face's
// _compute_default_rope_parameters (exponent and power in float32), so that
// angles match transformers' float32 computation. With llama3 scaling the
// frequencies are then adjusted as in _compute_llama3_parameters:
// wavelengths above original_max/low_freq_factor are slowed by factor,
// those below original_max/high_freq_factor are kept, and the band between
// is interpolated smoothly.
func ropeInvFreq(headDim int, theta float64, rs *format.RopeScaling) ([]float32, error) {
	if theta <= 0 || math.IsNaN(theta) || math.IsInf(theta, 0) {
		return nil, fmt.Errorf("invalid rope_theta %v", theta)
	}
	half := headDim / 2
	inv := make([]float32, half)
	for i := range inv {
		e := float32(2*i) / float32(headDim)
		p := float32(math.Pow(theta, float64(e)))
		inv[i] = 1 / p
	}
	if rs == nil {
		return inv, nil
	}
	if rs.Type != "" && rs.Type != "llama3" {
		return nil, fmt.Errorf("unsupported rope scaling type %q (only llama3)", rs.Type)
	}
	if rs.Factor <= 0 || rs.LowFreqFactor <= 0 || rs.HighFreqFactor <= rs.LowFreqFactor || rs.OriginalMaxPositionEmbeddings <= 0 {
		return nil, fmt.Errorf("invalid llama3 rope scaling %+v", *rs)
	}
	old := float64(rs.OriginalMaxPositionEmbeddings)
	lowWavelen := old / rs.LowFreqFactor
	highWavelen := old / rs.HighFreqFactor
	for i, f32 := range inv {
		f := float64(f32)
		wavelen := 2 * math.Pi / f
		switch {
		case wavelen > lowWavelen:
			f /= rs.Factor
		case wavelen < highWavelen:
			// high frequency: unchanged
		default:
			smooth := (old/wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
			f = (1-smooth)*f/rs.Factor + smooth*f
		}
		inv[i] = float32(f)
	}
	return inv, nil
}

// ropeTable fills cos and sin ([n, d/2] each) for positions p0 … p0+n−1.
// The angle is the float32 product position·inv_freq, as in transformers.
func ropeTable(cos, sin, inv []float32, p0, n int) {
	half := len(inv)
	for t := range n {
		pos := float32(p0 + t)
		c := cos[t*half : (t+1)*half]
		s := sin[t*half : (t+1)*half]
		for i, f := range inv {
			a := float64(pos * f)
			c[i] = float32(math.Cos(a))
			s[i] = float32(math.Sin(a))
		}
	}
}

// applyRope rotates every head of x ([heads·d]) in place with the
// rotate-half convention: for i < d/2 the pair (x[i], x[i+d/2]) becomes
// (x[i]·cos − x[i+d/2]·sin, x[i+d/2]·cos + x[i]·sin).
func applyRope(x []float32, heads, d int, cos, sin []float32) {
	half := d / 2
	for h := range heads {
		v := x[h*d : (h+1)*d]
		for i := range half {
			a, b := v[i], v[i+half]
			c, s := cos[i], sin[i]
			v[i] = a*c - b*s
			v[i+half] = b*c + a*s
		}
	}
}
