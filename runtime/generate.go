package runtime

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Stats describe one Generate call.
type Stats struct {
	PromptTokens   int
	GenTokens      int // tokens sampled, a final EOS included
	PromptDuration time.Duration
	GenDuration    time.Duration
}

// PromptTokensPerSec is the prefill throughput.
func (s Stats) PromptTokensPerSec() float64 { return rate(s.PromptTokens, s.PromptDuration) }

// GenTokensPerSec is the generation throughput.
func (s Stats) GenTokensPerSec() float64 { return rate(s.GenTokens, s.GenDuration) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Generate continues prompt by up to maxNew tokens, calling onToken with
// each new token as soon as it is chosen. It stops early at any of the
// model's EOS ids (the EOS is counted in Stats but not passed to onToken),
// when onToken returns an error (returned as is), or when ctx is done.
func (m *Model) Generate(ctx context.Context, prompt []int, maxNew int, sc SamplerConfig, onToken func(id int) error) (st Stats, err error) {
	sampler, err := NewSampler(sc)
	if err != nil {
		return st, err
	}
	if len(prompt) == 0 {
		return st, fmt.Errorf("generate: empty prompt")
	}
	if maxNew < 0 {
		return st, fmt.Errorf("generate: negative number of new tokens %d", maxNew)
	}
	// Compared without adding, so a huge maxNew cannot overflow into a
	// negative session size.
	if c := m.cfg.ContextLength; len(prompt) > c || maxNew > c-len(prompt) {
		return st, fmt.Errorf("prompt of %d tokens plus %d new tokens exceeds the model context of %d", len(prompt), maxNew, c)
	}
	s, err := m.NewSession(len(prompt) + maxNew)
	if err != nil {
		return st, err
	}
	defer s.Close()

	start := time.Now()
	out, err := s.Prefill(ctx, prompt, false)
	if err != nil {
		return st, err
	}
	st.PromptTokens = len(prompt)
	st.PromptDuration = time.Since(start)
	logits := out[0]

	start = time.Now()
	// Set on every return, errors included, so partial runs report too.
	defer func() { st.GenDuration = time.Since(start) }()
	for i := range maxNew {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		id := sampler.Sample(logits)
		st.GenTokens++
		if slices.Contains(m.cfg.EOS, id) {
			break
		}
		if onToken != nil {
			if err := onToken(id); err != nil {
				return st, err
			}
		}
		if i == maxNew-1 {
			break
		}
		if logits, err = s.Decode(ctx, id); err != nil {
			return st, err
		}
	}
	return st, nil
}
