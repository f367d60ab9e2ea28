package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	m := openDemo(t)
	opts := CalibOptions{Text: calibText(t), Tokens: 300, Seq: 128, Docs: textdata.DocRange{First: 2}, TempDir: t.TempDir()}
	whole, err := Calibrate(ctx, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Layerwise = true
	lw, err := Calibrate(ctx, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	if !lw.Layerwise() || lw.Stats != nil || lw.Tokens != whole.Tokens {
		t.Fatalf("layerwise calibration: %v, stats %v, %d tokens (whole pass %d)", lw.Layerwise(), lw.Stats != nil, lw.Tokens, whole.Tokens)
	}
	src := runtime.FileSource{F: lw.pass.file}
	points := []string{runtime.HookAttnIn, runtime.HookAttnOutIn, runtime.HookFFNIn, runtime.HookFFNDownIn}
	for l := range m.Config.NumLayers {
		for _, p := range points {
			key := StatsKey(l, p)
			got, err := lw.statsFor(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			want := whole.Stats[key]
			if got.N != want.N || got.Count != want.Count || !equalF64(got.XXt, want.XXt) {
				t.Fatalf("%s: layerwise statistics (n %d, count %d) differ from the whole pass's (n %d, count %d)", key, got.N, got.Count, want.N, want.Count)
			}
		}
		for _, d := range m.Tensors {
			if pl, _, ok := projection(d.Name); !ok || pl != l {
				continue
			}
			ft, ok := lw.pass.file.Tensor(d.Name)
			w, _ := src.Weight(d.Name)
			if !ok {
				t.Fatalf("%s missing from the calibration model", d.Name)
			}
			data := make([][]byte, len(w.Parts))
			for i := range w.Parts {
				data[i] = w.Parts[i].Data
			}
			lw.record(*ft, data)
		}
	}
	// Block 0 was passed long ago.
	if _, err := lw.statsFor(ctx, StatsKey(0, runtime.HookAttnIn)); err == nil || !strings.Contains(err.Error(), "freed") {
		t.Errorf("statistics of a passed block: %v", err)
	}
}

func equalF64(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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
		{"whiten ratio 0.6", Policy{Quant: quant.F16, LowRank: LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 0.6}}}, RoundingRTN},
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
				cal, err := Calibrate(ctx, m, CalibOptions{Text: calibText(t), Tokens: 256, Seq: 128, Docs: textdata.DocRange{First: 3}, TempDir: t.TempDir(), Layerwise: true, Threads: 2})
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(t.TempDir(), "m.shrink")
				opts := Options{Workers: 2, Calibration: cal, Rounding: tt.rounding}
				opts.GPTQ.ActOrder = strings.Contains(tt.name, "act order")
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
