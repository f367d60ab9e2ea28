package eval

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/demo/demotest"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
)

func TestSweepGridSettings(t *testing.T) {
	f16 := quant.F16
	tests := []struct {
		name  string
		grid  SweepGrid
		names []string
		bad   bool
	}{
		{"dense only", SweepGrid{Quants: []quant.Encoding{quant.F16, quant.Q8}}, []string{"f16", "q8"}, false},
		{"svd", SweepGrid{Quants: []quant.Encoding{quant.F16, quant.Q8}, Methods: []lowrank.Method{lowrank.MethodSVD}, Ratios: []float64{0.5}},
			[]string{"f16", "q8", "svd r0.5 + f16 factors", "svd r0.5 + q8 factors"}, false},
		{"lorc skips float encodings", SweepGrid{Quants: []quant.Encoding{quant.F16, quant.Q8}, Methods: []lowrank.Method{lowrank.MethodLoRC, MethodLoRCWhiten}, Ranks: []int{4}},
			[]string{"f16", "q8", "q8 + lorc k4 (f16 factors)", "q8 + whitened lorc k4 (f16 factors)"}, false},
		{"factor encoding", SweepGrid{Quants: []quant.Encoding{quant.Q8}, Methods: []lowrank.Method{lowrank.MethodWhiten}, Ratios: []float64{0.8}, Factors: &f16},
			[]string{"q8", "whiten r0.8 + f16 factors"}, false},
		{"ratio out of range", SweepGrid{Quants: []quant.Encoding{quant.Q8}, Methods: []lowrank.Method{lowrank.MethodSVD}, Ratios: []float64{1.5}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.grid.Settings()
			if tt.bad {
				if !errors.Is(err, ErrBadSetting) {
					t.Fatalf("error %v, want ErrBadSetting", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Point.Name)
			}
			if len(names) != len(tt.names) {
				t.Fatalf("points %q, want %q", names, tt.names)
			}
			for i := range names {
				if names[i] != tt.names[i] {
					t.Fatalf("points %q, want %q", names, tt.names)
				}
			}
		})
	}
}

// TestSweepGridHeads: Embed and Output reach every point's policy, planner
// and low-rank points included; without them each keeps its default.
func TestSweepGridHeads(t *testing.T) {
	f32 := quant.F32
	for _, tt := range []struct {
		name       string
		head       *quant.Encoding
		q4, f16pts quant.Encoding // embeddings of a q4 point and of an f16 point
	}{
		{"default", nil, quant.F16, quant.F16},
		{"f32", &f32, quant.F32, quant.F32},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := SweepGrid{Quants: []quant.Encoding{quant.Q4, quant.F16}, Targets: []float64{4.5},
				Methods: []lowrank.Method{lowrank.MethodLoRC}, Ranks: []int{4}, Embed: tt.head, Output: tt.head}
			pts, err := g.Settings()
			if err != nil {
				t.Fatal(err)
			}
			if len(pts) != 4 {
				t.Fatalf("%d points, want 4", len(pts))
			}
			for _, p := range pts {
				want := tt.q4
				if p.Policy.Quant == quant.F16 && p.Target == 0 {
					want = tt.f16pts
				}
				if got, out := p.Policy.EmbedEncoding(), p.Policy.OutputEncoding(); got != want || out != want {
					t.Errorf("%s: embeddings %v, head %v, want %v", p.Point.Name, got, out, want)
				}
			}
		})
	}
}

// TestRunSweep sweeps the demo model at two encodings and one truncation,
// as a Go program would, and checks the ordering the measurements must
// show: f16 is nearly lossless, truncating half the parameters is not.
func TestRunSweep(t *testing.T) {
	text := filepath.Join(t.TempDir(), "stories.txt")
	if err := os.WriteFile(text, []byte(demotest.Story), 0o644); err != nil {
		t.Fatal(err)
	}
	var converted, evalCalls int
	sw, err := RunSweep(context.Background(), SweepOptions{
		Ref:     demoModel,
		Grid:    SweepGrid{Quants: []quant.Encoding{quant.F16, quant.Q8}, Methods: []lowrank.Method{lowrank.MethodSVD}, Ratios: []float64{0.5}},
		Input:   SweepInput{Text: text, DocSep: DefaultDocSep},
		Eval:    Options{Ctx: 32, Chunks: 2},
		Threads: 2,
		TempDir: t.TempDir(),
		Progress: func(p SweepProgress) {
			switch p.Stage {
			case SweepConverted:
				converted++
				if p.Point == nil || p.Point.FileBytes <= 0 {
					t.Errorf("converted report without a sized point: %+v", p)
				}
			case SweepEvaluating:
				evalCalls++
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if converted != 4 || evalCalls != 3 { // the start, then two chunks
		t.Errorf("%d conversions and %d evaluation reports, want 4 and 3", converted, evalCalls)
	}
	if len(sw.Points) != 4 || sw.Chunks != 2 || sw.Ctx != 32 {
		t.Fatalf("%d points, %d chunks of %d", len(sw.Points), sw.Chunks, sw.Ctx)
	}
	by := map[string]SweepPoint{}
	for _, p := range sw.Points {
		by[p.Name] = p
	}
	f16, q8, svd := by["f16"], by["q8"], by["svd r0.5 + f16 factors"]
	if !(f16.BitsPerWeight > q8.BitsPerWeight) || !(f16.Summary.KLD.Value < svd.Summary.KLD.Value) || !(q8.Summary.KLD.Value < svd.Summary.KLD.Value) {
		t.Errorf("f16 %.2f bpw KLD %.3g, q8 %.2f bpw KLD %.3g, svd KLD %.3g", f16.BitsPerWeight, f16.Summary.KLD.Value,
			q8.BitsPerWeight, q8.Summary.KLD.Value, svd.Summary.KLD.Value)
	}
	if !f16.Pareto && !q8.Pareto {
		t.Error("neither f16 nor q8 on the Pareto front")
	}
}

func TestRunSweepRefusesShrinkFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.shrink")
	if err := os.WriteFile(p, []byte(format.Magic+"rest of a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RunSweep(context.Background(), SweepOptions{Ref: p, Grid: SweepGrid{Quants: []quant.Encoding{quant.Q8}}}); err == nil || !strings.Contains(err.Error(), "not a .shrink file") {
		t.Fatalf("sweep from a .shrink file: %v", err)
	}
}

// TestSweepMarkdownChunks: the header says which chunks were scored, from
// the start or from a --chunk-range.
func TestSweepMarkdownChunks(t *testing.T) {
	for _, tt := range []struct {
		sw   Sweep
		want string
	}{
		{Sweep{Chunks: 64, AvailableChunks: 749, FirstChunk: 400}, "64 chunks of 256 tokens (chunks 400–463 of the text's 0–748)"},
		{Sweep{Chunks: 32, AvailableChunks: 737}, "32 chunks of 256 tokens (the first 32 of the text's 737)"},
		{Sweep{Chunks: 20, AvailableChunks: 20}, "20 chunks of 256 tokens,"},
	} {
		tt.sw.Ctx, tt.sw.Model, tt.sw.Text = 256, "m", "t"
		if got := tt.sw.Markdown(); !strings.Contains(got, tt.want) {
			t.Errorf("%+v: markdown lacks %q:\n%s", tt.sw, tt.want, got)
		}
	}
}
