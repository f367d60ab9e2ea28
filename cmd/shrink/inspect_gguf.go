package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

type ggufKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

type ggufTensorRow struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"`
	Shape []int64 `json:"shape"` // outermost first, as shrink and Hugging Face write shapes
	Bytes int64   `json:"bytes"`
}

type ggufReport struct {
	Path        string              `json:"path"`
	FileBytes   int64               `json:"file_bytes"`
	Version     uint32              `json:"gguf_version"`
	Alignment   int64               `json:"alignment"`
	Config      *format.ModelConfig `json:"config,omitempty"`
	ConfigError string              `json:"config_error,omitempty"`
	Tokenizer   tokSummary          `json:"tokenizer"`
	Metadata    []ggufKV            `json:"metadata"`
	Tensors     []ggufTensorRow     `json:"tensors"`
	Params      int64               `json:"params"`
	TensorBytes int64               `json:"tensor_bytes"`
	BitsPerW    float64             `json:"bits_per_weight"`
}

// inspectGGUF shows a GGUF file: its header, metadata, tensors, and the
// model shrink would convert it to.
func inspectGGUF(w io.Writer, path string, asJSON bool) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rep := &ggufReport{Path: path, FileBytes: f.Size, Version: f.Version, Alignment: f.Alignment}
	for _, kv := range f.KV {
		rep.Metadata = append(rep.Metadata, ggufKV{Key: kv.Key, Type: kv.Value.Type().String(), Value: kv.Value.String()})
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		rep.Tensors = append(rep.Tensors, ggufTensorRow{Name: t.Name, Type: t.Type.String(), Shape: t.Shape(), Bytes: t.Size})
		rep.Params += t.Elements()
		rep.TensorBytes += t.Size
	}
	if rep.Params > 0 {
		rep.BitsPerW = float64(rep.TensorBytes) * 8 / float64(rep.Params)
	}
	if m, err := convert.Open(path, convert.OpenOptions{}); err != nil {
		rep.ConfigError = err.Error()
	} else {
		rep.Config = &m.Config
		m.Close()
	}
	rep.Tokenizer = summarizeGGUFTokenizer(f)
	if asJSON {
		return writeJSON(w, rep)
	}
	printGGUF(w, rep)
	return nil
}

func summarizeGGUFTokenizer(f *gguf.File) tokSummary {
	if !f.Has("tokenizer.ggml.model") {
		return newTokSummary(format.TokenizerGGUF, nil, errors.New("the file carries no tokenizer"))
	}
	v, err := tokenizer.VocabFromGGUF(f)
	var tok *tokenizer.Tokenizer
	if err == nil {
		tok, err = tokenizer.FromGGUFVocab(v)
	}
	return newTokSummary(format.TokenizerGGUF, tok, err)
}

func printGGUF(w io.Writer, r *ggufReport) {
	fmt.Fprintf(w, "file:      %s (%s, GGUF v%d, alignment %d)\n", r.Path, humanBytes(r.FileBytes), r.Version, r.Alignment)
	if r.Config != nil {
		fmt.Fprintf(w, "model:     %s\n", describeConfig(*r.Config))
	} else {
		fmt.Fprintf(w, "model:     not convertible: %s\n", r.ConfigError)
	}
	fmt.Fprintf(w, "tokenizer: %s\n", r.Tokenizer)
	fmt.Fprintf(w, "\nmetadata (%d keys):\n", len(r.Metadata))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, kv := range r.Metadata {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", printable(kv.Key), kv.Type, kv.Value)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tensor\tshape\ttype\tbytes\tbits/w\t")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%.2f\t\n", printable(t.Name), t.Shape, t.Type, t.Bytes, float64(t.Bytes)*8/float64(max(convert.Numel(t.Shape), 1)))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal: %d tensors, %s params, tensor data %s (%.2f bits/weight), file %s\n",
		len(r.Tensors), humanCount(r.Params), humanBytes(r.TensorBytes), r.BitsPerW, humanBytes(r.FileBytes))
}

// printable returns s, or s quoted when it holds bytes a terminal would
// act on (a GGUF file's names are untrusted).
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}
