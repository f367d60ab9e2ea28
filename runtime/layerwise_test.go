package runtime

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// TestBlockByBlockEqualsPrefill: Embed then Block l for every l, chunk by
// chunk, calls the hook with exactly the activations Prefill gives (same
// kernels, same order), and ReplaceBlock with another model's weights makes
// the block compute that model's activations.
func TestBlockByBlockEqualsPrefill(t *testing.T) {
	ctx := context.Background()
	for si, spec := range tinySpecs {
		t.Run(spec.name, func(t *testing.T) {
			src := buildTiny(t, spec, quant.F32, uint64(70+si))
			// alt: src's embeddings and norms, other projections (q8).
			other := buildTiny(t, spec, quant.Q8, uint64(80+si))
			alt := &MemSource{Cfg: src.Cfg}
			for _, n := range src.Names() {
				w, _ := src.Weight(n)
				if strings.HasPrefix(n, "blk.") && !strings.Contains(n, "norm") && strings.HasSuffix(n, ".weight") {
					w, _ = other.Weight(n)
				}
				alt.Add(w)
			}
			tokens := randTokens(newRand(uint64(90+si)), spec.ctx-3, spec.vocab)
			const chunk = 16
			collect := func(into map[string][]float32) ActivationHook {
				return func(l int, p string, x []float32, rows, cols int) {
					k := fmt.Sprintf("%d/%s", l, p)
					into[k] = append(into[k], x[:rows*cols]...)
				}
			}
			for _, replace := range []bool{false, true} {
				want := map[string][]float32{}
				ref := newModelT(t, src, Options{Threads: 2})
				if replace {
					ref = newModelT(t, alt, Options{Threads: 2})
				}
				rs, err := ref.NewSession(len(tokens))
				if err != nil {
					t.Fatal(err)
				}
				rs.SetHook(collect(want))
				for p0 := 0; p0 < len(tokens); p0 += chunk {
					if _, err := rs.Prefill(ctx, tokens[p0:min(p0+chunk, len(tokens))], false); err != nil {
						t.Fatal(err)
					}
				}

				m := newModelT(t, src, Options{Threads: 2})
				if replace {
					for l := range spec.layers {
						if err := m.ReplaceBlock(l, alt); err != nil {
							t.Fatal(err)
						}
					}
				}
				s, err := m.NewSession(len(tokens))
				if err != nil {
					t.Fatal(err)
				}
				got := map[string][]float32{}
				s.SetHook(collect(got))
				h := m.Config().HiddenSize
				x := make([]float32, len(tokens)*h)
				if err := s.Embed(x, tokens, 0); err != nil {
					t.Fatal(err)
				}
				for l := range spec.layers {
					for p0 := 0; p0 < len(tokens); p0 += chunk {
						p1 := min(p0+chunk, len(tokens))
						if err := s.Block(ctx, l, x[p0*h:p1*h], p0); err != nil {
							t.Fatal(err)
						}
					}
				}
				if len(got) != len(want) {
					t.Fatalf("replace=%v: %d hook keys, want %d", replace, len(got), len(want))
				}
				for k, w := range want {
					g := got[k]
					if len(g) != len(w) {
						t.Fatalf("replace=%v %s: %d values, want %d", replace, k, len(g), len(w))
					}
					for i := range w {
						if g[i] != w[i] {
							t.Fatalf("replace=%v %s[%d]: %v, prefill %v", replace, k, i, g[i], w[i])
						}
					}
				}
			}
		})
	}
}

// TestHeadEqualsPrefillLogits: Embed, every Block, then Head gives exactly
// the logits Prefill returns for every position, and Head rejects a
// mis-sized input.
func TestHeadEqualsPrefillLogits(t *testing.T) {
	ctx := context.Background()
	for si, spec := range tinySpecs {
		t.Run(spec.name, func(t *testing.T) {
			src := buildTiny(t, spec, quant.F32, uint64(170+si))
			m := newModelT(t, src, Options{Threads: 2})
			tokens := randTokens(newRand(uint64(190+si)), min(spec.ctx, PrefillChunk)-1, spec.vocab)
			rs, err := m.NewSession(len(tokens))
			if err != nil {
				t.Fatal(err)
			}
			want, err := rs.Prefill(ctx, tokens, true)
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.NewSession(len(tokens))
			if err != nil {
				t.Fatal(err)
			}
			h, v := m.Config().HiddenSize, m.Config().VocabSize
			x := make([]float32, len(tokens)*h)
			if err := s.Embed(x, tokens, 0); err != nil {
				t.Fatal(err)
			}
			for l := range spec.layers {
				if err := s.Block(ctx, l, x, 0); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]float32, len(tokens)*v)
			if err := s.Head(x, got); err != nil {
				t.Fatal(err)
			}
			for p := range tokens {
				for j := range v {
					if got[p*v+j] != want[p][j] {
						t.Fatalf("position %d logit %d: %v, prefill %v", p, j, got[p*v+j], want[p][j])
					}
				}
			}
			if err := s.Head(x[:h+1], got); err == nil {
				t.Fatal("Head took a row of the wrong width")
			}
			if err := s.Head(x, got[1:]); err == nil {
				t.Fatal("Head took a short logits slice")
			}
		})
	}
}
