package eval

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/shrink-llm/shrink/internal/safeio"
	"github.com/shrink-llm/shrink/internal/textdata"
)

// DefaultDocSep is the separator line between documents in the corpora we
// ship with (TinyStories); see textdata.DefaultDocSep.
const DefaultDocSep = textdata.DefaultDocSep

// Encoder is the part of a tokenizer that framing needs.
type Encoder = textdata.Encoder

// SplitDocuments is textdata.SplitDocuments, kept for the CLI's demo and the
// end-to-end tests, which frame text the way eval does.
func SplitDocuments(text, sep string) []string { return textdata.SplitDocuments(text, sep) }

// Frame is textdata.Frame (BOS + document + EOS, concatenated), the framing
// of ../shared's reference eval.ids.
func Frame(tok Encoder, docs []string) ([]int, error) { return textdata.Frame(tok, docs) }

// LoadTokens reads a pre-tokenized stream from "FILE.safetensors:NAME": a
// 1-D I32 or I64 tensor.
func LoadTokens(spec string) ([]int, error) {
	file, name, ok := strings.Cut(spec, ":")
	if !ok || name == "" {
		return nil, fmt.Errorf("--tokens %q: want FILE.safetensors:NAME", spec)
	}
	b, err := safeio.ReadFile(file, maxTokenFileBytes, "a token stream")
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

// maxTokenFileBytes caps a --tokens file, read whole: 1G tokens of I32.
const maxTokenFileBytes = 4 << 30

// Input is the token stream an evaluation runs on and where it came from.
type Input struct {
	Source string `json:"source"` // text file, or FILE.safetensors:NAME
	// Documents is how many documents of a text file were read: those of
	// DocRange, or all the file holds.
	Documents int `json:"documents,omitempty"`
	// DocRange is the range of the file's documents that was read, as
	// textdata.ParseDocRange reads it; empty for all of them.
	DocRange  string `json:"doc_range,omitempty"`
	Tokens    []int  `json:"-"`
	NumTokens int    `json:"tokens"`

	firstDoc int   // file number (1-based) of the first document read
	docEnds  []int // token offset just past each document read
}

// ReadText splits the text file at path into documents at separator lines
// (see textdata.SplitDocuments) and frames them with tok (see
// textdata.Frame) into one stream. tok may be nil only to report that the
// model has no tokenizer.
func ReadText(path, sep string, tok Encoder) (*Input, error) {
	return ReadTextRange(path, sep, textdata.DocRange{}, tok)
}

// ReadTextRange is ReadText for the documents of r only (1-based, as the
// file counts them), so that evaluation can keep off the documents a
// calibration read.
func ReadTextRange(path, sep string, r textdata.DocRange, tok Encoder) (*Input, error) {
	return ReadTextLimit(path, sep, r, tok, 0)
}

// ReadTextLimit is ReadTextRange that stops tokenizing after the document
// which brings the stream to maxTokens (≤ 0: no limit); the documents are
// still counted. The file is streamed a document at a time (see
// textdata.ScanDocuments), so memory follows the tokens kept, not the file,
// and only a regular file is read (a pipe or a device is refused).
func ReadTextLimit(path, sep string, r textdata.DocRange, tok Encoder, maxTokens int) (*Input, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	first := max(r.First, 1)
	in := &Input{Source: path, firstDoc: first}
	if r != (textdata.DocRange{}) {
		in.DocRange = r.String()
	}
	n := 0 // documents in the file so far
	err = textdata.ScanDocuments(f, sep, func(doc string) error {
		n++
		if n < first || (r.Last > 0 && n > r.Last) {
			return nil
		}
		in.Documents++
		if tok == nil || maxTokens > 0 && len(in.Tokens) >= maxTokens {
			return nil
		}
		// Framed one document at a time to know where each ends; the
		// stream is the same as framing them all at once.
		ids, err := textdata.Frame(tok, []string{doc})
		if err != nil {
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			return fmt.Errorf("document %d: %w", n, err)
		}
		in.Tokens = append(in.Tokens, ids...)
		in.docEnds = append(in.docEnds, len(in.Tokens))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no text to evaluate (the file is empty or holds only separator lines)", path)
	}
	if first > n {
		return nil, fmt.Errorf("%s: document range %s starts past the %d documents of the text", path, r, n)
	}
	if tok == nil {
		return nil, fmt.Errorf("%s: the model has no tokenizer to read text with; use --tokens", path)
	}
	in.NumTokens = len(in.Tokens)
	return in, nil
}

// DocsReached is the range of documents (numbered as in the file) that the
// first n tokens of a text input touch, for saying which documents a limited
// evaluation actually scored; ok is false for a token-stream input.
func (in *Input) DocsReached(n int) (r textdata.DocRange, ok bool) {
	if len(in.docEnds) == 0 || n <= 0 {
		return r, false
	}
	// Document i holds tokens [docEnds[i-1], docEnds[i]); the last one
	// touched is the first whose end is at or past n.
	last := sort.SearchInts(in.docEnds, n)
	last = min(last, len(in.docEnds)-1)
	return textdata.DocRange{First: in.firstDoc, Last: in.firstDoc + last}, true
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
