package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/shrink-llm/shrink/eval"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/runtime"
)

// inputFlags select the evaluation tokens; eval and sweep share them.
func inputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "text", Usage: "evaluate on text `FILE`, split into documents at separator lines, tokenized and framed as the model's tokenizer says"},
		&cli.StringFlag{Name: "tokens", Usage: "evaluate on a pre-tokenized stream `FILE.safetensors:NAME` (1-D I32/I64) instead of --text"},
		&cli.StringFlag{Name: "doc-sep", Value: eval.DefaultDocSep, Usage: "document separator `LINE` in --text (empty: the file is one document)"},
		&cli.IntFlag{Name: "ctx", Value: 256, Usage: "chunk length in `TOKENS`"},
		&cli.IntFlag{Name: "chunks", Usage: "evaluate at most `N` chunks (0 = all)"},
		&cli.StringFlag{Name: "chunk-range", Usage: "evaluate chunks `A-B` of the stream only (0-based, inclusive; instead of --chunks)"},
		&cli.BoolFlag{Name: "exact", Usage: "float32 activations in every product (weight error only), instead of the runtime's int8 activations for q8 and packed weights"},
		&cli.StringFlag{Name: "convention", Value: string(eval.ScoreAll), Usage: "scoring `CONV`: all (every prediction in a chunk) or half (llama.cpp: BOS first, second half scored)"},
		threadsFlag(),
	}
}

func evalCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "ref", Usage: "reference `MODEL`: checkpoint folder, llama2.c .bin (run as float32) or a float32 .shrink"},
		&cli.StringSliceFlag{Name: "model", Aliases: []string{"m"}, Usage: "candidate `FILE.shrink` to evaluate against --ref (repeatable: every candidate is compared on the same chunks in one pass of the reference)"},
	}
	flags = append(flags, inputFlags()...)
	flags = append(flags,
		jsonFlag("print the whole report as JSON"),
		&cli.StringFlag{Name: "tensors", Usage: "weight error only: compare every tensor of `FILE.shrink` with --ref, no text needed"},
		&cli.StringFlag{Name: "calib", Usage: "with --tensors: also the activation-weighted error on activations of text `FILE`"},
		&cli.IntFlag{Name: "calib-tokens", Value: 4096, Usage: "with --calib: use the first `N` tokens"},
	)
	return &cli.Command{
		Name:  "eval",
		Usage: "measure what compression cost: KL divergence, perplexity and top-1 agreement against the original model, or per-tensor weight error",
		Description: `Model level: the reference and the candidate run on exactly the same chunks of
   --ctx tokens of --text (or --tokens), and their next-token distributions are
   compared position by position, with the definitions llama.cpp's perplexity
   tool uses for --kl-divergence.
   Tensor level (--tensors FILE): relative Frobenius error, SNR and cosine of
   every tensor against the original, worst first, with totals per kind and per
   layer; --calib adds the activation-weighted error ‖(W−Ŵ)X‖/‖WX‖.`,
		Flags: flags,
		Action: withoutArgs("--ref, --model, --text", func(c *cli.Context) error {
			if c.String("ref") == "" {
				return usagef("eval: --ref MODEL is required")
			}
			if c.String("tensors") != "" {
				if len(c.StringSlice("model")) > 0 || c.String("text") != "" || c.String("tokens") != "" {
					return usagef("eval: --tensors compares weights only; it takes no --model, --text or --tokens (use --calib for activations)")
				}
				if c.Int("calib-tokens") < 1 {
					return usagef("eval: --calib-tokens %d: want at least 1", c.Int("calib-tokens"))
				}
				return doEvalTensors(c.Context, c.App.Writer, c.App.ErrWriter, tensorArgs{
					ref: c.String("ref"), file: c.String("tensors"), calib: c.String("calib"), calibTokens: c.Int("calib-tokens"),
					docSep: c.String("doc-sep"), ctx: c.Int("ctx"), threads: c.Int("threads"), json: c.Bool("json"),
				})
			}
			if c.String("calib") != "" {
				return usagef("eval: --calib goes with --tensors")
			}
			if len(c.StringSlice("model")) == 0 {
				return usagef("eval: --model FILE is required (or --tensors FILE for weight error only)")
			}
			in, err := inputFromFlags(c)
			if err != nil {
				return err
			}
			return doEval(c.Context, c.App.Writer, c.App.ErrWriter, evalArgs{
				ref: c.String("ref"), models: c.StringSlice("model"), input: in, json: c.Bool("json"),
			})
		}),
	}
}

// inputArgs are the parsed shared input flags.
type inputArgs struct {
	text, tokens, docSep string
	opts                 eval.Options
	threads              int
	exact                bool
}

func inputFromFlags(c *cli.Context) (inputArgs, error) {
	a := inputArgs{text: c.String("text"), tokens: c.String("tokens"), docSep: c.String("doc-sep"), threads: c.Int("threads"), exact: c.Bool("exact")}
	if (a.text == "") == (a.tokens == "") {
		return a, usagef("%s: give exactly one of --text FILE or --tokens FILE.safetensors:NAME", c.Command.Name)
	}
	conv := eval.Convention(c.String("convention"))
	if conv != eval.ScoreAll && conv != eval.ScoreHalf {
		return a, usagef("--convention %q: want all or half", conv)
	}
	if c.Int("ctx") < 4 {
		return a, usagef("--ctx %d: want at least 4 tokens", c.Int("ctx"))
	}
	if c.Int("chunks") < 0 {
		return a, usagef("--chunks %d: want 0 (all) or more", c.Int("chunks"))
	}
	if a.threads < 0 {
		return a, usagef("--threads %d: want 0 (all cores) or more", a.threads)
	}
	a.opts = eval.Options{Ctx: c.Int("ctx"), Chunks: c.Int("chunks"), Convention: conv}
	if s := c.String("chunk-range"); s != "" {
		if c.IsSet("chunks") {
			return a, usagef("--chunk-range and --chunks exclude each other")
		}
		first, last, err := parseChunkRange(s)
		if err != nil {
			return a, usagef("--chunk-range: %v", err)
		}
		a.opts.First, a.opts.Chunks = first, last-first+1
	}
	return a, nil
}

// parseChunkRange reads "A-B" (0-based chunk indices, inclusive) or "A"
// (that chunk alone).
func parseChunkRange(s string) (first, last int, err error) {
	a, b, dash := strings.Cut(strings.TrimSpace(s), "-")
	bad := fmt.Errorf("%q: want A-B with 0 ≤ A ≤ B (chunk indices, 0-based, inclusive)", s)
	if first, err = strconv.Atoi(strings.TrimSpace(a)); err != nil || first < 0 {
		return 0, 0, bad
	}
	last = first
	if dash {
		if last, err = strconv.Atoi(strings.TrimSpace(b)); err != nil || last < first {
			return 0, 0, bad
		}
	}
	return first, last, nil
}

// readInput tokenizes the text with the reference's tokenizer (the
// candidates were checked to have the same one) or loads the token stream.
func readInput(a inputArgs, ref *runtime.Model) (*eval.Input, error) {
	if a.tokens != "" {
		return eval.ReadTokens(a.tokens)
	}
	var tok eval.Encoder
	if t := ref.Tokenizer(); t != nil {
		tok = t
	}
	// With --chunks only the first chunks × ctx tokens are evaluated, so no
	// more are tokenized (a huge text then costs a scan, not its tokens).
	limit := 0
	if a.opts.Chunks > 0 {
		limit = (a.opts.First + a.opts.Chunks) * a.opts.Ctx
	}
	return eval.ReadTextLimit(a.text, a.docSep, textdata.DocRange{}, tok, limit)
}

type evalArgs struct {
	ref    string
	models []string
	input  inputArgs
	json   bool
}

func doEval(ctx context.Context, stdout, stderr io.Writer, a evalArgs) error {
	ropts := runtime.Options{Threads: a.input.threads, ExactQ8: a.input.exact}
	ref, err := eval.OpenModel(ctx, a.ref, ropts)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	defer ref.Close()
	cands := make([]*eval.Loaded, len(a.models))
	models := make([]*runtime.Model, len(a.models))
	for i, path := range a.models {
		cands[i] = ref
		if !samePath(a.ref, path) {
			if cands[i], err = eval.OpenModel(ctx, path, ropts); err != nil {
				return fmt.Errorf("candidate %s: %w", path, err)
			}
			defer cands[i].Close()
		}
		if err := eval.CheckCompatible(ref.Model, cands[i].Model); err != nil {
			return fmt.Errorf("%s vs %s: %w", a.ref, path, err)
		}
		models[i] = cands[i].Model
	}
	in, err := readInput(a.input, ref.Model)
	if err != nil {
		return err
	}
	opts := a.input.opts
	bar := newCountProgress(stderr, "evaluating")
	if bar != nil {
		opts.Progress = bar.update
	}
	reps, err := eval.RunMany(ctx, ref.Model, models, in.Tokens, opts)
	bar.finish()
	if err != nil {
		return fmt.Errorf("%s: %w", in.Source, err)
	}
	for i, rep := range reps {
		rep.Ref, rep.Model, rep.Input = &ref.Info, &cands[i].Info, in
		rep.Exact = a.input.exact
	}
	if a.json {
		if len(reps) == 1 {
			return writeJSON(stdout, reps[0])
		}
		return writeJSON(stdout, reps)
	}
	for i, rep := range reps {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := rep.WriteText(stdout); err != nil {
			return err
		}
	}
	return nil
}

func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

type tensorArgs struct {
	ref, file, calib, docSep string
	calibTokens, ctx         int
	threads                  int
	json                     bool
}

func doEvalTensors(ctx context.Context, stdout, stderr io.Writer, a tensorArgs) error {
	f, err := format.Open(a.file)
	if err != nil {
		return err
	}
	defer f.Close()
	src, err := eval.OpenTensorSource(a.ref)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	defer src.Close()
	var cal *eval.Calibration
	if a.calib != "" {
		if cal, err = calibrate(ctx, stderr, a); err != nil {
			return err
		}
	}
	rep, err := eval.CompareTensors(ctx, src, a.ref, f, cal)
	if err != nil {
		return err
	}
	if a.json {
		return writeJSON(stdout, rep)
	}
	return rep.WriteText(stdout)
}

// calibrate runs the float32 reference over the first tokens of the
// calibration text and gathers its activation statistics.
func calibrate(ctx context.Context, stderr io.Writer, a tensorArgs) (*eval.Calibration, error) {
	ref, err := eval.OpenModel(ctx, a.ref, runtime.Options{Threads: a.threads})
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	defer ref.Close()
	in, err := readInput(inputArgs{text: a.calib, docSep: a.docSep}, ref.Model)
	if err != nil {
		return nil, fmt.Errorf("--calib: %w", err)
	}
	toks := in.Tokens[:min(len(in.Tokens), a.calibTokens)]
	fmt.Fprintf(stderr, "calibrating on %d tokens of %s\n", len(toks), a.calib)
	cal, err := eval.Calibrate(ctx, ref.Model, toks, a.ctx, a.calib)
	if err != nil {
		return nil, fmt.Errorf("--calib %s: %w", a.calib, err)
	}
	return cal, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
