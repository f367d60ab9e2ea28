package convert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shrink-llm/shrink/internal/safeio"
)

// readHFTokenizer collects the tokenizer files of dir. override, when set,
// replaces tokenizer.json (a .json path) or supplies a llama2.c tokenizer.bin.
func readHFTokenizer(dir, override string, vocab int) (string, map[string][]byte, error) {
	if override != "" && !strings.HasSuffix(strings.ToLower(override), ".json") {
		b, err := readLlama2cTokenizer(override, vocab)
		if err != nil {
			return "", nil, err
		}
		return "llama2c", map[string][]byte{"tokenizer.bin": b}, nil
	}
	files := make(map[string][]byte)
	// Carried verbatim; tokenizer.json is required, the others optional.
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		p := filepath.Join(dir, name)
		if name == "tokenizer.json" && override != "" {
			p = override
		}
		b, err := safeio.ReadFile(p, maxTokenizerBytes, "a "+name)
		if errors.Is(err, os.ErrNotExist) {
			if name == "tokenizer.json" {
				return "", nil, fmt.Errorf("convert: %s: no tokenizer.json (slow tokenizers such as tokenizer.model are not supported; pass --tokenizer with a tokenizer.json or a llama2.c tokenizer.bin)", dir)
			}
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("convert: %w", err)
		}
		files[name] = b
	}
	return "hf", files, nil
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

// readLlama2cTokenizer reads a llama2.c tokenizer.bin and checks that it
// holds exactly vocab entries: int32 max_token_length, then per token
// float32 score, int32 length, bytes.
func readLlama2cTokenizer(path string, vocab int) ([]byte, error) {
	b, err := safeio.ReadFile(path, maxTokenizerBytes, "a llama2.c tokenizer")
	if err != nil {
		return nil, fmt.Errorf("convert: tokenizer: %w", err)
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("convert: tokenizer %s: %d bytes, too short for a llama2.c tokenizer.bin", path, len(b))
	}
	maxLen := int32(binary.LittleEndian.Uint32(b))
	off, n := 4, 0
	for off < len(b) {
		if len(b)-off < 8 {
			return nil, fmt.Errorf("convert: tokenizer %s: entry %d truncated at byte %d", path, n, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(b[off:]))
		l := int32(binary.LittleEndian.Uint32(b[off+4:]))
		off += 8
		if l < 0 || l > maxLen || int(l) > len(b)-off || math.IsNaN(float64(score)) {
			return nil, fmt.Errorf("convert: tokenizer %s: entry %d (length %d, max %d) is malformed at byte %d", path, n, l, maxLen, off-8)
		}
		off += int(l)
		n++
	}
	if n != vocab {
		return nil, fmt.Errorf("convert: tokenizer %s has %d tokens, the checkpoint's vocabulary has %d", path, n, vocab)
	}
	return b, nil
}
