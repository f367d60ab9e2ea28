package eval

import (
	"math"
	"slices"
)

// Accumulator gathers per-token statistics of a candidate model against a
// reference on the same tokens. Its definitions follow llama.cpp's
// llama-perplexity --kl-divergence so that figures are comparable:
// uncertainties are standard errors of the mean, ln-PPL ratio uncertainty
// accounts for the covariance of the two models' per-token NLL, Δp is
// p_cand(correct) − p_ref(correct), and "same top" compares argmaxes.
type Accumulator struct {
	n                                  int
	sumNLL, sumNLL2                    float64 // candidate
	sumNLLRef, sumNLLRef2, sumNLLCross float64 // reference, and Σ nll·nll_ref
	// Σd, Σd², Σd·nll_ref for d = nll − nll_ref: the ratio and difference
	// uncertainties come from these, because var(nll) + var(nll_ref) −
	// 2·cov is the variance of d, and computing it from the big sums above
	// cancels catastrophically when the models nearly agree (16-bit
	// encodings differ by 1e-9 nats per token).
	sumD, sumD2, sumDRef  float64
	sumKLD, sumKLD2       float64
	sumDP, sumDP2, sumDP4 float64
	sameTop               int
	kld, dp               []float64 // every value, for percentiles
}

// Token is the comparison at one scored position.
type Token struct {
	NLL, NLLRef float64 // −ln p(correct) under candidate and reference
	KLD         float64 // KL(p_ref ‖ p_cand) in nats
	DP          float64 // p_cand(correct) − p_ref(correct)
	SameTop     bool    // argmaxes agree
}

// Add records one position.
func (a *Accumulator) Add(t Token) {
	a.n++
	a.sumNLL += t.NLL
	a.sumNLL2 += t.NLL * t.NLL
	a.sumNLLRef += t.NLLRef
	a.sumNLLRef2 += t.NLLRef * t.NLLRef
	a.sumNLLCross += t.NLL * t.NLLRef
	d := t.NLL - t.NLLRef
	a.sumD += d
	a.sumD2 += d * d
	a.sumDRef += d * t.NLLRef
	a.sumKLD += t.KLD
	a.sumKLD2 += t.KLD * t.KLD
	a.sumDP += t.DP
	d2 := t.DP * t.DP
	a.sumDP2 += d2
	a.sumDP4 += d2 * d2
	if t.SameTop {
		a.sameTop++
	}
	a.kld = append(a.kld, t.KLD)
	a.dp = append(a.dp, t.DP)
}

// Count is the number of scored positions.
func (a *Accumulator) Count() int { return a.n }

// ValueErr is an estimate with its standard error.
type ValueErr struct {
	Value float64 `json:"value"`
	Err   float64 `json:"err"`
}

// Distribution summarizes sorted samples the way llama.cpp prints them.
type Distribution struct {
	Max    float64 `json:"max"`
	P999   float64 `json:"p99_9"`
	P99    float64 `json:"p99"`
	P95    float64 `json:"p95"`
	P90    float64 `json:"p90"`
	P75    float64 `json:"p75"`
	Median float64 `json:"median"`
	P25    float64 `json:"p25"`
	P10    float64 `json:"p10"`
	P5     float64 `json:"p5"`
	P1     float64 `json:"p1"`
	P01    float64 `json:"p0_1"`
	Min    float64 `json:"min"`
}

// Summary is the final report of one candidate against the reference.
type Summary struct {
	Tokens     int          `json:"tokens"`
	PPL        ValueErr     `json:"ppl"`
	PPLRef     ValueErr     `json:"ppl_ref"`
	LnPPLRatio ValueErr     `json:"ln_ppl_ratio"`
	PPLRatio   ValueErr     `json:"ppl_ratio"`
	PPLDiff    ValueErr     `json:"ppl_diff"`
	CorLnPPL   float64      `json:"cor_ln_ppl"`
	KLD        ValueErr     `json:"kld"`
	KLDDist    Distribution `json:"kld_dist"`
	DP         ValueErr     `json:"dp"`
	DPDist     Distribution `json:"dp_dist"`
	RMSDP      ValueErr     `json:"rms_dp"`
	SameTop    ValueErr     `json:"same_top"`
}

// meanErr is llama.cpp's mean_and_uncertainty: the mean and the standard
// error sqrt(var/(n−1)), reported as 0 for ten samples or fewer.
func meanErr(sum, sum2 float64, n int) ValueErr {
	if n < 1 {
		return ValueErr{}
	}
	f := sum / float64(n)
	v := sum2/float64(n) - f*f
	if v > 0 && n > 10 {
		return ValueErr{f, math.Sqrt(v / float64(n-1))}
	}
	return ValueErr{f, 0}
}

// covariance of the two means (llama.cpp's covariance helper).
func covariance(sa, sb, sab float64, n int) float64 {
	if n < 10 {
		return 0
	}
	c := sab/float64(n) - (sa/float64(n))*(sb/float64(n))
	return c / float64(n-1)
}

// Percentile interpolates linearly between order statistics: position
// f·(n−1) of the sorted values, as llama.cpp does.
func Percentile(sorted []float64, f float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	if f <= 0 {
		return sorted[0]
	}
	if f >= 1 {
		return sorted[len(sorted)-1]
	}
	p := f * float64(len(sorted)-1)
	i := int(p)
	p -= float64(i)
	j := min(i+1, len(sorted)-1)
	return (1-p)*sorted[i] + p*sorted[j]
}

// Median is the middle value, or the mean of the two middle ones.
func Median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 0 {
		return 0.5 * (sorted[n/2-1] + sorted[n/2])
	}
	return sorted[n/2]
}

func distribution(v []float64) Distribution {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return Distribution{}
	}
	return Distribution{
		Max: s[len(s)-1], P999: Percentile(s, 0.999), P99: Percentile(s, 0.99), P95: Percentile(s, 0.95),
		P90: Percentile(s, 0.90), P75: Percentile(s, 0.75), Median: Median(s), P25: Percentile(s, 0.25),
		P10: Percentile(s, 0.10), P5: Percentile(s, 0.05), P1: Percentile(s, 0.01), P01: Percentile(s, 0.001),
		Min: s[0],
	}
}

// Summary computes every statistic from what was added.
func (a *Accumulator) Summary() Summary {
	n := a.n
	s := Summary{Tokens: n}
	lp := meanErr(a.sumNLL, a.sumNLL2, n)
	lpr := meanErr(a.sumNLLRef, a.sumNLLRef2, n)
	s.PPL = ValueErr{math.Exp(lp.Value), math.Exp(lp.Value) * lp.Err}
	s.PPLRef = ValueErr{math.Exp(lpr.Value), math.Exp(lpr.Value) * lpr.Err}
	cov := covariance(a.sumNLL, a.sumNLLRef, a.sumNLLCross, n)
	// varD is the per-token variance of d = nll − nll_ref.
	md, my := 0.0, 0.0
	varD, varY, covDY := 0.0, 0.0, 0.0
	if n > 0 {
		md, my = a.sumD/float64(n), a.sumNLLRef/float64(n)
		varD = math.Max(0, a.sumD2/float64(n)-md*md)
		varY = math.Max(0, a.sumNLLRef2/float64(n)-my*my)
		covDY = a.sumDRef/float64(n) - md*my
	}
	switch {
	case varD == 0 && n > 0:
		s.CorLnPPL = 1 // the NLLs differ by a constant
	case lp.Err > 0 && lpr.Err > 0:
		s.CorLnPPL = cov / (lp.Err * lpr.Err)
	}
	// llama.cpp: σ(ln ratio)² = σ(ln PPL)² + σ(ln PPL_ref)² − 2·cov, which
	// is var(d)/(n−1); no uncertainty for ten samples or fewer.
	ratioErr := 0.0
	if n > 10 {
		ratioErr = math.Sqrt(varD / float64(n-1))
	}
	s.LnPPLRatio = ValueErr{md, ratioErr}
	s.PPLRatio = ValueErr{math.Exp(md), math.Exp(md) * ratioErr}
	// llama.cpp: σ(PPL − PPL_ref)² = σ(PPL)² + σ(PPL_ref)² − 2·PPL·PPL_ref·cov
	// = var(a·nll − b·nll_ref)/(n−1) with a = PPL, b = PPL_ref; written as
	// a·d + (a−b)·nll_ref it needs only the well-conditioned sums.
	diffErr := 0.0
	if n > 10 {
		pa, pb := s.PPL.Value, s.PPLRef.Value
		v := pa*pa*varD + (pa-pb)*(pa-pb)*varY + 2*pa*(pa-pb)*covDY
		diffErr = math.Sqrt(math.Max(0, v) / float64(n-1))
	}
	s.PPLDiff = ValueErr{s.PPL.Value - s.PPLRef.Value, diffErr}
	s.KLD = meanErr(a.sumKLD, a.sumKLD2, n)
	s.KLDDist = distribution(a.kld)
	s.DP = meanErr(a.sumDP, a.sumDP2, n)
	s.DPDist = distribution(a.dp)
	mse := meanErr(a.sumDP2, a.sumDP4, n)
	if rms := math.Sqrt(mse.Value); rms > 0 {
		s.RMSDP = ValueErr{rms, 0.5 / rms * mse.Err}
	}
	if n > 0 {
		p := float64(a.sameTop) / float64(n)
		e := 0.0
		if n > 1 {
			e = math.Sqrt(p * (1 - p) / float64(n-1))
		}
		s.SameTop = ValueErr{p, e}
	}
	return s
}

// Compare scores one position from the two models' logits and the correct
// next token, in float64 so that identical logits give exactly KLD 0 and
// Δp 0.
func Compare(ref, cand []float32, target int) Token {
	var r RefPosition
	r.Prepare(ref, nil)
	return r.Compare(cand, target)
}

// RefPosition holds what Compare derives from the reference's logits at one
// position: ln Σ exp, the argmax and every probability. A sweep compares many
// candidates with the same reference, so these are computed once per
// position instead of once per candidate (they were two thirds of the
// exponentials); the arithmetic is the same, so the results are bit-identical.
type RefPosition struct {
	logits []float32
	lse    float64
	top    int
	p      []float64 // exp(logits[i] − lse) in float64
}

// Prepare fills r from the reference logits, reusing p's storage when it is
// large enough. r keeps logits (not a copy): they must not change while r is
// used.
func (r *RefPosition) Prepare(logits []float32, p []float64) {
	r.logits = logits
	r.lse, r.top = logSumExp(logits)
	if cap(p) < len(logits) {
		p = make([]float64, len(logits))
	}
	p = p[:len(logits)]
	for i, v := range logits {
		p[i] = math.Exp(float64(v) - r.lse)
	}
	r.p = p
}

// Compare scores candidate logits against the prepared reference position.
func (r *RefPosition) Compare(cand []float32, target int) Token {
	ref := r.logits
	lr, ir := r.lse, r.top
	lc, ic := logSumExp(cand)
	var kld float64
	for i, p := range r.p[:len(cand)] {
		if p > 0 {
			lpRef := float64(ref[i]) - lr
			lpCand := float64(cand[i]) - lc
			kld += p * (lpRef - lpCand)
		}
	}
	nllRef := lr - float64(ref[target])
	nll := lc - float64(cand[target])
	return Token{
		NLL: nll, NLLRef: nllRef, KLD: kld,
		DP:      math.Exp(-nll) - math.Exp(-nllRef),
		SameTop: ir == ic,
	}
}

// NLL is −ln softmax(logits)[target], in float64.
func NLL(logits []float32, target int) float64 {
	l, _ := logSumExp(logits)
	return l - float64(logits[target])
}

// logSumExp returns ln Σ exp(x) and the argmax (first one on ties).
func logSumExp(x []float32) (float64, int) {
	imax := 0
	for i, v := range x {
		if v > x[imax] {
			imax = i
		}
	}
	m := float64(x[imax])
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s), imax
}
