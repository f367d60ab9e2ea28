package convert

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
)

// llama2cFile builds a v0 checkpoint whose float at array position p of
// array a is a·1e6 + p, so every loaded value tells where it came from.
func llama2cFile(h llama2cHeader) []byte {
	var b []byte
	for _, v := range []int32{h.Dim, h.Hidden, h.Layers, h.Heads, h.KVHeads, h.Vocab, h.SeqLen} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	vocab := int(h.Vocab)
	if vocab < 0 {
		vocab = -vocab
	}
	dim, hid, L := int(h.Dim), int(h.Hidden), int(h.Layers)
	hd := dim / int(h.Heads)
	kv := hd * int(h.KVHeads)
	sizes := []int{vocab * dim, L * dim, L * dim * dim, L * kv * dim, L * kv * dim, L * dim * dim, L * dim,
		L * hid * dim, L * dim * hid, L * hid * dim, dim, int(h.SeqLen) * hd / 2, int(h.SeqLen) * hd / 2}
	if h.Vocab < 0 {
		sizes = append(sizes, vocab*dim)
	}
	for a, n := range sizes {
		for p := 0; p < n; p++ {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(a*1e6+p)))
		}
	}
	return b
}

// llama2cTokenizerFile is a valid tokenizer.bin with n tokens laid out as
// llama2.c's exporter writes them: unk, BOS, EOS, the 256 byte tokens, a
// space, then two-letter pieces (n ≥ 260 gives one the runtime can load).
func llama2cTokenizerFile(n int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 6)
	for i := 0; i < n; i++ {
		var tok string
		switch {
		case i < 3:
			tok = []string{"<unk>", "\n<s>\n", "\n</s>\n"}[i]
		case i < 259:
			tok = fmt.Sprintf("<0x%02X>", i-3)
		case i == 259:
			tok = " "
		default:
			tok = string([]byte{'a' + byte(i%26), 'a' + byte(i/26%26)})
		}
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(-i)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(tok)))
		b = append(b, tok...)
	}
	return b
}

func TestLlama2cUntiedLayout(t *testing.T) {
	// 300 tokens: the runtime's llama2.c tokenizer needs the 256 byte
	// tokens, and convert loads the tokenizer it embeds.
	h := llama2cHeader{Dim: 8, Hidden: 12, Layers: 2, Heads: 2, KVHeads: 1, Vocab: -300, SeqLen: 6}
	dir := t.TempDir()
	path := filepath.Join(dir, "model.bin")
	writeFile(t, path, llama2cFile(h))
	writeFile(t, filepath.Join(dir, "tokenizer.bin"), llama2cTokenizerFile(300))
	m := openModel(t, path, OpenOptions{})
	if m.Config.TiedEmbeddings || m.Config.VocabSize != 300 || m.Config.NumKVHeads != 1 || m.Config.HeadDim != 4 {
		t.Errorf("config %+v", m.Config)
	}
	load := func(name string) []float32 { return loadTensor(t, m, name) }
	// array index a, first element of layer 1 for a [L, rows, cols] array
	first := func(a, layerElems int) float32 { return float32(a*1e6 + layerElems) }
	tests := []struct {
		name string
		want float32 // value of element 0
		n    int
	}{
		{"token_embd.weight", 0, 40},
		{"blk.1.attn_norm.weight", first(1, 8), 8},
		{"blk.1.attn_v.weight", first(4, 4*8), 32},
		{"blk.1.attn_output.weight", first(5, 64), 64},
		{"blk.1.ffn_norm.weight", first(6, 8), 8},
		{"blk.1.ffn_gate.weight", first(7, 96), 96},
		{"blk.1.ffn_down.weight", first(8, 96), 96},
		{"blk.1.ffn_up.weight", first(9, 96), 96},
		{"output_norm.weight", first(10, 0), 8},
		{"output.weight", first(13, 0), 40},
	}
	for _, tc := range tests {
		v := load(tc.name)
		for i := range v {
			if v[i] != tc.want+float32(i) {
				t.Fatalf("%s[%d] = %v, want %v", tc.name, i, v[i], tc.want+float32(i))
			}
		}
	}
	// attn_k of layer 1: one head of 4 rows × 8 cols; canonical rows 0..3
	// come from source rows 0, 2, 1, 3.
	k := load("blk.1.attn_k.weight")
	for r, s := range []int{0, 2, 1, 3} {
		for c := 0; c < 8; c++ {
			if want := first(3, 32) + float32(s*8+c); k[r*8+c] != want {
				t.Fatalf("attn_k[%d,%d] = %v, want %v", r, c, k[r*8+c], want)
			}
		}
	}
	if d, _ := m.Tensor("blk.0.attn_q.weight"); d != nil {
		if _, ok := d.Raw(); ok {
			t.Error("permuted attn_q offers a raw byte path")
		}
	}
}

func TestLlama2cErrors(t *testing.T) {
	good := llama2cHeader{Dim: 8, Hidden: 12, Layers: 1, Heads: 2, KVHeads: 2, Vocab: 4, SeqLen: 4}
	tests := []struct {
		name string
		file func() []byte
		tok  map[string][]byte // tokenizer files beside the checkpoint
		opt  string            // OpenOptions.Tokenizer, relative to the folder
		want []string
	}{
		{"truncated", func() []byte { b := llama2cFile(good); return b[:len(b)-4] }, map[string][]byte{"tokenizer.bin": llama2cTokenizerFile(4)}, "",
			[]string{"model.bin", "needs exactly"}},
		{"trailing bytes", func() []byte { return append(llama2cFile(good), 0, 0, 0, 0) }, map[string][]byte{"tokenizer.bin": llama2cTokenizerFile(4)}, "",
			[]string{"model.bin", "needs exactly"}},
		{"short header", func() []byte { return []byte{1, 2, 3} }, nil, "", []string{"model.bin", "28-byte header"}},
		{"versioned export", func() []byte {
			b := binary.LittleEndian.AppendUint32(nil, llama2cMagic)
			return append(binary.LittleEndian.AppendUint32(b, 1), make([]byte, 256)...)
		}, nil, "", []string{"model.bin", "version 1", "not supported"}},
		{"implausible header", func() []byte { return make([]byte, 64) }, nil, "", []string{"model.bin", "implausible header"}},
		{"header overflow", func() []byte {
			h := llama2cHeader{Dim: math.MaxInt32 - 1, Hidden: math.MaxInt32, Layers: math.MaxInt32, Heads: 2, KVHeads: 1, Vocab: math.MaxInt32, SeqLen: math.MaxInt32}
			var b []byte
			for _, v := range []int32{h.Dim, h.Hidden, h.Layers, h.Heads, h.KVHeads, h.Vocab, h.SeqLen} {
				b = binary.LittleEndian.AppendUint32(b, uint32(v))
			}
			return b
		}, nil, "", []string{"model.bin", "overflow"}},
		{"no tokenizer", func() []byte { return llama2cFile(good) }, nil, "", []string{"model.bin", "--tokenizer"}},
		{"two tokenizers", func() []byte { return llama2cFile(good) },
			map[string][]byte{"tok4.bin": llama2cTokenizerFile(4), "tok8.bin": llama2cTokenizerFile(8)}, "", []string{"tok4.bin", "tok8.bin", "--tokenizer"}},
		{"tokenizer vocab mismatch", func() []byte { return llama2cFile(good) }, map[string][]byte{"tok9.bin": llama2cTokenizerFile(9)}, "",
			[]string{"tok9.bin", "9 tokens", "has 4"}},
		{"tokenizer malformed", func() []byte { return llama2cFile(good) }, map[string][]byte{"t.bin": llama2cTokenizerFile(4)[:20]}, "t.bin",
			[]string{"t.bin", "truncated"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "model.bin"), tc.file())
			for n, b := range tc.tok {
				writeFile(t, filepath.Join(dir, n), b)
			}
			opts := OpenOptions{}
			if tc.opt != "" {
				opts.Tokenizer = filepath.Join(dir, tc.opt)
			}
			m, err := Open(filepath.Join(dir, "model.bin"), opts)
			if err == nil {
				m.Close()
			}
			wantErr(t, err, tc.want...)
		})
	}
}

func TestLlama2cTokenizerChoice(t *testing.T) {
	h := llama2cHeader{Dim: 8, Hidden: 12, Layers: 1, Heads: 2, KVHeads: 2, Vocab: 300, SeqLen: 4}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "model.bin"), llama2cFile(h))
	tok := llama2cTokenizerFile(300)
	alt := slices.Clone(tok)
	alt[len(alt)-1] = 'z'
	writeFile(t, filepath.Join(dir, "tokenizer.bin"), tok)
	writeFile(t, filepath.Join(dir, "tok4.bin"), alt)
	writeFile(t, filepath.Join(dir, "other", "mine.bin"), alt)
	for _, tc := range []struct {
		opt  string
		want []byte
	}{{"", tok}, {filepath.Join(dir, "other", "mine.bin"), alt}} {
		m, err := Open(filepath.Join(dir, "model.bin"), OpenOptions{Tokenizer: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		if m.TokenizerKind != "llama2c" || !slices.Equal(m.TokenizerFiles["tokenizer.bin"], tc.want) {
			t.Errorf("opt %q: wrong tokenizer picked", tc.opt)
		}
		m.Close()
	}
}

// TestLlama2cRandomRoundTrip checks the rotary permutation is a bijection
// on random weights: permuting back with the llama2.c export order restores
// the source rows.
func TestLlama2cRandomRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const heads, hd, cols = 3, 6, 5
	src := randF32(rng, heads*hd*cols)
	got := make([]float32, len(src))
	rotaryToHalf(got, src, heads*hd, cols, hd)
	back := make([]float32, len(src))
	for h := 0; h < heads; h++ {
		for j := 0; j < hd/2; j++ {
			// llama2.c export: interleaved row 2j ← rotate-half row j, 2j+1 ← j+hd/2.
			copy(back[(h*hd+2*j)*cols:], got[(h*hd+j)*cols:(h*hd+j+1)*cols])
			copy(back[(h*hd+2*j+1)*cols:], got[(h*hd+hd/2+j)*cols:(h*hd+hd/2+j+1)*cols])
		}
	}
	if !slices.Equal(back, src) {
		t.Error("export permutation does not invert rotaryToHalf")
	}
}
