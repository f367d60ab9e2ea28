package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/shrink-llm/shrink/runtime"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "generate text with a .shrink model on the CPU, straight from its compressed weights",
		ArgsUsage: "FILE.shrink",
		Flags: []cli.Flag{
			promptFlag("prompt `TEXT`"),
			&cli.StringFlag{Name: "ids", Usage: "prompt as comma-separated token `IDS` instead of text (no BOS is added)"},
			&cli.IntFlag{Name: "n", Value: 64, Usage: "at most `N` new tokens"},
			&cli.Float64Flag{Name: "temp", Value: 0, Usage: "sampling temperature `T` (0 = greedy)"},
			&cli.IntFlag{Name: "top-k", Value: 0, Usage: "keep the `K` most likely tokens (0 = all)"},
			&cli.Float64Flag{Name: "top-p", Value: 1, Usage: "nucleus sampling mass `P` in (0, 1]"},
			&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "random `SEED` for sampling"},
			threadsFlag(),
			&cli.BoolFlag{Name: "no-echo", Usage: "do not print the prompt before the generated text"},
			&cli.BoolFlag{Name: "exact", Usage: "float32 activations in every product (slower; only the weights' rounding differs from the original)"},
		},
		Action: withPath("one .shrink file", func(c *cli.Context, path string) error {
			if p := c.Float64("top-p"); !(p > 0 && p <= 1) {
				return usagef("--top-p %v: want a probability mass in (0, 1]", p)
			}
			if (c.String("prompt") == "") == (c.String("ids") == "") {
				return usagef("run: give exactly one of -p TEXT or --ids IDS")
			}
			return doRun(c.Context, c.App.Writer, c.App.ErrWriter, runArgs{
				path: path, prompt: c.String("prompt"), ids: c.String("ids"), n: c.Int("n"),
				sampler: runtime.SamplerConfig{Temperature: c.Float64("temp"), TopK: c.Int("top-k"), TopP: c.Float64("top-p"), Seed: c.Uint64("seed")},
				threads: c.Int("threads"), echo: !c.Bool("no-echo"), exact: c.Bool("exact"),
			})
		}),
	}
}

type runArgs struct {
	path, prompt, ids string
	n                 int
	sampler           runtime.SamplerConfig
	threads           int
	echo              bool
	exact             bool // float32 activations (runtime.Options.ExactQ8)
}

func parseIDs(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, usagef("--ids: %q is not a token id", clip(f))
		}
		ids = append(ids, v)
	}
	return ids, nil
}

func doRun(ctx context.Context, stdout, stderr io.Writer, a runArgs) error {
	if _, err := runtime.NewSampler(a.sampler); err != nil {
		return usageError{err} // the sampling flags are out of range
	}
	if a.n < 0 {
		return fmt.Errorf("-n %d: want a non-negative number of tokens", a.n)
	}
	m, err := runtime.Open(a.path, runtime.Options{Threads: a.threads, ExactQ8: a.exact})
	if err != nil {
		return err
	}
	defer m.Close()
	// Parsing the header and tokenizer.json leaves megabytes of garbage;
	// hand it back to the OS so resident memory is the model, not the load.
	debug.FreeOSMemory()
	tok := m.Tokenizer()
	var prompt []int
	if a.ids != "" {
		if prompt, err = parseIDs(a.ids); err != nil { // usage error
			return err
		}
		for _, id := range prompt {
			if id < 0 || id >= m.Config().VocabSize {
				return fmt.Errorf("--ids: token %d is outside the vocabulary of %d", id, m.Config().VocabSize)
			}
		}
	} else {
		if tok == nil {
			return fmt.Errorf("%s: the file has no tokenizer; use --ids", a.path)
		}
		if prompt, err = tok.Encode(a.prompt, true); err != nil {
			return fmt.Errorf("tokenizing the prompt: %w", err)
		}
	}
	if a.echo && a.prompt != "" {
		fmt.Fprint(stdout, a.prompt)
	}
	st := newTextStream(tok, prompt, stdout)
	stats, err := m.Generate(ctx, prompt, a.n, a.sampler, st.add)
	st.flush()
	fmt.Fprintln(stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "prompt: %d tokens, %.1f tok/s | generation: %d tokens, %.1f tok/s | model in memory: %s\n",
		stats.PromptTokens, tokPerSec(stats.PromptTokens, stats.PromptDuration.Seconds()),
		stats.GenTokens, tokPerSec(stats.GenTokens, stats.GenDuration.Seconds()), humanBytes(m.ResidentBytes()))
	return nil
}

func tokPerSec(n int, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(n) / s
}

// textStream prints generated text as it comes, through the tokenizer's
// stream decoder, primed with the prompt so that decoders that look at
// neighbouring tokens (the first-space strip of Llama's) treat the first
// generated token as a continuation, exactly as decoding the whole
// sequence would. Special tokens are not printed.
type textStream struct {
	tok *tokenizer.Tokenizer
	dec *tokenizer.StreamDecoder
	w   io.Writer
}

func newTextStream(tok *tokenizer.Tokenizer, prompt []int, w io.Writer) *textStream {
	s := &textStream{tok: tok, w: w}
	if tok == nil {
		return s
	}
	s.dec = tok.NewDecoder()
	for _, id := range prompt {
		if _, err := s.dec.Next(id); err != nil {
			// An unknown id was caught earlier; without a decoder the ids
			// are printed as numbers.
			s.dec = nil
			break
		}
	}
	// The prompt's own text (echoed already) is discarded; the decoder keeps
	// its last token as left context for the first generated one.
	return s
}

func (s *textStream) add(id int) error {
	if s.dec == nil {
		_, err := fmt.Fprintf(s.w, " %d", id)
		return err
	}
	if s.tok.IsSpecial(id) {
		return nil
	}
	txt, err := s.dec.Next(id)
	if err != nil {
		return err
	}
	_, err = io.WriteString(s.w, txt)
	return err
}

func (s *textStream) flush() {
	if s.dec != nil {
		_, _ = io.WriteString(s.w, s.dec.Flush())
	}
}
