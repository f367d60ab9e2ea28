package eval

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/runtime"
)

const demoModel = "../internal/demo/llama-stories-tiny"

func demoTokens(t *testing.T, m *runtime.Model) []int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "story.txt")
	if err := os.WriteFile(path, []byte(demotest.Story), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := ReadText(path, DefaultDocSep, m.Tokenizer())
	if err != nil {
		t.Fatal(err)
	}
	if in.Documents != 3 || in.NumTokens < 3*64 {
		t.Fatalf("%d documents, %d tokens", in.Documents, in.NumTokens)
	}
	return in.Tokens
}

func openDemo(t *testing.T) *Loaded {
	t.Helper()
	l, err := OpenModel(context.Background(), demoModel, runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestRunSelfIsExact: a model against itself, as the same object and as a
// second copy of the same weights, gives KLD 0, same top 100% and PPL ratio
// 1 exactly, in both conventions.
func TestRunSelfIsExact(t *testing.T) {
	ref := openDemo(t)
	other := openDemo(t)
	if !ref.Info.Converted || ref.Info.Params < 1_262_208 || ref.Info.BitsPerWeight != 32 {
		t.Errorf("info %+v", ref.Info)
	}
	toks := demoTokens(t, ref.Model)
	for _, conv := range []Convention{ScoreAll, ScoreHalf} {
		for _, cand := range []*Loaded{ref, other} {
			rep, err := Run(context.Background(), ref.Model, cand.Model, toks, Options{Ctx: 64, Chunks: 3, Convention: conv})
			if err != nil {
				t.Fatal(err)
			}
			s := rep.Summary
			if s.KLD.Value != 0 || s.KLDDist.Max != 0 || s.SameTop.Value != 1 || s.PPLRatio.Value != 1 ||
				s.LnPPLRatio.Value != 0 || s.DP.Value != 0 || s.PPL != s.PPLRef || rep.ChunkCorLnPPL != 1 {
				t.Errorf("%s, same object %v: %+v", conv, cand == ref, s)
			}
			want := 3 * 63
			if conv == ScoreHalf {
				want = 3 * 32
			}
			if s.Tokens != want || rep.Chunks != 3 || rep.Self != (cand == ref) {
				t.Errorf("%s: %d scored tokens (want %d), %d chunks, self %v", conv, s.Tokens, want, rep.Chunks, rep.Self)
			}
		}
	}
}

func TestRunErrors(t *testing.T) {
	ref := openDemo(t)
	toks := demoTokens(t, ref.Model)
	for _, tc := range []struct {
		name   string
		tokens []int
		opts   Options
		want   string
	}{
		{"too short", toks[:10], Options{Ctx: 64}, "fewer than one chunk"},
		{"ctx too large", toks, Options{Ctx: 100000}, "exceeds the model"},
		{"bad convention", toks, Options{Ctx: 64, Convention: "third"}, "convention"},
		{"bad token", append([]int{99999}, toks...), Options{Ctx: 64}, "outside the vocabulary"},
	} {
		_, err := Run(context.Background(), ref.Model, ref.Model, tc.tokens, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestCompareChunkParallel: splitting positions among workers changes
// nothing, including on odd counts.
func TestCompareChunkParallel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const vocab = 37
	for _, n := range []int{1, 2, 7, 31} {
		ref, cand := make([][]float32, n), make([][]float32, n)
		targets := make([]int, n)
		for p := range n {
			ref[p], cand[p] = randF32(r, vocab), randF32(r, vocab)
			targets[p] = r.IntN(vocab)
		}
		serial := make([]Token, n)
		for p := range n {
			serial[p] = Compare(ref[p], cand[p], targets[p])
		}
		for _, w := range []int{1, 2, 3, 8, 64} {
			prep := prepareChunk(nil, ref, w)
			if par := compareChunk(nil, prep, cand, targets, w); !slices.Equal(par, serial) {
				t.Errorf("n=%d workers=%d: results differ", n, w)
			}
		}
	}
}

func TestChunkCorrelation(t *testing.T) {
	for _, tc := range []struct {
		a, b []float64
		want float64
	}{
		{[]float64{1, 2, 3}, []float64{1, 2, 3}, 1},
		{[]float64{5}, []float64{5}, 1},
		{[]float64{1, 2, 3}, []float64{2, 4, 6}, 1},
		{[]float64{1, 2, 3}, []float64{3, 2, 1}, -1},
		{[]float64{1, 2, 3, 4}, []float64{1, 3, 2, 4}, 0.8}, // by hand: Σdadb = 4, Σda² = Σdb² = 5
		{[]float64{1, 1}, []float64{1, 2}, 0},
		{[]float64{5}, []float64{6}, 0},
	} {
		near(t, "correlation", chunkCorrelation(tc.a, tc.b), tc.want, 1e-12)
	}
}

func TestChunkInputConventions(t *testing.T) {
	toks := []int{10, 11, 12, 13, 14, 15, 16, 17}
	in, lo, hi := chunkInput(toks, 1, 4, ScoreAll, 1)
	if !slices.Equal(in, []int{14, 15, 16, 17}) || lo != 0 || hi != 3 {
		t.Errorf("all: %v [%d, %d)", in, lo, hi)
	}
	in, lo, hi = chunkInput(toks, 1, 4, ScoreHalf, 1)
	if !slices.Equal(in, []int{1, 15, 16, 17}) || lo != 1 || hi != 3 {
		t.Errorf("half: %v [%d, %d)", in, lo, hi)
	}
	in, _, _ = chunkInput(toks, 0, 4, ScoreHalf, -1)
	if !slices.Equal(in, []int{10, 11, 12, 13}) || toks[0] != 10 {
		t.Errorf("half without BOS: %v (tokens %v)", in, toks)
	}
}

func TestReadTextErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, []byte("\n  \n<|endoftext|>\n"), 0o644)
	if _, err := ReadText(empty, DefaultDocSep, nil); err == nil || !strings.Contains(err.Error(), "no text") {
		t.Errorf("empty: %v", err)
	}
	if _, err := ReadText(filepath.Join(dir, "missing.txt"), DefaultDocSep, nil); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing: %v", err)
	}
}

func TestReportText(t *testing.T) {
	var a Accumulator
	for i := range 20 {
		a.Add(Token{NLL: 2 + float64(i%3)/10, NLLRef: 2, KLD: float64(i) * 1e-5, DP: -0.01, SameTop: i != 3})
	}
	rep := &Report{Ctx: 8, Chunks: 2, Convention: ScoreAll, Summary: a.Summary(), ChunkCorLnPPL: 0.5,
		Ref: &ModelInfo{Path: "ref", Arch: "llama", Params: 1000, Converted: true}, Model: &ModelInfo{Path: "cand.shrink", Arch: "llama"},
		Input: &Input{Source: "text.txt", Documents: 2, NumTokens: 20}, TokensPerSecond: 100, Threads: 2}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"====== Perplexity statistics ======", "====== KL divergence statistics ======",
		"====== Token probability statistics ======", "Mean PPL(Q)", "99.0%   KLD:", "Same top p:  95.000000",
		"Mean    Δp:  -1.000000", "text.txt (20 tokens, 2 documents)", "2 × 8 tokens", "100.0 tokens/s",
		"Maximum KLD:  1.900e-04",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestSweepWriteAndPareto(t *testing.T) {
	mk := func(name string, bpw, kld, ratio float64) SweepPoint {
		return SweepPoint{Name: name, Series: "dense", Quant: name, BitsPerWeight: bpw, FileBytes: int64(bpw * 1e5),
			Summary: Summary{KLD: ValueErr{Value: kld}, PPLRatio: ValueErr{Value: ratio, Err: 1e-4}, SameTop: ValueErr{Value: 0.99}}}
	}
	s := &Sweep{Model: "m", Text: "t.txt", Ctx: 32, Chunks: 1, Tokens: 31, Convention: ScoreAll, Points: []SweepPoint{
		mk("f32", 32, 0, 1), mk("f16", 16, 1e-7, 1.00001), mk("bf16", 16, 1e-5, 1.0002),
		mk("q8", 10.4, 1e-4, 1.001), mk("q8g64", 10.2, 2e-4, 0.999), mk("bad", 12, 1e-3, 1.01),
	}}
	s.MarkPareto()
	var front []string
	for _, p := range s.Points {
		if p.Pareto {
			front = append(front, p.Name)
		}
	}
	if want := []string{"f32", "f16", "q8", "q8g64"}; !slices.Equal(front, want) {
		t.Errorf("Pareto front %v, want %v", front, want)
	}
	dir := t.TempDir()
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"sweep.json", "sweep.md", "bpw_vs_kld.png", "bpw_vs_kld.svg", "bpw_vs_ppl_ratio.png", "bpw_vs_ppl_ratio.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() < 100 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "sweep.md"))
	if !strings.Contains(string(md), "| q8g64 | 10.20 |") || strings.Index(string(md), "q8g64") > strings.Index(string(md), "| f32") {
		t.Errorf("table not sorted by size:\n%s", md)
	}
}

// TestPerplexityReleasesSession: Perplexity's chunk sums are Run's
// reference NLLs, and neither leaves a session open (a server or sweep
// that evaluates repeatedly would otherwise count a KV cache per call in
// the model's ResidentBytes).
func TestPerplexityReleasesSession(t *testing.T) {
	l := openDemo(t)
	toks := demoTokens(t, l.Model)
	before := l.Model.ResidentBytes()
	opts := Options{Ctx: 64, Chunks: 2}
	nll, err := Perplexity(context.Background(), l.Model, toks, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Model.ResidentBytes(); got != before {
		t.Errorf("Perplexity left %d bytes of sessions open", got-before)
	}
	rep, err := Run(context.Background(), l.Model, l.Model, toks, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Model.ResidentBytes(); got != before {
		t.Errorf("Run left %d bytes of sessions open", got-before)
	}
	if len(nll) != 2 || rep.Chunks != 2 {
		t.Fatalf("%d chunk sums, %d chunks", len(nll), rep.Chunks)
	}
	var sum float64
	for _, v := range nll {
		if !(v > 0) {
			t.Fatalf("chunk NLL sums %v", nll)
		}
		sum += v
	}
	if ppl := math.Exp(sum / float64(rep.Summary.Tokens)); math.Abs(ppl-rep.Summary.PPLRef.Value) > 1e-9*ppl {
		t.Errorf("Perplexity gives PPL %v, Run's reference %v", ppl, rep.Summary.PPLRef.Value)
	}
}
