package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/quant/gptq"
)

// TestSweepRoundingAndPlanner: --rounding rtn,gptq gives every point once
// per mode, --target-bpw adds planner points near their targets, and
// --reference lists another tool's points under the table.
func TestSweepRoundingAndPlanner(t *testing.T) {
	story := storyFile(t)
	calib := writeCalib(t)
	ref := filepath.Join("..", "..", "docs", "reference", "llamacpp-llama-stories-12m.json")
	_, stdout, sw := runSweep(t, "--ref", demoModel, "--text", story, "--quant", "q4", "--ctx", "32", "--chunks", "1",
		"--rounding", "rtn,gptq", "--target-bpw", "5", "--calib", calib, "--calib-tokens", "256", "--reference", ref, "-t", "2")
	var names []string
	for _, p := range sw.Points {
		names = append(names, p.Name)
		if strings.HasPrefix(p.Name, "planner") && (p.ProjectionBits > 5 || p.ProjectionBits < 4.9) {
			t.Errorf("%s: %v projection bits/weight", p.Name, p.ProjectionBits)
		}
	}
	if got := strings.Join(names, ","); got != "q4,planner 5,q4 gptq,planner 5 gptq" {
		t.Errorf("points %s", got)
	}
	if sw.Calibration == nil || strings.Join(sw.Calibration.UsedBy, ",") != "gptq,planner" {
		t.Errorf("calibration record %+v", sw.Calibration)
	}
	if !strings.Contains(stdout, "| llama.cpp Q4_0 | 4.50 |") || !strings.Contains(stdout, "--rounding rtn,gptq --target-bpw 5") {
		t.Errorf("table:\n%s", stdout)
	}
}

// TestSweepGPTQFlags: the sweep's gptq points take convert's GPTQ tuning
// (--gptq-refit-groups=false here, which changes how q4's group parameters are
// fitted and so the point's KLD), and the flags are checked as convert
// checks them.
func TestSweepGPTQFlags(t *testing.T) {
	story := storyFile(t)
	calib := writeCalib(t)
	args := []string{"--ref", demoModel, "--text", story, "--quant", "q4", "--ctx", "32", "--chunks", "2",
		"--rounding", "gptq", "--calib", calib, "--calib-tokens", "256", "-t", "2"}
	kld := func(extra ...string) float64 {
		_, _, sw := runSweep(t, append(append([]string(nil), args...), extra...)...)
		if len(sw.Points) != 1 || sw.Points[0].Name != "q4 gptq" {
			t.Fatalf("points %+v", sw.Points)
		}
		return sw.Points[0].Summary.KLD.Value
	}
	refit, plain := kld(), kld("--gptq-refit-groups=false")
	if !(plain > 0 && refit > 0) || plain == refit {
		t.Errorf("q4 gptq mean KLD %v with --gptq-refit-groups=false, %v by default: want two different positive values", plain, refit)
	}
	checkCLIErrors(t, []cliCase{
		{"negative damping", append(append([]string{"sweep"}, args...), "--out", t.TempDir(), "--gptq-damp", "-1"), exitUsage, "--gptq-damp wants a fraction"},
	})
}

func TestSweepPlannerBad(t *testing.T) {
	story := storyFile(t)
	out := t.TempDir()
	with := argsWith("sweep", "--ref", demoModel, "--text", story, "--out", out, "--quant", "q4")
	bad := writeText(t, "ref.json", `{"label":"x","points":[]}`)
	checkCLIErrors(t, []cliCase{
		{"unknown rounding", with("--rounding", "rtn,best"), exitUsage, "want rtn or gptq"},
		{"gptq without calib", with("--rounding", "gptq"), exitUsage, "needs calibration text"},
		{"planner without calib", with("--target-bpw", "4.5"), exitUsage, "planner needs calibration text"},
		{"target out of range", with("--target-bpw", "40"), exitUsage, "want bits per weight in [2, 16]"},
		{"target not a number", with("--target-bpw", "four"), exitUsage, "--target-bpw"},
		{"bad sensitivity", with("--plan-sensitivity", "mse"), exitUsage, "--plan-sensitivity"},
		{"zero probe tokens", with("--plan-probe-tokens", "0"), exitUsage, "--plan-probe-tokens 0"},
		{"bad reference file", with("--reference", bad), exitUsage, "--reference"},
		{"bad embed", with("--embed", "q9"), exitUsage, "--embed"},
		{"bad output", with("--output", "f12"), exitUsage, "--output"},
		{"missing reference file", with("--reference", filepath.Join(out, "nope.json")), exitUsage, "nope.json"},
	})
}

// TestSweepCommandRecord: the command sweep.md records carries the head
// encodings and the GPTQ tuning that differs from the defaults, so the
// recorded line rebuilds the same points.
func TestSweepCommandRecord(t *testing.T) {
	f32 := quant.F32
	base := sweepArgs{ref: "m", out: "o", encs: []quant.Encoding{quant.Q4}, input: inputArgs{text: "t.txt"},
		gptq: gptq.Options{PercDamp: gptq.DefaultPercDamp, BlockSize: gptq.DefaultBlockSize, RefitGroups: true}}
	tests := []struct {
		name      string
		edit      func(a *sweepArgs)
		want, not []string
	}{
		{"rtn", func(a *sweepArgs) { a.gptq.RefitGroups = false }, nil, []string{"--gptq", "--embed"}},
		{"gptq defaults", func(a *sweepArgs) { a.roundings = []convert.Rounding{convert.RoundingGPTQ} }, []string{"--rounding gptq"}, []string{"--gptq-"}},
		{"gptq tuned", func(a *sweepArgs) {
			a.roundings = []convert.Rounding{convert.RoundingRTN, convert.RoundingGPTQ}
			a.gptq = gptq.Options{PercDamp: -1, BlockSize: 64, ActOrder: true, Refine: 3}
			a.gptqPlain = true
		}, []string{"--rounding rtn,gptq --gptq-damp 0 --gptq-block 64 --gptq-act-order --gptq-refit-groups=false --gptq-refine 3 --gptq-plain-scales"}, nil},
		{"heads", func(a *sweepArgs) { a.embed, a.output = &f32, &f32 }, []string{"--embed f32 --output f32"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := base
			tt.edit(&a)
			got := a.command()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("command %q lacks %q", got, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("command %q has %q", got, w)
				}
			}
		})
	}
}
