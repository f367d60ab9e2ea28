package main

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/testshared"
)

// TestConvertTargetBPW: the planner lands just under the target over the
// projections, records a predicted cost per tensor, writes a file whose
// projection bits are what the plan said, and (with calibration and GPTQ)
// the same flags give the same bytes twice.
func TestConvertTargetBPW(t *testing.T) {
	calib := writeCalib(t)
	for _, bits := range []float64{3.5, 4.5, 5.5} {
		var plan convert.Plan
		shrinkJSON(t, &plan, "convert", demoModel, "--dry-run", "--json", "--target-bpw", ftoa(bits), "-t", "2")
		b := plan.Budget
		if b == nil || b.Bits > bits || b.Bits < bits-0.1 || math.Abs(plan.ProjectionBits()-b.Bits) > 1e-9 || len(b.Tensors) != 4*7 {
			t.Fatalf("%v bits: summary %+v, plan's projection bits %v", bits, b, plan.ProjectionBits())
		}
		for _, e := range plan.Entries {
			if _, isProj := projectionName(e.Name); isProj != (e.Cost != nil) {
				t.Errorf("%s: cost %v", e.Name, e.Cost)
			}
		}
	}
	// The text plan names the choice and the totals.
	code, stdout, stderr := shrink(t, "convert", demoModel, "--dry-run", "--target-bpw", "5", "-t", "2")
	if code != 0 || !strings.Contains(stdout, "planner (5 bits/weight): predicted cost") || !strings.Contains(stdout, "planner: target 5 bits/weight") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	dir := t.TempDir()
	var files []string
	for i := range 2 {
		out := filepath.Join(dir, ftoa(float64(i))+".shrink")
		code, _, stderr := shrink(t, "convert", demoModel, "-o", out, "--target-bpw", "4.5", "--rounding", "gptq", "--calib", calib, "--calib-tokens", "512", "-t", "2")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		files = append(files, out)
	}
	a, b := testshared.ReadFile(t, files[0]), testshared.ReadFile(t, files[1])
	if string(a) != string(b) {
		t.Error("the same flags gave different files")
	}
	info, err := eval.ShrinkInfo(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if info.ProjectionBits > 4.5 || info.ProjectionBits < 4.4 {
		t.Errorf("written projections: %v bits/weight", info.ProjectionBits)
	}
}

func TestConvertTargetBad(t *testing.T) {
	with := argsWith("convert", demoModel, "--dry-run")
	checkCLIErrors(t, []cliCase{
		{"zero", with("--target-bpw", "0"), exitUsage, "--target-bpw 0"},
		{"too few bits", with("--target-bpw", "1.5"), exitUsage, "want bits per weight in [2, 16]"},
		{"too many bits", with("--target-bpw", "17"), exitUsage, "want bits per weight"},
		{"nan", with("--target-bpw", "NaN"), exitUsage, "want bits per weight"},
		{"below every choice", with("--target-bpw", "2.1"), exitUsage, "below the smallest"},
		{"both targets", with("--target-bpw", "4", "--target-size", "1MB"), exitUsage, "exclude each other"},
		{"with quant", with("--target-bpw", "4", "--quant", "q4"), exitUsage, "drop --quant"},
		{"with preset", with("--target-bpw", "4", "--preset", "q4_k_m"), exitUsage, "drop --preset"},
		{"with lowrank", with("--target-bpw", "4", "--lowrank", "svd", "--rank", "8"), exitUsage, "drop --lowrank"},
		{"bad size", with("--target-size", "lots"), exitUsage, "--target-size"},
		{"negative size", with("--target-size", "-3MB"), exitUsage, "--target-size"},
		{"size too small", with("--target-size", "100kB"), exitUsage, "below the smallest"},
		{"sensitivity without target", with("--plan-sensitivity", "kl"), exitUsage, "--plan-sensitivity goes with --target-bpw"},
		{"candidates without target", with("--plan-candidates", "q4"), exitUsage, "--plan-candidates goes with --target-bpw"},
		{"bad sensitivity", with("--target-bpw", "4", "--plan-sensitivity", "mse"), exitUsage, "want kl or output-error"},
		{"kl without text", with("--target-bpw", "4", "--plan-sensitivity", "kl"), exitUsage, "--calib FILE"},
		{"probe tokens without kl", with("--target-bpw", "4", "--plan-sensitivity", "output-error", "--plan-probe-tokens", "64"), exitUsage, "goes with --plan-sensitivity kl"},
		{"zero probe tokens", with("--target-bpw", "4", "--plan-probe-tokens", "0"), exitUsage, "--plan-probe-tokens 0"},
		{"bad candidate", with("--target-bpw", "4", "--plan-candidates", "q4,q9"), exitUsage, "--plan-candidates"},
		{"passes without kl", with("--target-bpw", "4", "--plan-passes", "2"), exitUsage, "--plan-passes goes with --plan-sensitivity kl"},
		{"zero passes", with("--target-bpw", "4", "--plan-passes", "0"), exitUsage, "want 1 to 4"},
		{"twice a candidate", with("--target-bpw", "4", "--plan-candidates", "q4,q5,q4"), exitUsage, "q4 twice"},
		{"candidates above the target", with("--target-bpw", "4", "--plan-candidates", "q5,q6"), exitUsage, "below the smallest"},
	})
}

// TestConvertPlanSensitivityKL: --plan-sensitivity kl measures every
// candidate of --plan-candidates with the KL probe, shows each tensor's
// measured cost in --dry-run, and meets the target.
func TestConvertPlanSensitivityKL(t *testing.T) {
	calib := writeCalib(t)
	args := []string{"convert", demoModel, "--dry-run", "--target-bpw", "4.5", "--plan-sensitivity", "kl", "--plan-probe-tokens", "96",
		"--plan-candidates", "q3, q4g64,q4,q5", "--calib", calib, "--calib-tokens", "256", "-t", "2"}
	var plan convert.Plan
	shrinkJSON(t, &plan, append(args, "--json")...)
	b := plan.Budget
	if b == nil || b.Bits > 4.5 || b.Bits < 4.4 || !strings.HasPrefix(b.Measure, "KL probe") || !strings.Contains(b.Measure, "96 calibration tokens") {
		t.Fatalf("summary %+v", b)
	}
	for _, bt := range b.Tensors {
		if len(bt.Choices) != 4 {
			t.Fatalf("%s: %d candidates, want 4", bt.Name, len(bt.Choices))
		}
		if bt.Choices[0].Encoding.String() != "q3" || bt.Choices[3].Encoding.String() != "q5" || !(bt.Choices[0].Cost > bt.Choices[3].Cost) {
			t.Errorf("%s: candidates %+v", bt.Name, bt.Choices)
		}
	}
	code, stdout, stderr := shrink(t, args...)
	if code != 0 || !strings.Contains(stdout, "planner (4.5 bits/weight): predicted cost") || !strings.Contains(stdout, "KL probe") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	// A second pass probes with the first pass's choice in place.
	var plan2 convert.Plan
	shrinkJSON(t, &plan2, append(args, "--json", "--plan-passes", "2")...)
	if b2 := plan2.Budget; b2 == nil || b2.Bits > 4.5 || b2.Bits < 4.4 || !strings.Contains(b2.Measure, "pass 2 with the other tensors") {
		t.Fatalf("two passes: summary %+v", b2)
	}
	// With --calib the probe is the default.
	var def []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--plan-sensitivity" {
			i++
			continue
		}
		def = append(def, args[i])
	}
	code, stdout2, stderr := shrink(t, def...)
	if code != 0 || stdout2 != stdout {
		t.Fatalf("exit %d without --plan-sensitivity: %s\n%s\nwant the kl plan:\n%s", code, stderr, stdout2, stdout)
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]int64{"9961472": 9961472, "10MB": 10_000_000, "9.5MiB": 9961472, "2 GiB": 2 << 30, "512K": 512 << 10} {
		if got, err := parseSize(s); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "MB", "5XB", "0", "1e3", "-1"} {
		if _, err := parseSize(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// projectionName reports whether a canonical name is a per-layer projection.
func projectionName(name string) (format.Stem, bool) {
	layer, stem, _, ok := format.ParseName(name)
	return stem, ok && layer >= 0 && stem.Projection()
}
