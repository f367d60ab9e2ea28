package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/shrink-llm/shrink/convert"

	"github.com/urfave/cli/v2"

	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/quant/gptq"
)

func sweepCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "ref", Usage: "checkpoint `MODEL` (Hugging Face folder or llama2.c .bin) to convert and evaluate against"},
		&cli.StringFlag{Name: "quant", Aliases: []string{"q"}, Value: "f16,bf16,q8", Usage: "comma-separated `ENCS` for the projections: f32, f16, bf16, q8, q8g64, q8g128, q6, q5, q4, q3, q2, q4g64, q4g128, q4s, q4nl"},
		&cli.StringFlag{Name: "preset", Usage: "also comma-separated `MIXES` (convert --preset), one point each: " + convert.PresetNames()},
		outFlag("`DIR` for sweep.json, sweep.md and the plots"),
		&cli.BoolFlag{Name: "replot", Usage: "only redraw sweep.md and the plots of --out DIR from its sweep.json"},
		&cli.StringFlag{Name: "note", Usage: "`TEXT` recorded in sweep.json and printed in sweep.md under the command (with --replot: replaces the note)"},
		&cli.StringFlag{Name: "lowrank", Usage: "also factor the projections with each of `METHODS` (comma list): svd, whiten, asvd at every --rank-ratio and --quant; lorc, lorc-whiten at every --rank on every integer --quant"},
		&cli.StringFlag{Name: "rank-ratio", Usage: "comma-separated `RATIOS` in (0,1] for svd, whiten and asvd: fraction of each matrix's parameters kept"},
		&cli.StringFlag{Name: "rank", Usage: "comma-separated `RANKS` for lorc and lorc-whiten corrections"},
		&cli.StringFlag{Name: "factor-encoding", Usage: "`ENC` of every low-rank point's factors (default: the point's --quant for svd/whiten/asvd, f16 for lorc)"},
		&cli.StringFlag{Name: "rounding", Usage: "comma-separated rounding `MODES` (rtn, gptq): every dense, preset and planner point once per mode (gptq needs --calib)"},
		&cli.StringFlag{Name: "target-bpw", Usage: "comma-separated planner targets `BITS` (convert --target-bpw): one point each, encodings chosen per projection (needs --calib)"},
		&cli.StringFlag{Name: "plan-sensitivity", Value: string(convert.SensitivityKL), Usage: "planner points: `MODE` kl (a KL probe per candidate on --plan-probe-tokens of the calibration text) or output-error, as convert's"},
		&cli.IntFlag{Name: "plan-probe-tokens", Value: convert.DefaultProbeTokens, Usage: "planner points with --plan-sensitivity kl: `N` calibration tokens per probe"},
		&cli.StringFlag{Name: "reference", Usage: "draw another tool's points from JSON `FILE` (label, source, points with projection_bits_per_weight and mean_kld) beside the sweep's; the KLD plot's x axis is then projection bits/weight (with --replot too)"},
		&cli.StringFlag{Name: "embed", Usage: "`ENC` of every point's token/position embeddings (as convert --embed; default: the point's float encoding, else f16)"},
		&cli.StringFlag{Name: "output", Usage: "`ENC` of every point's untied output head (as convert --output; default as --embed)"},
		&cli.StringFlag{Name: "eval-docs", Usage: "evaluate documents `A-B` of --text only (1-based, inclusive; default all)"},
	}
	flags = append(flags, calibFlags("calibration text `FILE` for whiten, asvd and lorc-whiten (documents separated by <|endoftext|> lines)", "--calib")...)
	flags = append(flags, inputFlags()...)
	flags = append(flags, gptqFlags()...)
	return &cli.Command{
		Name:  "sweep",
		Usage: "convert a model at several settings, evaluate each against the original, write a table and size-vs-accuracy plots",
		Description: `Every setting is converted into a temporary file; the reference runs once per
   chunk and every candidate is compared with it on the same tokens. The grid is
   every --quant as a dense point, plus, with --lowrank, one low-rank point per
   method × --rank-ratio × --quant (svd, whiten, asvd) or method × --rank ×
   integer --quant (lorc, lorc-whiten). Calibration runs once and serves every
   point that needs it. When --calib is the --text file, --calib-docs and
   --eval-docs must keep the two apart.
   Writes DIR/sweep.json, DIR/sweep.md and DIR/bpw_vs_kld.{png,svg},
   DIR/bpw_vs_ppl_ratio.{png,svg} (bits per weight against mean KLD and
   against the PPL ratio, one series per method, Pareto front marked).`,
		Flags: flags,
		Action: withoutArgs("--ref, --text, --out", func(c *cli.Context) error {
			if c.String("out") == "" {
				return usagef("sweep: --out DIR is required")
			}
			var refs *eval.ReferenceSet
			if f := c.String("reference"); f != "" {
				r, err := eval.ReadReferences(f)
				if err != nil {
					return usagef("--reference: %v", err)
				}
				refs = r
			}
			if c.Bool("replot") {
				return replot(c.App.Writer, c.String("out"), c.String("note"), c.IsSet("note"), refs)
			}
			if c.String("ref") == "" {
				return usagef("sweep: --ref MODEL is required")
			}
			encs, err := parseQuantList(c.String("quant"))
			if err != nil {
				return err
			}
			in, err := inputFromFlags(c)
			if err != nil {
				return err
			}
			a := sweepArgs{ref: c.String("ref"), out: c.String("out"), encs: encs, input: in, note: c.String("note"), refs: refs}
			for _, name := range splitList(c.String("preset")) {
				p, err := convert.LookupPreset(name)
				if err != nil {
					return usagef("--preset: %v", err)
				}
				a.presets = append(a.presets, p)
			}
			if a.embed, a.output, err = embedOutputFromFlags(c); err != nil {
				return err
			}
			if err := gridFromFlags(c, &a); err != nil {
				return err
			}
			return doSweep(c.Context, c.App.Writer, c.App.ErrWriter, a)
		}),
	}
}

func parseQuantList(s string) ([]quant.Encoding, error) {
	var encs []quant.Encoding
	for _, f := range splitList(s) {
		e, err := quant.Parse(f)
		if err != nil {
			return nil, usagef("--quant: %v", err)
		}
		if !slices.Contains(encs, e) {
			encs = append(encs, e)
		}
	}
	if len(encs) == 0 {
		return nil, usagef("--quant: no encodings given")
	}
	return encs, nil
}

// splitList cuts a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseNumList reads a comma-separated list of numbers, without repeats.
func parseNumList[T int | float64](flag, s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range splitList(s) {
		v, err := parse(f)
		if err != nil || v <= 0 {
			return nil, usagef("--%s: %q is not a positive number", flag, f)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

type sweepArgs struct {
	refs *eval.ReferenceSet // --reference, or nil
	// roundings (--rounding) and planner targets (--target-bpw), and the
	// GPTQ tuning of the gptq points (--gptq-*).
	roundings []convert.Rounding
	targets   []float64
	// planSensitivity and planProbeTokens are --plan-sensitivity and
	// --plan-probe-tokens.
	planSensitivity convert.Sensitivity
	planProbeTokens int
	gptq            gptq.Options
	gptqPlain       bool
	ref, out        string
	encs            []quant.Encoding
	presets         []convert.Preset
	input           inputArgs
	// The low-rank grid.
	methods []lowrank.Method
	ratios  []float64
	ranks   []int
	factors *quant.Encoding
	// embed and output (--embed, --output) override every point's
	// embeddings and output head encodings when not nil.
	embed, output *quant.Encoding
	calib         *calibSettings
	// evalDocs selects the documents of --text evaluated.
	evalDocs textdata.DocRange
	note     string
}

// gridFromFlags reads the low-rank, calibration and document-range flags;
// every incoherent combination is a usage error.
func gridFromFlags(c *cli.Context, a *sweepArgs) error {
	var err error
	for _, m := range splitList(c.String("lowrank")) {
		switch lm := lowrank.Method(m); lm {
		case lowrank.MethodSVD, lowrank.MethodWhiten, lowrank.MethodASVD, lowrank.MethodLoRC, eval.MethodLoRCWhiten:
			if !slices.Contains(a.methods, lm) {
				a.methods = append(a.methods, lm)
			}
		default:
			return usagef("--lowrank %q: want a comma list of svd, whiten, asvd, lorc, lorc-whiten", m)
		}
	}
	if a.ratios, err = parseNumList("rank-ratio", c.String("rank-ratio"), func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
		return err
	}
	if a.ranks, err = parseNumList("rank", c.String("rank"), strconv.Atoi); err != nil {
		return err
	}
	for _, r := range a.ratios {
		if r > 1 {
			return usagef("--rank-ratio %v: want fractions in (0, 1]", r)
		}
	}
	truncating := slices.ContainsFunc(a.methods, func(m lowrank.Method) bool { return !eval.IsLoRC(m) })
	correcting := slices.ContainsFunc(a.methods, eval.IsLoRC)
	switch {
	case len(a.methods) == 0:
		for _, f := range []string{"rank-ratio", "rank", "factor-encoding"} {
			if c.IsSet(f) {
				return usagef("--%s needs --lowrank", f)
			}
		}
	case truncating && len(a.ratios) == 0:
		return usagef("--lowrank svd, whiten and asvd need --rank-ratio R1,R2,...")
	case !truncating && len(a.ratios) > 0:
		return usagef("--rank-ratio applies to svd, whiten and asvd, none of which is in --lowrank")
	case correcting && len(a.ranks) == 0:
		return usagef("--lowrank lorc needs --rank K1,K2,... (the rank of the correction)")
	case !correcting && len(a.ranks) > 0:
		return usagef("--rank applies to lorc and lorc-whiten, none of which is in --lowrank (svd, whiten and asvd take --rank-ratio)")
	case correcting && !slices.ContainsFunc(a.encs, func(e quant.Encoding) bool { return !e.IsFloat() }):
		return usagef("--lowrank lorc corrects the error of an integer --quant (q8...), and --quant has none")
	}
	if s := c.String("factor-encoding"); s != "" {
		e, err := quant.Parse(s)
		if err != nil {
			return usagef("--factor-encoding: %v", err)
		}
		a.factors = &e
	}
	if err := calibGridFromFlags(c, a); err != nil {
		return err
	}
	if c.IsSet("eval-docs") && a.input.text == "" {
		return usagef("--eval-docs selects documents of --text; a --tokens stream has none")
	}
	if a.evalDocs, err = textdata.ParseDocRange(c.String("eval-docs")); err != nil {
		return usagef("--eval-docs: %v", err)
	}
	return checkDisjoint(a)
}

func calibGridFromFlags(c *cli.Context, a *sweepArgs) error {
	for _, r := range splitList(c.String("rounding")) {
		rd, err := convert.ParseRounding(r)
		if err != nil {
			return usagef("--rounding: %v", err)
		}
		if !slices.Contains(a.roundings, rd) {
			a.roundings = append(a.roundings, rd)
		}
	}
	var err error
	if a.targets, err = parseNumList("target-bpw", c.String("target-bpw"), func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
		return err
	}
	for _, b := range a.targets {
		if !(b >= 2 && b <= 16) {
			return usagef("--target-bpw %v: want bits per weight in [2, 16]", b)
		}
	}
	if a.gptq, a.gptqPlain, err = gptqFromFlags(c); err != nil {
		return err
	}
	if a.planSensitivity, err = convert.ParseSensitivity(c.String("plan-sensitivity")); err != nil {
		return usagef("--plan-sensitivity: %v", err)
	}
	if a.planProbeTokens = c.Int("plan-probe-tokens"); a.planProbeTokens < 1 {
		return usagef("--plan-probe-tokens %d: want at least 1", a.planProbeTokens)
	}
	users := eval.SweepGrid{Methods: a.methods, Roundings: a.roundings, Targets: a.targets}.NeedsCalibration()
	file := c.String("calib")
	switch {
	case file == "" && len(users) > 0:
		verb := "needs"
		if len(users) > 1 {
			verb = "need"
		}
		return usagef("%s %s calibration text: --calib FILE", strings.Join(users, ", "), verb)
	case file == "":
		for _, f := range []string{"calib-tokens", "calib-docs"} {
			if c.IsSet(f) {
				return usagef("--%s goes with --calib FILE", f)
			}
		}
		return nil
	case len(users) == 0:
		return usagef("--calib is read only by --lowrank whiten, asvd and lorc-whiten, --rounding gptq and --target-bpw, and the sweep has none of them")
	}
	cs := &calibSettings{file: file, tokens: c.Int("calib-tokens")}
	if cs.tokens < 1 {
		return usagef("--calib-tokens %d: want at least 1", cs.tokens)
	}
	if cs.docs, err = textdata.ParseDocRange(c.String("calib-docs")); err != nil {
		return usagef("--calib-docs: %v", err)
	}
	a.calib = cs
	return nil
}

// checkDisjoint refuses to calibrate and evaluate on the same documents:
// statistics taken from the evaluation text flatter the methods that read
// them. It can only tell for the same file, where it wants both ranges
// spelled out.
func checkDisjoint(a *sweepArgs) error {
	if a.calib == nil || a.input.text == "" || !samePath(a.calib.file, a.input.text) {
		return nil
	}
	if a.calib.docs == (textdata.DocRange{}) || a.evalDocs == (textdata.DocRange{}) {
		return usagef("--calib is the --text file, so calibration would see the evaluated documents and flatter whiten/asvd; " +
			"give --calib-docs and --eval-docs ranges that do not overlap (e.g. --calib-docs 501-1000 --eval-docs 1-500)")
	}
	// Last = 0 runs to the end of the text.
	end := func(r textdata.DocRange) int {
		if r.Last == 0 {
			return math.MaxInt
		}
		return r.Last
	}
	if lo, hi := max(a.calib.docs.First, a.evalDocs.First), min(end(a.calib.docs), end(a.evalDocs)); lo <= hi {
		both := textdata.DocRange{First: lo, Last: hi}
		if hi == math.MaxInt {
			both.Last = 0
		}
		return usagef("--calib-docs %s and --eval-docs %s overlap (documents %s of %s): calibration must not see the evaluated documents",
			a.calib.docs, a.evalDocs, both, a.input.text)
	}
	return nil
}

// gptqCommand is the --gptq-* part of command: the flags whose values
// differ from their defaults, when a point rounds with gptq.
func (a sweepArgs) gptqCommand() string {
	if !slices.Contains(a.roundings, convert.RoundingGPTQ) {
		return ""
	}
	var s string
	g := a.gptq
	if g.PercDamp != gptq.DefaultPercDamp {
		s += " --gptq-damp " + strconv.FormatFloat(max(g.PercDamp, 0), 'g', -1, 64)
	}
	if g.BlockSize != gptq.DefaultBlockSize {
		s += " --gptq-block " + strconv.Itoa(g.BlockSize)
	}
	if g.ActOrder {
		s += " --gptq-act-order"
	}
	if !g.RefitGroups {
		s += " --gptq-refit-groups=false"
	}
	if g.Refine > 0 {
		s += " --gptq-refine " + strconv.Itoa(g.Refine)
	}
	if a.gptqPlain {
		s += " --gptq-plain-scales"
	}
	return s
}

// command reconstructs the invocation for the record in sweep.md.
func (a sweepArgs) command() string {
	join := func(n int, f func(i int) string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return strings.Join(s, ",")
	}
	in := "--text " + a.input.text
	if a.input.tokens != "" {
		in = "--tokens " + a.input.tokens
	}
	s := fmt.Sprintf("shrink sweep --ref %s %s --quant %s --out %s --ctx %d", a.ref, in,
		join(len(a.encs), func(i int) string { return a.encs[i].String() }), a.out, a.input.opts.Ctx)
	if len(a.presets) > 0 {
		s += " --preset " + join(len(a.presets), func(i int) string { return a.presets[i].Name })
	}
	if a.evalDocs != (textdata.DocRange{}) {
		s += " --eval-docs " + a.evalDocs.String()
	}
	if o := a.input.opts; o.First > 0 {
		s += fmt.Sprintf(" --chunk-range %d-%d", o.First, o.First+o.Chunks-1)
	} else if o.Chunks > 0 {
		s += fmt.Sprintf(" --chunks %d", o.Chunks)
	}
	if a.input.exact {
		s += " --exact"
	}
	if a.input.opts.Convention != eval.ScoreAll {
		s += " --convention " + string(a.input.opts.Convention)
	}
	if a.input.text != "" && a.input.docSep != eval.DefaultDocSep {
		s += fmt.Sprintf(" --doc-sep %q", a.input.docSep)
	}
	if len(a.methods) > 0 {
		s += " --lowrank " + join(len(a.methods), func(i int) string { return string(a.methods[i]) })
	}
	if len(a.ratios) > 0 {
		s += " --rank-ratio " + join(len(a.ratios), func(i int) string { return strconv.FormatFloat(a.ratios[i], 'g', -1, 64) })
	}
	if len(a.ranks) > 0 {
		s += " --rank " + join(len(a.ranks), func(i int) string { return strconv.Itoa(a.ranks[i]) })
	}
	if a.factors != nil {
		s += " --factor-encoding " + a.factors.String()
	}
	if len(a.roundings) > 0 {
		s += " --rounding " + join(len(a.roundings), func(i int) string { return string(a.roundings[i]) })
	}
	if len(a.targets) > 0 {
		s += " --target-bpw " + join(len(a.targets), func(i int) string { return strconv.FormatFloat(a.targets[i], 'g', -1, 64) })
		if a.planSensitivity != convert.SensitivityKL {
			s += " --plan-sensitivity " + string(a.planSensitivity)
		} else if a.planProbeTokens != convert.DefaultProbeTokens {
			s += " --plan-probe-tokens " + strconv.Itoa(a.planProbeTokens)
		}
	}
	if a.embed != nil {
		s += " --embed " + a.embed.String()
	}
	if a.output != nil {
		s += " --output " + a.output.String()
	}
	s += a.gptqCommand()
	if c := a.calib; c != nil {
		s += fmt.Sprintf(" --calib %s --calib-tokens %d", c.file, c.tokens)
		if c.docs != (textdata.DocRange{}) {
			s += " --calib-docs " + c.docs.String()
		}
	}
	return s
}

func doSweep(ctx context.Context, stdout, stderr io.Writer, a sweepArgs) error {
	o := eval.SweepOptions{
		Ref: a.ref,
		Grid: eval.SweepGrid{Quants: a.encs, Presets: a.presets, Methods: a.methods, Ratios: a.ratios, Ranks: a.ranks, Factors: a.factors, Embed: a.embed, Output: a.output,
			Roundings: a.roundings, Targets: a.targets},
		Input:   eval.SweepInput{Text: a.input.text, Tokens: a.input.tokens, DocSep: a.input.docSep, Docs: a.evalDocs},
		Eval:    a.input.opts,
		Threads: a.input.threads,
		Exact:   a.input.exact,
		GPTQ:    a.gptq, GPTQNoImportance: a.gptqPlain,
		PlanSensitivity: a.planSensitivity, PlanProbeTokens: a.planProbeTokens,
		Command: a.command(),
		Note:    a.note,
	}
	if c := a.calib; c != nil {
		o.Calibration = &eval.SweepCalibrationText{File: c.file, Tokens: c.tokens, Docs: c.docs}
	}
	var bar *progress
	o.Progress = func(p eval.SweepProgress) {
		switch p.Stage {
		case eval.SweepCalibrated:
			cal := p.Calibration
			fmt.Fprintf(stderr, "calibrated on %d tokens of %s (documents %s) in %.1fs\n", cal.Tokens, filepath.Base(a.calib.file), cal.Docs, p.Elapsed.Seconds())
		case eval.SweepConverted:
			fmt.Fprintf(stderr, "converted %s: %s, %.2f bits/weight, in %.1fs\n", p.Point.Name, humanBytes(p.Point.FileBytes), p.Point.BitsPerWeight, p.Elapsed.Seconds())
		case eval.SweepEvaluating:
			if p.Total == 0 {
				bar = newCountProgress(stderr, fmt.Sprintf("evaluating %d settings", p.Points))
			} else {
				bar.update(p.Done, p.Total)
			}
		}
	}
	sw, err := eval.RunSweep(ctx, o)
	bar.finish()
	if err == nil {
		sw.References = a.refs
	}
	if errors.Is(err, eval.ErrBadSetting) {
		return usagef("%v", strings.TrimPrefix(err.Error(), eval.ErrBadSetting.Error()+": "))
	}
	if err != nil {
		return err
	}
	if err := sw.Write(a.out); err != nil {
		return fmt.Errorf("writing the sweep to %s: %w", a.out, err)
	}
	fmt.Fprint(stdout, sw.Markdown())
	fmt.Fprintf(stdout, "\nwrote %s: sweep.json, sweep.md, bpw_vs_kld.png/.svg, bpw_vs_ppl_ratio.png/.svg\n", a.out)
	return nil
}

// replot redraws a finished sweep from its sweep.json, for instance after
// the plotting code changed, without evaluating anything again; setNote
// replaces its note with note.
func replot(stdout io.Writer, dir, note string, setNote bool, refs *eval.ReferenceSet) error {
	b, err := os.ReadFile(filepath.Join(dir, "sweep.json"))
	if err != nil {
		return err
	}
	var sw eval.Sweep
	if err := json.Unmarshal(b, &sw); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "sweep.json"), err)
	}
	if len(sw.Points) == 0 {
		return fmt.Errorf("%s: no sweep points", filepath.Join(dir, "sweep.json"))
	}
	if setNote {
		sw.Note = note
	}
	if refs != nil {
		sw.References = refs
	}
	if err := sw.Write(dir); err != nil {
		return fmt.Errorf("writing the sweep to %s: %w", dir, err)
	}
	fmt.Fprintf(stdout, "redrew %s: sweep.md, bpw_vs_kld.png/.svg, bpw_vs_ppl_ratio.png/.svg\n", dir)
	return nil
}
