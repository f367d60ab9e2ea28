package runtime

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// SamplerConfig chooses the next token from logits. Temperature 0 is greedy
// (argmax; TopK and TopP are then irrelevant). Otherwise the logits are
// divided by Temperature, cut to the TopK most likely tokens (0 = no cut),
// then to the smallest set whose probability reaches TopP (1 = no cut), and
// sampled with a PCG generator seeded by Seed, in that order (as
// transformers' temperature → top-k → top-p warpers).
type SamplerConfig struct {
	Temperature float64
	TopK        int
	TopP        float64
	Seed        uint64
}

// Validate checks the ranges: Temperature ≥ 0, TopK ≥ 0, TopP in (0, 1].
// TopP 0 is the unset zero value and means no cut, like 1, so that the zero
// SamplerConfig is plain greedy decoding.
func (c SamplerConfig) Validate() error {
	if !(c.Temperature >= 0) || math.IsInf(c.Temperature, 0) {
		return fmt.Errorf("sampler: temperature %v must be a finite number ≥ 0", c.Temperature)
	}
	if c.TopK < 0 {
		return fmt.Errorf("sampler: top-k %d must be ≥ 0", c.TopK)
	}
	if !(c.TopP >= 0 && c.TopP <= 1) {
		return fmt.Errorf("sampler: top-p %v must be in (0, 1]", c.TopP)
	}
	return nil
}

// Sampler draws tokens according to a SamplerConfig. It keeps scratch
// between calls and is not safe for concurrent use.
type Sampler struct {
	cfg   SamplerConfig
	rng   *rand.Rand
	idx   []int
	probs []float64
}

// NewSampler validates cfg and seeds the generator.
func NewSampler(cfg SamplerConfig) (*Sampler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TopP == 0 {
		cfg.TopP = 1
	}
	return &Sampler{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}, nil
}

// argmax returns the index of the largest logit (the first on ties; NaN is
// never chosen unless every value is NaN).
func argmax(logits []float32) int {
	best := 0
	bv := float32(math.Inf(-1))
	found := false
	for i, v := range logits {
		if v > bv || (!found && v == bv) {
			best, bv, found = i, v, true
		}
	}
	return best
}

// Sample picks a token id from logits.
func (s *Sampler) Sample(logits []float32) int {
	c := s.cfg
	if c.Temperature == 0 || len(logits) <= 1 {
		return argmax(logits)
	}
	n := len(logits)
	s.idx = s.idx[:0]
	for i, v := range logits {
		if !math.IsNaN(float64(v)) {
			s.idx = append(s.idx, i)
		}
	}
	if len(s.idx) == 0 {
		return 0
	}
	byLogit := func(a, b int) int { return cmp.Compare(logits[b], logits[a]) } // descending
	sorted := false
	if c.TopK > 0 && c.TopK < len(s.idx) {
		// Partial selection would be cheaper; a full sort keeps this simple
		// and is small next to a forward pass.
		slices.SortStableFunc(s.idx, byLogit)
		s.idx = s.idx[:c.TopK]
		sorted = true
	}
	// Softmax of logit/T over the candidates, in float64.
	mx := math.Inf(-1)
	for _, i := range s.idx {
		mx = max(mx, float64(logits[i]))
	}
	s.probs = slices.Grow(s.probs[:0], len(s.idx))[:len(s.idx)]
	var sum float64
	for k, i := range s.idx {
		p := math.Exp((float64(logits[i]) - mx) / c.Temperature)
		s.probs[k] = p
		sum += p
	}
	if c.TopP < 1 {
		if !sorted {
			// Tokens with p < (1−topP)/(n−1) can never be in the nucleus:
			// together they would hold less than 1−topP. Dropping them
			// first keeps the sort short.
			cut := (1 - c.TopP) / float64(n-1) * sum
			k := 0
			for j, i := range s.idx {
				if s.probs[j] >= cut {
					s.idx[k] = i
					s.probs[k] = s.probs[j]
					k++
				}
			}
			s.idx, s.probs = s.idx[:k], s.probs[:k]
			slices.SortStableFunc(s.idx, byLogit)
			for j, i := range s.idx {
				s.probs[j] = math.Exp((float64(logits[i]) - mx) / c.Temperature)
			}
		}
		var acc float64
		keep := len(s.idx)
		for j, p := range s.probs {
			acc += p
			if acc >= c.TopP*sum {
				keep = j + 1
				break
			}
		}
		s.idx, s.probs = s.idx[:keep], s.probs[:keep]
		sum = 0
		for _, p := range s.probs {
			sum += p
		}
	}
	u := s.rng.Float64() * sum
	var acc float64
	for j, p := range s.probs {
		acc += p
		if u < acc {
			return s.idx[j]
		}
	}
	return s.idx[len(s.idx)-1]
}
