package eval

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// DefaultDocSep is the separator line between documents in the corpora we
// ship with (TinyStories).
const DefaultDocSep = "<|endoftext|>"

// SplitDocuments cuts text at lines that equal sep (after trimming spaces) and
// trims each document; empty documents are dropped. An empty sep keeps the
// whole text as one document.
func SplitDocuments(text, sep string) []string {
	if sep == "" {
		if d := strings.TrimSpace(text); d != "" {
			return []string{d}
		}
		return nil
	}
	var docs []string
	var cur strings.Builder
	flush := func() {
		if d := strings.TrimSpace(cur.String()); d != "" {
			docs = append(docs, d)
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == sep {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

// Encoder is the part of a tokenizer that framing needs.
type Encoder interface {
	Encode(text string, addSpecial bool) ([]int, error)
	EOS() int
}

// Frame tokenizes every document the way its tokenizer's configuration
// frames a sequence (its post-processor: BOS for the Llama family) and ends
// each with EOS (</s>, or <|endoftext|> for GPT-2), then concatenates them
// into one stream. This is how ../shared's reference eval.ids were made.
func Frame(tok Encoder, docs []string) ([]int, error) {
	var out []int
	for i, d := range docs {
		ids, err := tok.Encode(d, true)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, ids...)
		if e := tok.EOS(); e >= 0 {
			out = append(out, e)
		}
	}
	return out, nil
}

// LoadTokens reads a pre-tokenized stream from "FILE.safetensors:NAME": a
// 1-D I32 or I64 tensor.
func LoadTokens(spec string) ([]int, error) {
	file, name, ok := strings.Cut(spec, ":")
	if !ok || name == "" {
		return nil, fmt.Errorf("--tokens %q: want FILE.safetensors:NAME", spec)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("%s: too short for a safetensors file", file)
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%s: header of %d bytes exceeds the file", file, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		return nil, fmt.Errorf("%s: header: %w", file, err)
	}
	raw, ok := hdr[name]
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", file, name)
	}
	var e struct {
		DType   string   `json:"dtype"`
		Shape   []int64  `json:"shape"`
		Offsets []uint64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", file, name, err)
	}
	data := b[8+n:]
	if len(e.Offsets) != 2 || e.Offsets[0] > e.Offsets[1] || e.Offsets[1] > uint64(len(data)) || len(e.Shape) != 1 {
		return nil, fmt.Errorf("%s: tensor %q: bad offsets %v or shape %v (want 1-D)", file, name, e.Offsets, e.Shape)
	}
	data = data[e.Offsets[0]:e.Offsets[1]]
	var out []int
	switch e.DType {
	case "I32":
		if uint64(len(data)) != uint64(e.Shape[0])*4 {
			return nil, fmt.Errorf("%s: tensor %q: %d bytes for %d I32 values", file, name, len(data), e.Shape[0])
		}
		for i := 0; i+4 <= len(data); i += 4 {
			out = append(out, int(int32(binary.LittleEndian.Uint32(data[i:]))))
		}
	case "I64":
		if uint64(len(data)) != uint64(e.Shape[0])*8 {
			return nil, fmt.Errorf("%s: tensor %q: %d bytes for %d I64 values", file, name, len(data), e.Shape[0])
		}
		for i := 0; i+8 <= len(data); i += 8 {
			out = append(out, int(int64(binary.LittleEndian.Uint64(data[i:]))))
		}
	default:
		return nil, fmt.Errorf("%s: tensor %q has dtype %s, want I32 or I64", file, name, e.DType)
	}
	return out, nil
}

// Input is the token stream an evaluation runs on and where it came from.
type Input struct {
	Source    string `json:"source"`              // text file, or FILE.safetensors:NAME
	Documents int    `json:"documents,omitempty"` // documents found in a text file
	Tokens    []int  `json:"-"`
	NumTokens int    `json:"tokens"`
}

// ReadText splits the text file at path into documents at separator lines
// (see SplitDocuments) and frames them with tok (see Frame) into one stream.
// tok may be nil only to report that the model has no tokenizer.
func ReadText(path, sep string, tok Encoder) (*Input, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs := SplitDocuments(string(b), sep)
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no text to evaluate (the file is empty or holds only separator lines)", path)
	}
	if tok == nil {
		return nil, fmt.Errorf("%s: the model has no tokenizer to read text with; use --tokens", path)
	}
	ids, err := Frame(tok, docs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Input{Source: path, Documents: len(docs), Tokens: ids, NumTokens: len(ids)}, nil
}

// ReadTokens loads a pre-tokenized stream (see LoadTokens).
func ReadTokens(spec string) (*Input, error) {
	ids, err := LoadTokens(spec)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: the token stream is empty", spec)
	}
	return &Input{Source: spec, Tokens: ids, NumTokens: len(ids)}, nil
}
