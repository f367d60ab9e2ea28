package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/demo"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
	"github.com/urfave/cli/v2"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "convert the built-in model (llama-stories-tiny) at every encoding, run each, and measure what each costs",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "keep", Usage: "keep the converted files in `DIR` instead of a temporary folder"},
		},
		Action: func(c *cli.Context) error {
			return runDemo(c.Context, c.App.Writer, c.String("keep"))
		},
	}
}

// demoEncodings are the settings the demo compares, cheapest last.
var demoEncodings = []string{"f32", "f16", "bf16", "q8", "q4"}

func runDemo(ctx context.Context, w io.Writer, keep string) error {
	tmp, err := os.MkdirTemp("", "shrink-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, demo.Name)
	if err := os.CopyFS(src, demo.FS()); err != nil {
		return fmt.Errorf("unpacking the built-in model: %w", err)
	}
	outDir := tmp
	if keep != "" {
		if err := os.MkdirAll(keep, 0o755); err != nil {
			return err
		}
		outDir = keep
	}
	m, err := convert.Open(src, convert.OpenOptions{})
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(w, "shrink demo: the built-in model %s\n  %s\n\n", demo.Name, describeConfig(m.Config))

	type row struct {
		enc  string
		path string
		res  *convert.Result
	}
	var rows []row
	for _, e := range demoEncodings {
		q, err := quant.Parse(e)
		if err != nil {
			return err
		}
		plan, err := convert.MakePlan(m.Config, m.Tensors, convert.Policy{Quant: q})
		if err != nil {
			return err
		}
		out := filepath.Join(outDir, fmt.Sprintf("%s-%s.shrink", demo.Name, e))
		res, err := convert.Convert(ctx, m, plan, out, convert.Options{})
		if err != nil {
			return err
		}
		rows = append(rows, row{e, out, res})
	}

	fmt.Fprintln(w, "1. convert: one file per encoding (norms stay f32; with q8 and q4 the embeddings stay f16)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "encoding\tfile size\tbits/weight\tvs source\tworst tensor rel.err\tmin SNR dB\ttime\t")
	for _, r := range rows {
		worst, minSNR := 0.0, 999.0
		for _, t := range r.res.Tensors {
			if t.Metrics != nil {
				worst = max(worst, t.Metrics.RelFrobenius)
				minSNR = min(minSNR, t.Metrics.SNRdB)
			}
		}
		snr := fmt.Sprintf("%.1f", minSNR)
		if minSNR >= 999 {
			snr = "exact"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.3f\t%.2e\t%s\t%.2fs\t\n", r.enc, humanBytes(r.res.Bytes),
			float64(r.res.Plan.TotalBytes)*8/float64(r.res.Plan.Params),
			float64(r.res.Bytes)/float64(r.res.Plan.SourceBytes), worst, snr, r.res.Duration.Seconds())
	}
	tw.Flush()

	last := rows[len(rows)-1]
	fmt.Fprintf(w, "\n2. inspect %s (checksums verified on open)\n\n", filepath.Base(last.path))
	f, err := format.Open(last.path)
	if err != nil {
		return err
	}
	defer f.Close()
	printInspect(w, makeInspectReport(f, true))

	models := make([]*runtime.Model, len(rows))
	for i, r := range rows {
		if models[i], err = runtime.Open(r.path, runtime.Options{}); err != nil {
			return err
		}
		defer models[i].Close()
	}

	const prompt, n = "Once upon a time", 40
	fmt.Fprintf(w, "\n3. run: %q, %d greedy tokens from each file (no dequantization: the kernels read the encoded weights)\n\n", prompt, n)
	var base []int
	for i, r := range rows {
		m := models[i]
		ids, err := m.Tokenizer().Encode(prompt, true)
		if err != nil {
			return err
		}
		var gen []int
		st, err := m.Generate(ctx, ids, n, runtime.SamplerConfig{}, func(id int) error {
			gen = append(gen, id)
			return nil
		})
		if err != nil {
			return err
		}
		text, err := m.Tokenizer().Decode(append(ids, gen...), true)
		if err != nil {
			return err
		}
		if i == 0 {
			base = gen
		}
		same := 0
		for same < min(len(gen), len(base)) && gen[same] == base[same] {
			same++
		}
		fmt.Fprintf(w, "%-5s %s\n      (%d tokens, %.0f tok/s; first %d tokens identical to f32)\n\n",
			r.enc, strings.Join(strings.Fields(text), " "), len(gen), st.GenTokensPerSec(), same)
	}

	docs := eval.SplitDocuments(demo.Stories, eval.DefaultDocSep)
	tokens, err := eval.Frame(models[0].Tokenizer(), docs)
	if err != nil {
		return err
	}
	const ctxLen = 128
	fmt.Fprintf(w, "4. eval: each file against the f32 one on %d built-in stories (%d tokens, chunks of %d)\n\n", len(docs), len(tokens), ctxLen)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "encoding\tbits/weight\tPPL\tPPL ratio\tmean KLD\t99% KLD\tsame top\t")
	for i, r := range rows {
		rep, err := eval.Run(ctx, models[0], models[i], tokens, eval.Options{Ctx: ctxLen})
		if err != nil {
			return err
		}
		s := rep.Summary
		fmt.Fprintf(tw, "%s\t%.2f\t%.3f\t%.5f\t%.2e\t%.2e\t%.2f%%\t\n", r.enc,
			float64(r.res.Plan.TotalBytes)*8/float64(r.res.Plan.Params), s.PPL.Value, s.PPLRatio.Value,
			s.KLD.Value, s.KLDDist.P99, 100*s.SameTop.Value)
	}
	tw.Flush()
	if keep != "" {
		fmt.Fprintf(w, "\nfiles kept in %s\n", keep)
	}
	return nil
}
