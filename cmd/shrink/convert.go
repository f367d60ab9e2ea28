package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/quant/gptq"
	"github.com/urfave/cli/v2"
)

func convertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert a checkpoint (Hugging Face folder, llama2.c .bin or GGUF file) into a .shrink file",
		ArgsUsage: "MODEL_DIR|MODEL.bin|MODEL.gguf",
		Flags: append([]cli.Flag{
			outFlag("`FILE` (.shrink)"),
			&cli.StringFlag{Name: "quant", Aliases: []string{"q"}, Value: "f16", Usage: "`ENC` for the projection matrices: f32, f16, bf16, q8, q8g64, q8g128, q6, q5, q4 (4.5 bits), q3, q2, q4g64, q4g128, q4s (plain symmetric int4), q4nl (non-uniform 4-bit levels)"},
			&cli.IntFlag{Name: "group", Usage: "group `SIZE` (32, 64, 128) for an integer --quant; --quant q8 --group 64 = q8g64"},
			&cli.StringFlag{Name: "preset", Usage: "`MIX` of encodings like llama.cpp's types (more bits for attn_v, ffn_down, output): " + convert.PresetNames()},
			&cli.StringFlag{Name: "embed", Usage: "`ENC` for token/position embeddings (default: --quant for float encodings, f16 for q8)"},
			&cli.StringFlag{Name: "output", Usage: "`ENC` for the untied output head (default as --embed)"},
			&cli.StringSliceFlag{Name: "tensor-type", Usage: "`REGEX=ENC` override per tensor (canonical names, first match wins; repeatable)"},
			&cli.StringFlag{Name: "tokenizer", Usage: "tokenizer `PATH` to carry: tokenizer.json, tokenizer.model, llama2.c tokenizer.bin or a GGUF (default: the checkpoint's own)"},
			&cli.StringFlag{Name: "format", Value: "shrink", Usage: "output `FORMAT`: shrink, or gguf (converted, then exported as by shrink export)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and write nothing"},
			jsonFlag("with --dry-run: print the plan as JSON"),
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Value: runtime.NumCPU(), Usage: "use at most `N` cores: dense encoding, factorisations and calibration share them"},
			&cli.StringFlag{Name: "lowrank", Usage: "factor the projections: `METHOD` svd, whiten (SVD-LLM, needs --calib), asvd (needs --calib) or lorc (low-rank correction of --quant's error)"},
			&cli.IntFlag{Name: "rank", Usage: "low-rank: rank `K` of every factored matrix"},
			&cli.Float64Flag{Name: "rank-ratio", Usage: "low-rank: fraction `R` in (0,1] of each matrix's parameters kept, k = floor(R·m·n/(m+n))"},
			&cli.Float64Flag{Name: "energy", Usage: "low-rank: smallest rank keeping fraction `E` of each matrix's Σσ²"},
			&cli.Float64Flag{Name: "target-ratio", Usage: "low-rank: keep fraction `R` of all factored matrices' parameters, ranks allocated by truncation loss"},
			&cli.StringFlag{Name: "factor-encoding", Usage: "low-rank: `ENC` of the factors (default: --quant for svd/whiten/asvd, f16 for lorc)"},
			&cli.StringFlag{Name: "lowrank-include", Usage: "low-rank: factor only projections whose canonical name matches `REGEX`"},
			&cli.BoolFlag{Name: "lorc-whiten", Usage: "lorc: whiten the residual's factorisation (needs --calib)"},
			&cli.BoolFlag{Name: "no-tokenizer", Usage: "write a weights-only file: no tokenizer is read or embedded (run it with --ids)"},
			&cli.BoolFlag{Name: "allow-nonfinite", Usage: "keep NaN/Inf weights in float encodings instead of refusing them"},
			&cli.StringFlag{Name: "calib-pass", Value: string(convert.CalibPassLayer), Usage: "calibration `PASS`: layer (each block's statistics with the blocks before it compressed), sequential (layer, and inside each block q/k/v, then the attention output, then gate/up, then down, each with the projections before it compressed) or model (the uncompressed model once, as SVD-LLM does)"},
			&cli.Float64Flag{Name: "gptq-asym", Usage: "gptq, asymmetric calibration (GPTAQ): fit each projection to the uncompressed model's output from the compressed model's inputs, moving the rounded target by `ALPHA` × the least-squares correction (1 = all of it; 0.25–0.4 did best on the TinyStories llamas, with --calib-pass sequential); runs the uncompressed model beside the layer-by-layer pass; 0 = off"},
			cpuProfileFlag,
			&cli.StringFlag{Name: "rounding", Value: string(convert.RoundingRTN), Usage: "rounding of q8 and packed projections: `MODE` rtn (nearest) or gptq (error feedback under the calibration statistics; needs --calib)"},
		}, append(append(planFlags(), calibFlags("calibration text `FILE` (documents separated by <|endoftext|> lines)", "the text")...), gptqFlags()...)...),
		Action: withPath("one model path", func(c *cli.Context, path string) (err error) {
			pol, err := policyFromFlags(c)
			if err != nil {
				return err
			}
			stopProfile, err := startCPUProfile(c)
			if err != nil {
				return err
			}
			defer func() {
				if perr := stopProfile(); err == nil {
					err = perr
				}
			}()
			dry := c.Bool("dry-run")
			if !dry && c.String("out") == "" {
				return usagef("convert: -o FILE is required (or --dry-run)")
			}
			if c.Bool("json") && !dry {
				return usagef("convert: --json goes with --dry-run")
			}
			rounding, err := convert.ParseRounding(c.String("rounding"))
			if err != nil {
				return usagef("--rounding: %v", err)
			}
			if rounding == convert.RoundingGPTQ && c.String("calib") == "" {
				return usagef("--rounding gptq needs calibration text: --calib FILE")
			}
			calibPass, err := convert.ParseCalibPass(c.String("calib-pass"))
			if err != nil {
				return usagef("--calib-pass: %v", err)
			}
			gopt, gptqPlain, err := gptqFromFlags(c)
			if err != nil {
				return err
			}
			if gopt.AsymAlpha = c.Float64("gptq-asym"); gopt.AsymAlpha != 0 {
				if rounding != convert.RoundingGPTQ || calibPass == convert.CalibPassModel || math.IsNaN(gopt.AsymAlpha) || math.IsInf(gopt.AsymAlpha, 0) {
					return usagef("--gptq-asym %v needs --rounding gptq, a finite ALPHA and a layer-by-layer --calib-pass", gopt.AsymAlpha)
				}
			}
			budget, err := budgetFromFlags(c)
			if err != nil {
				return err
			}
			cal, err := calibFromFlags(c, pol.LowRank, pol.Quant.IsPacked() || rounding == convert.RoundingGPTQ || budget.set())
			if err != nil {
				return err
			}
			if c.Int("threads") < 1 {
				return usagef("--threads %d: want at least 1", c.Int("threads"))
			}
			// Our own parallel work takes the budget from convert.Options;
			// the Go runtime's GC and gonum's BLAS (inside the SVD and
			// eigenvalue routines) size theirs from GOMAXPROCS.
			if t := c.Int("threads"); t < runtime.GOMAXPROCS(0) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(t))
			}
			args := convertArgs{
				src: path, out: c.String("out"), tokenizer: c.String("tokenizer"),
				policy: pol, dry: dry, json: c.Bool("json"), threads: c.Int("threads"), calib: cal,
				noTokenizer: c.Bool("no-tokenizer"), allowNonFinite: c.Bool("allow-nonfinite"), rounding: rounding,
				gptq: gopt, gptqNoImportance: gptqPlain, calibPass: calibPass,
				budget: budget,
			}
			switch c.String("format") {
			case "shrink":
			case "gguf":
				if dry {
					return usagef("convert: --dry-run plans a .shrink; drop --format gguf")
				}
				return convertToGGUF(c.Context, c.App.Writer, c.App.ErrWriter, args)
			default:
				return usagef("convert: --format %q: want shrink or gguf", c.String("format"))
			}
			return doConvert(c.Context, c.App.Writer, c.App.ErrWriter, args)
		}),
	}
}

func policyFromFlags(c *cli.Context) (convert.Policy, error) {
	var pol convert.Policy
	q, err := quant.Parse(c.String("quant"))
	if err != nil {
		return pol, usagef("--quant: %v", err)
	}
	if g := c.Int("group"); g != 0 {
		if q.Kind != quant.KindQ8 && !q.IsPacked() {
			return pol, usagef("--group goes with an integer --quant, not %v", q)
		}
		q.Group = g
		if err := q.Validate(); err != nil {
			return pol, usagef("--group: %v", err)
		}
	}
	if name := c.String("preset"); name != "" {
		if c.IsSet("quant") || c.IsSet("group") {
			return pol, usagef("--preset %s chooses the encodings itself; drop --quant/--group (use --tensor-type to change single tensors)", name)
		}
		p, err := convert.LookupPreset(name)
		if err != nil {
			return pol, usagef("--preset: %v", err)
		}
		pol.Preset, q = &p, p.Base
	}
	pol.Quant = q
	if pol.Embed, pol.Output, err = embedOutputFromFlags(c); err != nil {
		return pol, err
	}
	for _, s := range c.StringSlice("tensor-type") {
		o, err := convert.ParseOverride(s)
		if err != nil {
			return pol, usagef("--tensor-type: %v", err)
		}
		pol.Overrides = append(pol.Overrides, o)
	}
	lr, err := lowRankFromFlags(c, pol.Quant)
	if err != nil {
		return pol, err
	}
	pol.LowRank = lr
	return pol, nil
}

// lowRankFromFlags reads the low-rank flags; every incoherent combination is
// a usage error.
func lowRankFromFlags(c *cli.Context, q quant.Encoding) (convert.LowRank, error) {
	var lr convert.LowRank
	method := c.String("lowrank")
	if method == "" {
		for _, f := range []string{"rank", "rank-ratio", "energy", "target-ratio", "factor-encoding", "lowrank-include", "lorc-whiten"} {
			if c.IsSet(f) {
				return lr, usagef("--%s needs --lowrank svd|whiten|asvd|lorc", f)
			}
		}
		return lr, nil
	}
	lr.Method = lowrank.Method(method)
	for _, f := range []string{"rank", "rank-ratio", "energy", "target-ratio"} {
		if c.IsSet(f) && c.Float64(f) == 0 && c.Int(f) == 0 {
			return lr, usagef("--%s 0: want a positive value", f)
		}
	}
	lr.Spec = lowrank.RankSpec{Rank: c.Int("rank"), Ratio: c.Float64("rank-ratio"), Energy: c.Float64("energy")}
	lr.TargetRatio = c.Float64("target-ratio")
	lr.LoRCWhiten = c.Bool("lorc-whiten")
	if s := c.String("factor-encoding"); s != "" {
		e, err := quant.Parse(s)
		if err != nil {
			return lr, usagef("--factor-encoding: %v", err)
		}
		lr.FactorEncoding = &e
	}
	if s := c.String("lowrank-include"); s != "" {
		re, err := regexp.Compile(s)
		if err != nil {
			return lr, usagef("--lowrank-include: %v", err)
		}
		lr.Include = re
	}
	if err := lr.Validate(); err != nil {
		return lr, usagef("%v", err)
	}
	if lr.Method == lowrank.MethodLoRC && q.IsFloat() {
		return lr, usagef("--lowrank lorc corrects the error of an integer --quant (q8, q4...), and %v has none worth correcting", q)
	}
	if lr.NeedsStats() && c.String("calib") == "" {
		what := "--lowrank " + method
		if lr.LoRCWhiten {
			what = "--lorc-whiten"
		}
		return lr, usagef("%s needs calibration text: --calib FILE", what)
	}
	return lr, nil
}

// calibSettings are the calibration flags, checked but not yet read.
type calibSettings struct {
	file   string
	tokens int
	docs   textdata.DocRange
}

// calibFromFlags reads the calibration flags; weighted says the packed
// encoders will read the statistics (their scale search), which also makes
// --calib meaningful without --lowrank.
func calibFromFlags(c *cli.Context, lr convert.LowRank, weighted bool) (*calibSettings, error) {
	file := c.String("calib")
	if file == "" {
		for _, f := range []string{"calib-tokens", "calib-docs"} {
			if c.IsSet(f) {
				return nil, usagef("--%s goes with --calib FILE", f)
			}
		}
		return nil, nil
	}
	if !lr.NeedsStats() && !weighted {
		return nil, usagef("--calib is read only by --lowrank whiten, asvd, --lorc-whiten, --rounding gptq and the packed encodings (q2…q6, q4s, q4nl), not by %s", orNone(string(lr.Method)))
	}
	cs := &calibSettings{file: file, tokens: c.Int("calib-tokens")}
	if cs.tokens < 1 {
		return nil, usagef("--calib-tokens %d: want at least 1", cs.tokens)
	}
	docs, err := textdata.ParseDocRange(c.String("calib-docs"))
	if err != nil {
		return nil, usagef("--calib-docs: %v", err)
	}
	cs.docs = docs
	return cs, nil
}

func orNone(s string) string {
	if s == "" {
		return "a conversion without --lowrank"
	}
	return "--lowrank " + s
}

type convertArgs struct {
	src, out, tokenizer string
	policy              convert.Policy
	dry, json           bool
	threads             int
	calib               *calibSettings
	noTokenizer         bool
	allowNonFinite      bool
	rounding            convert.Rounding
	gptq                gptq.Options
	gptqNoImportance    bool
	calibPass           convert.CalibPass
	budget              *budgetTarget // --target-bpw / --target-size, or nil
}

func doConvert(ctx context.Context, stdout, stderr io.Writer, a convertArgs) error {
	if a.noTokenizer && a.tokenizer != "" {
		return usagef("convert: --tokenizer and --no-tokenizer exclude each other")
	}
	m, err := convert.Open(a.src, convert.OpenOptions{Tokenizer: a.tokenizer, NoTokenizer: a.noTokenizer})
	if err != nil {
		return err
	}
	defer m.Close()
	cal, err := calibrateLowRank(ctx, stderr, m, a)
	if err != nil {
		return err
	}
	defer cal.Close()
	if a.policy.LowRank.NeedsSpectra() {
		start := time.Now()
		ranks, err := convert.SpectrumRanks(ctx, m, a.policy.LowRank, cal, a.threads)
		if err != nil {
			return fmt.Errorf("%s: %w", a.src, err)
		}
		a.policy.LowRank.Ranks = ranks
		fmt.Fprintf(stderr, "ranks for %s from %d spectra in %.1fs\n", a.policy.LowRank, len(ranks), time.Since(start).Seconds())
	}
	plan, err := convert.MakePlan(m.Config, m.Tensors, a.policy)
	if err != nil {
		return fmt.Errorf("%s: %w", a.src, err)
	}
	if a.budget.set() {
		if err := applyBudget(ctx, stderr, m, plan, a, cal); err != nil {
			return err
		}
	}
	if a.dry {
		if a.json {
			b, err := plan.JSON()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		printPlan(stdout, plan)
		return nil
	}
	bar := newProgress(stderr, plan.SourceBytes, "converting")
	opts := convert.Options{Workers: a.threads, Calibration: cal, AllowNonFinite: a.allowNonFinite, Rounding: a.rounding,
		GPTQ: a.gptq, GPTQNoImportance: a.gptqNoImportance}
	if bar != nil {
		opts.Progress = func(p convert.Progress) { _ = bar.Set64(p.DoneBytes) }
	}
	res, err := convert.Convert(ctx, m, plan, a.out, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	if cal != nil {
		fmt.Fprintf(stderr, "stages: calibration forward %.1fs, statistics %.1fs, GPTQ rounding %.1fs (calibration %s)\n",
			cal.Timing.Forward.Seconds(), cal.Timing.Statistics.Seconds(), res.Rounding.Seconds(), map[bool]string{true: "layer by layer", false: "of the whole uncompressed model"}[cal.Layerwise()])
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors, %s (%s params, %.2f bits/weight), %.3f of the source's %s, in %.2fs\n",
		res.Path, len(res.Tensors), humanBytes(res.Bytes), humanCount(plan.Params),
		float64(plan.TotalBytes)*8/float64(max(plan.Params, 1)),
		float64(res.Bytes)/float64(max(plan.SourceBytes, 1)), humanBytes(plan.SourceBytes), res.Duration.Seconds())
	if m.TokenizerKind == format.TokenizerNone {
		fmt.Fprintf(stderr, "note: %s carries no tokenizer: %s holds the weights only (add one with --tokenizer)\n", a.src, res.Path)
	}
	if s := plan.LowRank; s != nil {
		fmt.Fprintf(stdout, "low-rank %s %s: %d of %d projections factored, storing %.1f%% of their parameters and %.1f%% of their dense bytes; %s\n",
			s.Method, s.Spec, s.Factored, s.Matrices, 100*float64(s.StoredParams)/float64(max(s.Params, 1)),
			100*float64(s.Bytes)/float64(max(s.DenseBytes, 1)), lowRankErrors(res.LowRank))
	}
	return nil
}

// calibrateLowRank collects activation statistics when the method needs them.
func calibrateLowRank(ctx context.Context, stderr io.Writer, m *convert.Model, a convertArgs) (*convert.Calibration, error) {
	if a.calib == nil {
		return nil, nil
	}
	docs, err := readCalibDocs(a.calib.file, a.calib.docs, a.calib.tokens)
	if err != nil {
		return nil, fmt.Errorf("--calib: %w", err)
	}
	cands, err := convert.LowRankCandidates(m.Tensors, a.policy.LowRank)
	if err != nil {
		return nil, usagef("%v", err)
	}
	keys := map[string]bool{}
	var list []string
	if a.policy.Quant.IsPacked() || a.rounding == convert.RoundingGPTQ || a.budget.set() {
		// GPTQ rounds under, and the packed encoders weight their scale search by every
		// projection input's activation energy.
		for _, k := range convert.ProjectionStatsKeys(m.Tensors) {
			keys[k] = true
			list = append(list, k)
		}
	}
	for _, c := range cands {
		if !keys[c.StatsKey] {
			keys[c.StatsKey] = true
			list = append(list, c.StatsKey)
		}
	}
	dir := os.TempDir()
	if a.out != "" {
		dir = filepath.Dir(a.out)
	}
	// Ranks chosen from spectra, and the planner's measurement, need
	// every statistic before the conversion starts.
	layerwise := a.calibPass != convert.CalibPassModel && !a.policy.LowRank.NeedsSpectra() && !a.budget.set()
	if !layerwise && (a.gptq.AsymAlpha != 0 || a.calibPass == convert.CalibPassSequential) {
		return nil, usagef("--gptq-asym and --calib-pass sequential need the layer-by-layer pass, which --target-bpw, --target-size and ranks chosen from spectra do not use")
	}
	start := time.Now()
	cal, err := convert.Calibrate(ctx, m, convert.CalibOptions{
		Documents: docs, Docs: a.calib.docs, Tokens: a.calib.tokens, Keys: list, TempDir: dir, Threads: a.threads,
		Layerwise:  layerwise,
		Sequential: layerwise && a.calibPass == convert.CalibPassSequential,
		Asymmetric: layerwise && a.gptq.AsymAlpha != 0,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.calib.file, err)
	}
	if cal.Layerwise() {
		fmt.Fprintf(stderr, "calibrating layer by layer during the conversion: %d tokens of %s (documents %s)\n", cal.Tokens, filepath.Base(a.calib.file), cal.Docs)
		return cal, nil
	}
	fmt.Fprintf(stderr, "calibrated on %d tokens of %s (documents %s) in %.1fs\n", cal.Tokens, filepath.Base(a.calib.file), cal.Docs, time.Since(start).Seconds())
	return cal, nil
}

// lowRankErrors summarizes the measured errors of the factored matrices.
func lowRankErrors(reps []convert.LowRankReport) string {
	if len(reps) == 0 {
		return "nothing factored"
	}
	var fro, act, baseFro, baseAct float64
	nAct, nBase, nBaseAct := 0, 0, 0
	for _, r := range reps {
		fro += r.RelFrobenius
		if r.RelActErr >= 0 {
			act += r.RelActErr
			nAct++
		}
		if r.BaseRelFrobenius >= 0 {
			baseFro += r.BaseRelFrobenius
			nBase++
		}
		if r.BaseRelActErr >= 0 {
			baseAct += r.BaseRelActErr
			nBaseAct++
		}
	}
	s := fmt.Sprintf("mean relative error %.4f", fro/float64(len(reps)))
	if nAct > 0 {
		s += fmt.Sprintf(", mean relative activation error %.4f", act/float64(nAct))
	}
	if nBase > 0 {
		// lorc: what the quantized matrices alone would have given.
		s += fmt.Sprintf(" (uncorrected: %.4f", baseFro/float64(nBase))
		if nBaseAct > 0 {
			s += fmt.Sprintf(", activation %.4f", baseAct/float64(nBaseAct))
		}
		s += ")"
	}
	return s
}

func printPlan(w io.Writer, p *convert.Plan) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\tshape\tsource\tkind\tencoding\trank\tbytes\tbits/w\trule")
	for _, e := range p.Entries {
		bpw := float64(e.Bytes) * 8 / float64(max(convert.Numel(e.Shape), 1))
		rule := e.Rule
		if e.ShortGroup {
			rule += " (last group of each row is shorter)"
		}
		rank := "-"
		if e.Rank > 0 {
			rank = fmt.Sprint(e.Rank)
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\t%d\t%.2f\t%s\n", e.Name, e.Shape, e.SourceDType, e.Kind, partsString(e), rank, e.Bytes, bpw, rule)
	}
	tw.Flush()
	if s := p.LowRank; s != nil {
		fmt.Fprintf(w, "low-rank %s %s: %d of %d projections factored; %s of %s parameters (%.1f%%), %s of %s dense (%.1f%%)\n",
			s.Method, s.Spec, s.Factored, s.Matrices, humanCount(s.StoredParams), humanCount(s.Params),
			100*float64(s.StoredParams)/float64(max(s.Params, 1)), humanBytes(s.Bytes), humanBytes(s.DenseBytes),
			100*float64(s.Bytes)/float64(max(s.DenseBytes, 1)))
	}
	printBudget(w, p)
	fmt.Fprintf(w, "total: %d tensors, %s params, %s (%.2f bits/weight); source %s; ratio %.3f\n",
		len(p.Entries), humanCount(p.Params), humanBytes(p.TotalBytes),
		float64(p.TotalBytes)*8/float64(max(p.Params, 1)), humanBytes(p.SourceBytes),
		float64(p.TotalBytes)/float64(max(p.SourceBytes, 1)))
}

// partsString shows a tensor's encodings: "q8" when dense, "a,b:f16" for
// factors, "w:q8 a,b:f16" for lorc.
func partsString(e convert.PlanEntry) string {
	if len(e.Parts) <= 1 {
		return e.Encoding.String()
	}
	var parts []string
	var roles []string
	var last quant.Encoding
	for i, p := range e.Parts {
		if i > 0 && p.Encoding != last {
			parts = append(parts, strings.Join(roles, ",")+":"+last.String())
			roles = nil
		}
		roles = append(roles, string(p.Role))
		last = p.Encoding
	}
	parts = append(parts, strings.Join(roles, ",")+":"+last.String())
	return strings.Join(parts, " ")
}

// calibFlags are the calibration-text flags convert and sweep share; the
// file's usage line and what --calib-docs counts in differ between them.
func calibFlags(fileUsage, docsOf string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "calib", Usage: fileUsage},
		&cli.IntFlag{Name: "calib-tokens", Value: 8192, Usage: "calibration: `N` tokens run through the uncompressed model"},
		&cli.StringFlag{Name: "calib-docs", Usage: "calibration: documents `A-B` of " + docsOf + " (1-based, inclusive; default all)"},
	}
}

// gptqFlags are the GPTQ tuning flags of convert and sweep.
func gptqFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Float64Flag{Name: "gptq-damp", Value: gptq.DefaultPercDamp, Usage: "gptq: damping added to XXᵀ's diagonal, as a `FRACTION` of its mean"},
		&cli.Float64Flag{Name: "gptq-damp-diag", Usage: "gptq: also add `FRACTION` × each input channel's own energy to XXᵀ's diagonal (shrinks the correlations toward the diagonal); 0 = none"},
		&cli.IntFlag{Name: "gptq-block", Value: gptq.DefaultBlockSize, Usage: "gptq: `COLUMNS` rounded between lazy updates"},
		&cli.BoolFlag{Name: "gptq-act-order", Usage: "gptq: round columns by decreasing activation energy (group parameters fixed from the original weights)"},
		&cli.BoolFlag{Name: "gptq-refit-groups", Value: true, Usage: "gptq, two-level encodings: fit each group's 6-bit scale and offset when the pass reaches it (the super-block's float16 pair is fixed when the super-block begins); --gptq-refit-groups=false fits all of a super-block's groups when it begins"},
		&cli.IntFlag{Name: "gptq-refine", Usage: "gptq: after the pass, up to `N` passes of coordinate descent on the same objective (each code, then each group's stored scale and offset, moved to the grid point that lowers the output error most; several times the pass's own rounding time); 0 = off"},
		&cli.BoolFlag{Name: "gptq-plain-scales", Usage: "gptq: choose group scales by plain weight error, not activation-weighted"},
	}
}

// gptqFromFlags reads gptqFlags: the pass's options and whether group
// scales ignore the activation energy (--gptq-plain-scales).
func gptqFromFlags(c *cli.Context) (gptq.Options, bool, error) {
	if c.Float64("gptq-damp") < 0 || c.Int("gptq-block") < 1 || c.Int("gptq-refine") < 0 || c.Float64("gptq-damp-diag") < 0 {
		return gptq.Options{}, false, usagef("--gptq-damp wants a fraction ≥ 0, --gptq-block at least 1 column, --gptq-refine passes ≥ 0 and --gptq-damp-diag ≥ 0")
	}
	// --gptq-damp 0 asks for no damping; gptq.Options reads 0 as the
	// default and a negative value as none.
	damp := c.Float64("gptq-damp")
	if damp == 0 {
		damp = -1
	}
	return gptq.Options{PercDamp: damp, DampDiag: c.Float64("gptq-damp-diag"), BlockSize: c.Int("gptq-block"), ActOrder: c.Bool("gptq-act-order"),
		RefitGroups: c.Bool("gptq-refit-groups"), Refine: c.Int("gptq-refine")}, c.Bool("gptq-plain-scales"), nil
}

// embedOutputFromFlags reads --embed and --output (nil where unset), for
// convert and sweep alike.
func embedOutputFromFlags(c *cli.Context) (embed, output *quant.Encoding, err error) {
	for _, f := range []struct {
		name string
		dst  **quant.Encoding
	}{{"embed", &embed}, {"output", &output}} {
		if s := c.String(f.name); s != "" {
			e, err := quant.Parse(s)
			if err != nil {
				return nil, nil, usagef("--%s: %v", f.name, err)
			}
			*f.dst = &e
		}
	}
	return embed, output, nil
}
