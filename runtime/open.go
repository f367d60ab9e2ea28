package runtime

import (
	"fmt"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

// FileSource adapts an open .shrink file to WeightSource. Part data aliases
// the file's read-only mapping: nothing is copied or decoded.
type FileSource struct {
	F *format.File
}

// Config returns the file's model configuration.
func (s FileSource) Config() format.ModelConfig { return s.F.Config() }

// DropPages releases the process's mapping of part bytes the runtime has
// copied (see format.File.DropPages).
func (s FileSource) DropPages(b []byte) { s.F.DropPages(b) }

// Weight returns the named tensor with its parts' bytes mapped from the file.
func (s FileSource) Weight(name string) (*Weight, bool) {
	t, ok := s.F.Tensor(name)
	if !ok {
		return nil, false
	}
	w := &Weight{Name: t.Name, Shape: t.Shape, Kind: t.Kind, Parts: make([]WeightPart, len(t.Parts))}
	for i := range t.Parts {
		p := &t.Parts[i]
		w.Parts[i] = WeightPart{Role: p.Role, Shape: p.Shape, Encoding: p.Encoding, Data: s.F.PartData(p)}
	}
	return w, true
}

// Open maps a .shrink file (verifying its checksums), builds its tokenizer
// from the stored blobs and loads the model over the mapping.
func Open(path string, opts Options) (*Model, error) {
	f, err := format.Open(path)
	if err != nil {
		return nil, err
	}
	tok, err := LoadTokenizer(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: tokenizer: %w", path, err)
	}
	m, err := New(FileSource{F: f}, tok, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.file = f
	return m, nil
}

// TokenizerBlobs is where LoadTokenizer finds the tokenizer: an open
// *format.File, or the files a converter is about to embed (so that it can
// check them with exactly the loader `run` will use).
type TokenizerBlobs interface {
	Header() *format.Header
	Config() format.ModelConfig
	HasBlob(name string) bool
	Blob(name string) ([]byte, error)
}

// LoadTokenizer builds the tokenizer the header names from the file's blobs.
// A file without a tokenizer kind gives a nil tokenizer (token ids only).
func LoadTokenizer(f TokenizerBlobs) (*tokenizer.Tokenizer, error) {
	optional := func(name string) ([]byte, error) {
		if !f.HasBlob(name) {
			return nil, nil
		}
		return f.Blob(name)
	}
	switch kind := f.Header().TokenizerKind; kind {
	case "":
		return nil, nil
	case "hf":
		tj, err := f.Blob("tokenizer.json")
		if err != nil {
			return nil, err
		}
		tc, err := optional("tokenizer_config.json")
		if err != nil {
			return nil, err
		}
		stm, err := optional("special_tokens_map.json")
		if err != nil {
			return nil, err
		}
		return tokenizer.FromHF(tj, tc, stm)
	case "llama2c":
		bin, err := f.Blob("tokenizer.bin")
		if err != nil {
			return nil, err
		}
		return tokenizer.FromLlama2C(bin, f.Config().VocabSize)
	case format.TokenizerSPM:
		model, err := f.Blob(format.BlobTokenizerModel)
		if err != nil {
			return nil, err
		}
		tc, err := optional(format.BlobTokenizerConfig)
		if err != nil {
			return nil, err
		}
		return tokenizer.FromSentencePiece(model, tc)
	case format.TokenizerGGUF:
		blob, err := f.Blob(format.BlobGGUFVocab)
		if err != nil {
			return nil, err
		}
		return tokenizer.FromGGUFVocabBlob(blob)
	default:
		return nil, fmt.Errorf("unknown tokenizer kind %q", kind)
	}
}
