package e2e

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// TestLowRankEveryModelEveryMethod converts every ../shared model with every
// low-rank method at 60% of the projection parameters (lorc: rank 16 on q8)
// and checks that conversion succeeds and the logits are finite: singular or
// degenerate statistics (tiny models, dead inputs) must not fail or give
// NaN. Calibration is short (512 tokens, stories 501 on) to keep it fast.
func TestLowRankEveryModelEveryMethod(t *testing.T) {
	corpus := testshared.Path(t, "corpus", "tinystories-valid-1000.txt")
	text, err := os.ReadFile(corpus)
	if err != nil {
		t.Fatal(err)
	}
	ratio := lowrank.RankSpec{Ratio: 0.6}
	// -short keeps one variant of each method; the full run adds the
	// other encodings and rank settings.
	methods := []struct {
		name  string
		quant quant.Encoding
		low   convert.LowRank
		full  bool
	}{
		{"svd", quant.F16, convert.LowRank{Method: lowrank.MethodSVD, Spec: ratio}, false},
		{"whiten", quant.F16, convert.LowRank{Method: lowrank.MethodWhiten, Spec: ratio}, false},
		{"asvd", quant.F16, convert.LowRank{Method: lowrank.MethodASVD, Spec: ratio}, false},
		{"whiten-q8", quant.Q8, convert.LowRank{Method: lowrank.MethodWhiten, Spec: ratio}, true},
		{"whiten-target", quant.F16, convert.LowRank{Method: lowrank.MethodWhiten, TargetRatio: 0.6}, true},
		{"lorc", quant.Q8, convert.LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: 16}}, true},
		{"lorc-whiten", quant.Q8, convert.LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: 16}, LoRCWhiten: true}, false},
	}
	for _, sm := range sharedModels {
		t.Run(sm.name, func(t *testing.T) {
			if sm.name == "llama-stories-12m" && testing.Short() {
				t.Skip("12m model skipped in -short")
			}
			m := openCheckpoint(t, modelPath(t, sm.path))
			defer m.Close()
			ctx := context.Background()
			cal, err := convert.Calibrate(ctx, m, convert.CalibOptions{
				Text: string(text), Docs: textdata.DocRange{First: 501}, Tokens: 512, TempDir: t.TempDir(), Threads: 2,
			})
			if err != nil {
				t.Fatalf("calibration: %v", err)
			}
			for _, mt := range methods {
				t.Run(mt.name, func(t *testing.T) {
					if mt.full && testing.Short() {
						t.Skip("variant skipped in -short")
					}
					low := mt.low
					if low.NeedsSpectra() {
						ranks, err := convert.SpectrumRanks(ctx, m, low, cal, 2)
						if err != nil {
							t.Fatalf("spectrum pass: %v", err)
						}
						low.Ranks = ranks
					}
					plan, err := convert.MakePlan(m.Config, m.Tensors, convert.Policy{Quant: mt.quant, LowRank: low})
					if err != nil {
						t.Fatal(err)
					}
					out := filepath.Join(t.TempDir(), "m.shrink")
					res, err := convert.Convert(ctx, m, plan, out, convert.Options{Workers: 2, Calibration: cal})
					if err != nil {
						t.Fatalf("convert: %v", err)
					}
					if len(res.LowRank) == 0 {
						t.Fatalf("nothing factored: %+v", plan.LowRank)
					}
					for _, r := range res.LowRank {
						if !(r.RelFrobenius >= 0 && r.RelFrobenius < 1.5) || math.IsNaN(r.RelActErr) {
							t.Errorf("%s: rel %v act %v", r.Name, r.RelFrobenius, r.RelActErr)
						}
					}
					checkFiniteLogits(t, out)
				})
			}
		})
	}
}

// checkFiniteLogits runs a story prompt through the file and fails on any
// NaN or infinite logit.
func checkFiniteLogits(t *testing.T, path string) {
	t.Helper()
	_, lg := demotest.Prefill(t, demotest.Open(t, path, runtime.Options{Threads: 1}), "Once upon a time, there was a little dog named Max. He liked to run in the park.", 0, true)
	for p, row := range lg {
		for i, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("logit %d at position %d is %v", i, p, v)
			}
		}
	}
}
