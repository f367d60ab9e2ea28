package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/quant"
	"github.com/urfave/cli/v2"
)

func convertCommand() *cli.Command {
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert a checkpoint (Hugging Face folder or llama2.c .bin) into a .shrink file",
		ArgsUsage: "MODEL_DIR|MODEL.bin",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output `FILE` (.shrink)"},
			&cli.StringFlag{Name: "quant", Aliases: []string{"q"}, Value: "f16", Usage: "`ENC` for the projection matrices: f32, f16, bf16, q8, q8g64, q8g128"},
			&cli.IntFlag{Name: "group", Usage: "q8 group `SIZE` (32, 64, 128) for --quant q8; same as --quant q8gSIZE"},
			&cli.StringFlag{Name: "embed", Usage: "`ENC` for token/position embeddings (default: --quant for float encodings, f16 for q8)"},
			&cli.StringFlag{Name: "output", Usage: "`ENC` for the untied output head (default as --embed)"},
			&cli.StringSliceFlag{Name: "tensor-type", Usage: "`REGEX=ENC` override per tensor (canonical names, first match wins; repeatable)"},
			&cli.StringFlag{Name: "tokenizer", Usage: "llama2.c tokenizer.bin `PATH` (default: beside the checkpoint)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and write nothing"},
			&cli.BoolFlag{Name: "json", Usage: "with --dry-run: print the plan as JSON"},
			&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Value: runtime.NumCPU(), Usage: "encoding `N` threads"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "one model path"); err != nil {
				return err
			}
			pol, err := policyFromFlags(c)
			if err != nil {
				return err
			}
			dry := c.Bool("dry-run")
			if !dry && c.String("out") == "" {
				return usagef("convert: -o FILE is required (or --dry-run)")
			}
			if c.Bool("json") && !dry {
				return usagef("convert: --json goes with --dry-run")
			}
			return doConvert(c.Context, c.App.Writer, c.App.ErrWriter, convertArgs{
				src: c.Args().First(), out: c.String("out"), tokenizer: c.String("tokenizer"),
				policy: pol, dry: dry, json: c.Bool("json"), threads: c.Int("threads"),
			})
		},
	}
}

func policyFromFlags(c *cli.Context) (convert.Policy, error) {
	var pol convert.Policy
	q, err := quant.Parse(c.String("quant"))
	if err != nil {
		return pol, usagef("--quant: %v", err)
	}
	if g := c.Int("group"); g != 0 {
		if q.Kind != quant.KindQ8 {
			return pol, usagef("--group goes with an integer --quant, not %v", q)
		}
		q = quant.Q8Group(g)
		if err := q.Validate(); err != nil {
			return pol, usagef("--group: %v", err)
		}
	}
	pol.Quant = q
	for _, f := range []struct {
		name string
		dst  **quant.Encoding
	}{{"embed", &pol.Embed}, {"output", &pol.Output}} {
		if s := c.String(f.name); s != "" {
			e, err := quant.Parse(s)
			if err != nil {
				return pol, usagef("--%s: %v", f.name, err)
			}
			*f.dst = &e
		}
	}
	for _, s := range c.StringSlice("tensor-type") {
		o, err := convert.ParseOverride(s)
		if err != nil {
			return pol, usagef("--tensor-type: %v", err)
		}
		pol.Overrides = append(pol.Overrides, o)
	}
	return pol, nil
}

type convertArgs struct {
	src, out, tokenizer string
	policy              convert.Policy
	dry, json           bool
	threads             int
}

func doConvert(ctx context.Context, stdout, stderr io.Writer, a convertArgs) error {
	m, err := convert.Open(a.src, convert.OpenOptions{Tokenizer: a.tokenizer})
	if err != nil {
		return err
	}
	defer m.Close()
	plan, err := convert.MakePlan(m.Config, m.Tensors, a.policy)
	if err != nil {
		return fmt.Errorf("%s: %w", a.src, err)
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
	opts := convert.Options{Workers: a.threads}
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
	fmt.Fprintf(stdout, "wrote %s: %d tensors, %s (%s params, %.2f bits/weight), %.3f of the source's %s, in %.2fs\n",
		res.Path, len(res.Tensors), humanBytes(res.Bytes), humanCount(plan.Params),
		float64(plan.TotalBytes)*8/float64(max(plan.Params, 1)),
		float64(res.Bytes)/float64(max(plan.SourceBytes, 1)), humanBytes(plan.SourceBytes), res.Duration.Seconds())
	return nil
}

func printPlan(w io.Writer, p *convert.Plan) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\tshape\tsource\tencoding\tbytes\tbits/w\trule")
	for _, e := range p.Entries {
		bpw := float64(e.Bytes) * 8 / float64(max(numel(e.Shape), 1))
		rule := e.Rule
		if e.ShortGroup {
			rule += " (last group of each row is shorter)"
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%v\t%d\t%.2f\t%s\n", e.Name, e.Shape, e.SourceDType, e.Encoding, e.Bytes, bpw, rule)
	}
	tw.Flush()
	fmt.Fprintf(w, "total: %d tensors, %s params, %s (%.2f bits/weight); source %s; ratio %.3f\n",
		len(p.Entries), humanCount(p.Params), humanBytes(p.TotalBytes),
		float64(p.TotalBytes)*8/float64(max(p.Params, 1)), humanBytes(p.SourceBytes),
		float64(p.TotalBytes)/float64(max(p.SourceBytes, 1)))
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}
