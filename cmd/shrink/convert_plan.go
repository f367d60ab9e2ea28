package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/quant"
)

// planFlags are convert's byte-budget planner flags.
func planFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Float64Flag{Name: "target-bpw", Usage: "choose each projection's encoding (q2…q6, q8) to spend at most `B` bits per weight over the projections with the least predicted damage (measured per tensor and candidate: see --plan-sensitivity)"},
		&cli.StringFlag{Name: "target-size", Usage: "as --target-bpw, but for the whole tensor data: at most `SIZE` bytes (e.g. 9.5MiB, 10MB, 9961472); header and tokenizer come on top"},
		&cli.StringFlag{Name: "plan-sensitivity", Usage: "how the planner predicts each candidate's damage: `MODE` kl (a KL probe: the model's next-token distributions on --plan-probe-tokens of the calibration text with that one tensor encoded, against the uncompressed model's; needs --calib) or output-error (the tensor's own relative output error, activation-weighted with --calib, weighted by its size; runs no model); default kl with --calib, else output-error"},
		&cli.StringFlag{Name: "plan-candidates", Usage: "the encodings the planner chooses among, `LIST` comma-separated (default q2,q3,q4,q5,q6,q8; group variants such as q4g64 or q5g128 make finer steps)"},
		&cli.IntFlag{Name: "plan-passes", Value: 1, Usage: "--plan-sensitivity kl: `N` measurement passes; each after the first probes every candidate with all the other tensors in the previous pass's choice and chooses again (each pass costs as much as the first)"},
		&cli.IntFlag{Name: "plan-probe-tokens", Value: convert.DefaultProbeTokens, Usage: "--plan-sensitivity kl: `N` calibration tokens per probe (each candidate of each tensor runs the blocks from its own on, and the head, over them)"},
	}
}

// budgetTarget is a parsed --target-bpw or --target-size.
type budgetTarget struct {
	bits float64 // --target-bpw, or 0
	size int64   // --target-size in bytes, or 0
	text string  // as the user wrote it, for the plan's record
	// sensitivity and probeTokens are --plan-sensitivity and
	// --plan-probe-tokens.
	sensitivity convert.Sensitivity
	probeTokens int
	candidates  []quant.Encoding // --plan-candidates, or nil for the default
	passes      int              // --plan-passes
}

func (t *budgetTarget) set() bool { return t != nil && (t.bits > 0 || t.size > 0) }

// budgetFromFlags reads the planner flags; every incoherent combination is
// a usage error.
func budgetFromFlags(c *cli.Context) (*budgetTarget, error) {
	bpwSet, sizeSet := c.IsSet("target-bpw"), c.IsSet("target-size")
	if !bpwSet && !sizeSet {
		for _, f := range []string{"plan-sensitivity", "plan-probe-tokens", "plan-candidates", "plan-passes"} {
			if c.IsSet(f) {
				return nil, usagef("--%s goes with --target-bpw or --target-size", f)
			}
		}
		return nil, nil
	}
	if bpwSet && sizeSet {
		return nil, usagef("--target-bpw and --target-size exclude each other")
	}
	for _, f := range []string{"preset", "lowrank", "tensor-type", "group"} {
		if c.IsSet(f) {
			return nil, usagef("--target-bpw/--target-size choose the projections' encodings themselves; drop --%s", f)
		}
	}
	if c.IsSet("quant") {
		return nil, usagef("--target-bpw/--target-size choose the projections' encodings themselves; drop --quant (--embed and --output set the rest)")
	}
	// The KL probe is the better predictor (BENCHMARKS.md, section 11); it
	// needs text to run the model on.
	sens := convert.SensitivityOutputError
	if c.String("calib") != "" {
		sens = convert.SensitivityKL
	}
	if c.IsSet("plan-sensitivity") {
		var err error
		if sens, err = convert.ParseSensitivity(c.String("plan-sensitivity")); err != nil {
			return nil, usagef("--plan-sensitivity: %v", err)
		}
	}
	if sens == convert.SensitivityKL && c.String("calib") == "" {
		return nil, usagef("--plan-sensitivity kl probes the model on calibration text: --calib FILE")
	}
	t := &budgetTarget{sensitivity: sens, probeTokens: c.Int("plan-probe-tokens")}
	if t.probeTokens < 1 {
		return nil, usagef("--plan-probe-tokens %d: want at least 1", t.probeTokens)
	}
	if c.IsSet("plan-probe-tokens") && sens != convert.SensitivityKL {
		return nil, usagef("--plan-probe-tokens goes with --plan-sensitivity kl")
	}
	t.passes = c.Int("plan-passes")
	if t.passes < 1 || t.passes > 4 {
		return nil, usagef("--plan-passes %d: want 1 to 4", t.passes)
	}
	if t.passes > 1 && sens != convert.SensitivityKL {
		return nil, usagef("--plan-passes goes with --plan-sensitivity kl")
	}
	if c.IsSet("plan-candidates") {
		for _, f := range strings.Split(c.String("plan-candidates"), ",") {
			e, err := quant.Parse(strings.TrimSpace(f))
			if err == nil {
				err = e.Validate()
			}
			if err != nil {
				return nil, usagef("--plan-candidates: %v", err)
			}
			if slices.Contains(t.candidates, e) {
				return nil, usagef("--plan-candidates: %v twice", e)
			}
			t.candidates = append(t.candidates, e)
		}
	}
	if bpwSet {
		b := c.Float64("target-bpw")
		if math.IsNaN(b) || b < 2 || b > 16 {
			return nil, usagef("--target-bpw %v: want bits per weight in [2, 16]", b)
		}
		t.bits, t.text = b, strconv.FormatFloat(b, 'g', -1, 64)+" bits/weight"
		return t, nil
	}
	n, err := parseSize(c.String("target-size"))
	if err != nil {
		return nil, usagef("--target-size: %v", err)
	}
	t.size, t.text = n, c.String("target-size")
	return t, nil
}

// parseSize reads a byte count: a number with an optional unit B, kB/KB,
// MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	mult, ok := map[string]float64{"": 1, "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]
	if err != nil || !ok || !(v > 0) || v*mult > 1<<50 {
		return 0, fmt.Errorf("%q: want a positive size such as 9.5MiB, 10MB or 9961472", s)
	}
	return int64(v * mult), nil
}

// applyBudget measures every projection in every candidate encoding and
// rewrites the plan to the choice that meets the target.
func applyBudget(ctx context.Context, stderr io.Writer, m *convert.Model, plan *convert.Plan, a convertArgs, cal *convert.Calibration) error {
	mo := convert.MeasureOptions{Calibration: cal, Rounding: a.rounding, Workers: a.threads, GPTQ: a.gptq, GPTQNoImportance: a.gptqNoImportance,
		Sensitivity: a.budget.sensitivity, Candidates: a.budget.candidates}
	if a.budget.sensitivity == convert.SensitivityKL {
		docs, err := readCalibDocs(a.calib.file, a.calib.docs, a.budget.probeTokens)
		if err != nil {
			return fmt.Errorf("--calib: %w", err)
		}
		mo.Probe = convert.ProbeOptions{Documents: docs, Tokens: a.budget.probeTokens, TempDir: os.TempDir()}
		if a.out != "" {
			mo.Probe.TempDir = filepath.Dir(a.out)
		}
	}
	start := time.Now()
	bar := newCountProgress(stderr, "measuring")
	if bar != nil {
		mo.Progress = bar.update
	}
	ts, err := convert.MeasureCosts(ctx, m, plan, mo)
	bar.finish()
	if err != nil {
		return fmt.Errorf("%s: %w", a.src, err)
	}
	var params, planned int64
	for _, t := range ts {
		params += t.Params
	}
	names := map[string]bool{}
	for _, t := range ts {
		names[t.Name] = true
	}
	for _, e := range plan.Entries {
		if names[e.Name] {
			planned += e.Bytes
		}
	}
	budget := convert.BitsBudget(a.budget.bits, params)
	if a.budget.size > 0 {
		// The rest of the file (embeddings, head, norms) is fixed by
		// --embed and --output; the projections get what is left.
		budget = a.budget.size - (plan.TotalBytes - planned)
	}
	pick, err := convert.Allocate(ts, budget)
	if err != nil {
		return usagef("--target-%s %s: %v", map[bool]string{true: "bpw", false: "size"}[a.budget.bits > 0], a.budget.text, err)
	}
	for pass := 2; pass <= a.budget.passes; pass++ {
		// Probe again with every other tensor in the choice just made.
		mo.InPlace = map[string]quant.Encoding{}
		for i, t := range ts {
			mo.InPlace[t.Name] = t.Choices[pick[i]].Encoding
		}
		bar := newCountProgress(stderr, fmt.Sprintf("measuring, pass %d", pass))
		mo.Progress = nil
		if bar != nil {
			mo.Progress = bar.update
		}
		ts, err = convert.MeasureCosts(ctx, m, plan, mo)
		bar.finish()
		if err != nil {
			return fmt.Errorf("%s: %w", a.src, err)
		}
		if pick, err = convert.Allocate(ts, budget); err != nil {
			return usagef("--target-%s %s: %v", map[bool]string{true: "bpw", false: "size"}[a.budget.bits > 0], a.budget.text, err)
		}
	}
	measure := mo.Measure()
	if a.budget.passes > 1 {
		measure += fmt.Sprintf("; pass %d with the other tensors in the previous pass's choice", a.budget.passes)
	}
	if err := plan.ApplyBudget(ts, pick, a.budget.text, measure, budget); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "planned %d projections for %s in %.1fs: %.3f bits/weight, predicted cost %.4g\n",
		len(ts), a.budget.text, time.Since(start).Seconds(), plan.Budget.Bits, plan.Budget.Cost)
	return nil
}

// printBudget shows the planner's outcome under the plan's table.
func printBudget(w io.Writer, p *convert.Plan) {
	b := p.Budget
	if b == nil {
		return
	}
	fmt.Fprintf(w, "planner: target %s: projections %s of a %s budget (%.3f bits/weight over %s weights), predicted cost %.4g (%s)\n",
		b.Target, humanBytes(b.Bytes), humanBytes(b.Budget), b.Bits, humanCount(b.Params), b.Cost, b.Measure)
	counts := map[string]int{}
	var order []string
	for _, t := range b.Tensors {
		for _, e := range p.Entries {
			if e.Name == t.Name {
				k := e.Encoding.String()
				if counts[k] == 0 {
					order = append(order, k)
				}
				counts[k]++
			}
		}
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%d × %s", counts[k], k)
	}
	fmt.Fprintf(w, "planner: %s\n", strings.Join(parts, ", "))
}
