package convert

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

const demoModel = "../internal/demo/llama-stories-tiny"

// calibText returns TinyStories text: ../shared's corpus when present, else
// a small synthetic corpus of sentences the demo tokenizer knows.
func calibText(t testing.TB) string {
	if root := testshared.OptionalRoot(t); root != "" {
		if b, err := os.ReadFile(filepath.Join(root, "corpus", "tinystories-valid-1000.txt")); err == nil {
			return string(b)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"Lily", "Tom", "Sue", "Max", "Ben", "Mia"}
	things := []string{"a red ball", "a big dog", "the park", "a small cat", "her mom", "a shiny box"}
	verbs := []string{"saw", "liked", "found", "played with", "wanted", "looked at"}
	var b strings.Builder
	for d := range 60 {
		for range 8 {
			fmt.Fprintf(&b, "%s %s %s. ", names[rng.IntN(len(names))], verbs[rng.IntN(len(verbs))], things[rng.IntN(len(things))])
		}
		fmt.Fprintf(&b, "They were happy %d times.\n<|endoftext|>\n", d)
	}
	return b.String()
}

func openDemo(t testing.TB) *Model {
	t.Helper()
	return openModel(t, demoModel, OpenOptions{})
}

func calibrateDemo(t testing.TB, m *Model, tokens int) *Calibration {
	t.Helper()
	cal, err := Calibrate(context.Background(), m, CalibOptions{Text: calibText(t), Tokens: tokens, Docs: textdata.DocRange{First: 3}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func TestCalibrate(t *testing.T) {
	m := openDemo(t)
	dir := t.TempDir()
	keys := []string{StatsKey(0, runtime.HookAttnIn), StatsKey(3, runtime.HookFFNDownIn)}
	var calls int
	cal, err := Calibrate(context.Background(), m, CalibOptions{
		Text: calibText(t), Tokens: 300, Seq: 128, Docs: textdata.DocRange{First: 2, Last: 40}, Keys: keys, TempDir: dir,
		Progress: func(done, total int) { calls++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if cal.Tokens != 300 || calls != 3 {
		t.Errorf("%d tokens in %d sequences, want 300 in 3", cal.Tokens, calls)
	}
	if cal.Docs.First != 2 || cal.Docs.Last < 2 || cal.Docs.Last > 40 {
		t.Errorf("documents used %v, want a prefix of 2-40", cal.Docs)
	}
	if len(cal.Stats) != 2 {
		t.Fatalf("stats for %d inputs, want only the 2 asked for", len(cal.Stats))
	}
	for k, n := range map[string]int{keys[0]: 128, keys[1]: m.Config.IntermediateSize} {
		st := cal.Stats[k]
		if st == nil || st.N != n || st.Count != 300 || st.Skipped != 0 {
			t.Fatalf("%s: %+v, want %d features and 300 vectors", k, st, n)
		}
	}
	// attn_in is RMS-normalised with a learned gain: every diagonal entry of
	// X Xᵀ/N is positive and finite.
	c := cal.Stats[keys[0]].Covariance()
	for i := range 128 {
		if v := c[i*128+i]; !(v > 0) || math.IsInf(v, 0) {
			t.Fatalf("covariance diagonal %d = %v", i, v)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("calibration left %d entries in its temp dir", len(left))
	}

	if _, err := Calibrate(context.Background(), m, CalibOptions{Text: "one story\n<|endoftext|>\n", Docs: textdata.DocRange{First: 5}, TempDir: dir}); err == nil || !strings.Contains(err.Error(), "starts past") {
		t.Errorf("range past the text: %v", err)
	}
}

// convertDemo converts the demo model with low-rank settings and returns the
// result and the opened runtime model.
func convertDemo(t *testing.T, m *Model, pol Policy, cal *Calibration, workers int) (*Result, *runtime.Model) {
	t.Helper()
	if pol.LowRank.NeedsSpectra() {
		ranks, err := SpectrumRanks(context.Background(), m, pol.LowRank, cal, workers)
		if err != nil {
			t.Fatal(err)
		}
		pol.LowRank.Ranks = ranks
	}
	out, res := convertModel(t, m, pol, Options{Workers: workers, Calibration: cal})
	rt, err := runtime.Open(out, runtime.Options{Threads: 1})
	if err != nil {
		t.Fatalf("runtime cannot open the low-rank file: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return res, rt
}

func finiteLogits(t *testing.T, rt *runtime.Model) {
	t.Helper()
	s, err := rt.NewSession(32)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids, err := rt.Tokenizer().Encode("Once upon a time, there was a little girl named Lily.", true)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := s.Prefill(context.Background(), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	for p, row := range lg {
		for i, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("logit %d at position %d is %v", i, p, v)
			}
		}
	}
}

func TestConvertLowRankMethods(t *testing.T) {
	m := openDemo(t)
	cal := calibrateDemo(t, m, 512)
	ratio := func(r float64) lowrank.RankSpec { return lowrank.RankSpec{Ratio: r} }
	tests := []struct {
		name string
		pol  Policy
	}{
		{"svd ratio 0.6", Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodSVD, Spec: ratio(0.6)}}},
		{"whiten ratio 0.6", Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: ratio(0.6)}}},
		{"asvd ratio 0.6", Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodASVD, Spec: ratio(0.6)}}},
		{"whiten rank 8 q8 factors", Policy{Quant: quant.Q8, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Rank: 8}}}},
		{"whiten energy 0.9", Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Energy: 0.9}}}},
		{"svd target 0.7", Policy{Quant: quant.BF16, LowRank: LowRank{Method: lowrank.MethodSVD, TargetRatio: 0.7}}},
		{"lorc rank 16", Policy{Quant: quant.Q8, LowRank: LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: 16}}}},
		{"lorc whitened rank 16 bf16", Policy{Quant: quant.Q8, LowRank: LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: 16}, LoRCWhiten: true, FactorEncoding: &quant.BF16}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, rt := convertDemo(t, m, tt.pol, cal, 2)
			finiteLogits(t, rt)
			if res.Plan.LowRank.Factored == 0 || len(res.LowRank) != res.Plan.LowRank.Factored {
				t.Fatalf("%d reports for %d factored of %d", len(res.LowRank), res.Plan.LowRank.Factored, res.Plan.LowRank.Matrices)
			}
			for i, r := range res.LowRank {
				if r.RelActErr < 0 || r.RelFrobenius <= 0 || r.RelFrobenius >= 1 {
					t.Errorf("%s: rel %.4f act %.4f", r.Name, r.RelFrobenius, r.RelActErr)
				}
				if r.Kind == format.KindLoRC {
					// The correction can only help: the residual's best rank-k
					// fit, rounded to 16 bits, beats no correction.
					if r.RelFrobenius >= r.BaseRelFrobenius || r.RelActErr >= r.BaseRelActErr {
						t.Errorf("%s: lorc error %.5f (act %.5f) not below q8's %.5f (act %.5f)", r.Name, r.RelFrobenius, r.RelActErr, r.BaseRelFrobenius, r.BaseRelActErr)
					}
				}
				// The file's tensors carry the same metrics and parts as the plan.
				var tn format.Tensor
				for _, x := range res.Tensors {
					if x.Name == r.Name {
						tn = x
					}
				}
				pe := planEntry(res.Plan, r.Name)
				if tn.Kind != pe.Kind || len(tn.Parts) != len(pe.Parts) || tn.Metrics == nil || tn.Metrics.RelFrobenius != r.RelFrobenius {
					t.Errorf("report %d (%s): tensor kind %s parts %d metrics %+v; plan %s %d", i, r.Name, tn.Kind, len(tn.Parts), tn.Metrics, pe.Kind, len(pe.Parts))
				}
			}
		})
	}
}

func planEntry(p *Plan, name string) PlanEntry {
	for _, e := range p.Entries {
		if e.Name == name {
			return e
		}
	}
	return PlanEntry{}
}

// TestWhitenBeatsSVD checks SVD-LLM's promise on real activations: at the
// same rank, whitening gives the smaller output error ||(W−Ŵ)X|| for every
// matrix (up to the f32 rounding of the factors), and plain SVD the smaller
// weight error.
func TestWhitenBeatsSVD(t *testing.T) {
	m := openDemo(t)
	cal := calibrateDemo(t, m, 512)
	spec := lowrank.RankSpec{Ratio: 0.5}
	svd, _ := convertDemo(t, m, Policy{Quant: quant.F32, LowRank: LowRank{Method: lowrank.MethodSVD, Spec: spec}}, cal, 2)
	wh, _ := convertDemo(t, m, Policy{Quant: quant.F32, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: spec}}, cal, 2)
	if len(svd.LowRank) != len(wh.LowRank) || len(wh.LowRank) == 0 {
		t.Fatalf("%d and %d factored matrices", len(svd.LowRank), len(wh.LowRank))
	}
	var sumS, sumW float64
	for i, s := range svd.LowRank {
		w := wh.LowRank[i]
		if w.Name != s.Name || w.Rank != s.Rank {
			t.Fatalf("matrix %d: %s rank %d vs %s rank %d", i, w.Name, w.Rank, s.Name, s.Rank)
		}
		if w.RelActErr > s.RelActErr*(1+1e-4) {
			t.Errorf("%s rank %d: whiten activation error %.5f > svd's %.5f", s.Name, s.Rank, w.RelActErr, s.RelActErr)
		}
		if s.RelFrobenius > w.RelFrobenius*(1+1e-4) {
			t.Errorf("%s: svd weight error %.5f > whiten's %.5f", s.Name, s.RelFrobenius, w.RelFrobenius)
		}
		sumS += s.RelActErr
		sumW += w.RelActErr
	}
	t.Logf("mean activation error: svd %.4f, whiten %.4f", sumS/float64(len(svd.LowRank)), sumW/float64(len(wh.LowRank)))
}

// TestConvertLowRankParallelDeterministic: factoring several matrices at
// once must not change a byte, nor the order of tensors in the file.
func TestConvertLowRankParallelDeterministic(t *testing.T) {
	m := openDemo(t)
	cal := calibrateDemo(t, m, 512)
	pol := Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 0.6}}}
	plan, err := MakePlan(m.Config, m.Tensors, pol)
	if err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	for _, workers := range []int{1, 3} {
		out := filepath.Join(t.TempDir(), "m.shrink")
		res, err := Convert(context.Background(), m, plan, out, Options{Workers: workers, Calibration: cal})
		if err != nil {
			t.Fatal(err)
		}
		for i, tn := range res.Tensors {
			if tn.Name != plan.Entries[i].Name {
				t.Fatalf("workers %d: tensor %d is %s, plan says %s", workers, i, tn.Name, plan.Entries[i].Name)
			}
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	if string(files[0]) != string(files[1]) {
		t.Errorf("1 and 3 workers wrote different files (%d and %d bytes)", len(files[0]), len(files[1]))
	}
}

func TestConvertLowRankErrors(t *testing.T) {
	m := openDemo(t)
	pol := Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 0.6}}}
	plan, err := MakePlan(m.Config, m.Tensors, pol)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// whiten without statistics: a clear error naming the tensor, no file.
	_, err = Convert(context.Background(), m, plan, filepath.Join(dir, "a.shrink"), Options{})
	if err == nil || !strings.Contains(err.Error(), "blk.0.attn_q.weight") || !strings.Contains(err.Error(), "calibration") {
		t.Errorf("whiten without stats: %v", err)
	}
	// Cancelled: the context's error, no file.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Convert(ctx, m, plan, filepath.Join(dir, "b.shrink"), Options{Calibration: &Calibration{}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("failed conversions left %v", left)
	}
}

func TestSpectrumRanks(t *testing.T) {
	m := openDemo(t)
	ctx := context.Background()
	low := LowRank{Method: lowrank.MethodSVD, Spec: lowrank.RankSpec{Energy: 0.5}}
	lo, err := SpectrumRanks(ctx, m, low, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	low.Spec.Energy = 0.95
	hi, err := SpectrumRanks(ctx, m, low, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(lo) != 28 || len(hi) != 28 {
		t.Fatalf("%d and %d ranks, want 28 projections", len(lo), len(hi))
	}
	for name, k := range lo {
		if k < 1 || k > hi[name] {
			t.Errorf("%s: energy 0.5 rank %d, 0.95 rank %d", name, k, hi[name])
		}
	}
	for _, target := range []float64{0.3, 0.7} {
		low := LowRank{Method: lowrank.MethodSVD, TargetRatio: target}
		ranks, err := SpectrumRanks(ctx, m, low, nil, 2)
		if err != nil {
			t.Fatal(err)
		}
		low.Ranks = ranks
		p, err := MakePlan(m.Config, m.Tensors, Policy{Quant: quant.F32, LowRank: low})
		if err != nil {
			t.Fatal(err)
		}
		s := p.LowRank
		if kept := float64(s.StoredParams) / float64(s.Params); kept > target || kept < target-0.05 {
			t.Errorf("target %.2f kept %.3f of the parameters", target, kept)
		}
	}
	if _, err := SpectrumRanks(ctx, m, LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Energy: 0.9}}, nil, 2); err == nil || !strings.Contains(err.Error(), "calibration") {
		t.Errorf("whiten spectra without statistics: %v", err)
	}
}

// TestReconstructMatchesReference compares the blocked float64 product with
// a plain triple loop, on odd sizes that straddle the row block.
func TestReconstructMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][3]int{{1, 1, 1}, {7, 5, 3}, {65, 33, 9}, {130, 17, 1}, {70, 401, 5}} { // n > 192: column chunks
		m, n, k := sz[0], sz[1], sz[2]
		a, b, base := randF32(rng, m*k), randF32(rng, k*n), randF32(rng, m*n)
		for _, withBase := range []bool{false, true} {
			var bs []float32
			if withBase {
				bs = base
			}
			got := reconstruct(a, b, bs, m, n, k)
			for i := range m {
				for j := range n {
					var s float64
					for t := range k {
						s += float64(a[i*k+t]) * float64(b[t*n+j])
					}
					if withBase {
						s += float64(base[i*n+j])
					}
					if d := math.Abs(float64(got[i*n+j]) - s); d > 1e-6*(1+math.Abs(s)) {
						t.Fatalf("%v base=%v: [%d,%d] = %v, want %v", sz, withBase, i, j, got[i*n+j], s)
					}
				}
			}
		}
	}
}

// TestActivationErrorMatchesExplicit compares the covariance route with
// ||(W−Ŵ)X||/||WX|| computed from the activations themselves.
func TestActivationErrorMatchesExplicit(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][3]int{{3, 4, 10}, {67, 13, 50}, {129, 31, 7}, {40, 203, 20}} { // n > 192: column chunks
		m, n, N := sz[0], sz[1], sz[2]
		w, got, x := randF32(rng, m*n), randF32(rng, m*n), randF32(rng, N*n)
		st := lowrank.NewStats(n)
		st.AddBatch(x, N)
		var num, den float64
		for i := range m {
			for s := range N {
				var e, y float64
				for j := range n {
					xv := float64(x[s*n+j])
					e += (float64(w[i*n+j]) - float64(got[i*n+j])) * xv
					y += float64(w[i*n+j]) * xv
				}
				num += e * e
				den += y * y
			}
		}
		want := math.Sqrt(num / den)
		if g := activationError(w, got, m, n, st); math.Abs(g-want) > 1e-9*want {
			t.Errorf("%v: %v, want %v", sz, g, want)
		}
		if g := activationError(w, w, m, n, st); g != 0 {
			t.Errorf("%v: identical matrices give %v", sz, g)
		}
	}
	if g := activationError([]float32{1}, []float32{2}, 1, 1, lowrank.NewStats(1)); g != -1 {
		t.Errorf("empty statistics give %v, want -1", g)
	}
}

// TestWhitenSingularStatistics calibrates on fewer tokens than any input
// has features, so every X Xᵀ is singular: whitening, ASVD and the spectrum
// pass must still succeed with finite factors.
func TestWhitenSingularStatistics(t *testing.T) {
	m := openDemo(t)
	cal := calibrateDemo(t, m, 20)
	for _, st := range cal.Stats {
		if st.Count >= int64(st.N) {
			t.Fatalf("statistics of %d vectors for %d features are not singular", st.Count, st.N)
		}
	}
	for _, low := range []LowRank{
		{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 0.6}},
		{Method: lowrank.MethodASVD, Spec: lowrank.RankSpec{Ratio: 0.6}},
		{Method: lowrank.MethodWhiten, TargetRatio: 0.5},
		{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: 8}, LoRCWhiten: true},
	} {
		t.Run(low.String(), func(t *testing.T) {
			q := quant.F16
			if low.Method == lowrank.MethodLoRC {
				q = quant.Q8
			}
			res, rt := convertDemo(t, m, Policy{Quant: q, LowRank: low}, cal, 2)
			finiteLogits(t, rt)
			for _, r := range res.LowRank {
				if !(r.RelFrobenius >= 0 && r.RelFrobenius < 1.5) {
					t.Errorf("%s: relative error %v", r.Name, r.RelFrobenius)
				}
			}
		})
	}
}
