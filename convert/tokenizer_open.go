package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/runtime"
	"github.com/shrink-llm/shrink/runtime/tokenizer"

	"github.com/shrink-llm/shrink/internal/safeio"
)

// OpenTokenizer builds the tokenizer of path, which may be a .shrink file
// (the tokenizer it carries), a GGUF file (its tokenizer.ggml.* metadata;
// vocab-only files included), a tokenizer.json, a SentencePiece
// tokenizer.model, a llama2.c tokenizer.bin, or a Hugging Face folder
// (tokenizer.json with its config files, else tokenizer.model). Files are
// recognised by their bytes, not their names. kind is the format.Tokenizer*
// kind the tokenizer would be stored as.
func OpenTokenizer(path string) (tok *tokenizer.Tokenizer, kind string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", err
	}
	if st.IsDir() {
		return openTokenizerDir(path)
	}
	f, err := safeio.Open(path)
	if err != nil {
		return nil, "", err
	}
	head := make([]byte, len(format.Magic))
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	switch {
	case string(head) == format.Magic:
		sf, err := format.Open(path)
		if err != nil {
			return nil, "", err
		}
		defer sf.Close()
		kind = sf.Header().TokenizerKind
		tok, err := runtime.LoadTokenizer(sf)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		if tok == nil {
			return nil, "", fmt.Errorf("%s carries no tokenizer (token ids only)", path)
		}
		return tok, kind, nil
	case gguf.IsGGUF(head):
		g, err := gguf.Open(path)
		if err != nil {
			return nil, "", err
		}
		defer g.Close()
		v, err := tokenizer.VocabFromGGUF(g)
		if err != nil {
			return nil, "", fmt.Errorf("%s: tokenizer: %w", path, err)
		}
		tok, err := tokenizer.FromGGUFVocab(v)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return tok, format.TokenizerGGUF, nil
	}
	b, err := safeio.ReadFile(path, maxTokenizerBytes, "a tokenizer")
	if err != nil {
		return nil, "", err
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		tok, err := tokenizer.FromHF(b, nil, nil)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return tok, format.TokenizerHF, nil
	}
	tok, err = tokenizer.FromSentencePiece(b, nil)
	if err == nil {
		return tok, format.TokenizerSPM, nil
	}
	if !errors.Is(err, tokenizer.ErrNotSentencePiece) {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	n, l2cErr := llama2cTokenCount(b)
	if l2cErr == nil {
		tok, err := tokenizer.FromLlama2C(b, n)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return tok, format.TokenizerLlama2c, nil
	}
	return nil, "", fmt.Errorf("%s is not a .shrink, GGUF, tokenizer.json, SentencePiece tokenizer.model or llama2.c tokenizer.bin (%v)", path, l2cErr)
}

// openTokenizerDir reads a Hugging Face folder's tokenizer files.
func openTokenizerDir(dir string) (*tokenizer.Tokenizer, string, error) {
	read := func(name string) ([]byte, error) {
		b, err := safeio.ReadFile(filepath.Join(dir, name), maxTokenizerBytes, "a "+name)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return b, err
	}
	cfg, err := read(format.BlobTokenizerConfig)
	if err != nil {
		return nil, "", err
	}
	tj, err := read(format.BlobTokenizerJSON)
	if err != nil {
		return nil, "", err
	}
	if tj != nil {
		stm, err := read(format.BlobSpecialTokens)
		if err != nil {
			return nil, "", err
		}
		tok, err := tokenizer.FromHF(tj, cfg, stm)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", dir, err)
		}
		return tok, format.TokenizerHF, nil
	}
	model, err := read(format.BlobTokenizerModel)
	if err != nil {
		return nil, "", err
	}
	if model == nil {
		return nil, "", fmt.Errorf("%s: no tokenizer.json or tokenizer.model", dir)
	}
	tok, err := tokenizer.FromSentencePiece(model, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", dir, err)
	}
	return tok, format.TokenizerSPM, nil
}
