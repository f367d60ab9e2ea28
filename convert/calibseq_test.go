package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// TestLayerwiseLosslessEqualsWholePass: when every block is "compressed"
// to its own exact values, the layer-by-layer pass collects exactly the
// statistics of the single pass over the uncompressed model, and frees
// each block's statistics once the hidden states move past it.
func TestLayerwiseLosslessEqualsWholePass(t *testing.T) {
	ctx := context.Background()
	m, opts, whole := demoWholePass(t)
	opts.Layerwise = true
	lw, err := Calibrate(ctx, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	if !lw.Layerwise() || lw.Stats != nil || lw.Tokens != whole.Tokens {
		t.Fatalf("layerwise calibration: %v, stats %v, %d tokens (whole pass %d)", lw.Layerwise(), lw.Stats != nil, lw.Tokens, whole.Tokens)
	}
	for l := range m.Config.NumLayers {
		for _, p := range hookStages {
			key := StatsKey(l, p)
			got, want := mustStatsFor(t, lw, key), whole.Stats[key]
			if got.N != want.N || got.Count != want.Count || !slices.Equal(got.XXt, want.XXt) {
				t.Fatalf("%s: layerwise statistics (n %d, count %d) differ from the whole pass's (n %d, count %d)", key, got.N, got.Count, want.N, want.Count)
			}
		}
		recordBlock(t, m, lw, l, quant.Encoding{})
	}
	// Block 0 was passed long ago.
	if _, err := lw.statsFor(ctx, StatsKey(0, runtime.HookAttnIn)); err == nil || !strings.Contains(err.Error(), "freed") {
		t.Errorf("statistics of a passed block: %v", err)
	}
}

// demoWholePass opens the demo model and collects the statistics of one
// pass over the uncompressed model on 300 calibration tokens; opts are the
// options it ran with, which the layer-by-layer passes compared with it
// start from.
func demoWholePass(t *testing.T) (*Model, CalibOptions, *Calibration) {
	t.Helper()
	m := openDemo(t)
	opts := CalibOptions{Text: calibText(t), Tokens: 300, Seq: 128, Docs: textdata.DocRange{First: 2}, TempDir: t.TempDir()}
	whole, err := Calibrate(context.Background(), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, opts, whole
}

// TestLayerwiseConvert: conversions fed by a layer-by-layer calibration
// (GPTQ rounding; factorisations that wait for their block's statistics
// while the encoder finishes the block before) finish, load, and are
// byte-identical from run to run.
func TestLayerwiseConvert(t *testing.T) {
	ctx := context.Background()
	m := openDemo(t)
	tests := []struct {
		name     string
		pol      Policy
		rounding Rounding
	}{
		{"q4 gptq", Policy{Quant: quant.Q4}, RoundingGPTQ},
		{"q8 gptq act order", Policy{Quant: quant.Q8}, RoundingGPTQ},
		{"q4s gptq asymmetric sequential", Policy{Quant: quant.Q4S(32)}, RoundingGPTQ},
		{"q4 gptq asymmetric act order", Policy{Quant: quant.Q4}, RoundingGPTQ},
		{"whiten ratio 0.6", Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 0.6}}}, RoundingRTN},
		{"whiten ratio 0.6 sequential", Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 0.6}}}, RoundingRTN},
		{"lorc whitened on q4 gptq", Policy{Quant: quant.Q4, LowRank: LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: 8}, LoRCWhiten: true}}, RoundingGPTQ},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := MakePlan(m.Config, m.Tensors, tt.pol)
			if err != nil {
				t.Fatal(err)
			}
			var files [][]byte
			for run := range 2 {
				asym := strings.Contains(tt.name, "asymmetric")
				cal, err := Calibrate(ctx, m, CalibOptions{Text: calibText(t), Tokens: 256, Seq: 128, Docs: textdata.DocRange{First: 3}, TempDir: t.TempDir(), Layerwise: true, Threads: 2,
					Sequential: strings.Contains(tt.name, "sequential"), Asymmetric: asym})
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(t.TempDir(), "m.shrink")
				opts := Options{Workers: 2, Calibration: cal, Rounding: tt.rounding}
				opts.GPTQ.ActOrder = strings.Contains(tt.name, "act order")
				if asym {
					opts.GPTQ.AsymAlpha = 0.5
				}
				res, err := Convert(ctx, m, plan, out, opts)
				cal.Close()
				if err != nil {
					t.Fatal(err)
				}
				if tt.rounding == RoundingGPTQ && tt.pol.LowRank.Method == "" && res.Rounding <= 0 {
					t.Errorf("run %d: no GPTQ time reported", run)
				}
				if cal.Timing.Forward <= 0 {
					t.Errorf("run %d: no calibration forward time reported", run)
				}
				rt, err := runtime.Open(out, runtime.Options{Threads: 1})
				if err != nil {
					t.Fatal(err)
				}
				finiteLogits(t, rt)
				rt.Close()
				f, err := format.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				if c := f.Header().Metadata["calibration"]; tt.pol.LowRank.Method != "" && !strings.Contains(c, "layer by layer") {
					t.Errorf("calibration metadata %q", c)
				}
				f.Close()
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, b)
			}
			if !bytes.Equal(files[0], files[1]) {
				t.Error("two layer-by-layer conversions differ")
			}
		})
	}
}

// recordBlock records every projection of block l: the calibration
// model's own bytes when enc is the zero Encoding, else re-encoded in enc.
func recordBlock(t *testing.T, m *Model, cal *Calibration, l int, enc quant.Encoding) {
	t.Helper()
	src := runtime.FileSource{F: cal.pass.file}
	for _, d := range m.Tensors {
		if pl, _, ok := projection(d.Name); !ok || pl != l {
			continue
		}
		ft, ok := cal.pass.file.Tensor(d.Name)
		if !ok {
			t.Fatalf("%s missing from the calibration model", d.Name)
		}
		w, _ := src.Weight(d.Name)
		tensor := *ft
		data := make([][]byte, len(w.Parts))
		for i := range w.Parts {
			data[i] = w.Parts[i].Data
		}
		if enc != (quant.Encoding{}) {
			p := w.Parts[0]
			rows, cols := int(p.Shape[0]), int(p.Shape[1])
			f := make([]float32, rows*cols)
			if err := quant.Decode(p.Encoding, f, p.Data, rows, cols); err != nil {
				t.Fatal(err)
			}
			size, err := enc.Size(rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, size)
			if _, err := quant.EncodeWeighted(context.Background(), enc, b, f, rows, cols, 1, nil); err != nil {
				t.Fatal(err)
			}
			tensor.Parts = append([]format.Part(nil), ft.Parts...)
			tensor.Parts[0].Encoding = enc
			data = [][]byte{b}
		}
		cal.record(tensor, data)
	}
}

func allZero(x []float64) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestLayerwiseAsymmetricStatistics: the asymmetric pass's D = (X − X̃)·X̃ᵀ
// is exactly zero where the compressed model's inputs are the uncompressed
// model's (every block lossless; the first block's own input), and not
// where they differ; the sequential pass collects each input after the
// projections before it in its block, so it sees the compressed q, k, v
// at the attention output projection of block 0 where the plain layer
// pass does not. Lossless, the sequential pass's statistics equal the
// whole pass's.
func TestLayerwiseAsymmetricStatistics(t *testing.T) {
	ctx := context.Background()
	m, base, whole := demoWholePass(t)
	for _, tc := range []struct {
		name       string
		sequential bool
		enc        quant.Encoding // zero: lossless
	}{
		{"lossless layer", false, quant.Encoding{}},
		{"lossless sequential", true, quant.Encoding{}},
		{"q2 layer", false, quant.QK(2, 32)},
		{"q2 sequential", true, quant.QK(2, 32)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := base
			opts.Layerwise, opts.Sequential, opts.Asymmetric = true, tc.sequential, true
			cal, err := Calibrate(ctx, m, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer cal.Close()
			if !cal.Asymmetric() {
				t.Fatal("asymmetric calibration does not say so")
			}
			lossless := tc.enc == (quant.Encoding{})
			for l := range m.Config.NumLayers {
				for _, p := range hookStages {
					key := StatsKey(l, p)
					st, d := mustStatsFor(t, cal, key), cal.crossFor(key)
					if st == nil || len(d) != st.N*st.N {
						t.Fatalf("%s: statistics %v, D of %d entries", key, st != nil, len(d))
					}
					want := whole.Stats[key]
					if lossless && (st.Count != want.Count || !slices.Equal(st.XXt, want.XXt)) {
						t.Fatalf("%s: lossless statistics differ from the whole pass's", key)
					}
					// The inputs differ from block 1 on, and in block
					// 0 after its first projections when sequential.
					differ := !lossless && (l > 0 || (tc.sequential && p != runtime.HookAttnIn))
					if allZero(d) == differ {
						t.Errorf("%s: D is zero: %v; the compressed model's inputs differ from the uncompressed model's: %v", key, allZero(d), differ)
					}
					if tc.sequential {
						// The next stage's projections come in order.
						for _, dd := range m.Tensors {
							if pl, pt, ok := projection(dd.Name); ok && pl == l && pt == p {
								recordOne(t, cal, dd.Name, tc.enc)
							}
						}
					}
				}
				if !tc.sequential {
					recordBlock(t, m, cal, l, tc.enc)
				}
			}
		})
	}
}

// mustStatsFor is cal.statsFor(key), failing the test on an error.
func mustStatsFor(t *testing.T, cal *Calibration, key string) *lowrank.Stats {
	t.Helper()
	st, err := cal.statsFor(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// recordOne records one projection (as recordBlock does for a block).
func recordOne(t *testing.T, cal *Calibration, name string, enc quant.Encoding) {
	t.Helper()
	m := &Model{Tensors: []*TensorDesc{{Name: name}}}
	l, _, _ := projection(name)
	recordBlock(t, m, cal, l, enc)
}
