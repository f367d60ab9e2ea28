package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/runtime"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
	"github.com/urfave/cli/v2"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a .shrink file (header, config, tokenizer, tensor table with sizes and conversion errors) or a GGUF file (metadata, tensors, the model it converts to)",
		ArgsUsage: "FILE.shrink|FILE.gguf",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verify", Usage: "recompute every checksum"},
			jsonFlag("print as JSON"),
		},
		Action: withPath("one .shrink or GGUF file", func(c *cli.Context, path string) error {
			if gguf.IsFile(path) {
				return inspectGGUF(c.App.Writer, path, c.Bool("json"))
			}
			f, err := format.OpenWithOptions(path, format.OpenOptions{SkipVerify: !c.Bool("verify")})
			if err != nil {
				return err
			}
			defer f.Close()
			if c.Bool("verify") {
				if err := verifyModel(f); err != nil {
					return err
				}
			}
			rep := makeInspectReport(f, c.Bool("verify"))
			if c.Bool("json") {
				return writeJSON(c.App.Writer, rep)
			}
			printInspect(c.App.Writer, rep)
			return nil
		}),
	}
}

type tokSummary struct {
	Kind  string `json:"kind"`
	Vocab int    `json:"vocab_size,omitempty"`
	BOS   string `json:"bos,omitempty"`
	EOS   string `json:"eos,omitempty"`
	Error string `json:"error,omitempty"`
}

type inspectReport struct {
	Path        string         `json:"path"`
	FileBytes   int64          `json:"file_bytes"`
	Verified    bool           `json:"checksums_verified"`
	Header      *format.Header `json:"header"`
	Tokenizer   tokSummary     `json:"tokenizer"`
	Params      int64          `json:"params"`
	TensorBytes int64          `json:"tensor_bytes"`
	SourceBytes int64          `json:"source_bytes,omitempty"`
	BitsPerW    float64        `json:"bits_per_weight"`
	Ratio       float64        `json:"ratio_to_source,omitempty"`
}

func makeInspectReport(f *format.File, verified bool) *inspectReport {
	h := f.Header()
	rep := &inspectReport{Path: f.Path(), FileBytes: f.Size(), Verified: verified, Header: h}
	for _, t := range h.Tensors {
		rep.Params += convert.Numel(t.Shape)
		for _, p := range t.Parts {
			rep.TensorBytes += int64(p.Length)
		}
	}
	if rep.Params > 0 {
		rep.BitsPerW = float64(rep.TensorBytes) * 8 / float64(rep.Params)
	}
	if s, err := strconv.ParseInt(h.Metadata["source_bytes"], 10, 64); err == nil && s > 0 {
		rep.SourceBytes = s
		rep.Ratio = float64(rep.FileBytes) / float64(s)
	}
	rep.Tokenizer = summarizeTokenizer(f)
	return rep
}

func summarizeTokenizer(f *format.File) tokSummary {
	tok, err := runtime.LoadTokenizer(f)
	if err == nil && tok == nil {
		err = errors.New("the file carries no tokenizer (token ids only)")
	}
	return newTokSummary(f.Header().TokenizerKind, tok, err)
}

// newTokSummary describes a loaded tokenizer, or why it could not be loaded
// (err), for the .shrink and the GGUF inspect alike.
func newTokSummary(kind string, tok *tokenizer.Tokenizer, err error) tokSummary {
	s := tokSummary{Kind: kind}
	if err != nil {
		s.Error = err.Error()
		return s
	}
	s.Vocab = tok.VocabSize()
	name := func(id int) string {
		if id < 0 {
			return "none"
		}
		return fmt.Sprintf("%d %q", id, tok.Token(id))
	}
	s.BOS, s.EOS = name(tok.BOS()), name(tok.EOS())
	return s
}

// String is the summary's line in the printed reports.
func (t tokSummary) String() string {
	if t.Error != "" {
		return fmt.Sprintf("%s (cannot load: %s)", t.Kind, t.Error)
	}
	return fmt.Sprintf("%s, %d tokens, bos %s, eos %s", t.Kind, t.Vocab, t.BOS, t.EOS)
}

func describeConfig(c format.ModelConfig) string {
	tied := "untied output"
	if c.TiedEmbeddings {
		tied = "tied embeddings"
	}
	s := fmt.Sprintf("%s (%s): %d layers, hidden %d, heads %d/%d kv (head_dim %d), ffn %d, vocab %d, context %d, %s eps %g, %s, %s",
		c.Arch, c.Source, c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize,
		c.VocabSize, c.ContextLength, c.NormKind, c.NormEps, c.Activation, tied)
	if c.RopeTheta != 0 {
		s += fmt.Sprintf(", rope theta %g", c.RopeTheta)
	}
	return s
}

func printInspect(w io.Writer, r *inspectReport) {
	h := r.Header
	check := "checksums not verified (use --verify)"
	if r.Verified {
		check = "all checksums verified"
	}
	fmt.Fprintf(w, "file:      %s (%s, format v%d, %s)\n", r.Path, humanBytes(r.FileBytes), h.Version, check)
	fmt.Fprintf(w, "model:     %s\n", describeConfig(h.Config))
	fmt.Fprintf(w, "tokenizer: %s\n", r.Tokenizer)
	if p := h.Metadata["policy"]; p != "" {
		fmt.Fprintf(w, "policy:    %s\n", p)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tensor\tshape\tenc\tbytes\tbits/w\trel.err\tSNR dB\tcosine\t")
	for _, tn := range h.Tensors {
		var bytes int64
		encs := ""
		for i, p := range tn.Parts {
			bytes += int64(p.Length)
			if i > 0 {
				encs += "+"
			}
			encs += p.Encoding.String()
		}
		if tn.Kind != format.KindDense {
			encs = string(tn.Kind) + ":" + encs
		}
		rel, snr, cos := "-", "-", "-"
		if m := tn.Metrics; m != nil {
			rel = fmt.Sprintf("%.2e", m.RelFrobenius)
			snr = fmt.Sprintf("%.1f", m.SNRdB)
			if m.SNRdB >= 999 {
				snr = "exact"
			}
			cos = fmt.Sprintf("%.6f", m.Cosine)
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%.2f\t%s\t%s\t%s\t\n", tn.Name, tn.Shape, encs, bytes,
			float64(bytes)*8/float64(max(convert.Numel(tn.Shape), 1)), rel, snr, cos)
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal: %d tensors, %s params, tensor data %s (%.2f bits/weight), file %s",
		len(h.Tensors), humanCount(r.Params), humanBytes(r.TensorBytes), r.BitsPerW, humanBytes(r.FileBytes))
	if r.SourceBytes > 0 {
		fmt.Fprintf(w, ", source %s, ratio %.3f", humanBytes(r.SourceBytes), r.Ratio)
	}
	fmt.Fprintln(w)
}
