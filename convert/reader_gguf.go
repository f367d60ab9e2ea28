package convert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/quant"
)

// GGUF metadata keys read for the model config; {arch} is
// general.architecture.
const (
	ggufKeyArch        = "general.architecture"
	ggufKeyContext     = "%s.context_length"
	ggufKeyEmbedding   = "%s.embedding_length"
	ggufKeyBlocks      = "%s.block_count"
	ggufKeyFFN         = "%s.feed_forward_length"
	ggufKeyHeads       = "%s.attention.head_count"
	ggufKeyKVHeads     = "%s.attention.head_count_kv"
	ggufKeyKeyLength   = "%s.attention.key_length"
	ggufKeyValueLength = "%s.attention.value_length"
	ggufKeyRMSEps      = "%s.attention.layer_norm_rms_epsilon"
	ggufKeyNormEps     = "%s.attention.layer_norm_epsilon"
	ggufKeyRopeBase    = "%s.rope.freq_base"
	ggufKeyRopeDims    = "%s.rope.dimension_count"
	ggufKeyRopeScaling = "%s.rope.scaling.type"
	ggufKeyTokModel    = "tokenizer.ggml.model"
	ggufKeyChat        = "tokenizer.chat_template"
)

// readGGUF reads a GGUF model file (llama, qwen2 or gpt2 architecture) of
// size bytes; openFile opens it.
func readGGUF(fh *os.File, size int64, path string, opts OpenOptions) (*Model, error) {
	gf, err := gguf.Parse(fh, size, path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("convert: gguf %s: "+format, append([]any{path}, args...)...)
	}
	arch, err := gf.String(ggufKeyArch)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	switch arch {
	case "llama", "qwen2", "gpt2":
	default:
		return nil, fail("architecture %q is not supported (supported: llama, qwen2, gpt2)", arch)
	}

	src := make(map[string]*SourceTensor, len(gf.Tensors))
	for i := range gf.Tensors {
		t := &gf.Tensors[i]
		s := &SourceTensor{Name: t.Name, DType: DType(t.Type.String()), Shape: t.Shape(), File: path,
			r: fh, off: gf.DataOffset + t.Offset, size: t.Size, fromGGUF: true, ggml: t.Type}
		if !s.DType.Float() && !gguf.CanDequantize(t.Type) {
			return nil, fail("tensor %q has type %s, which shrink cannot dequantize (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K)", t.Name, t.Type)
		}
		src[t.Name] = s
	}
	if _, ok := src["rope_freqs.weight"]; ok {
		return nil, fail("rope_freqs.weight (Llama 3 rope frequency scaling) is not supported")
	}

	cfg, err := ggufConfig(gf, arch, src)
	if err != nil {
		return nil, fail("%v", err)
	}
	// llama.cpp's converters write the output head even when the model ties
	// it to the embedding (GPT-2, llama2.c exports): identical bytes mean
	// tied, and the copy is dropped.
	if out, ok := src["output.weight"]; ok {
		same, err := sameBytes(src["token_embd.weight"], out)
		if err != nil {
			return nil, fail("comparing output.weight with token_embd.weight: %v", err)
		}
		if same {
			delete(src, "output.weight")
		}
	}
	_, hasOutput := src["output.weight"]
	cfg.TiedEmbeddings = !hasOutput
	if arch == "gpt2" && hasOutput {
		return nil, fail("a GPT-2 output.weight different from token_embd.weight is not supported (GPT-2 ties them)")
	}

	if err := checkDeclared(path, &cfg, len(src)); err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	ts, err := ggufTensors(cfg, src)
	if err != nil {
		return nil, fail("%v", err)
	}

	kind, files := format.TokenizerNone, map[string][]byte(nil)
	switch {
	case opts.NoTokenizer:
	case opts.Tokenizer != "":
		if kind, files, err = readTokenizerFile(opts.Tokenizer, cfg.VocabSize, false); err != nil {
			return nil, err
		}
	case gf.Has(ggufKeyTokModel):
		if kind, files, err = ggufTokenizerFiles(path, gf, cfg.VocabSize, false); err != nil {
			return nil, err
		}
	}
	if kind == format.TokenizerGGUF {
		// BOS/EOS as the tokenizer resolved them (llama.cpp's defaults
		// included), so generation stops where llama.cpp's does.
		if cfg.BOS, cfg.EOS, err = ggufSpecialIDs(gf, cfg); err != nil {
			return nil, fail("%v", err)
		}
	}
	if kind == format.TokenizerGGUF && opts.Tokenizer == "" && gf.Has(ggufKeyChat) {
		// The chat template travels as Hugging Face keeps it, in
		// tokenizer_config.json, where the server looks for it.
		tc, err := ggufChatConfig(gf, cfg)
		if err != nil {
			return nil, fail("%v", err)
		}
		files[format.BlobTokenizerConfig] = tc
	}
	if kind != format.TokenizerNone {
		if err := checkTokenizer(path, kind, files, cfg); err != nil {
			return nil, err
		}
	}
	return &Model{
		Path: path, Config: cfg, Tensors: ts,
		TokenizerKind: kind, TokenizerFiles: files,
	}, nil
}

// ggufConfig maps {arch}.* metadata to the canonical config. The tensor
// shapes are the authority for the vocabulary size.
func ggufConfig(gf *gguf.File, arch string, src map[string]*SourceTensor) (format.ModelConfig, error) {
	cfg := format.ModelConfig{Arch: arch, Source: "gguf:" + arch, BOS: -1}
	key := func(k string) string { return fmt.Sprintf(k, arch) }
	positive := func(k string, dst *int) error {
		v, err := gf.Uint(key(k))
		if err != nil {
			return err
		}
		if v == 0 || v > 1<<31 {
			return fmt.Errorf("%s = %d is out of range", key(k), v)
		}
		*dst = int(v)
		return nil
	}
	for _, p := range []struct {
		k   string
		dst *int
	}{
		{ggufKeyContext, &cfg.ContextLength},
		{ggufKeyEmbedding, &cfg.HiddenSize},
		{ggufKeyBlocks, &cfg.NumLayers},
		{ggufKeyFFN, &cfg.IntermediateSize},
		{ggufKeyHeads, &cfg.NumHeads},
	} {
		if err := positive(p.k, p.dst); err != nil {
			return cfg, err
		}
	}
	cfg.NumKVHeads = cfg.NumHeads
	if gf.Has(key(ggufKeyKVHeads)) {
		if err := positive(ggufKeyKVHeads, &cfg.NumKVHeads); err != nil {
			return cfg, err
		}
	}
	// Every layer needs its own tensors: a block count beyond the tensor
	// count is a lie that would only make the mapping loop for nothing.
	if cfg.NumLayers > len(src) {
		return cfg, fmt.Errorf("%s = %d, but the file has only %d tensors", key(ggufKeyBlocks), cfg.NumLayers, len(src))
	}
	if cfg.NumHeads%cfg.NumKVHeads != 0 {
		return cfg, fmt.Errorf("%s %d must divide %s %d", key(ggufKeyKVHeads), cfg.NumKVHeads, key(ggufKeyHeads), cfg.NumHeads)
	}
	if gf.Has(key(ggufKeyKeyLength)) {
		if err := positive(ggufKeyKeyLength, &cfg.HeadDim); err != nil {
			return cfg, err
		}
		var vl int
		if gf.Has(key(ggufKeyValueLength)) {
			if err := positive(ggufKeyValueLength, &vl); err != nil {
				return cfg, err
			}
			if vl != cfg.HeadDim {
				return cfg, fmt.Errorf("%s %d differs from %s %d (not supported)", key(ggufKeyValueLength), vl, key(ggufKeyKeyLength), cfg.HeadDim)
			}
		}
	} else {
		if cfg.HiddenSize%cfg.NumHeads != 0 {
			return cfg, fmt.Errorf("%s %d is not a multiple of %s %d", key(ggufKeyEmbedding), cfg.HiddenSize, key(ggufKeyHeads), cfg.NumHeads)
		}
		cfg.HeadDim = cfg.HiddenSize / cfg.NumHeads
	}

	emb, ok := src["token_embd.weight"]
	if !ok || len(emb.Shape) != 2 {
		return cfg, fmt.Errorf("no 2-D token_embd.weight")
	}
	if emb.Shape[0] <= 0 || emb.Shape[0] > 1<<31 {
		return cfg, fmt.Errorf("token_embd.weight has %d rows", emb.Shape[0])
	}
	cfg.VocabSize = int(emb.Shape[0])

	var err error
	if arch == "gpt2" {
		cfg.NormKind, cfg.Activation, cfg.AttnBias = "layernorm", "gelu_tanh", true
		if cfg.NormEps, err = ggufFloat(gf, key(ggufKeyNormEps)); err != nil {
			return cfg, err
		}
		return cfg, nil
	}
	cfg.NormKind, cfg.Activation, cfg.AttnBias = "rmsnorm", "silu", arch == "qwen2"
	if cfg.NormEps, err = ggufFloat(gf, key(ggufKeyRMSEps)); err != nil {
		return cfg, err
	}
	cfg.RopeTheta = 10000
	if gf.Has(key(ggufKeyRopeBase)) {
		if cfg.RopeTheta, err = ggufFloat(gf, key(ggufKeyRopeBase)); err != nil {
			return cfg, err
		}
		if !(cfg.RopeTheta > 0) {
			return cfg, fmt.Errorf("%s = %g is not positive", key(ggufKeyRopeBase), cfg.RopeTheta)
		}
	}
	if cfg.HeadDim%2 != 0 {
		return cfg, fmt.Errorf("head dimension %d must be even for rotary embeddings", cfg.HeadDim)
	}
	if gf.Has(key(ggufKeyRopeDims)) {
		rd, err := gf.Uint(key(ggufKeyRopeDims))
		if err != nil {
			return cfg, err
		}
		if rd != uint64(cfg.HeadDim) {
			return cfg, fmt.Errorf("%s %d differs from the head dimension %d (partial rotary is not supported)", key(ggufKeyRopeDims), rd, cfg.HeadDim)
		}
	}
	if gf.Has(key(ggufKeyRopeScaling)) {
		s, err := gf.String(key(ggufKeyRopeScaling))
		if err != nil {
			return cfg, err
		}
		if s != "none" && s != "" {
			return cfg, fmt.Errorf("%s %q is not supported", key(ggufKeyRopeScaling), s)
		}
	}
	return cfg, nil
}

// ggufFloat reads a float value; a float32 becomes the float64 of its
// shortest decimal form (1e-05, not 9.999999747378752e-06), the number the
// model's author wrote, as a Hugging Face config.json holds it.
func ggufFloat(gf *gguf.File, key string) (float64, error) {
	x, err := gf.Float(key)
	if err != nil {
		return 0, err
	}
	if v, _ := gf.Lookup(key); v.Type() == gguf.TypeFloat32 {
		x, _ = strconv.ParseFloat(strconv.FormatFloat(x, 'g', -1, 32), 64)
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("%s is %g", key, x)
	}
	return x, nil
}

// ggufSpecialIDs reads the BOS and EOS ids the config carries.
func ggufSpecialIDs(gf *gguf.File, cfg format.ModelConfig) (int, []int, error) {
	bos, eos := cfg.BOS, cfg.EOS
	get := func(k string) (int, bool, error) {
		if !gf.Has(k) {
			return 0, false, nil
		}
		v, err := gf.Uint(k)
		if err != nil {
			return 0, false, err
		}
		if v >= uint64(cfg.VocabSize) {
			return 0, false, nil // llama.cpp writes -1 as 0xffffffff for "none"
		}
		return int(v), true, nil
	}
	if id, ok, err := get("tokenizer.ggml.bos_token_id"); err != nil {
		return 0, nil, err
	} else if ok {
		bos = id
	}
	if id, ok, err := get("tokenizer.ggml.eos_token_id"); err != nil {
		return 0, nil, err
	} else if ok {
		eos = []int{id}
	}
	if id, ok, err := get("tokenizer.ggml.eot_token_id"); err != nil {
		return 0, nil, err
	} else if ok && (len(eos) == 0 || eos[0] != id) {
		eos = append(eos, id)
	}
	if bos < 0 && cfg.Arch == "llama" {
		bos = 1 // llama.cpp's SentencePiece default
	}
	if len(eos) == 0 && cfg.Arch == "llama" {
		eos = []int{2}
	}
	return bos, eos, nil
}

// ggufTensors maps llama.cpp's tensor names (already the canonical ones)
// to descriptors, undoing the q/k row permutation of llama, and splitting
// GPT-2's fused attn_qkv.
func ggufTensors(cfg format.ModelConfig, src map[string]*SourceTensor) ([]*TensorDesc, error) {
	p := newPicker(src)
	var out []*TensorDesc
	take := p.need
	add := func(name string, shape ...int64) {
		if s := take(name, shape...); s != nil {
			out = append(out, whole(name, s))
		}
	}
	// GPT-2's norms and linear layers carry a bias of their output width,
	// listed right after the weight.
	gpt2 := cfg.Arch == "gpt2"
	addBiased := func(name string, shape ...int64) {
		add(name+".weight", shape...)
		if gpt2 {
			add(name+".bias", shape[0])
		}
	}
	h, v, ffn := int64(cfg.HiddenSize), int64(cfg.VocabSize), int64(cfg.IntermediateSize)
	hd := int64(cfg.HeadDim)
	qd, kvd := int64(cfg.NumHeads)*hd, int64(cfg.NumKVHeads)*hd
	if gpt2 {
		qd = h // the thirds of the fused attn_qkv
	}
	add("token_embd.weight", v, h)
	if gpt2 {
		add("position_embd.weight", int64(cfg.ContextLength), h)
	}
	for i := 0; i < cfg.NumLayers; i++ {
		b := fmt.Sprintf("blk.%d.", i)
		addBiased(b+"attn_norm", h)
		switch cfg.Arch {
		case "gpt2":
			if s := take(b+"attn_qkv.weight", 3*h, h); s != nil {
				for k, role := range []string{"attn_q", "attn_k", "attn_v"} {
					out = append(out, rowsOf(b+role+".weight", s, int64(k)*h, h))
				}
			}
			if s := take(b+"attn_qkv.bias", 3*h); s != nil {
				for k, role := range []string{"attn_q", "attn_k", "attn_v"} {
					out = append(out, sliceOf(b+role+".bias", s, int64(k)*h, h))
				}
			}
		case "llama":
			// llama.cpp's converter permutes q and k rows into interleaved
			// rotary pairs; rotaryPermuted restores Hugging Face's order.
			if s := take(b+"attn_q.weight", qd, h); s != nil {
				out = append(out, rotaryPermuted(b+"attn_q.weight", s, hd))
			}
			if s := take(b+"attn_k.weight", kvd, h); s != nil {
				out = append(out, rotaryPermuted(b+"attn_k.weight", s, hd))
			}
			add(b+"attn_v.weight", kvd, h)
		case "qwen2":
			// Qwen2 runs llama.cpp's NEOX rope: no permutation.
			add(b+"attn_q.weight", qd, h)
			add(b+"attn_k.weight", kvd, h)
			add(b+"attn_v.weight", kvd, h)
			add(b+"attn_q.bias", qd)
			add(b+"attn_k.bias", kvd)
			add(b+"attn_v.bias", kvd)
		}
		addBiased(b+"attn_output", h, qd)
		addBiased(b+"ffn_norm", h)
		if !gpt2 {
			add(b+"ffn_gate.weight", ffn, h)
		}
		addBiased(b+"ffn_up", ffn, h)
		addBiased(b+"ffn_down", h, ffn)
	}
	addBiased("output_norm", h)
	if !cfg.TiedEmbeddings {
		add("output.weight", v, h)
	}
	if err := p.err(cfg.Arch); err != nil {
		return nil, err
	}
	return out, nil
}

// rowsOf describes rows [r0, r0+n) of a 2-D source: a contiguous element
// range, so it loads (and copies raw) like a whole tensor.
func rowsOf(name string, s *SourceTensor, r0, n int64) *TensorDesc {
	cols := s.Shape[1]
	return &TensorDesc{Name: name, Shape: []int64{n, cols}, DType: s.DType, File: s.File, SourceName: s.Name,
		src: s, elemOff: r0 * cols}
}

// sameBytes compares two source tensors' types, shapes and bytes, reading
// both in chunks and stopping at the first difference.
func sameBytes(a, b *SourceTensor) (bool, error) {
	if a == nil || b == nil || a.DType != b.DType || a.size != b.size || fmt.Sprint(a.Shape) != fmt.Sprint(b.Shape) {
		return false, nil
	}
	const chunk = 1 << 20
	x, y := make([]byte, min(chunk, a.size)), make([]byte, min(chunk, a.size))
	for off := int64(0); off < a.size; off += chunk {
		n := min(chunk, a.size-off)
		if _, err := a.r.ReadAt(x[:n], a.off+off); err != nil {
			return false, err
		}
		if _, err := b.r.ReadAt(y[:n], b.off+off); err != nil {
			return false, err
		}
		if !bytes.Equal(x[:n], y[:n]) {
			return false, nil
		}
	}
	return true, nil
}

// sourceBytes is the tensor's size in the checkpoint.
func (d *TensorDesc) sourceBytes() int64 {
	if d.src != nil {
		return d.src.bytesOf(d.NumElements())
	}
	return d.NumElements() * d.DType.Size()
}

// ggufBlocks reads the raw blocks behind the tensor's rows from a GGUF
// source of type typ, whose blocks hold qk weights in bb bytes. ok is false,
// and nothing is read, unless the tensor is such a source, whole, a row
// range or rotary-permuted, on whole blocks.
func (d *TensorDesc) ggufBlocks(typ gguf.TensorType, rows, cols, qk, bb int) (raw []byte, ok bool, err error) {
	s := d.src
	if s == nil || !s.fromGGUF || s.ggml != typ || (d.xf != xfSlice && d.xf != xfRotary) || cols%qk != 0 || d.elemOff%int64(qk) != 0 {
		return nil, false, nil
	}
	raw = make([]byte, rows*(cols/qk*bb))
	if _, err := s.r.ReadAt(raw, s.off+d.elemOff/int64(qk)*int64(bb)); err != nil {
		return nil, false, fmt.Errorf("read: %w", err)
	}
	return raw, true, nil
}

// sourceRow is the source row behind canonical row r: r itself, or the
// interleaved row of a rotary-permuted tensor.
func (d *TensorDesc) sourceRow(r int) int {
	if d.xf == xfRotary {
		return interleavedRow(r, int(d.headDim))
	}
	return r
}

// kQuants splits a Q4_K (bits 4) or Q5_K (bits 5) super-block after its
// scales into the nibbles qs and, for Q5_K, the 32 bytes of fifth bits qh.
func kQuants(blk []byte, bits int) (qs, qh []byte) {
	if bits == 5 {
		return blk[48:], blk[16:48]
	}
	return blk[16:], nil
}

// carryQ8 repacks a Q8_0 source into shrink's q8 with group 32 without
// requantizing: Q8_0 blocks are 32 int8 quants and one float16 scale along
// a row, exactly a q8 group, so the numbers stay the same. out has the q8
// size of the canonical tensor. It reports false, leaving the tensor to the
// ordinary dequantize-and-encode path, when the source is not Q8_0 or a
// block holds what q8 does not allow (the quant −128, a negative, infinite
// or NaN scale).
func (d *TensorDesc) carryQ8(out []byte, rows, cols int) (bool, error) {
	const qk, bb = 32, 34
	raw, ok, err := d.ggufBlocks(gguf.TypeQ8_0, rows, cols, qk, bb)
	if !ok || err != nil {
		return false, err
	}
	nb := cols / qk
	rowBytes := nb * bb
	qp := int(quant.QuantsPlaneSize(rows, cols))
	clear(out[rows*cols : qp])
	for r := 0; r < rows; r++ {
		sr := d.sourceRow(r)
		src := raw[sr*rowBytes : (sr+1)*rowBytes]
		for g := 0; g < nb; g++ {
			blk := src[g*bb : (g+1)*bb]
			sc := binary.LittleEndian.Uint16(blk)
			if sc&0x8000 != 0 || sc&0x7c00 == 0x7c00 {
				return false, nil
			}
			zero := true
			q := out[r*cols+g*qk : r*cols+(g+1)*qk]
			for k, b := range blk[2:] {
				if b == 0x80 {
					return false, nil
				}
				q[k] = b
				zero = zero && b == 0
			}
			if zero {
				sc = 0 // q8's convention for an all-zero group; same values
			}
			binary.LittleEndian.PutUint16(out[qp+2*(r*nb+g):], sc)
		}
	}
	return true, nil
}

// carryQK repacks a Q4_K or Q5_K source into shrink's q4 or q5 (group 32)
// without re-fitting: a super-block is the encoding's (d, dmin) pair with
// eight groups of 32 weights, each with a 6-bit scale and min and 4- or
// 5-bit quants, decoded by the same formula, so the numbers stay the same.
// It reports false when the source type does not match the plan or the
// shape does not fall on whole super-blocks.
func (d *TensorDesc) carryQK(out []byte, rows, cols int, bits int) (bool, error) {
	want := map[int]gguf.TensorType{4: gguf.TypeQ4_K, 5: gguf.TypeQ5_K}[bits]
	const qk = 256
	bb := int(want.BlockBytes())
	e := quant.QK(bits, 32)
	if size, err := e.Size(rows, cols); err != nil || int64(len(out)) != size {
		return false, nil
	}
	raw, ok, err := d.ggufBlocks(want, rows, cols, qk, bb)
	if !ok || err != nil {
		return false, err
	}
	l := e.Layout(rows, cols)
	nsb := cols / qk
	rowBytes := nsb * bb
	clear(out)
	lo, hi, sub, sup := out[l.LoAt:], out[l.HiAt:], out[l.SubAt:], out[l.SupAt:]
	q := make([]uint8, l.PaddedCols)
	for r := 0; r < rows; r++ {
		sr := d.sourceRow(r)
		src := raw[sr*rowBytes : (sr+1)*rowBytes]
		subRow := sub[r*l.SubRow : (r+1)*l.SubRow]
		for b := 0; b < nsb; b++ {
			blk := src[b*bb : (b+1)*bb]
			copy(sup[r*l.SupRow+4*b:], blk[0:4]) // d, dmin
			for j := 0; j < 8; j++ {
				sc, mn := gguf.ScaleMinK4(j, blk[4:16])
				g := b*8 + j
				// Sub plane: pair g/2 is a 24-bit word at 3·(g/2), group g
				// in bits 12·(g&1) as scale | min<<6.
				w := (uint32(sc) | uint32(mn)<<6) << (12 * uint(g&1))
				p := subRow[3*(g/2):]
				p[0] |= byte(w)
				p[1] |= byte(w >> 8)
				p[2] |= byte(w >> 16)
			}
			// Q4_K: qs at 16; Q5_K: qh[32] at 16, qs at 48. Chunk c holds
			// weights 64c+i (low nibble of qs[32c+i], fifth bit qh[i]>>2c)
			// and 64c+32+i (high nibble, fifth bit qh[i]>>(2c+1)).
			qs, qh := kQuants(blk, bits)
			w := q[b*256:]
			for c := 0; c < 4; c++ {
				for i := 0; i < 32; i++ {
					w[c*64+i] = qs[c*32+i] & 15
					w[c*64+32+i] = qs[c*32+i] >> 4
					if qh != nil {
						w[c*64+i] |= (qh[i] >> (2 * c) & 1) << 4
						w[c*64+32+i] |= (qh[i] >> (2*c + 1) & 1) << 4
					}
				}
			}
		}
		quant.PackPlane(lo[r*l.LoRow:(r+1)*l.LoRow], q, 0, 4)
		if bits == 5 {
			quant.PackPlane(hi[r*l.HiRow:(r+1)*l.HiRow], q, 4, 1)
		}
	}
	return true, nil
}

// ggufChatConfig is a tokenizer_config.json holding the GGUF's
// tokenizer.chat_template with the BOS and EOS strings templates refer to
// ({{ bos_token }}), from the vocabulary at the ids the config resolved.
func ggufChatConfig(gf *gguf.File, cfg format.ModelConfig) ([]byte, error) {
	tmpl, err := gf.String(ggufKeyChat)
	if err != nil {
		return nil, err
	}
	tokens, err := gf.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, err
	}
	tc := map[string]string{"chat_template": tmpl}
	if cfg.BOS >= 0 && cfg.BOS < len(tokens) {
		tc["bos_token"] = tokens[cfg.BOS]
	}
	if len(cfg.EOS) > 0 && cfg.EOS[0] >= 0 && cfg.EOS[0] < len(tokens) {
		tc["eos_token"] = tokens[cfg.EOS[0]]
	}
	return json.Marshal(tc) // keys sorted: the same bytes every time
}
