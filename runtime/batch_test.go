package runtime

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// TestBatchDecodeMatchesGenerate: sequences that join and leave a Batch at
// different steps produce the same tokens as Generate decoding each alone,
// greedy and seeded, and their logits agree with single-session Decode.
func TestBatchDecodeMatchesGenerate(t *testing.T) {
	samplers := []struct {
		name string
		sc   SamplerConfig
	}{
		{"greedy", SamplerConfig{}},
		{"seeded", SamplerConfig{Temperature: 0.9, TopK: 20, TopP: 0.95, Seed: 7}},
	}
	for _, spec := range tinySpecs {
		for _, enc := range []quant.Encoding{quant.F32, quant.Q8} {
			for _, smp := range samplers {
				for _, tiled := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%v/%s/tiled=%v", spec.name, enc, smp.name, tiled), func(t *testing.T) {
						src := buildTiny(t, spec, enc, 21)
						m := newModelT(t, src, Options{Threads: 2})
						r := newRand(3)
						type seq struct {
							prompt []int
							maxNew int
							join   int // step at which it joins
							want   []int
							got    []int
							s      *Session
							smp    *Sampler
							next   int
							done   bool
						}
						seqs := make([]*seq, 5)
						for i := range seqs {
							sq := &seq{prompt: randTokens(r, 1+3*i, spec.vocab), maxNew: 6 + 2*i, join: []int{0, 0, 2, 3, 7}[i]}
							sc := smp.sc
							sc.Seed += uint64(i)
							if _, err := m.Generate(context.Background(), sq.prompt, sq.maxNew, sc, func(id int) error {
								sq.want = append(sq.want, id)
								return nil
							}); err != nil {
								t.Fatal(err)
							}
							var err error
							if sq.smp, err = NewSampler(sc); err != nil {
								t.Fatal(err)
							}
							if sq.s, err = m.NewSession(0); err != nil {
								t.Fatal(err)
							}
							defer sq.s.Close()
							seqs[i] = sq
						}
						b, err := m.NewBatch(len(seqs))
						if err != nil {
							t.Fatal(err)
						}
						b.SetTiled(tiled)
						// Exact mode must agree bit for bit; tiled within
						// rounding.
						tol := 0.0
						if tiled {
							tol = 1e-4
						}
						ctx := context.Background()
						// emit records a sampled token; it reports whether the
						// sequence goes on (as Generate: EOS ends it silently).
						emit := func(sq *seq, id int) bool {
							if slices.Contains(m.cfg.EOS, id) {
								sq.done = true
								return false
							}
							sq.got = append(sq.got, id)
							if len(sq.got) == sq.maxNew {
								sq.done = true
								return false
							}
							sq.next = id
							return true
						}
						for step := 0; ; step++ {
							var ss []*Session
							var toks []int
							var active []*seq
							left := false
							for _, sq := range seqs {
								if sq.done {
									continue
								}
								left = true
								switch {
								case step < sq.join:
								case step == sq.join:
									lg, err := sq.s.Prefill(ctx, sq.prompt, false)
									if err != nil {
										t.Fatal(err)
									}
									emit(sq, sq.smp.Sample(lg[0]))
								default:
									ss = append(ss, sq.s)
									toks = append(toks, sq.next)
									active = append(active, sq)
								}
							}
							if !left {
								break
							}
							if len(ss) == 0 {
								continue
							}
							// The reference logits: the same token decoded alone
							// on a copy of the state (prompt and tokens so far).
							refs := make([][]float32, len(ss))
							for i, sq := range active {
								one, err := m.NewSession(0)
								if err != nil {
									t.Fatal(err)
								}
								// As Generate builds it: the prompt prefilled, then
								// every generated token decoded.
								if _, err := one.Prefill(ctx, sq.prompt, false); err != nil {
									t.Fatal(err)
								}
								var lg []float32
								for _, id := range sq.got {
									if lg, err = one.Decode(ctx, id); err != nil {
										t.Fatal(err)
									}
								}
								refs[i] = slices.Clone(lg)
								one.Close()
							}
							lgs, err := b.Decode(ctx, ss, toks)
							if err != nil {
								t.Fatal(err)
							}
							for i, sq := range active {
								for j := range lgs[i] {
									if d := math.Abs(float64(lgs[i][j] - refs[i][j])); d > tol {
										t.Fatalf("step %d seq %d logit %d: batch %v, alone %v", step, i, j, lgs[i][j], refs[i][j])
									}
								}
								emit(sq, sq.smp.Sample(lgs[i]))
							}
						}
						for i, sq := range seqs {
							if !slices.Equal(sq.got, sq.want) {
								t.Errorf("sequence %d: batched %v, Generate %v", i, sq.got, sq.want)
							}
						}
					})
				}
			}
		}
	}
}

func TestBatchDecodeErrors(t *testing.T) {
	spec := tinySpecs[0]
	m := newModelT(t, buildTiny(t, spec, quant.F32, 1), Options{Threads: 1})
	b, err := m.NewBatch(2)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := m.NewSession(2)
	s2, _ := m.NewSession(0)
	ctx := context.Background()
	cases := []struct {
		name string
		ss   []*Session
		toks []int
	}{
		{"empty", nil, nil},
		{"count mismatch", []*Session{s1}, []int{1, 2}},
		{"too many", []*Session{s1, s2, s2}, []int{1, 2, 3}},
		{"twice", []*Session{s1, s1}, []int{1, 2}},
		{"bad token", []*Session{s1, s2}, []int{1, spec.vocab}},
	}
	for _, c := range cases {
		if _, err := b.Decode(ctx, c.ss, c.toks); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if s1.Len() != 0 || s2.Len() != 0 {
		t.Fatalf("failed calls changed the sessions: %d, %d", s1.Len(), s2.Len())
	}
	for range 2 {
		if _, err := b.Decode(ctx, []*Session{s1, s2}, []int{1, 2}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Decode(ctx, []*Session{s1, s2}, []int{1, 2}); err == nil {
		t.Fatal("decode past a session's capacity: no error")
	}
}
