package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/shrink-llm/shrink/runtime"

	"github.com/shrink-llm/shrink/internal/bench"
	"github.com/shrink-llm/shrink/internal/membw"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure prompt processing and generation speed (like llama-bench) against the memory-bandwidth roofline",
		Description: "For each thread count: ppN prefills N random tokens into an empty cache (logits of the last\n" +
			"position only); tgN decodes N tokens one at a time from an empty cache. Each test runs once to\n" +
			"warm up, then --reps times; t/s is the median ± the standard deviation. Right before the\n" +
			"decode test, and again right after it, the memory read bandwidth is measured with the same\n" +
			"thread count; roofline is t/s × weight bytes read per decoded token / the larger of the two.",
		ArgsUsage: "FILE.shrink",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "threads", Aliases: []string{"t"}, Value: cli.NewStringSlice("1", "2"), Usage: "thread counts `N` (repeatable or a comma list)"},
			&cli.IntFlag{Name: "pp", Value: 128, Usage: "prompt `TOKENS` for the prefill test (0 = skip)"},
			&cli.IntFlag{Name: "tg", Value: 64, Usage: "generated `TOKENS` for the decode test (0 = skip)"},
			&cli.IntFlag{Name: "reps", Aliases: []string{"r"}, Value: 5, Usage: "timed `REPETITIONS` of each test"},
			&cli.Int64Flag{Name: "bw-mib", Value: membw.DefaultBytes >> 20, Usage: "bandwidth probe buffer `MIB` (0 = no bandwidth measurement)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random `SEED` for the prompt tokens"},
			jsonFlag("print the results as JSON"),
		},
		Action: withPath("one .shrink file", func(c *cli.Context, path string) error {
			threads, err := parseThreads(c.StringSlice("threads"))
			if err != nil {
				return err
			}
			a := benchArgs{
				path: path, threads: threads, pp: c.Int("pp"), tg: c.Int("tg"),
				reps: c.Int("reps"), bwBytes: c.Int64("bw-mib") << 20, seed: c.Uint64("seed"), json: c.Bool("json"),
			}
			if a.pp < 0 || a.tg < 0 || a.pp+a.tg == 0 {
				return usagef("bench: --pp %d and --tg %d must be non-negative and not both 0", a.pp, a.tg)
			}
			if a.reps < 1 {
				return usagef("bench: --reps %d: want at least 1", a.reps)
			}
			if a.bwBytes < 0 {
				return usagef("bench: --bw-mib must not be negative")
			}
			return doBench(c.Context, c.App.Writer, c.App.ErrWriter, a)
		}),
	}
}

// parseThreads reads "1,2" style lists, possibly given several times.
func parseThreads(vals []string) ([]int, error) {
	var out []int
	for _, v := range vals {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > runtime.MaxThreads {
				return nil, usagef("--threads: %q is not a thread count from 1 to %d", clip(f), runtime.MaxThreads)
			}
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--threads: no thread count given")
	}
	return out, nil
}

type benchArgs struct {
	path         string
	threads      []int
	pp, tg, reps int
	bwBytes      int64
	seed         uint64
	json         bool
}

// benchResult is one row of the table (and one JSON record).
type benchResult = bench.Result

func doBench(ctx context.Context, stdout, stderr io.Writer, a benchArgs) error {
	o := bench.Options{Threads: a.threads, PP: a.pp, TG: a.tg, Reps: a.reps, BandwidthBytes: a.bwBytes, Seed: a.seed}
	if !a.json {
		// Rows appear as they are measured; the final table repeats them.
		o.Progress = func(rs []bench.Result) {
			for _, r := range rs {
				fmt.Fprintf(stderr, "%s threads=%d: %.2f t/s\n", r.Test, r.Threads, r.TokS)
			}
		}
	}
	results, err := bench.Run(ctx, a.path, o)
	if err != nil {
		return err
	}
	if a.json {
		return writeJSON(stdout, results)
	}
	printBench(stdout, results)
	return nil
}

func printBench(w io.Writer, results []benchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "model\tsize\tparams\ttype\tthreads\ttest\tt/s\tweights/token\tmem GB/s\troofline\t")
	for _, r := range results {
		bpt, bw, roof := "-", "-", "-"
		if r.BytesPerToken > 0 {
			bpt = humanBytes(r.BytesPerToken)
		}
		if r.Bandwidth > 0 {
			bw = fmt.Sprintf("%.1f", r.Bandwidth/1e9)
			roof = fmt.Sprintf("%.0f%%", 100*r.Roofline)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%.2f ± %.2f\t%s\t%s\t%s\t\n",
			r.Model, humanBytes(r.Size), humanCount(r.Params), r.Type, r.Threads, r.Test, r.TokS, r.StdDev, bpt, bw, roof)
	}
	tw.Flush()
}
