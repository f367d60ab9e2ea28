package eval

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/quant/gptq"
	"github.com/shrink-llm/shrink/runtime"
)

// MethodLoRCWhiten is the grid's name for LoRC with a whitened residual
// (convert.LowRank{Method: lowrank.MethodLoRC, LoRCWhiten: true}), so that
// both kinds of correction can be one grid.
const MethodLoRCWhiten lowrank.Method = "lorc-whiten"

// IsLoRC reports whether grid method m corrects an integer encoding (lorc,
// lorc-whiten) rather than truncating the matrix (svd, whiten, asvd).
func IsLoRC(m lowrank.Method) bool { return m == lowrank.MethodLoRC || m == MethodLoRCWhiten }

// NeedsStats reports whether grid method m reads calibration statistics.
func NeedsStats(m lowrank.Method) bool {
	return m == lowrank.MethodWhiten || m == lowrank.MethodASVD || m == MethodLoRCWhiten
}

// SweepGrid is the set of settings a sweep converts: every encoding of
// Quants as a dense point, one point per preset, then, per low-rank method in order, one point
// per ratio × encoding (svd, whiten, asvd) or per rank × integer encoding
// (lorc, lorc-whiten).
type SweepGrid struct {
	Quants []quant.Encoding
	// Presets are mixes of encodings (convert --preset), one point each,
	// after the dense points.
	Presets []convert.Preset
	Methods []lowrank.Method // svd, whiten, asvd, lorc, MethodLoRCWhiten
	Ratios  []float64        // fractions of each matrix's parameters kept (svd, whiten, asvd)
	Ranks   []int            // ranks of the corrections (lorc, lorc-whiten)
	// Factors is the encoding of every low-rank point's factors; nil means
	// the point's encoding for svd/whiten/asvd and f16 for lorc.
	Factors *quant.Encoding
	// Roundings are the rounding methods every dense, preset and planner
	// point is made with (default rtn alone); the low-rank points use the
	// first. convert.RoundingGPTQ needs calibration text.
	Roundings []convert.Rounding
	// Targets are planner points: projection bits per weight for
	// convert's --target-bpw, one point per target and rounding.
	Targets []float64
	// Embed and Output, when not nil, encode the embeddings and the output
	// head of every point (convert.Policy's; nil keeps its default).
	Embed, Output *quant.Encoding
}

// roundings is Roundings with its default.
func (g SweepGrid) roundings() []convert.Rounding {
	if len(g.Roundings) == 0 {
		return []convert.Rounding{convert.RoundingRTN}
	}
	return g.Roundings
}

// NeedsCalibration lists what in the grid reads calibration statistics.
func (g SweepGrid) NeedsCalibration() []string {
	var users []string
	for _, m := range g.Methods {
		if NeedsStats(m) {
			users = append(users, string(m))
		}
	}
	for _, r := range g.Roundings {
		if r == convert.RoundingGPTQ {
			users = append(users, string(r))
		}
	}
	if len(g.Targets) > 0 {
		users = append(users, "planner")
	}
	return users
}

// SweepSetting is one point of the grid before it is converted: its
// description (sizes and results still empty) and the conversion policy.
type SweepSetting struct {
	Point  SweepPoint
	Policy convert.Policy
	// Rounding of the point's integer projections; Target, when positive,
	// makes it a planner point (convert --target-bpw).
	Rounding convert.Rounding
	Target   float64
}

// ErrBadSetting marks a grid point whose low-rank settings are invalid.
var ErrBadSetting = errors.New("invalid sweep setting")

// Settings lists the grid's points: every encoding dense, then each
// method's points in order. Every point's low-rank settings are
// validated; a failure wraps ErrBadSetting.
func (g SweepGrid) Settings() ([]SweepSetting, error) {
	var pts []SweepSetting
	for ri, r := range g.roundings() {
		// The first rounding keeps the plain names and series, so a sweep
		// without --rounding reads as before.
		suffix := ""
		if ri > 0 || r != convert.RoundingRTN {
			suffix = " " + string(r)
		}
		for _, e := range g.Quants {
			pts = append(pts, SweepSetting{Point: SweepPoint{Name: e.String() + suffix, Series: "dense" + suffix, Quant: e.String()},
				Policy: convert.Policy{Quant: e}, Rounding: r})
		}
		for i := range g.Presets {
			p := &g.Presets[i]
			pts = append(pts, SweepSetting{Point: SweepPoint{Name: p.Name + suffix, Series: "preset" + suffix, Quant: p.Base.String()},
				Policy: convert.Policy{Quant: p.Base, Preset: p}, Rounding: r})
		}
		for _, b := range g.Targets {
			pts = append(pts, SweepSetting{Point: SweepPoint{Name: fmt.Sprintf("planner %g%s", b, suffix), Series: "planner" + suffix, Quant: "planner"},
				Policy: convert.Policy{Quant: quant.F16}, Rounding: r, Target: b})
		}
	}
	for _, m := range g.Methods {
		if IsLoRC(m) {
			for _, k := range g.Ranks {
				for _, e := range g.Quants {
					if e.IsFloat() {
						continue
					}
					lr := convert.LowRank{Method: lowrank.MethodLoRC, Spec: lowrank.RankSpec{Rank: k},
						FactorEncoding: g.Factors, LoRCWhiten: m == MethodLoRCWhiten}
					fe := quant.F16
					if g.Factors != nil {
						fe = *g.Factors
					}
					what := "lorc"
					if lr.LoRCWhiten {
						what = "whitened lorc"
					}
					pts = append(pts, SweepSetting{Point: SweepPoint{
						Name: fmt.Sprintf("%v + %s k%d (%v factors)", e, what, k, fe), Series: string(m), Quant: e.String(),
						Rank: k, Factors: fe.String()}, Policy: convert.Policy{Quant: e, LowRank: lr}, Rounding: g.roundings()[0]})
				}
			}
			continue
		}
		for _, r := range g.Ratios {
			for _, e := range g.Quants {
				fe := e
				if g.Factors != nil {
					fe = *g.Factors
				}
				lr := convert.LowRank{Method: m, Spec: lowrank.RankSpec{Ratio: r}, FactorEncoding: g.Factors}
				pts = append(pts, SweepSetting{Point: SweepPoint{
					Name: fmt.Sprintf("%s r%g + %v factors", m, r, fe), Series: string(m), Quant: e.String(),
					RankRatio: r, Factors: fe.String()}, Policy: convert.Policy{Quant: e, LowRank: lr}, Rounding: g.roundings()[0]})
			}
		}
	}
	for _, p := range pts {
		if err := p.Policy.LowRank.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadSetting, p.Point.Name, err)
		}
	}
	for i := range pts {
		pts[i].Policy.Embed, pts[i].Policy.Output = g.Embed, g.Output
	}
	return pts, nil
}

// SweepCalibrationText is where the statistics of whiten, asvd and
// lorc-whiten points come from.
type SweepCalibrationText struct {
	File   string
	Tokens int               // tokens to run
	Docs   textdata.DocRange // documents of File (zero: from the first)
}

// SweepInput is the evaluation text: a text file (with its document
// separator and an optional range of its documents) or a token stream
// FILE.safetensors:NAME.
type SweepInput struct {
	Text, Tokens string
	// DocSep is the line between documents of Text (DefaultDocSep for
	// <|endoftext|>; "" makes the file one document).
	DocSep string
	Docs   textdata.DocRange // only with Text
}

// SweepStage says what a SweepProgress reports.
type SweepStage int

const (
	// SweepCalibrated: the calibration run finished (Calibration, Elapsed).
	SweepCalibrated SweepStage = iota + 1
	// SweepConverted: one point was converted (Point, Elapsed); it is not
	// evaluated yet.
	SweepConverted
	// SweepEvaluating: evaluation of all points starts (Done = 0, Total =
	// 0, Points = how many) or has scored Done of Total chunks.
	SweepEvaluating
)

// SweepProgress is one report of RunSweep's progress.
type SweepProgress struct {
	Stage       SweepStage
	Calibration *convert.Calibration
	Point       *SweepPoint
	Elapsed     time.Duration
	Points      int
	Done, Total int
}

// SweepOptions configure RunSweep.
type SweepOptions struct {
	// Ref is the original checkpoint (Hugging Face folder or llama2.c
	// .bin): the reference and the source of every point.
	Ref   string
	Grid  SweepGrid
	Input SweepInput
	// Eval holds the chunking and scoring options; its Progress is
	// ignored (see Progress).
	Eval Options
	// Threads bounds the runtime's and the converter's threads (0: all
	// cores).
	Threads int
	// Exact runs every product with float32 activations (weight error
	// only; runtime.Options.ExactQ8).
	Exact bool
	// GPTQ tunes the convert.RoundingGPTQ points (convert.Options.GPTQ and
	// its planner measurement); GPTQNoImportance chooses their group
	// scales by plain weight error (convert --gptq-plain-scales).
	GPTQ             gptq.Options
	GPTQNoImportance bool
	// PlanSensitivity is how the planner points measure their candidates
	// (convert.MeasureOptions.Sensitivity; "" = output error);
	// convert.SensitivityKL probes on PlanProbeTokens (0: the default) of
	// the calibration text.
	PlanSensitivity convert.Sensitivity
	PlanProbeTokens int
	// Calibration is required when a method reads statistics.
	Calibration *SweepCalibrationText
	// Command and Note are recorded in the result.
	Command, Note string
	// TempDir holds the converted points while they are evaluated ("":
	// the system's temporary folder); they are deleted before RunSweep
	// returns.
	TempDir string
	// Progress, if set, is called as the sweep advances.
	Progress func(SweepProgress)
}

// RunSweep converts Ref at every setting of the grid, evaluates every
// point against the unconverted reference on the same tokens (the
// reference runs once per chunk), and returns the sweep with its Pareto
// front marked. Calibration runs once and serves every point that reads
// statistics.
func RunSweep(ctx context.Context, o SweepOptions) (*Sweep, error) {
	if IsShrinkFile(o.Ref) {
		return nil, fmt.Errorf("%s: sweep converts from the original checkpoint; give its folder or llama2.c .bin, not a .shrink file", o.Ref)
	}
	grid, err := o.Grid.Settings()
	if err != nil {
		return nil, err
	}
	progress := func(p SweepProgress) {
		if o.Progress != nil {
			o.Progress(p)
		}
	}
	src, err := convert.Open(o.Ref, convert.OpenOptions{})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	ropts := runtime.Options{Threads: o.Threads, ExactQ8: o.Exact}
	ref, err := OpenModel(ctx, o.Ref, ropts)
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	defer ref.Close()
	in, err := readSweepInput(o.Input, ref.Model)
	if err != nil {
		return nil, err
	}
	cal, calRec, err := sweepCalibration(ctx, src, o, progress)
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp(o.TempDir, "shrink-sweep-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	points := make([]SweepPoint, len(grid))
	cands := make([]*runtime.Model, len(grid))
	// One measurement per rounding serves every planner target.
	measured := map[convert.Rounding][]convert.BudgetTensor{}
	for i, g := range grid {
		start := time.Now()
		plan, err := convert.MakePlan(src.Config, src.Tensors, g.Policy)
		if err != nil {
			return nil, fmt.Errorf("%s at %s: %w", o.Ref, g.Point.Name, err)
		}
		if g.Target > 0 {
			if err := planBudget(ctx, src, plan, cal, g, measured, o); err != nil {
				return nil, fmt.Errorf("%s at %s: %w", o.Ref, g.Point.Name, err)
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("%03d.shrink", i))
		copts := convert.Options{Workers: o.Threads, Rounding: g.Rounding, GPTQ: o.GPTQ, GPTQNoImportance: o.GPTQNoImportance}
		if g.Policy.LowRank.NeedsStats() || g.Rounding == convert.RoundingGPTQ || g.Target > 0 {
			copts.Calibration = cal
		}
		res, err := convert.Convert(ctx, src, plan, path, copts)
		if err != nil {
			return nil, fmt.Errorf("converting %s to %s: %w", o.Ref, g.Point.Name, err)
		}
		m, err := OpenModel(ctx, path, ropts)
		if err != nil {
			return nil, err
		}
		defer m.Close()
		cands[i] = m.Model
		points[i] = g.Point
		points[i].FileBytes = res.Bytes
		points[i].BitsPerWeight = float64(plan.TotalBytes) * 8 / float64(max(plan.Params, 1))
		points[i].ProjectionBits = plan.ProjectionBits()
		progress(SweepProgress{Stage: SweepConverted, Point: &points[i], Elapsed: time.Since(start)})
	}

	eopts := o.Eval
	progress(SweepProgress{Stage: SweepEvaluating, Points: len(cands)})
	eopts.Progress = func(done, total int) {
		progress(SweepProgress{Stage: SweepEvaluating, Points: len(cands), Done: done, Total: total})
	}
	reps, err := RunMany(ctx, ref.Model, cands, in.Tokens, eopts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Source, err)
	}
	r0 := reps[0]
	sw := &Sweep{
		Model: filepath.Base(filepath.Clean(o.Ref)), Text: in.Source, Ctx: r0.Ctx, Chunks: r0.Chunks,
		AvailableChunks: r0.AvailableChunks, FirstChunk: r0.FirstChunk, Tokens: r0.Summary.Tokens, Convention: r0.Convention,
		RefPPL: r0.Summary.PPLRef, Command: o.Command, EvalDocs: in.DocRange, Documents: in.Documents,
		Calibration: calRec, Note: o.Note,
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
	return sw, nil
}

// planBudget makes a planner point's plan: the measurement of its rounding
// (made once), then the allocation for its target.
func planBudget(ctx context.Context, src *convert.Model, plan *convert.Plan, cal *convert.Calibration, g SweepSetting, measured map[convert.Rounding][]convert.BudgetTensor, o SweepOptions) error {
	mo := convert.MeasureOptions{Calibration: cal, Rounding: g.Rounding, Workers: o.Threads, GPTQ: o.GPTQ, GPTQNoImportance: o.GPTQNoImportance,
		Sensitivity: o.PlanSensitivity}
	if o.PlanSensitivity == convert.SensitivityKL {
		c := o.Calibration
		if c == nil {
			return fmt.Errorf("%w: the planner's KL probe needs calibration text", ErrBadSetting)
		}
		tokens := cmp.Or(o.PlanProbeTokens, convert.DefaultProbeTokens)
		docs, err := convert.ReadCalibDocs(c.File, c.Docs, tokens)
		if err != nil {
			return fmt.Errorf("--calib: %w", err)
		}
		mo.Probe = convert.ProbeOptions{Documents: docs, Tokens: tokens, TempDir: o.TempDir}
	}
	ts, ok := measured[g.Rounding]
	if !ok {
		var err error
		if ts, err = convert.MeasureCosts(ctx, src, plan, mo); err != nil {
			return err
		}
		measured[g.Rounding] = ts
	}
	var params int64
	for _, t := range ts {
		params += t.Params
	}
	budget := convert.BitsBudget(g.Target, params)
	pick, err := convert.Allocate(ts, budget)
	if err != nil {
		return fmt.Errorf("%w: target %g bits/weight: %w", ErrBadSetting, g.Target, err)
	}
	return plan.ApplyBudget(ts, pick, fmt.Sprintf("%g bits/weight", g.Target), mo.Measure(), budget)
}

// readSweepInput reads the evaluation tokens: Docs of Text, or the Tokens
// stream.
func readSweepInput(in SweepInput, ref *runtime.Model) (*Input, error) {
	if in.Tokens != "" {
		return ReadTokens(in.Tokens)
	}
	var tok Encoder
	if t := ref.Tokenizer(); t != nil {
		tok = t
	}
	return ReadTextRange(in.Text, in.DocSep, in.Docs, tok)
}

// sweepCalibration runs the calibration once for every point that reads
// statistics. Every grid method factors all projections, so one set of
// statistics (every layer's inputs) serves them all.
func sweepCalibration(ctx context.Context, src *convert.Model, o SweepOptions, progress func(SweepProgress)) (*convert.Calibration, *SweepCalibration, error) {
	users := o.Grid.NeedsCalibration()
	c := o.Calibration
	if c == nil {
		if len(users) > 0 {
			return nil, nil, fmt.Errorf("%w: %v need calibration text", ErrBadSetting, users)
		}
		return nil, nil, nil
	}
	docs, err := convert.ReadCalibDocs(c.File, c.Docs, c.Tokens)
	if err != nil {
		return nil, nil, fmt.Errorf("--calib: %w", err)
	}
	// Any method that reads statistics selects the same matrices, so
	// whiten stands in for all of them when choosing what to collect.
	keys, err := convert.StatsKeys(src.Tensors, convert.LowRank{Method: lowrank.MethodWhiten, Spec: lowrank.RankSpec{Ratio: 1}})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadSetting, err)
	}
	start := time.Now()
	cal, err := convert.Calibrate(ctx, src, convert.CalibOptions{
		Documents: docs, Docs: c.Docs, Tokens: c.Tokens, Keys: keys, TempDir: o.TempDir, Threads: o.Threads,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.File, err)
	}
	progress(SweepProgress{Stage: SweepCalibrated, Calibration: cal, Elapsed: time.Since(start)})
	return cal, &SweepCalibration{Text: c.File, Docs: cal.Docs.String(), Tokens: cal.Tokens, UsedBy: users}, nil
}
