package convert

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/runtime"
)

// tokenizerFiles presents the tokenizer files of a checkpoint as the blobs
// of a .shrink file, for runtime.LoadTokenizer.
type tokenizerFiles struct {
	kind  string
	files map[string][]byte
	cfg   format.ModelConfig
}

func (t tokenizerFiles) Header() *format.Header {
	return &format.Header{TokenizerKind: t.kind, Config: t.cfg}
}
func (t tokenizerFiles) Config() format.ModelConfig { return t.cfg }
func (t tokenizerFiles) HasBlob(name string) bool   { _, ok := t.files[name]; return ok }
func (t tokenizerFiles) Blob(name string) ([]byte, error) {
	b, ok := t.files[name]
	if !ok {
		return nil, fmt.Errorf("no %s", name)
	}
	return b, nil
}

// checkDeclared holds a config's declared sizes against the checkpoint's
// tensors before a family walks its layers: config.json is just text, and a
// declared layer count of 10^9 would otherwise drive a loop (and an error
// list) of that size. Every layer is stored as at least one tensor, so there
// cannot be more layers than tensors; the other sizes are bounded by the
// format's hard limits and compared with the real shapes by the family.
func checkDeclared(path string, cfg *format.ModelConfig, tensors int) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if cfg.NumLayers > tensors {
		return fmt.Errorf("%s: %d layers declared, but the checkpoint holds only %d tensors", path, cfg.NumLayers, tensors)
	}
	return nil
}

// tokenizerProbe is encoded by every tokenizer before it is embedded: ASCII
// words, digits, punctuation, accents and a CJK character exercise the
// normalizer, pre-tokenizer, model and decoder of any tokenizer.json.
const tokenizerProbe = "Once upon a time, 42 cats said: \"héllo wörld\" — 你好!\n"

// checkTokenizer loads the tokenizer files with the runtime's own loader,
// the one `run` will use, and encodes and decodes a probe with it, so that a
// file the runtime cannot use is refused at conversion instead of being
// carried into the output. Every id it produces must lie inside the
// model's vocabulary.
func checkTokenizer(src, kind string, files map[string][]byte, cfg format.ModelConfig) error {
	// The optional side files must be JSON objects when present: the
	// loader treats a null one as absent, which would silently drop the
	// special tokens the file was meant to define.
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		if b, ok := files[name]; ok {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
				return fmt.Errorf("convert: %s: %s is not a JSON object", src, name)
			}
		}
	}
	tok, err := runtime.LoadTokenizer(tokenizerFiles{kind: kind, files: files, cfg: cfg})
	if err == nil && tok == nil {
		err = fmt.Errorf("no tokenizer kind")
	}
	if err != nil {
		return fmt.Errorf("convert: %s: the tokenizer cannot be loaded (pass --no-tokenizer for a weights-only file): %w", src, err)
	}
	ids, err := tok.Encode(tokenizerProbe, true)
	if err != nil {
		return fmt.Errorf("convert: %s: the tokenizer fails on a test sentence: %w", src, err)
	}
	// Every id the tokenizer can produce indexes the embedding table.
	if n := tok.VocabSize(); n > cfg.VocabSize {
		return fmt.Errorf("convert: %s: the tokenizer has ids up to %d, past the model's vocabulary of %d", src, n-1, cfg.VocabSize)
	}
	for _, id := range append(ids, tok.BOS(), tok.EOS()) {
		if id >= cfg.VocabSize || id < -1 {
			return fmt.Errorf("convert: %s: the tokenizer produces token id %d, outside the model's vocabulary of %d", src, id, cfg.VocabSize)
		}
	}
	if _, err := tok.Decode(ids, false); err != nil {
		return fmt.Errorf("convert: %s: the tokenizer cannot decode its own tokens: %w", src, err)
	}
	return nil
}

// nonFiniteBytes is nonFiniteError over the raw little-endian bytes of a
// source tensor of dtype F32, F16 or BF16 (those copied byte for byte): a
// value is NaN or ±Inf exactly when its exponent bits are all ones.
func nonFiniteBytes(b []byte, dtype DType, cols int) error {
	var size int
	var mask uint32
	switch dtype {
	case DTypeF32:
		size, mask = 4, 0x7f800000
	case DTypeF16:
		size, mask = 2, 0x7c00
	case DTypeBF16:
		size, mask = 2, 0x7f80
	default:
		return nil
	}
	for i := 0; i+size <= len(b); i += size {
		var v uint32
		if size == 4 {
			v = binary.LittleEndian.Uint32(b[i:])
		} else {
			v = uint32(binary.LittleEndian.Uint16(b[i:]))
		}
		if v&mask == mask {
			n := i / size
			return fmt.Errorf("non-finite %s weight (bits 0x%x) at row %d, column %d (pass --allow-nonfinite to keep it)", dtype, v, n/max(cols, 1), n%max(cols, 1))
		}
	}
	return nil
}

// nonFiniteError names the first NaN or ±Inf of a [rows, cols] tensor, or
// is nil. The converter refuses such weights at every encoding: a NaN
// stored as is makes the model print nothing while the stored metrics
// claim an exact copy.
func nonFiniteError(x []float32, cols int) error { return nonFiniteFrom(x, cols, 0) }

// nonFiniteFrom is nonFiniteError for rows of a tensor starting at row0,
// which the error's row number counts from.
func nonFiniteFrom(x []float32, cols, row0 int) error {
	// The scan runs on the pipeline's single reader goroutine over every
	// weight of the model, so it must cost next to nothing: hasNonFinite
	// (no branch per value) says whether a block holds a NaN or ±Inf. Only
	// then is it searched value by value for the first one.
	const exp = 0x7f800000
	const block = 4096
	for i0 := 0; i0 < len(x); i0 += block {
		blk := x[i0:min(i0+block, len(x))]
		if !hasNonFinite(blk) {
			continue
		}
		for j, v := range blk {
			if math.Float32bits(v)&exp == exp {
				n := i0 + j
				return fmt.Errorf("non-finite weight %v at row %d, column %d (pass --allow-nonfinite to keep it)", v, row0+n/max(cols, 1), n%max(cols, 1))
			}
		}
	}
	return nil
}
