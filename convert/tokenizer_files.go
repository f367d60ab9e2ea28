package convert

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/internal/safeio"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

// readHFTokenizer collects the tokenizer files of dir: tokenizer.json (with
// tokenizer_config.json and special_tokens_map.json) or, when there is no
// tokenizer.json, a SentencePiece tokenizer.model (with
// tokenizer_config.json). override, when set, replaces them with a file
// whose format is recognised from its bytes (readTokenizerFile); a
// tokenizer.json override keeps dir's two config files.
func readHFTokenizer(dir, override string, vocab int) (string, map[string][]byte, error) {
	var files map[string][]byte
	kind := format.TokenizerHF
	if override != "" {
		k, f, err := readTokenizerFile(override, vocab, false)
		if err != nil {
			return "", nil, err
		}
		if k != format.TokenizerHF && k != format.TokenizerSPM {
			return k, f, nil
		}
		kind, files = k, f
	} else {
		files = make(map[string][]byte)
		b, err := safeio.ReadFile(filepath.Join(dir, format.BlobTokenizerJSON), maxTokenizerBytes, "a tokenizer.json")
		switch {
		case err == nil:
			files[format.BlobTokenizerJSON] = b
		case errors.Is(err, os.ErrNotExist):
			p := filepath.Join(dir, format.BlobTokenizerModel)
			if _, serr := os.Stat(p); serr != nil {
				return "", nil, fmt.Errorf("convert: %s: no tokenizer.json or tokenizer.model; pass --tokenizer with a tokenizer.json, tokenizer.model, llama2.c tokenizer.bin or GGUF file", dir)
			}
			if kind, files, err = readTokenizerFile(p, vocab, false); err != nil {
				return "", nil, err
			}
		default:
			return "", nil, fmt.Errorf("convert: %w", err)
		}
	}
	// Carried verbatim when present.
	optional := []string{format.BlobTokenizerConfig, format.BlobSpecialTokens}
	if kind == format.TokenizerSPM {
		optional = optional[:1]
	}
	for _, name := range optional {
		b, err := safeio.ReadFile(filepath.Join(dir, name), maxTokenizerBytes, "a "+name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("convert: %w", err)
		}
		files[name] = b
	}
	if kind == format.TokenizerSPM {
		// Check now, with the config, that the runtime will accept it.
		if _, err := tokenizer.FromSentencePiece(files[format.BlobTokenizerModel], files[format.BlobTokenizerConfig]); err != nil {
			return "", nil, fmt.Errorf("convert: %s: %w", dir, err)
		}
	}
	return kind, files, nil
}

// readTokenizerFile reads a tokenizer file and recognises its format from
// its bytes: a GGUF file (its tokenizer.ggml.* metadata), a tokenizer.json,
// a SentencePiece tokenizer.model or a llama2.c tokenizer.bin. The model's
// embedding must have a row for every token: exactly vocab tokens when
// exact is set (llama2.c checkpoints), at most vocab otherwise.
func readTokenizerFile(path string, vocab int, exact bool) (string, map[string][]byte, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("convert: tokenizer: %w", err)
	}
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	f.Close()
	if gguf.IsGGUF(head[:n]) {
		g, err := gguf.Open(path)
		if err != nil {
			return "", nil, fmt.Errorf("convert: tokenizer: %w", err)
		}
		defer g.Close()
		return ggufTokenizerFiles(path, g, vocab, exact)
	}
	b, err := safeio.ReadFile(path, maxTokenizerBytes, "a tokenizer")
	if err != nil {
		return "", nil, fmt.Errorf("convert: tokenizer: %w", err)
	}
	checkCount := func(n int) error {
		if n > vocab || exact && n != vocab {
			return fmt.Errorf("convert: tokenizer %s has %d tokens, the checkpoint's vocabulary has %d", path, n, vocab)
		}
		return nil
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return format.TokenizerHF, map[string][]byte{format.BlobTokenizerJSON: b}, nil
	}
	tok, err := tokenizer.FromSentencePiece(b, nil)
	if err == nil {
		if err := checkCount(tok.VocabSize()); err != nil {
			return "", nil, err
		}
		return format.TokenizerSPM, map[string][]byte{format.BlobTokenizerModel: b}, nil
	}
	if !errors.Is(err, tokenizer.ErrNotSentencePiece) {
		// A SentencePiece model, but one the runtime cannot run.
		return "", nil, fmt.Errorf("convert: tokenizer %s: %w", path, err)
	}
	n, l2cErr := llama2cTokenCount(b)
	if l2cErr == nil {
		if err := checkCount(n); err != nil {
			return "", nil, err
		}
		if !exact && n != vocab {
			// FromLlama2C reads exactly the model's vocabulary.
			return "", nil, fmt.Errorf("convert: tokenizer %s has %d tokens, the checkpoint's vocabulary has %d", path, n, vocab)
		}
		return format.TokenizerLlama2c, map[string][]byte{format.BlobTokenizerBin: b}, nil
	}
	return "", nil, fmt.Errorf("convert: tokenizer %s is not a tokenizer.json, SentencePiece tokenizer.model, llama2.c tokenizer.bin (%v) or GGUF file", path, l2cErr)
}

// ggufTokenizerFiles turns the tokenizer.ggml.* metadata of a GGUF file
// into the gguf tokenizer kind's blob.
func ggufTokenizerFiles(name string, md tokenizer.GGUFMetadata, vocab int, exact bool) (string, map[string][]byte, error) {
	v, err := tokenizer.VocabFromGGUF(md)
	if err != nil {
		return "", nil, fmt.Errorf("convert: %s: tokenizer: %w", name, err)
	}
	if n := len(v.Tokens); n > vocab || exact && n != vocab {
		return "", nil, fmt.Errorf("convert: %s: tokenizer has %d tokens, the model's vocabulary has %d", name, n, vocab)
	}
	blob, err := v.MarshalBinary()
	if err != nil {
		return "", nil, fmt.Errorf("convert: %s: %w", name, err)
	}
	return format.TokenizerGGUF, map[string][]byte{format.BlobGGUFVocab: blob}, nil
}

// findLlama2cTokenizer picks the tokenizer beside a llama2.c checkpoint:
// tokenizer.bin, else the only tok*.bin.
func findLlama2cTokenizer(ckpt string) (string, error) {
	dir := filepath.Dir(ckpt)
	p := filepath.Join(dir, "tokenizer.bin")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	matches, err := filepath.Glob(filepath.Join(dir, "tok*.bin"))
	if err != nil {
		return "", fmt.Errorf("convert: %w", err)
	}
	sort.Strings(matches)
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return "", fmt.Errorf("convert: %s: no tokenizer.bin or tok*.bin beside the checkpoint; pass --tokenizer", ckpt)
	}
	return "", fmt.Errorf("convert: %s: several tokenizers beside the checkpoint (%s); pass --tokenizer to choose one", ckpt, strings.Join(matches, ", "))
}

// llama2cTokenCount walks a llama2.c tokenizer.bin (int32
// max_token_length, then per token float32 score, int32 length, bytes) and
// returns its token count, or why the bytes are not one.
func llama2cTokenCount(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, fmt.Errorf("%d bytes, too short", len(b))
	}
	maxLen := int32(binary.LittleEndian.Uint32(b))
	off, n := 4, 0
	for off < len(b) {
		if len(b)-off < 8 {
			return 0, fmt.Errorf("entry %d truncated at byte %d", n, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
		l := int32(binary.LittleEndian.Uint32(b[off+4:]))
		off += 8
		if l < 0 || l > maxLen || int(l) > len(b)-off || math.IsNaN(float64(score)) {
			return 0, fmt.Errorf("entry %d (length %d, max %d) malformed at byte %d", n, l, maxLen, off-8)
		}
		off += int(l)
		n++
	}
	if n == 0 {
		return 0, errors.New("no entries")
	}
	return n, nil
}
