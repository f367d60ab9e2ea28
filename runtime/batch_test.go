package runtime

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// batchSpecs are the tiny graphs plus one wide enough for the q8 register
// tiles on whole rows (hidden and FFN multiples of 64) and for several row
// blocks per matrix, with an odd vocabulary (a last row block off the tile
// height).
var batchSpecs = append(slices.Clone(tinySpecs),
	tinySpec{name: "llama-wide", arch: "llama", vocab: 203, hidden: 128, ffn: 192, layers: 2, heads: 4, kvHeads: 2, ctx: 64})

// TestBatchDecodeMatchesGenerate: 1, 3 and 8 sequences that join a Batch at
// different steps (after their prompt's prefill) and leave it at different
// steps (their own lengths, or EOS) produce the same tokens as Generate
// decoding each alone, greedy and seeded, and their logits equal
// single-session Decode's bit for bit (within rounding with SetTiled(true)
// for the float weights).
func TestBatchDecodeMatchesGenerate(t *testing.T) {
	samplers := []struct {
		name string
		sc   SamplerConfig
	}{
		{"greedy", SamplerConfig{}},
		{"seeded", SamplerConfig{Temperature: 0.9, TopK: 20, TopP: 0.95, Seed: 7}},
	}
	for _, spec := range batchSpecs {
		for _, enc := range []quant.Encoding{quant.F32, quant.Q8} {
			src := buildTiny(t, spec, enc, 21)
			for _, smp := range samplers {
				for _, tiled := range []bool{false, true} {
					for _, nseq := range []int{1, 3, 8} {
						t.Run(fmt.Sprintf("%s/%v/%s/tiled=%v/seqs=%d", spec.name, enc, smp.name, tiled, nseq), func(t *testing.T) {
							// q8 tiles are exact in either mode.
							exact := !tiled || enc.Kind == quant.KindQ8
							checkBatchDecode(t, src, smp.sc, tiled, exact, nseq)
						})
					}
				}
			}
		}
	}
}

// checkBatchDecode runs nseq sequences through one Batch, joining at
// staggered steps with prompts and lengths of their own, and checks every
// step's logits against a lone session's and the tokens against Generate's.
func checkBatchDecode(t *testing.T, src *MemSource, sc0 SamplerConfig, tiled, exact bool, nseq int) {
	m := newModelT(t, src, Options{Threads: 2})
	vocab := m.cfg.VocabSize
	r := newRand(3 + uint64(nseq))
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
	seqs := make([]*seq, nseq)
	for i := range seqs {
		// Joins at steps 0, 0, 2, 3, 5, 7, …; lengths cycle so that
		// some leave while others are still joining.
		join := 0
		if i > 1 {
			join = i + i/2
		}
		sq := &seq{prompt: randTokens(r, 1+3*i%11, vocab), maxNew: 3 + 5*i%9, join: join}
		sc := sc0
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
	b, err := m.NewBatch(nseq)
	if err != nil {
		t.Fatal(err)
	}
	b.SetTiled(tiled)
	tol := 0.0
	if !exact {
		tol = 1e-4
	}
	ctx := context.Background()
	// emit records a sampled token; it reports whether the sequence goes
	// on (as Generate: EOS ends it silently).
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
		// The reference logits: the same token decoded alone on a copy
		// of the state, built as Generate builds it (the prompt
		// prefilled, then every generated token decoded).
		refs := make([][]float32, len(ss))
		for i, sq := range active {
			one, err := m.NewSession(0)
			if err != nil {
				t.Fatal(err)
			}
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
				got, want := lgs[i][j], refs[i][j]
				if exact && math.Float32bits(got) != math.Float32bits(want) ||
					math.Abs(float64(got-want)) > tol {
					t.Fatalf("step %d seq %d (of %d) logit %d: batch %v, alone %v", step, i, len(ss), j, got, want)
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

// TestBatchStepMatchesPrefill: a Step in which some sessions bring a prompt
// chunk (several tokens) and others one decode token gives each session the
// logits of its last token bit for bit as Session.Prefill of the same chunk
// (or Decode of the one token) does alone, on models whose products are
// token-independent (q8; and q4s where the interleaved kernels run); the
// sessions' caches then continue identically.
func TestBatchStepMatchesPrefill(t *testing.T) {
	ctx := context.Background()
	for _, spec := range batchSpecs {
		for _, enc := range []quant.Encoding{quant.Q8, quant.F32} {
			t.Run(fmt.Sprintf("%s/%v", spec.name, enc), func(t *testing.T) {
				src := buildTiny(t, spec, enc, 23)
				m := newModelT(t, src, Options{Threads: 2})
				b, err := m.NewBatch(32)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := b.TokensIndependent(), enc.Kind == quant.KindQ8; got != want {
					t.Fatalf("TokensIndependent = %v, want %v", got, want)
				}
				if !b.TokensIndependent() {
					return
				}
				r := newRand(9)
				// Session 0 has 3 tokens already and decodes one; sessions
				// 1 and 2 bring chunks of 5 and 11 (the second after 4
				// tokens of its own).
				pre := [][]int{randTokens(r, 3, spec.vocab), nil, randTokens(r, 4, spec.vocab)}
				step := [][]int{randTokens(r, 1, spec.vocab), randTokens(r, 5, spec.vocab), randTokens(r, 11, spec.vocab)}
				var batched, alone []*Session
				for i := range pre {
					for _, list := range []*[]*Session{&batched, &alone} {
						s, err := m.NewSession(0)
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { s.Close() })
						if len(pre[i]) > 0 {
							if _, err := s.Prefill(ctx, pre[i], false); err != nil {
								t.Fatal(err)
							}
						}
						*list = append(*list, s)
					}
				}
				for round := range 2 {
					lgs, err := b.Step(ctx, batched, step)
					if err != nil {
						t.Fatal(err)
					}
					for i, s := range alone {
						lg, err := s.Prefill(ctx, step[i], false)
						if err != nil {
							t.Fatal(err)
						}
						for k := range lg[0] {
							if math.Float32bits(lgs[i][k]) != math.Float32bits(lg[0][k]) {
								t.Fatalf("round %d session %d: logit %d = %v, alone %v", round, i, k, lgs[i][k], lg[0][k])
							}
						}
					}
					// Then every session decodes one token in the next step.
					for i := range step {
						step[i] = randTokens(r, 1, spec.vocab)
					}
				}
			})
		}
	}
}
