package eval

import (
	"math"
	"testing"
)

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.12g, want %.12g", what, got, want)
	}
}

func TestPercentileAndMedian(t *testing.T) {
	s := []float64{1, 2, 3, 4}
	for _, tc := range []struct{ f, want float64 }{
		{0, 1}, {1, 4}, {0.5, 2.5}, {0.25, 1.75}, {0.9, 3.7}, {-1, 1}, {2, 4},
	} {
		near(t, "percentile", Percentile(s, tc.f), tc.want, 1e-12)
	}
	near(t, "median even", Median(s), 2.5, 0)
	near(t, "median odd", Median([]float64{1, 2, 7}), 2, 0)
	if !math.IsNaN(Median(nil)) || !math.IsNaN(Percentile(nil, 0.5)) {
		t.Error("empty input must give NaN")
	}
}

func logits(p ...float64) []float32 {
	out := make([]float32, len(p))
	for i, v := range p {
		out[i] = float32(math.Log(v))
	}
	return out
}

func TestCompareByHand(t *testing.T) {
	ref := logits(0.5, 0.5)
	cand := logits(0.9, 0.1)
	tok := Compare(ref, cand, 1)
	// KL(p‖q) = ½ln(0.5/0.9) + ½ln(0.5/0.1)
	near(t, "kld", tok.KLD, 0.5*math.Log(0.5/0.9)+0.5*math.Log(0.5/0.1), 1e-6)
	near(t, "nll", tok.NLL, -math.Log(0.1), 1e-6)
	near(t, "nll ref", tok.NLLRef, -math.Log(0.5), 1e-6)
	near(t, "dp", tok.DP, 0.1-0.5, 1e-6)
	if !tok.SameTop {
		t.Error("argmax 0 (cand) vs 0 (ref, first of a tie): want same")
	}

	same := Compare(ref, ref, 0)
	if same.KLD != 0 || same.DP != 0 || !same.SameTop || same.NLL != same.NLLRef {
		t.Errorf("self comparison: %+v", same)
	}
	// Shifting all logits changes nothing.
	shifted := []float32{ref[0] + 3, ref[1] + 3}
	near(t, "shift invariance", Compare(ref, shifted, 0).KLD, 0, 1e-7)
}

func TestSummaryByHand(t *testing.T) {
	var a Accumulator
	// 12 positions; candidate NLL = ref NLL + 0.1 except on two positions.
	nllRef := []float64{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}
	for i, r := range nllRef {
		c := r + 0.1
		top := i%4 != 0 // 3 of 12 disagree
		a.Add(Token{NLL: c, NLLRef: r, KLD: float64(i) / 100, DP: math.Exp(-c) - math.Exp(-r), SameTop: top})
	}
	s := a.Summary()
	if s.Tokens != 12 {
		t.Fatalf("tokens %d", s.Tokens)
	}
	near(t, "ppl ref", s.PPLRef.Value, math.Exp(2), 1e-12)
	near(t, "ppl", s.PPL.Value, math.Exp(2.1), 1e-12)
	// var(nll_ref) = 2/3 (population), se = sqrt((2/3)/11)
	near(t, "ppl ref err", s.PPLRef.Err, math.Exp(2)*math.Sqrt((2.0/3)/11), 1e-12)
	// NLLs differ by a constant: perfectly correlated, ratio has no spread.
	near(t, "ln ratio", s.LnPPLRatio.Value, 0.1, 1e-12)
	near(t, "ln ratio err", s.LnPPLRatio.Err, 0, 1e-6)
	near(t, "cor", s.CorLnPPL, 1, 1e-9)
	near(t, "ppl ratio", s.PPLRatio.Value, math.Exp(0.1), 1e-12)
	// KLD values 0, .01, …, .11: mean .055, population var = (n²−1)/12·0.01² with n=12.
	near(t, "kld mean", s.KLD.Value, 0.055, 1e-12)
	near(t, "kld err", s.KLD.Err, math.Sqrt((143.0/12)*1e-4/11), 1e-12)
	near(t, "kld max", s.KLDDist.Max, 0.11, 1e-12)
	near(t, "kld median", s.KLDDist.Median, 0.055, 1e-12)
	near(t, "kld p90", s.KLDDist.P90, 0.099, 1e-12) // position 0.9·11 = 9.9
	near(t, "same top", s.SameTop.Value, 0.75, 0)
	near(t, "same top err", s.SameTop.Err, math.Sqrt(0.75*0.25/11), 1e-12)
	var sum2 float64
	for _, r := range nllRef {
		d := math.Exp(-(r + 0.1)) - math.Exp(-r)
		sum2 += d * d
	}
	near(t, "rms dp", s.RMSDP.Value, math.Sqrt(sum2/12), 1e-12)
}

func TestSummarySmallSamplesHaveNoError(t *testing.T) {
	var a Accumulator
	for range 5 {
		a.Add(Token{NLL: 1, NLLRef: 1, SameTop: true})
	}
	s := a.Summary()
	if s.PPL.Err != 0 || s.KLD.Err != 0 || s.SameTop.Value != 1 || s.PPLRatio.Value != 1 {
		t.Errorf("%+v", s)
	}
}

// TestSummaryUncertaintiesByHand checks the ratio, difference and
// correlation uncertainties against llama.cpp's formulas evaluated here
// with two-pass variances, and that near-identical models (NLLs 1e-9
// apart, as with 16-bit encodings) get the true tiny spread rather than
// cancellation noise.
func TestSummaryUncertaintiesByHand(t *testing.T) {
	ref := []float64{2.1, 0.3, 4.7, 1.9, 3.3, 0.8, 2.6, 5.2, 1.1, 2.9, 3.8, 0.5, 2.2}
	pattern := []float64{0.4, -0.1, 0.9, 0.2, -0.3, 0.0, 0.5, 1.1, -0.2, 0.3, 0.6, 0.1, -0.4}
	n := float64(len(ref))
	for _, scale := range []float64{1, 1e-9} {
		var a Accumulator
		cand := make([]float64, len(ref))
		for i, r := range ref {
			cand[i] = r + scale*pattern[i]
			a.Add(Token{NLL: cand[i], NLLRef: r})
		}
		s := a.Summary()
		mean := func(x []float64) float64 {
			var m float64
			for _, v := range x {
				m += v
			}
			return m / n
		}
		cov := func(x, y []float64) float64 { // population covariance, two-pass
			mx, my := mean(x), mean(y)
			var c float64
			for i := range x {
				c += (x[i] - mx) * (y[i] - my)
			}
			return c / n
		}
		sa := math.Sqrt(cov(cand, cand) / (n - 1))
		sb := math.Sqrt(cov(ref, ref) / (n - 1))
		c := cov(cand, ref) / (n - 1)
		pa, pb := math.Exp(mean(cand)), math.Exp(mean(ref))
		// var(d)/(n−1) is σa² + σb² − 2c without the cancellation.
		d := make([]float64, len(ref))
		for i := range d {
			d[i] = cand[i] - ref[i]
		}
		wantRatioErr := math.Sqrt(cov(d, d) / (n - 1))
		if scale == 1 {
			near(t, "ratio err (llama.cpp form)", wantRatioErr, math.Sqrt(sa*sa+sb*sb-2*c), 1e-12)
			near(t, "cor", s.CorLnPPL, c/(sa*sb), 1e-12)
			near(t, "ppl diff err", s.PPLDiff.Err, math.Sqrt(pa*pa*sa*sa+pb*pb*sb*sb-2*pa*pb*c), 1e-12)
		}
		near(t, "ln ratio", s.LnPPLRatio.Value, mean(d), 1e-15)
		if math.Abs(s.LnPPLRatio.Err-wantRatioErr) > 1e-6*wantRatioErr {
			t.Errorf("scale %g: ln ratio err %.9g, want %.9g", scale, s.LnPPLRatio.Err, wantRatioErr)
		}
		near(t, "ppl ratio", s.PPLRatio.Value, pa/pb, 1e-12)
		near(t, "ppl ratio err", s.PPLRatio.Err, pa/pb*wantRatioErr, 1e-12)
	}
}

func TestSummaryIdenticalIsExact(t *testing.T) {
	var a Accumulator
	for i := range 50 {
		v := 1 + float64(i%7)/3
		a.Add(Token{NLL: v, NLLRef: v, SameTop: true})
	}
	s := a.Summary()
	if s.LnPPLRatio != (ValueErr{}) || s.PPLRatio != (ValueErr{1, 0}) || s.PPLDiff != (ValueErr{}) || s.CorLnPPL != 1 || s.PPL != s.PPLRef {
		t.Errorf("%+v", s)
	}
}
