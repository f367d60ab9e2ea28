// Command shrink-gen writes synthetic Hugging Face Llama checkpoints with random
// weights ~N(0, 0.02) in the shapes the benchmarks use, so that anyone can
// reproduce BENCHMARKS.md without downloading a model:
//
//	go run ./cmd/shrink-gen -shape tinyllama-1.1b -dtype bf16 -o /tmp/tinyllama-synth
//	go run ./cmd/shrink-gen -shape llama-110m -dtype f32 -o /tmp/llama110m
//	go run ./cmd/shrink-gen -shape llama2-7b -dtype bf16 -o /tmp/llama2-7b-synth
//
// The output is a folder with config.json, sharded model-*.safetensors with
// model.safetensors.index.json, and a tokenizer.json (Llama-2 style BPE with
// byte fallback and no merges) so the checkpoint converts and runs end to end.
//
// The synthetic tokenizer spells every character as its own byte token, so a
// prompt costs several times the tokens a real vocabulary gives it. For
// serving and prefill figures that should see realistic prompt lengths,
// -tokenizer copies a real tokenizer.json of the shape's vocabulary size
// instead (the Llama-2 one for these shapes):
//
//	go run ./cmd/shrink-gen -shape tinyllama-1.1b -o /tmp/tl -tokenizer llama2/tokenizer.json
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

type shape struct {
	hidden, inter, layers, heads, kvHeads, vocab, ctx int
	tied                                              bool
}

var shapes = map[string]shape{
	"tinyllama-1.1b": {hidden: 2048, inter: 5632, layers: 22, heads: 32, kvHeads: 4, vocab: 32000, ctx: 2048},
	"llama-110m":     {hidden: 768, inter: 2048, layers: 12, heads: 12, kvHeads: 12, vocab: 32000, ctx: 1024},
	// llama2-7b is Llama-2-7B's shape (about 13.5 GB in bf16), for checking
	// that conversion and the runtime stay within a small machine's memory.
	"llama2-7b": {hidden: 4096, inter: 11008, layers: 32, heads: 32, kvHeads: 32, vocab: 32000, ctx: 4096},
	// tiny is for tests: every tensor kind of the large shapes, grouped
	// query attention included, in a few hundred kilobytes.
	"tiny": {hidden: 64, inter: 160, layers: 2, heads: 4, kvHeads: 2, vocab: 300, ctx: 64},
}

type tensor struct {
	name string
	dims []int
}

// bytes is the tensor's size at elem bytes per value.
func (t tensor) bytes(elem int) int64 {
	n := int64(elem)
	for _, d := range t.dims {
		n *= int64(d)
	}
	return n
}

func main() {
	shapeName := flag.String("shape", "tinyllama-1.1b", "tinyllama-1.1b, llama-110m, llama2-7b or tiny")
	dtype := flag.String("dtype", "bf16", "f32, f16 or bf16")
	out := flag.String("o", "", "output folder")
	shardBytes := flag.Int64("shard", 1<<30, "approximate bytes per safetensors shard")
	seed := flag.Uint64("seed", 1, "random seed")
	tokenizer := flag.String("tokenizer", "", "copy this tokenizer.json (its vocabulary must be the shape's size) instead of writing the synthetic one")
	flag.Parse()
	if err := run(*shapeName, *dtype, *out, *shardBytes, *seed, *tokenizer); err != nil {
		fmt.Fprintln(os.Stderr, "shrink-gen:", err)
		os.Exit(1)
	}
}

func run(shapeName, dtype, out string, shardBytes int64, seed uint64, tokenizer string) error {
	s, ok := shapes[shapeName]
	if !ok {
		return fmt.Errorf("unknown shape %q", shapeName)
	}
	if out == "" {
		return fmt.Errorf("-o is required")
	}
	// The tokenizer is checked before any weight is written, so a wrong file
	// leaves no half-made checkpoint behind.
	var tok []byte
	if tokenizer != "" {
		var err error
		if tok, err = realTokenizer(tokenizer, s.vocab); err != nil {
			return err
		}
	}
	elem := map[string]int{"f32": 4, "f16": 2, "bf16": 2}[dtype]
	if elem == 0 {
		return fmt.Errorf("unknown dtype %q", dtype)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	hd := s.hidden / s.heads
	ts := []tensor{{"model.embed_tokens.weight", []int{s.vocab, s.hidden}}}
	for l := range s.layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts,
			tensor{p + "input_layernorm.weight", []int{s.hidden}},
			tensor{p + "self_attn.q_proj.weight", []int{s.heads * hd, s.hidden}},
			tensor{p + "self_attn.k_proj.weight", []int{s.kvHeads * hd, s.hidden}},
			tensor{p + "self_attn.v_proj.weight", []int{s.kvHeads * hd, s.hidden}},
			tensor{p + "self_attn.o_proj.weight", []int{s.hidden, s.heads * hd}},
			tensor{p + "post_attention_layernorm.weight", []int{s.hidden}},
			tensor{p + "mlp.gate_proj.weight", []int{s.inter, s.hidden}},
			tensor{p + "mlp.up_proj.weight", []int{s.inter, s.hidden}},
			tensor{p + "mlp.down_proj.weight", []int{s.hidden, s.inter}},
		)
	}
	ts = append(ts, tensor{"model.norm.weight", []int{s.hidden}})
	if !s.tied {
		ts = append(ts, tensor{"lm_head.weight", []int{s.vocab, s.hidden}})
	}

	// Cut into shards of about shardBytes.
	var shards [][]tensor
	var cur []tensor
	var curBytes int64
	for _, t := range ts {
		n := t.bytes(elem)
		if len(cur) > 0 && curBytes+n > shardBytes {
			shards = append(shards, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, t)
		curBytes += n
	}
	shards = append(shards, cur)

	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	normals := make([]float32, 1<<16)
	for i := range normals {
		normals[i] = float32(rng.NormFloat64() * 0.02)
	}
	weightMap := map[string]string{}
	var total int64
	for i, sh := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		n, err := writeShard(filepath.Join(out, name), sh, dtype, elem, normals, rng)
		if err != nil {
			return err
		}
		total += n
		for _, t := range sh {
			weightMap[t.name] = name
		}
	}
	idx := map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}
	if err := writeJSON(filepath.Join(out, "model.safetensors.index.json"), idx); err != nil {
		return err
	}
	torchDType := map[string]string{"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype]
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": s.hidden, "intermediate_size": s.inter, "num_hidden_layers": s.layers,
		"num_attention_heads": s.heads, "num_key_value_heads": s.kvHeads, "vocab_size": s.vocab,
		"max_position_embeddings": s.ctx, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
		"hidden_act": "silu", "tie_word_embeddings": s.tied, "bos_token_id": 1, "eos_token_id": 2,
		"torch_dtype": torchDType,
	}
	if err := writeJSON(filepath.Join(out, "config.json"), cfg); err != nil {
		return err
	}
	if tok != nil {
		if err := os.WriteFile(filepath.Join(out, "tokenizer.json"), tok, 0o644); err != nil {
			return err
		}
	} else if err := writeJSON(filepath.Join(out, "tokenizer.json"), syntheticTokenizer(s.vocab)); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d tensors in %d shards, %.2f GB\n", out, len(ts), len(shards), float64(total)/1e9)
	return nil
}

func writeShard(path string, ts []tensor, dtype string, elem int, normals []float32, rng *rand.Rand) (int64, error) {
	header := map[string]any{}
	var off int64
	for _, t := range ts {
		n := t.bytes(elem)
		header[t.name] = map[string]any{"dtype": map[string]string{"f32": "F32", "f16": "F16", "bf16": "BF16"}[dtype], "shape": t.dims, "data_offsets": []int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return 0, err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 4<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hb)))
	w.Write(lenBuf[:])
	w.Write(hb)
	buf := make([]byte, 0, 1<<20)
	for _, t := range ts {
		n := 1
		for _, d := range t.dims {
			n *= d
		}
		isNorm := len(t.dims) == 1
		for i := 0; i < n; i++ {
			var v float32
			if isNorm {
				v = 1
			} else {
				v = normals[rng.Uint32()&0xffff]
			}
			buf = appendValue(buf, v, dtype)
			if len(buf) >= 1<<20 {
				if _, err := w.Write(buf); err != nil {
					f.Close()
					return 0, err
				}
				buf = buf[:0]
			}
		}
	}
	if _, err := w.Write(buf); err != nil {
		f.Close()
		return 0, err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return off, f.Close()
}

func appendValue(b []byte, v float32, dtype string) []byte {
	bits := math.Float32bits(v)
	switch dtype {
	case "f32":
		return binary.LittleEndian.AppendUint32(b, bits)
	case "bf16":
		r := bits + 0x7fff + (bits>>16)&1
		return binary.LittleEndian.AppendUint16(b, uint16(r>>16))
	default: // f16; values are small and normal-range, so a simple rounding suffices
		return binary.LittleEndian.AppendUint16(b, f32ToF16(v))
	}
}

func f32ToF16(v float32) uint16 {
	bits := math.Float32bits(v)
	sign := uint16(bits>>16) & 0x8000
	exp := int((bits>>23)&0xff) - 127 + 15
	mant := bits & 0x7fffff
	switch {
	case exp >= 31:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		h := mant >> shift
		if rem := mant & (1<<shift - 1); rem > 1<<(shift-1) || rem == 1<<(shift-1) && h&1 == 1 {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	if rem := mant & 0x1fff; rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++
	}
	return sign | uint16(h)
}

// realTokenizer reads a tokenizer.json and checks that every id it defines,
// the model's vocabulary and its added tokens, lies below the shape's vocab
// size and that the vocabulary fills it: a smaller vocabulary would leave
// embedding rows no text reaches, a larger one ids the model cannot embed.
func realTokenizer(path string, vocab int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t struct {
		Model struct {
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
		Added []struct {
			ID int `json:"id"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	maxID := -1
	for _, id := range t.Model.Vocab {
		maxID = max(maxID, id)
	}
	for _, a := range t.Added {
		maxID = max(maxID, a.ID)
	}
	if len(t.Model.Vocab) != vocab || maxID >= vocab {
		return nil, fmt.Errorf("%s: vocabulary of %d tokens (largest id %d), the shape has %d", path, len(t.Model.Vocab), maxID, vocab)
	}
	return b, nil
}

// syntheticTokenizer is a Llama-2-style tokenizer.json: <unk>, <s>, </s>, the
// 256 byte-fallback tokens, then filler pieces up to vocab.
func syntheticTokenizer(vocab int) map[string]any {
	v := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := range 256 {
		v[fmt.Sprintf("<0x%02X>", b)] = 3 + b
	}
	for id := 259; id < vocab; id++ {
		v[fmt.Sprintf("▁t%d", id)] = id
	}
	added := []map[string]any{}
	for i, c := range []string{"<unk>", "<s>", "</s>"} {
		added = append(added, map[string]any{"id": i, "content": c, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	return map[string]any{
		"version":      "1.0",
		"added_tokens": added,
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"post_processor": map[string]any{
			"type":           "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair":           []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 1}}, map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}},
		},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"},
			map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": "<unk>", "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false, "vocab": v, "merges": []any{}},
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
