package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"os"

	"github.com/shrink-llm/shrink/format"
)

// llama2cMagic starts llama2.c's versioned exports (version ≥ 1); the legacy
// v0 format has no magic and starts with dim.
const llama2cMagic = 0x616b3432 // "ak42"

// llama2cHeader is the 7 int32 header of a llama2.c v0 checkpoint.
type llama2cHeader struct {
	Dim, Hidden, Layers, Heads, KVHeads, Vocab, SeqLen int32
}

// llama2cLayout is where each weight array of a v0 checkpoint starts.
type llama2cLayout struct {
	emb, rmsAtt, wq, wk, wv, wo, rmsFFN, w1, w2, w3, rmsFinal, wcls int64 // byte offsets
	size                                                            int64 // exact file size
	shared                                                          bool
}

// checkedMul multiplies non-negative values, failing on int64 overflow.
func checkedMul(vals ...int64) (int64, bool) {
	n := uint64(1)
	for _, v := range vals {
		if v < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, uint64(v))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = lo
	}
	return int64(n), true
}

// layout validates the header and computes the array offsets.
func (h llama2cHeader) layout() (llama2cLayout, error) {
	var l llama2cLayout
	if h.Dim <= 0 || h.Hidden <= 0 || h.Layers <= 0 || h.Heads <= 0 || h.KVHeads <= 0 || h.SeqLen <= 0 || h.Vocab == 0 || h.Vocab == math.MinInt32 {
		return l, fmt.Errorf("implausible header %+v (not a llama2.c v0 checkpoint?)", h)
	}
	if h.Dim%h.Heads != 0 || h.Heads%h.KVHeads != 0 || (h.Dim/h.Heads)%2 != 0 {
		return l, fmt.Errorf("header %+v: dim must split into n_heads even-sized heads and n_kv_heads must divide n_heads", h)
	}
	l.shared = h.Vocab > 0
	vocab := int64(h.Vocab)
	if vocab < 0 {
		vocab = -vocab
	}
	dim, hid, L := int64(h.Dim), int64(h.Hidden), int64(h.Layers)
	hd := dim / int64(h.Heads)
	kvDim := hd * int64(h.KVHeads)
	off := int64(7 * 4)
	ok := true
	next := func(elems ...int64) int64 {
		start := off
		n, good := checkedMul(append(elems, 4)...)
		if !good || off > math.MaxInt64-n {
			ok = false
			return 0
		}
		off += n
		return start
	}
	l.emb = next(vocab, dim)
	l.rmsAtt = next(L, dim)
	l.wq = next(L, dim, dim)
	l.wk = next(L, kvDim, dim)
	l.wv = next(L, kvDim, dim)
	l.wo = next(L, dim, dim)
	l.rmsFFN = next(L, dim)
	l.w1 = next(L, hid, dim)
	l.w2 = next(L, dim, hid)
	l.w3 = next(L, hid, dim)
	l.rmsFinal = next(dim)
	next(int64(h.SeqLen), hd/2) // freq_cis_real: recomputed from rope_theta
	next(int64(h.SeqLen), hd/2) // freq_cis_imag
	if !l.shared {
		l.wcls = next(vocab, dim)
	}
	if !ok {
		return l, fmt.Errorf("header %+v: sizes overflow", h)
	}
	l.size = off
	return l, nil
}

// readLlama2c reads a llama2.c v0 .bin checkpoint of size bytes; openFile
// opens it.
func readLlama2c(f *os.File, size int64, path string, opts OpenOptions) (*Model, error) {
	var raw [28]byte
	if _, err := f.ReadAt(raw[:], 0); err != nil {
		return nil, fmt.Errorf("convert: llama2.c %s: reading the 28-byte header: %w", path, err)
	}
	if binary.LittleEndian.Uint32(raw[:]) == llama2cMagic {
		return nil, fmt.Errorf("convert: llama2.c %s: versioned export (version %d) is not supported; export with --version 0", path, binary.LittleEndian.Uint32(raw[4:]))
	}
	var h llama2cHeader
	vals := []*int32{&h.Dim, &h.Hidden, &h.Layers, &h.Heads, &h.KVHeads, &h.Vocab, &h.SeqLen}
	for i, p := range vals {
		*p = int32(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	l, err := h.layout()
	if err != nil {
		return nil, fmt.Errorf("convert: llama2.c %s: %w", path, err)
	}
	if size != l.size {
		return nil, fmt.Errorf("convert: llama2.c %s: file is %d bytes, but header %+v needs exactly %d", path, size, h, l.size)
	}

	vocab := int(h.Vocab)
	if vocab < 0 {
		vocab = -vocab
	}
	hd := int(h.Dim / h.Heads)
	cfg := format.ModelConfig{
		Arch: "llama", Source: "llama2c",
		VocabSize: vocab, HiddenSize: int(h.Dim), IntermediateSize: int(h.Hidden),
		NumLayers: int(h.Layers), NumHeads: int(h.Heads), NumKVHeads: int(h.KVHeads),
		HeadDim: hd, ContextLength: int(h.SeqLen),
		RopeTheta: 10000, NormEps: 1e-5, NormKind: "rmsnorm", Activation: "silu",
		TiedEmbeddings: l.shared, BOS: 1, EOS: []int{2},
	}

	var tokKind string
	var tokFiles map[string][]byte
	if !opts.NoTokenizer {
		tok := opts.Tokenizer
		if tok == "" {
			if tok, err = findLlama2cTokenizer(path); err != nil {
				return nil, err
			}
		}
		if tokKind, tokFiles, err = readTokenizerFile(tok, vocab, true); err != nil {
			return nil, err
		}
		if tokKind == format.TokenizerHF {
			return nil, fmt.Errorf("convert: tokenizer %s: a tokenizer.json cannot be used with a llama2.c checkpoint", tok)
		}
		if err := checkTokenizer(tok, tokKind, tokFiles, cfg); err != nil {
			return nil, err
		}
	}

	dim, hid, kvDim := int64(h.Dim), int64(h.Hidden), int64(hd)*int64(h.KVHeads)
	// src names one slice of the big arrays; layer i of a [L, rows, cols]
	// array starts at base + i·rows·cols·4.
	src := func(name string, base int64, layer int, shape ...int64) *SourceTensor {
		n := int64(1)
		for _, s := range shape {
			n *= s
		}
		return &SourceTensor{Name: name, DType: DTypeF32, Shape: shape, File: path,
			r: f, off: base + int64(layer)*n*4, size: n * 4}
	}
	var ts []*TensorDesc
	ts = append(ts, whole(format.Name(format.TokenEmbd, format.Weight), src("token_embedding_table", l.emb, 0, int64(vocab), dim)))
	for i := 0; i < cfg.NumLayers; i++ {
		name := func(arr string) string { return fmt.Sprintf("%s[%d]", arr, i) }
		ts = append(ts,
			whole(format.BlockName(i, format.AttnNorm, format.Weight), src(name("rms_att_weight"), l.rmsAtt, i, dim)),
			rotaryPermuted(format.BlockName(i, format.AttnQ, format.Weight), src(name("wq"), l.wq, i, dim, dim), int64(hd)),
			rotaryPermuted(format.BlockName(i, format.AttnK, format.Weight), src(name("wk"), l.wk, i, kvDim, dim), int64(hd)),
			whole(format.BlockName(i, format.AttnV, format.Weight), src(name("wv"), l.wv, i, kvDim, dim)),
			whole(format.BlockName(i, format.AttnOutput, format.Weight), src(name("wo"), l.wo, i, dim, dim)),
			whole(format.BlockName(i, format.FFNNorm, format.Weight), src(name("rms_ffn_weight"), l.rmsFFN, i, dim)),
			whole(format.BlockName(i, format.FFNGate, format.Weight), src(name("w1"), l.w1, i, hid, dim)),
			whole(format.BlockName(i, format.FFNUp, format.Weight), src(name("w3"), l.w3, i, hid, dim)),
			whole(format.BlockName(i, format.FFNDown, format.Weight), src(name("w2"), l.w2, i, dim, hid)),
		)
	}
	ts = append(ts, whole(format.Name(format.OutputNorm, format.Weight), src("rms_final_weight", l.rmsFinal, 0, dim)))
	if !l.shared {
		ts = append(ts, whole(format.Name(format.Output, format.Weight), src("wcls", l.wcls, 0, int64(vocab), dim)))
	}
	return &Model{
		Path: path, Config: cfg, Tensors: ts,
		TokenizerKind: tokKind, TokenizerFiles: tokFiles,
	}, nil
}
