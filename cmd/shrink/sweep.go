package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

func sweepCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "ref", Usage: "checkpoint `MODEL` (Hugging Face folder or llama2.c .bin) to convert and evaluate against"},
		&cli.StringFlag{Name: "quant", Aliases: []string{"q"}, Value: "f16,bf16,q8", Usage: "comma-separated `ENCS` for the projections: f32, f16, bf16, q8, q8g64, q8g128"},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output `DIR` for sweep.json, sweep.md and the plots"},
		&cli.BoolFlag{Name: "replot", Usage: "only redraw sweep.md and the plots of --out DIR from its sweep.json"},
	}
	flags = append(flags, inputFlags()...)
	return &cli.Command{
		Name:  "sweep",
		Usage: "convert a model at several settings, evaluate each against the original, write a table and size-vs-accuracy plots",
		Description: `Every setting is converted into a temporary file; the reference runs once per
   chunk and every candidate is compared with it on the same tokens. Writes
   DIR/sweep.json, DIR/sweep.md and DIR/bpw_vs_kld.{png,svg},
   DIR/bpw_vs_ppl_ratio.{png,svg} (bits per weight against mean KLD and
   against the PPL ratio, Pareto front marked).`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("sweep: takes no positional arguments (use --ref, --text, --out)")
			}
			if c.String("out") == "" {
				return usagef("sweep: --out DIR is required")
			}
			if c.Bool("replot") {
				return replot(c.App.Writer, c.String("out"))
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
			return doSweep(c.Context, c.App.Writer, c.App.ErrWriter, sweepArgs{
				ref: c.String("ref"), out: c.String("out"), encs: encs, input: in,
			})
		},
	}
}

func parseQuantList(s string) ([]quant.Encoding, error) {
	var encs []quant.Encoding
	seen := map[quant.Encoding]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		e, err := quant.Parse(f)
		if err != nil {
			return nil, usagef("--quant: %v", err)
		}
		if !seen[e] {
			seen[e] = true
			encs = append(encs, e)
		}
	}
	if len(encs) == 0 {
		return nil, usagef("--quant: no encodings given")
	}
	return encs, nil
}

type sweepArgs struct {
	ref, out string
	encs     []quant.Encoding
	input    inputArgs
}

// command reconstructs the invocation for the record in sweep.md.
func (a sweepArgs) command() string {
	encs := make([]string, len(a.encs))
	for i, e := range a.encs {
		encs[i] = e.String()
	}
	in := "--text " + a.input.text
	if a.input.tokens != "" {
		in = "--tokens " + a.input.tokens
	}
	s := fmt.Sprintf("shrink sweep --ref %s %s --quant %s --out %s --ctx %d", a.ref, in, strings.Join(encs, ","), a.out, a.input.opts.Ctx)
	if a.input.opts.Chunks > 0 {
		s += fmt.Sprintf(" --chunks %d", a.input.opts.Chunks)
	}
	if a.input.opts.Convention != eval.ScoreAll {
		s += " --convention " + string(a.input.opts.Convention)
	}
	if a.input.text != "" && a.input.docSep != eval.DefaultDocSep {
		s += fmt.Sprintf(" --doc-sep %q", a.input.docSep)
	}
	return s
}

func doSweep(ctx context.Context, stdout, stderr io.Writer, a sweepArgs) error {
	if eval.IsShrinkFile(a.ref) {
		return fmt.Errorf("%s: sweep converts from the original checkpoint; give its folder or llama2.c .bin, not a .shrink file", a.ref)
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
	in, err := readInput(a.input, ref.Model)
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "shrink-sweep-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	points := make([]eval.SweepPoint, len(a.encs))
	cands := make([]*runtime.Model, len(a.encs))
	for i, enc := range a.encs {
		plan, err := convert.MakePlan(src.Config, src.Tensors, convert.Policy{Quant: enc})
		if err != nil {
			return fmt.Errorf("%s at %v: %w", a.ref, enc, err)
		}
		path := filepath.Join(dir, enc.String()+".shrink")
		res, err := convert.Convert(ctx, src, plan, path, convert.Options{Workers: a.input.threads})
		if err != nil {
			return fmt.Errorf("converting %s to %v: %w", a.ref, enc, err)
		}
		m, err := eval.OpenModel(ctx, path, ropts)
		if err != nil {
			return err
		}
		defer m.Close()
		cands[i] = m.Model
		points[i] = eval.SweepPoint{
			Name: enc.String(), Series: "dense", Quant: enc.String(), FileBytes: res.Bytes,
			BitsPerWeight: float64(plan.TotalBytes) * 8 / float64(max(plan.Params, 1)),
		}
		fmt.Fprintf(stderr, "converted %s: %s, %.2f bits/weight\n", enc, humanBytes(res.Bytes), points[i].BitsPerWeight)
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
	sw := &eval.Sweep{
		Model: filepath.Base(filepath.Clean(a.ref)), Text: in.Source, Ctx: reps[0].Ctx, Chunks: reps[0].Chunks,
		AvailableChunks: reps[0].AvailableChunks, Tokens: reps[0].Summary.Tokens, Convention: reps[0].Convention,
		RefPPL: reps[0].Summary.PPLRef, Command: a.command(),
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

// replot redraws a finished sweep from its sweep.json, for instance after
// the plotting code changed, without evaluating anything again.
func replot(stdout io.Writer, dir string) error {
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
	if err := sw.Write(dir); err != nil {
		return fmt.Errorf("writing the sweep to %s: %w", dir, err)
	}
	fmt.Fprintf(stdout, "redrew %s: sweep.md, bpw_vs_kld.png/.svg, bpw_vs_ppl_ratio.png/.svg\n", dir)
	return nil
}
