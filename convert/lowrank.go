package convert

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// LowRank says which projections are factored as W ≈ A·B (or, for lorc,
// W ≈ Q(W) + A·B) and at which rank. The zero value factors nothing.
//
// Exactly one rank setting is used: Spec.Rank or Spec.Ratio fix k from the
// shapes alone, so MakePlan decides everything without weights. Spec.Energy
// and TargetRatio need singular values: SpectrumRanks computes them (a pass
// over the weights and statistics) and its table goes into Ranks, which
// MakePlan then reads as data.
type LowRank struct {
	Method lowrank.Method // svd, whiten, asvd or lorc; "" = no factoring
	Spec   lowrank.RankSpec
	// TargetRatio, in (0, 1], is the fraction of the selected matrices'
	// parameters kept overall; ranks are spread by truncation loss
	// (lowrank.AllocateRanks).
	TargetRatio float64
	// FactorEncoding encodes A and B; nil = the matrix's dense encoding for
	// svd/whiten/asvd and f16 for lorc.
	FactorEncoding *quant.Encoding
	// Include restricts factoring to the projections whose canonical name
	// matches (unanchored); nil = all of attn_q/k/v/output, ffn_gate/up/down.
	// Embeddings, the output head and vectors are never factored.
	Include *regexp.Regexp
	// LoRCWhiten whitens the lorc residual's factorisation with the
	// calibration statistics.
	LoRCWhiten bool
	// Ranks is the rank table from SpectrumRanks (Energy, TargetRatio). A
	// rank of min(m, n) or more keeps that matrix dense.
	Ranks map[string]int
}

// String describes the settings the way a user typed them.
func (l LowRank) String() string {
	if l.Method == "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "lowrank=%s %s", l.Method, l.specString())
	if l.LoRCWhiten {
		b.WriteString(" whitened")
	}
	if l.FactorEncoding != nil {
		fmt.Fprintf(&b, " factors=%v", *l.FactorEncoding)
	}
	if l.Include != nil {
		fmt.Fprintf(&b, " include=%s", l.Include)
	}
	return b.String()
}

func (l LowRank) specString() string {
	switch {
	case l.Spec.Rank > 0:
		return fmt.Sprintf("rank=%d", l.Spec.Rank)
	case l.Spec.Ratio > 0:
		return fmt.Sprintf("rank-ratio=%g", l.Spec.Ratio)
	case l.Spec.Energy > 0:
		return fmt.Sprintf("energy=%g", l.Spec.Energy)
	case l.TargetRatio > 0:
		return fmt.Sprintf("target-ratio=%g", l.TargetRatio)
	}
	return "no-rank"
}

// NeedsStats reports whether the method reads calibration statistics.
func (l LowRank) NeedsStats() bool {
	return l.Method == lowrank.MethodWhiten || l.Method == lowrank.MethodASVD ||
		l.Method == lowrank.MethodLoRC && l.LoRCWhiten
}

// NeedsSpectra reports whether ranks depend on singular values, so that
// SpectrumRanks must fill Ranks before planning.
func (l LowRank) NeedsSpectra() bool {
	return l.Method != "" && l.Spec.Rank == 0 && l.Spec.Ratio == 0
}

// Validate checks that the settings are coherent (one rank setting, in
// range, that the method can use).
func (l LowRank) Validate() error {
	set := 0
	for _, on := range []bool{l.Spec.Rank != 0, l.Spec.Ratio != 0, l.Spec.Energy != 0, l.TargetRatio != 0} {
		if on {
			set++
		}
	}
	if l.Method == "" {
		if set > 0 || l.LoRCWhiten || l.FactorEncoding != nil || l.Include != nil {
			return fmt.Errorf("low-rank settings (%s) without a low-rank method", l.specString())
		}
		return nil
	}
	switch l.Method {
	case lowrank.MethodSVD, lowrank.MethodWhiten, lowrank.MethodASVD, lowrank.MethodLoRC:
	default:
		return fmt.Errorf("--lowrank %q: want svd, whiten, asvd or lorc", l.Method)
	}
	inUnit := func(v float64) bool { return v > 0 && v <= 1 }
	switch {
	case set != 1:
		return fmt.Errorf("--lowrank %s: give exactly one of --rank, --rank-ratio, --energy, --target-ratio (got %d)", l.Method, set)
	case l.Spec.Rank < 0:
		return fmt.Errorf("--rank %d: want a positive rank", l.Spec.Rank)
	case l.Spec.Ratio != 0 && !inUnit(l.Spec.Ratio):
		return fmt.Errorf("--rank-ratio %v: want a fraction in (0, 1]", l.Spec.Ratio)
	case l.Spec.Energy != 0 && !inUnit(l.Spec.Energy):
		return fmt.Errorf("--energy %v: want a fraction in (0, 1]", l.Spec.Energy)
	case l.TargetRatio != 0 && !inUnit(l.TargetRatio):
		return fmt.Errorf("--target-ratio %v: want a fraction in (0, 1]", l.TargetRatio)
	case l.Method == lowrank.MethodLoRC && l.Spec.Rank == 0:
		return fmt.Errorf("--lowrank lorc corrects a quantization residual at a fixed --rank; %s does not apply", l.specString())
	case l.LoRCWhiten && l.Method != lowrank.MethodLoRC:
		return fmt.Errorf("--lorc-whiten goes with --lowrank lorc, not %s", l.Method)
	}
	if l.FactorEncoding != nil {
		if err := l.FactorEncoding.Validate(); err != nil {
			return fmt.Errorf("--factor-encoding: %w", err)
		}
	}
	return nil
}

// factorEncoding is the encoding of A and B for a matrix whose dense
// encoding is dense.
func (l LowRank) factorEncoding(dense quant.Encoding) quant.Encoding {
	switch {
	case l.FactorEncoding != nil:
		return *l.FactorEncoding
	case l.Method == lowrank.MethodLoRC:
		return quant.F16
	}
	return dense
}

// projection maps a canonical projection weight to its layer and the
// runtime hook point that sees its input: q, k and v share "attn_in", gate
// and up share "ffn_in", so they share statistics.
func projection(name string) (layer int, point string, ok bool) {
	layer, stem, suffix, ok := format.ParseName(name)
	if !ok || layer < 0 || suffix != format.Weight || !stem.Projection() {
		return 0, "", false
	}
	return layer, runtime.ProjectionInput(stem), true
}

// ProjectionStatsKeys lists the statistics keys of every projection's
// input, in model order without repeats: what calibration collects for the
// packed encoders' weighted scale search.
func ProjectionStatsKeys(tensors []*TensorDesc) []string {
	var keys []string
	seen := map[string]bool{}
	for _, t := range tensors {
		if layer, point, ok := projection(t.Name); ok && len(t.Shape) == 2 {
			if k := StatsKey(layer, point); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// StatsKey names the statistics of one (layer, hook point) input.
func StatsKey(layer int, point string) string { return fmt.Sprintf("%d/%s", layer, point) }

// Candidate is a matrix the low-rank policy selects; whether it ends up
// factored depends on its rank and sizes (see MakePlan).
type Candidate struct {
	Name     string
	M, N     int // [out, in]
	Layer    int
	Point    string // runtime hook point of its input
	StatsKey string
	desc     *TensorDesc
}

// LowRankCandidates lists the matrices l selects, in model order. It fails
// when l.Include matches none of them.
func LowRankCandidates(tensors []*TensorDesc, l LowRank) ([]Candidate, error) {
	if l.Method == "" {
		return nil, nil
	}
	var out []Candidate
	for _, t := range tensors {
		if c, ok := candidate(t, l); ok {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		what := "the 2-D projections"
		if l.Include != nil {
			what = fmt.Sprintf("--lowrank-include %s", l.Include)
		}
		return nil, fmt.Errorf("--lowrank %s: %s match no projection matrix (attn_q/k/v/output, ffn_gate/up/down)", l.Method, what)
	}
	return out, nil
}

func candidate(t *TensorDesc, l LowRank) (Candidate, bool) {
	layer, point, ok := projection(t.Name)
	if !ok || len(t.Shape) != 2 || l.Method == "" {
		return Candidate{}, false
	}
	if l.Include != nil && !l.Include.MatchString(t.Name) {
		return Candidate{}, false
	}
	return Candidate{Name: t.Name, M: int(t.Shape[0]), N: int(t.Shape[1]), Layer: layer, Point: point,
		StatsKey: StatsKey(layer, point), desc: t}, true
}

// LowRankSummary totals the factorisation over the selected matrices.
type LowRankSummary struct {
	Method   lowrank.Method `json:"method"`
	Spec     string         `json:"spec"`
	Matrices int            `json:"matrices"` // selected by the policy
	Factored int            `json:"factored"` // stored as lowrank or lorc
	// Params is Σ m·n over the selected matrices; StoredParams what they
	// store (m·n dense, k·(m+n) factored, m·n + k·(m+n) for lorc).
	Params       int64 `json:"params"`
	StoredParams int64 `json:"stored_params"`
	// DenseBytes is what the selected matrices take at their dense
	// encodings; Bytes what they take as planned.
	DenseBytes int64 `json:"dense_bytes"`
	Bytes      int64 `json:"bytes"`
}

type lowRankPlanner struct {
	l   LowRank
	sum LowRankSummary
}

func newLowRankPlanner(l LowRank) *lowRankPlanner {
	return &lowRankPlanner{l: l, sum: LowRankSummary{Method: l.Method, Spec: l.specString()}}
}

func (p *lowRankPlanner) summary() (*LowRankSummary, error) {
	if p.l.Method == "" {
		return nil, nil
	}
	if p.sum.Matrices == 0 {
		_, err := LowRankCandidates(nil, p.l)
		return nil, err
	}
	s := p.sum
	return &s, nil
}

// plan turns the dense decision e into a low-rank one when the policy
// selects t and factoring pays.
func (p *lowRankPlanner) plan(e *PlanEntry, t *TensorDesc) error {
	c, ok := candidate(t, p.l)
	if !ok {
		return nil
	}
	m, n := c.M, c.N
	p.sum.Matrices++
	p.sum.Params += int64(m) * int64(n)
	p.sum.DenseBytes += e.Bytes
	dense := e.Encoding
	fe := p.l.factorEncoding(dense)
	stayDense := func(why string) {
		e.Rule += "; " + why + ", stays dense"
		p.sum.StoredParams += int64(m) * int64(n)
		p.sum.Bytes += e.Bytes
	}
	var k int
	if p.l.Method == lowrank.MethodLoRC {
		if dense.IsFloat() {
			stayDense(fmt.Sprintf("lorc skipped: %v has no quantization residual to correct", dense))
			return nil
		}
		k = min(p.l.Spec.Rank, m, n)
	} else {
		var err error
		if k, err = p.rank(t.Name, m, n); err != nil {
			return err
		}
		if k >= min(m, n) {
			stayDense(fmt.Sprintf("%s %s keeps full rank %d", p.l.Method, p.l.specString(), k))
			return nil
		}
		if !lowrank.WorthFactoring(m, n, k, dense, fe) {
			ab := mustSize(fe, m, k) + mustSize(fe, k, n)
			stayDense(fmt.Sprintf("%s rank %d not worth it (%v factors %d B ≥ %v dense %d B)", p.l.Method, k, fe, ab, dense, e.Bytes))
			return nil
		}
	}
	for _, enc := range []quant.Encoding{fe, dense} {
		if err := enc.Validate(); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
	}
	a := PlanPart{Role: format.RoleA, Shape: []int64{int64(m), int64(k)}, Encoding: fe, Bytes: mustSize(fe, m, k)}
	b := PlanPart{Role: format.RoleB, Shape: []int64{int64(k), int64(n)}, Encoding: fe, Bytes: mustSize(fe, k, n)}
	e.Method, e.Rank, e.StatsKey = p.l.Method, k, c.StatsKey
	stored := int64(k) * int64(m+n)
	if p.l.Method == lowrank.MethodLoRC {
		e.Kind = format.KindLoRC
		e.Whiten = p.l.LoRCWhiten
		e.Parts = []PlanPart{e.Parts[0], a, b}
		e.Rule += fmt.Sprintf("; lorc rank %d correction in %v", k, fe)
		stored += int64(m) * int64(n)
	} else {
		e.Kind = format.KindLowRank
		e.Encoding = fe
		e.ShortGroup = (fe.Kind == quant.KindQ8 || fe.IsPacked()) && (k%fe.Group != 0 || n%fe.Group != 0)
		e.Parts = []PlanPart{a, b}
		e.Rule += fmt.Sprintf("; %s rank %d (%s) in %v", p.l.Method, k, p.l.specString(), fe)
	}
	e.Bytes = 0
	for _, pp := range e.Parts {
		e.Bytes += pp.Bytes
	}
	p.sum.Factored++
	p.sum.StoredParams += stored
	p.sum.Bytes += e.Bytes
	return nil
}

// rank resolves k for one svd/whiten/asvd matrix.
func (p *lowRankPlanner) rank(name string, m, n int) (int, error) {
	switch {
	case p.l.Spec.Rank > 0:
		return min(p.l.Spec.Rank, m, n), nil
	case p.l.Spec.Ratio > 0:
		return lowrank.RatioRank(m, n, p.l.Spec.Ratio), nil
	}
	k, ok := p.l.Ranks[name]
	if !ok {
		return 0, fmt.Errorf("tensor %q: no rank in the rank table; %s ranks come from the spectrum pass (SpectrumRanks)", name, p.l.specString())
	}
	// A budget too small to give every matrix rank 1 can leave a matrix at
	// 0; format needs k ≥ 1, and one term costs almost nothing.
	return max(k, 1), nil
}

// mustSize is Size for encodings and shapes already validated.
func mustSize(e quant.Encoding, rows, cols int) int64 {
	n, err := e.Size(rows, cols)
	if err != nil {
		panic(fmt.Sprintf("convert: size of [%d, %d] in %v: %v", rows, cols, e, err))
	}
	return n
}

// SpectrumRanks is the pass that reads weights (and statistics) to decide
// ranks that depend on singular values: per matrix for Spec.Energy, across
// all selected matrices for TargetRatio (minimising the sum of relative
// truncation losses Σ_{i>k}σ_i²/Σσ², see unitEnergy). It returns the rank table for
// LowRank.Ranks. stats may be nil when the method needs none. Up to workers
// matrices are processed at once.
func SpectrumRanks(ctx context.Context, m *Model, l LowRank, stats *Calibration, workers int) (map[string]int, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if !l.NeedsSpectra() {
		return nil, nil
	}
	cands, err := LowRankCandidates(m.Tensors, l)
	if err != nil {
		return nil, err
	}
	spectra := make([]lowrank.Spectrum, len(cands))
	// workers is the thread budget: conc spectra at once, each with its
	// share of threads.
	conc := max(1, min(workers, len(cands)))
	lopts := lowrank.Options{Threads: max(1, workers/conc)}
	sts := make([]*lowrank.Stats, len(cands))
	for i, c := range cands {
		if sts[i], err = stats.forMethod(l.Method, l.NeedsStats(), c.StatsKey); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", c.Name, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, c := range cands {
		st := sts[i]
		if gctx.Err() != nil {
			break // a spectrum failed: g.Wait returns why
		}
		g.Go(func() error {
			w := make([]float32, c.M*c.N)
			if err := c.desc.Load(gctx, w); err != nil {
				return err
			}
			sp, err := lowrank.ComputeSpectrum(gctx, w, c.M, c.N, l.Method, st, lopts)
			if err != nil {
				return fmt.Errorf("tensor %q: spectrum: %w", c.Name, err)
			}
			spectra[i] = sp
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ranks := make(map[string]int, len(cands))
	if l.TargetRatio > 0 {
		for i, k := range lowrank.AllocateRanks(unitEnergy(spectra), l.TargetRatio) {
			ranks[cands[i].Name] = k
		}
		return ranks, nil
	}
	for i, c := range cands {
		ranks[c.Name] = max(1, min(lowrank.EnergyRank(spectra[i].Sigma, l.Spec.Energy), c.M, c.N))
	}
	return ranks, nil
}

// unitEnergy scales each spectrum to Σσ² = 1, so that AllocateRanks
// compares relative truncation losses. Absolute losses are in each matrix's
// own output units, which differ by orders of magnitude across layers and
// projections (whitened ones most: a layer with small activations has small
// σ); on llama-stories-12m allocating them unnormalised gave layer 0's
// attn_output rank 1 and attn_v rank 7 and a mean KLD four times that of the
// same budget spread uniformly.
func unitEnergy(in []lowrank.Spectrum) []lowrank.Spectrum {
	out := make([]lowrank.Spectrum, len(in))
	for i, sp := range in {
		var e float64
		for _, s := range sp.Sigma {
			e += s * s
		}
		out[i] = lowrank.Spectrum{M: sp.M, N: sp.N, Sigma: append([]float64(nil), sp.Sigma...)}
		if e > 0 && !math.IsInf(e, 0) {
			f := 1 / math.Sqrt(e)
			for j := range out[i].Sigma {
				out[i].Sigma[j] *= f
			}
		}
	}
	return out
}

// relErr is sqrt(num/den), 0 for 0/0 and -1 when undefined.
func relErr(num, den float64) float64 {
	switch {
	case num == 0:
		return 0
	case den <= 0 || math.IsNaN(num) || math.IsNaN(den):
		return -1
	}
	return math.Sqrt(num / den)
}
