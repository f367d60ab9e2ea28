package main

import (
	"context"
	"encoding/json"
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
	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// methodLoRCWhiten is the sweep's name for lorc with a whitened residual
// (convert's --lowrank lorc --lorc-whiten), so that both can be one grid.
const methodLoRCWhiten = "lorc-whiten"

func sweepCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "ref", Usage: "checkpoint `MODEL` (Hugging Face folder or llama2.c .bin) to convert and evaluate against"},
		&cli.StringFlag{Name: "quant", Aliases: []string{"q"}, Value: "f16,bf16,q8", Usage: "comma-separated `ENCS` for the projections: f32, f16, bf16, q8, q8g64, q8g128, q6, q5, q4, q3, q2, q4g64, q4g128, q4s"},
		&cli.StringFlag{Name: "preset", Usage: "also comma-separated `MIXES` (convert --preset), one point each: " + convert.PresetNames()},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output `DIR` for sweep.json, sweep.md and the plots"},
		&cli.BoolFlag{Name: "replot", Usage: "only redraw sweep.md and the plots of --out DIR from its sweep.json"},
		&cli.StringFlag{Name: "note", Usage: "`TEXT` recorded in sweep.json and printed in sweep.md under the command (with --replot: replaces the note)"},
		&cli.StringFlag{Name: "lowrank", Usage: "also factor the projections with each of `METHODS` (comma list): svd, whiten, asvd at every --rank-ratio and --quant; lorc, lorc-whiten at every --rank on every integer --quant"},
		&cli.StringFlag{Name: "rank-ratio", Usage: "comma-separated `RATIOS` in (0,1] for svd, whiten and asvd: fraction of each matrix's parameters kept"},
		&cli.StringFlag{Name: "rank", Usage: "comma-separated `RANKS` for lorc and lorc-whiten corrections"},
		&cli.StringFlag{Name: "factor-encoding", Usage: "`ENC` of every low-rank point's factors (default: the point's --quant for svd/whiten/asvd, f16 for lorc)"},
		&cli.StringFlag{Name: "eval-docs", Usage: "evaluate documents `A-B` of --text only (1-based, inclusive; default all)"},
	}
	flags = append(flags, calibFlags("calibration text `FILE` for whiten, asvd and lorc-whiten (documents separated by <|endoftext|> lines)", "--calib")...)
	flags = append(flags, inputFlags()...)
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
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("sweep: takes no positional arguments (use --ref, --text, --out)")
			}
			if c.String("out") == "" {
				return usagef("sweep: --out DIR is required")
			}
			if c.Bool("replot") {
				return replot(c.App.Writer, c.String("out"), c.String("note"), c.IsSet("note"))
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
			a := sweepArgs{ref: c.String("ref"), out: c.String("out"), encs: encs, input: in, note: c.String("note")}
			for _, name := range splitList(c.String("preset")) {
				p, err := convert.LookupPreset(name)
				if err != nil {
					return usagef("--preset: %v", err)
				}
				a.presets = append(a.presets, p)
			}
			if err := gridFromFlags(c, &a); err != nil {
				return err
			}
			return doSweep(c.Context, c.App.Writer, c.App.ErrWriter, a)
		},
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
	ref, out string
	encs     []quant.Encoding
	presets  []convert.Preset
	input    inputArgs
	// The low-rank grid.
	methods []string
	ratios  []float64
	ranks   []int
	factors *quant.Encoding
	calib   *calibSettings
	// evalDocs selects the documents of --text evaluated.
	evalDocs textdata.DocRange
	note     string
}

// gridFromFlags reads the low-rank, calibration and document-range flags;
// every incoherent combination is a usage error.
func gridFromFlags(c *cli.Context, a *sweepArgs) error {
	var err error
	for _, m := range splitList(c.String("lowrank")) {
		switch lowrank.Method(m) {
		case lowrank.MethodSVD, lowrank.MethodWhiten, lowrank.MethodASVD, lowrank.MethodLoRC, methodLoRCWhiten:
		default:
			return usagef("--lowrank %q: want a comma list of svd, whiten, asvd, lorc, lorc-whiten", m)
		}
		if !slices.Contains(a.methods, m) {
			a.methods = append(a.methods, m)
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
	truncating := slices.ContainsFunc(a.methods, func(m string) bool { return !isLoRC(m) })
	correcting := slices.ContainsFunc(a.methods, isLoRC)
	switch {
	case len(a.methods) == 0:
		for _, f := range []string{"rank-ratio", "rank", "factor-encoding", "calib"} {
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

func isLoRC(m string) bool { return m == string(lowrank.MethodLoRC) || m == methodLoRCWhiten }

// needsStats reports whether a grid method reads calibration statistics.
func needsStats(m string) bool {
	return m == string(lowrank.MethodWhiten) || m == string(lowrank.MethodASVD) || m == methodLoRCWhiten
}

func calibGridFromFlags(c *cli.Context, a *sweepArgs) error {
	var users []string
	for _, m := range a.methods {
		if needsStats(m) {
			users = append(users, m)
		}
	}
	file := c.String("calib")
	switch {
	case file == "" && len(users) > 0:
		return usagef("--lowrank %s needs calibration text: --calib FILE", strings.Join(users, ","))
	case file == "":
		for _, f := range []string{"calib-tokens", "calib-docs"} {
			if c.IsSet(f) {
				return usagef("--%s goes with --calib FILE", f)
			}
		}
		return nil
	case len(users) == 0:
		return usagef("--calib is read only by --lowrank whiten, asvd and lorc-whiten, and --lowrank has none of them")
	}
	cs := &calibSettings{file: file, tokens: c.Int("calib-tokens")}
	if cs.tokens < 1 {
		return usagef("--calib-tokens %d: want at least 1", cs.tokens)
	}
	var err error
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
	if a.input.opts.Chunks > 0 {
		s += fmt.Sprintf(" --chunks %d", a.input.opts.Chunks)
	}
	if a.input.opts.Convention != eval.ScoreAll {
		s += " --convention " + string(a.input.opts.Convention)
	}
	if a.input.text != "" && a.input.docSep != eval.DefaultDocSep {
		s += fmt.Sprintf(" --doc-sep %q", a.input.docSep)
	}
	if len(a.methods) > 0 {
		s += " --lowrank " + strings.Join(a.methods, ",")
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
	if c := a.calib; c != nil {
		s += fmt.Sprintf(" --calib %s --calib-tokens %d", c.file, c.tokens)
		if c.docs != (textdata.DocRange{}) {
			s += " --calib-docs " + c.docs.String()
		}
	}
	return s
}

// gridPoint is one setting of the sweep before it is converted.
type gridPoint struct {
	eval.SweepPoint
	policy convert.Policy
}

// grid lists the settings: every encoding dense, then each method's points
// in flag order.
func (a sweepArgs) grid() []gridPoint {
	var pts []gridPoint
	for _, e := range a.encs {
		pts = append(pts, gridPoint{SweepPoint: eval.SweepPoint{Name: e.String(), Series: "dense", Quant: e.String()},
			policy: convert.Policy{Quant: e}})
	}
	for i := range a.presets {
		p := &a.presets[i]
		pts = append(pts, gridPoint{SweepPoint: eval.SweepPoint{Name: p.Name, Series: "preset", Quant: p.Base.String()},
			policy: convert.Policy{Quant: p.Base, Preset: p}})
	}
	for _, m := range a.methods {
		if isLoRC(m) {
			for _, k := range a.ranks {
				for _, e := range a.encs {
					if e.IsFloat() {
						continue
					}
					lr := convert.LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: k},
						FactorEncoding: a.factors, LoRCWhiten: m == methodLoRCWhiten}
					fe := quant.F16
					if a.factors != nil {
						fe = *a.factors
					}
					what := "lorc"
					if lr.LoRCWhiten {
						what = "whitened lorc"
					}
					pts = append(pts, gridPoint{SweepPoint: eval.SweepPoint{
						Name: fmt.Sprintf("%v + %s k%d (%v factors)", e, what, k, fe), Series: m, Quant: e.String(),
						Rank: k, Factors: fe.String()}, policy: convert.Policy{Quant: e, LowRank: lr}})
				}
			}
			continue
		}
		for _, r := range a.ratios {
			for _, e := range a.encs {
				fe := e
				if a.factors != nil {
					fe = *a.factors
				}
				lr := convert.LowRank{Method: lowrank.Method(m), Spec: lowrank.RankSpec{Ratio: r}, FactorEncoding: a.factors}
				pts = append(pts, gridPoint{SweepPoint: eval.SweepPoint{
					Name: fmt.Sprintf("%s r%g + %v factors", m, r, fe), Series: m, Quant: e.String(),
					RankRatio: r, Factors: fe.String()}, policy: convert.Policy{Quant: e, LowRank: lr}})
			}
		}
	}
	return pts
}

func doSweep(ctx context.Context, stdout, stderr io.Writer, a sweepArgs) error {
	if eval.IsShrinkFile(a.ref) {
		return fmt.Errorf("%s: sweep converts from the original checkpoint; give its folder or llama2.c .bin, not a .shrink file", a.ref)
	}
	grid := a.grid()
	for _, g := range grid {
		if err := g.policy.LowRank.Validate(); err != nil {
			return usagef("%s: %v", g.Name, err)
		}
	}
	src, err := convert.Open(a.ref, convert.OpenOptions{})
	if err != nil {
		return err
	}
	defer src.Close()
	ropts := runtime.Options{Threads: a.input.threads}
	ref, err := eval.OpenModel(ctx, a.ref, ropts)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	defer ref.Close()
	in, err := readSweepInput(a, ref.Model)
	if err != nil {
		return err
	}
	cal, calRec, err := sweepCalibration(ctx, stderr, src, a)
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "shrink-sweep-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	points := make([]eval.SweepPoint, len(grid))
	cands := make([]*runtime.Model, len(grid))
	for i, g := range grid {
		start := time.Now()
		plan, err := convert.MakePlan(src.Config, src.Tensors, g.policy)
		if err != nil {
			return fmt.Errorf("%s at %s: %w", a.ref, g.Name, err)
		}
		path := filepath.Join(dir, fmt.Sprintf("%03d.shrink", i))
		opts := convert.Options{Workers: a.input.threads}
		if g.policy.LowRank.NeedsStats() {
			opts.Calibration = cal
		}
		res, err := convert.Convert(ctx, src, plan, path, opts)
		if err != nil {
			return fmt.Errorf("converting %s to %s: %w", a.ref, g.Name, err)
		}
		m, err := eval.OpenModel(ctx, path, ropts)
		if err != nil {
			return err
		}
		defer m.Close()
		cands[i] = m.Model
		points[i] = g.SweepPoint
		points[i].FileBytes = res.Bytes
		points[i].BitsPerWeight = float64(plan.TotalBytes) * 8 / float64(max(plan.Params, 1))
		points[i].ProjectionBits = plan.ProjectionBits()
		fmt.Fprintf(stderr, "converted %s: %s, %.2f bits/weight, in %.1fs\n", g.Name, humanBytes(res.Bytes), points[i].BitsPerWeight, time.Since(start).Seconds())
	}

	opts := a.input.opts
	bar := newCountProgress(stderr, fmt.Sprintf("evaluating %d settings", len(cands)))
	if bar != nil {
		opts.Progress = bar.update
	}
	reps, err := eval.RunMany(ctx, ref.Model, cands, in.Tokens, opts)
	bar.finish()
	if err != nil {
		return fmt.Errorf("%s: %w", in.Source, err)
	}
	r0 := reps[0]
	sw := &eval.Sweep{
		Model: filepath.Base(filepath.Clean(a.ref)), Text: in.Source, Ctx: r0.Ctx, Chunks: r0.Chunks,
		AvailableChunks: r0.AvailableChunks, Tokens: r0.Summary.Tokens, Convention: r0.Convention,
		RefPPL: r0.Summary.PPLRef, Command: a.command(), EvalDocs: in.DocRange, Documents: in.Documents,
		Calibration: calRec, Note: a.note,
	}
	if r, ok := in.DocsReached(r0.Chunks * r0.Ctx); ok {
		sw.ScoredDocs = r.String()
	}
	for i, r := range reps {
		points[i].Summary = r.Summary
		points[i].ModelTokensPerSecond = r.ModelTokensPerSecond
		sw.Points = append(sw.Points, points[i])
	}
	sw.MarkPareto()
	if err := sw.Write(a.out); err != nil {
		return fmt.Errorf("writing the sweep to %s: %w", a.out, err)
	}
	fmt.Fprint(stdout, sw.Markdown())
	fmt.Fprintf(stdout, "\nwrote %s: sweep.json, sweep.md, bpw_vs_kld.png/.svg, bpw_vs_ppl_ratio.png/.svg\n", a.out)
	return nil
}

// readSweepInput reads the evaluation tokens: --eval-docs of --text, or the
// --tokens stream.
func readSweepInput(a sweepArgs, ref *runtime.Model) (*eval.Input, error) {
	if a.input.text == "" {
		return readInput(a.input, ref)
	}
	var tok eval.Encoder
	if t := ref.Tokenizer(); t != nil {
		tok = t
	}
	return eval.ReadTextRange(a.input.text, a.input.docSep, a.evalDocs, tok)
}

// sweepCalibration runs the calibration once for every point that reads
// statistics. Every grid method factors all projections, so one set of
// statistics (every layer's inputs) serves them all.
func sweepCalibration(ctx context.Context, stderr io.Writer, src *convert.Model, a sweepArgs) (*convert.Calibration, *eval.SweepCalibration, error) {
	if a.calib == nil {
		return nil, nil, nil
	}
	var users []string
	for _, m := range a.methods {
		if needsStats(m) {
			users = append(users, m)
		}
	}
	// Any method that reads statistics selects the same matrices, so
	// whiten stands in for all of them when choosing what to collect.
	cal, err := calibrateLowRank(ctx, stderr, src, convertArgs{calib: a.calib, threads: a.input.threads,
		policy: convert.Policy{LowRank: convert.LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 1}}}})
	if err != nil {
		return nil, nil, err
	}
	return cal, &eval.SweepCalibration{Text: a.calib.file, Docs: cal.Docs.String(), Tokens: cal.Tokens, UsedBy: users}, nil
}

// replot redraws a finished sweep from its sweep.json, for instance after
// the plotting code changed, without evaluating anything again; setNote
// replaces its note with note.
func replot(stdout io.Writer, dir, note string, setNote bool) error {
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
	if err := sw.Write(dir); err != nil {
		return fmt.Errorf("writing the sweep to %s: %w", dir, err)
	}
	fmt.Fprintf(stdout, "redrew %s: sweep.md, bpw_vs_kld.png/.svg, bpw_vs_ppl_ratio.png/.svg\n", dir)
	return nil
}
