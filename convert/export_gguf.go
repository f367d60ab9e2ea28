package convert

import (
	"context"
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
	"github.com/shrink-llm/shrink/quant"
)

// ExportOptions tune ExportGGUF.
type ExportOptions struct {
	// Exact refuses any tensor whose numbers would change: low-rank and
	// LoRC tensors (multiplied out, the product rounds differently from the
	// runtime's two products) and q8 tensors whose groups are not llama.cpp's
	// Q8_0 blocks of 32 (which are then written as F32, the same numbers,
	// instead of being requantized).
	Exact bool
	// Name is general.name; default: the file's base name.
	Name string
}

// ExportResult describes a written GGUF file.
type ExportResult struct {
	Path    string
	Tensors int
	Bytes   int64
	// Notes say what was not carried as it is (one line per reason).
	Notes []string
	// Reencoded counts the tensors whose numbers or type changed.
	Reencoded int
}

// GGUF general.file_type values (llama.cpp's llama_ftype) for the
// projection encodings shrink can carry.
const (
	ggufFileTypeF32  = 0
	ggufFileTypeF16  = 1
	ggufFileTypeQ8_0 = 7
	ggufFileTypeBF16 = 32
)

// exportTensor is one GGUF tensor and how to produce its bytes from the
// .shrink tensors it comes from.
type exportTensor struct {
	name    string
	typ     gguf.TensorType
	rows    int
	cols    int
	sources []*format.Tensor // one, or gpt2's q, k, v fused into attn_qkv
	rotary  int              // >0: permute rows into llama.cpp's interleaved rotary order, head size
}

// ExportGGUF writes the model of a .shrink file as a GGUF v3 file llama.cpp
// can load: tensors in the llama.cpp type with the same numbers (f32, f16,
// bf16 as F32, F16, BF16; q8 with group 32 repacked into Q8_0 blocks, the
// same int8 quants and float16 scales), q and k rows of llama models back
// in llama.cpp's rotary order, GPT-2's q/k/v fused into attn_qkv, and the
// tokenizer as tokenizer.ggml.* metadata. The output appears atomically.
func ExportGGUF(ctx context.Context, f *format.File, out string, opts ExportOptions) (*ExportResult, error) {
	cfg := f.Config()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("export %s: "+format, append([]any{f.Path()}, args...)...)
	}
	switch cfg.Arch {
	case "llama", "qwen2", "gpt2":
	default:
		return nil, fail("architecture %q has no GGUF mapping (supported: llama, qwen2, gpt2)", cfg.Arch)
	}
	if cfg.RopeScaling != nil {
		return nil, fail("Llama 3 rope scaling (%s) is not exported (llama.cpp needs a rope_freqs tensor)", cfg.RopeScaling.Type)
	}
	res := &ExportResult{Path: out}
	byName := map[string]*format.Tensor{}
	for i := range f.Tensors() {
		t := &f.Tensors()[i]
		byName[t.Name] = t
	}

	var plan []exportTensor
	fused := map[string]bool{}
	noted := map[string][]string{} // note → tensors it applies to
	var noteOrder []string
	for i := range f.Tensors() {
		t := &f.Tensors()[i]
		if fused[t.Name] {
			continue
		}
		et := exportTensor{name: t.Name, sources: []*format.Tensor{t}}
		rows, cols, err := matrixShape(t.Shape)
		if err != nil {
			return nil, fail("tensor %q: %v", t.Name, err)
		}
		et.rows, et.cols = rows, cols
		if cfg.Arch == "gpt2" && (strings.HasSuffix(t.Name, ".attn_q.weight") || strings.HasSuffix(t.Name, ".attn_q.bias")) {
			// llama.cpp's GPT-2 graph takes one fused attn_qkv.
			base := strings.TrimSuffix(strings.TrimSuffix(t.Name, ".weight"), ".bias")
			base = strings.TrimSuffix(base, ".attn_q")
			suffix := t.Name[strings.LastIndex(t.Name, "."):]
			k, v := byName[base+".attn_k"+suffix], byName[base+".attn_v"+suffix]
			if k == nil || v == nil {
				return nil, fail("tensor %q has no attn_k/attn_v partner to fuse into attn_qkv", t.Name)
			}
			fused[k.Name], fused[v.Name] = true, true
			et.name = base + ".attn_qkv" + suffix
			et.sources = []*format.Tensor{t, k, v}
			if len(t.Shape) == 2 {
				et.rows = 3 * rows
			} else {
				et.cols = 3 * cols
			}
		}
		if cfg.Arch == "llama" && (strings.HasSuffix(t.Name, ".attn_q.weight") || strings.HasSuffix(t.Name, ".attn_k.weight")) {
			et.rotary = cfg.HeadDim
		}
		typ, note, err := exportType(et, opts.Exact)
		if err != nil {
			return nil, fail("tensor %q: %v", t.Name, err)
		}
		et.typ = typ
		if note != "" {
			if _, ok := noted[note]; !ok {
				noteOrder = append(noteOrder, note)
			}
			noted[note] = append(noted[note], et.name)
		}
		plan = append(plan, et)
	}

	for _, n := range noteOrder {
		names := noted[n]
		who := names[0]
		if len(names) > 1 {
			who = fmt.Sprintf("%d tensors (%s ... %s)", len(names), names[0], names[len(names)-1])
		}
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %s", who, n))
		res.Reencoded += len(names)
	}

	w := gguf.NewWriter()
	name := opts.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(f.Path()), filepath.Ext(f.Path()))
	}
	if err := ggufModelMetadata(w, cfg, name, plan); err != nil {
		return nil, fail("%v", err)
	}
	if err := exportTokenizer(w, f, cfg); err != nil {
		return nil, fail("%v", err)
	}
	for _, et := range plan {
		dims := []int64{int64(et.cols)}
		if len(et.sources[0].Shape) == 2 {
			dims = append(dims, int64(et.rows))
		}
		if _, err := w.AddTensor(et.name, et.typ, dims); err != nil {
			return nil, fail("%v", err)
		}
	}

	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := w.WriteTo(tmp, func(i int, _ *gguf.Tensor, dst io.Writer) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := exportBytes(f, plan[i])
		if err != nil {
			return err
		}
		_, err = dst.Write(b)
		return err
	})
	if err != nil {
		return nil, fail("%v", err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	// CreateTemp made the file private (0600); the result is an ordinary
	// output file, readable like the .shrink files convert writes.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	committed = true
	res.Tensors, res.Bytes = len(plan), n
	return res, nil
}

// exportType picks the GGUF type of a tensor and says why when the
// encoding is not carried as it is.
func exportType(et exportTensor, exact bool) (gguf.TensorType, string, error) {
	var typ gguf.TensorType
	var note string
	for k, t := range et.sources {
		tt, n, err := exportTypeOne(t, et.cols, exact)
		if err != nil {
			return 0, "", err
		}
		if k > 0 && tt != typ {
			// Fused parts must share one type; F32 holds any of them.
			if exact && (t.Kind != format.KindDense || et.sources[0].Kind != format.KindDense) {
				return 0, "", errors.New("parts of the fused attn_qkv differ in kind")
			}
			typ, note = gguf.TypeF32, "q, k and v differ in encoding; fused as F32"
			continue
		}
		typ = tt
		if n != "" {
			note = n
		}
	}
	return typ, note, nil
}

func exportTypeOne(t *format.Tensor, cols int, exact bool) (gguf.TensorType, string, error) {
	enc := t.Parts[0].Encoding
	if t.Kind != format.KindDense {
		if exact {
			return 0, "", fmt.Errorf("%s tensor cannot be exported exactly (llama.cpp has no factored weights; without --exact it is multiplied out)", t.Kind)
		}
		// The product is re-encoded in its factors' kind of encoding.
		typ, _, err := exportTypeOne(&format.Tensor{Kind: format.KindDense, Parts: []format.Part{{Encoding: t.Parts[len(t.Parts)-1].Encoding}}}, cols, false)
		return typ, fmt.Sprintf("%s factors multiplied out and re-encoded as %s", t.Kind, typ), err
	}
	switch enc.Kind {
	case quant.KindF32:
		return gguf.TypeF32, "", nil
	case quant.KindF16:
		return gguf.TypeF16, "", nil
	case quant.KindBF16:
		return gguf.TypeBF16, "", nil
	case quant.KindQ8:
		switch {
		case enc.Group == 32 && cols%32 == 0:
			return gguf.TypeQ8_0, "", nil
		case exact || cols%32 != 0:
			return gguf.TypeF32, fmt.Sprintf("%v has no llama.cpp type with the same blocks; written as F32 (the same numbers)", enc), nil
		default:
			return gguf.TypeQ8_0, fmt.Sprintf("%v requantized as Q8_0 (blocks of 32)", enc), nil
		}
	case quant.KindQ4S:
		// q4s with groups of 32 has Q4_0's numbers, d·(q−8) with d float16:
		// repacked from the planes into Q4_0 blocks.
		if enc.Group == 32 && cols%32 == 0 {
			return gguf.TypeQ4_0, "", nil
		}
	case quant.KindQK:
		// q4 and q5 with groups of 32 have Q4_K's and Q5_K's numbers,
		// (d·sc)·q − dmin·mn with 6-bit sc, mn per 32 weights and float16
		// d, dmin per 256.
		if enc.Group == 32 && cols%256 == 0 && (enc.Bits == 4 || enc.Bits == 5) {
			return map[int]gguf.TensorType{4: gguf.TypeQ4_K, 5: gguf.TypeQ5_K}[enc.Bits], "", nil
		}
	}
	// The other packed encodings (q2, q3, q5, q6, larger groups) have no
	// ggml type with the same numbers.
	if !exact && cols%32 == 0 {
		return gguf.TypeQ8_0, fmt.Sprintf("%v has no llama.cpp type with the same numbers; requantized as Q8_0", enc), nil
	}
	// Any other encoding decodes to float32 values F32 holds exactly.
	return gguf.TypeF32, fmt.Sprintf("%v has no llama.cpp type; written as F32 (the same numbers)", enc), nil
}

// exportBytes produces the GGUF bytes of one planned tensor.
func exportBytes(f *format.File, et exportTensor) ([]byte, error) {
	var parts [][]byte
	for _, t := range et.sources {
		b, err := tensorBytesAs(f, t, et.typ)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		parts = append(parts, b)
	}
	// Fused q, k, v: the row blocks (or vector pieces) one after the other.
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	if et.rotary > 0 {
		b = permuteRowsToInterleaved(b, et.rows, et.rotary)
	}
	return b, nil
}

// permuteRowsToInterleaved moves rows from Hugging Face's rotate-half order
// to llama.cpp's interleaved rotary order (the permutation its converter
// applies): within each head of hd rows, row t·hd/2 + j goes to 2j + t.
func permuteRowsToInterleaved(b []byte, rows, hd int) []byte {
	rb := len(b) / rows
	out := make([]byte, len(b))
	for r := 0; r < rows; r++ {
		d := interleavedRow(r, hd)
		copy(out[d*rb:(d+1)*rb], b[r*rb:(r+1)*rb])
	}
	return out
}

// tensorBytesAs encodes one .shrink tensor in GGUF type typ.
func tensorBytesAs(f *format.File, t *format.Tensor, typ gguf.TensorType) ([]byte, error) {
	rows, cols, err := matrixShape(t.Shape)
	if err != nil {
		return nil, err
	}
	p := &t.Parts[0]
	data := f.PartData(p)
	if t.Kind == format.KindDense {
		switch {
		case typ == gguf.TypeF32 && p.Encoding == quant.F32,
			typ == gguf.TypeF16 && p.Encoding == quant.F16,
			typ == gguf.TypeBF16 && p.Encoding == quant.BF16:
			return append([]byte(nil), data...), nil
		case typ == gguf.TypeQ8_0 && p.Encoding == quant.Q8 && cols%32 == 0:
			return q8ToQ8_0(data, rows, cols)
		case typ == gguf.TypeQ4_0 && p.Encoding == quant.Q4S(32) && cols%32 == 0:
			return q4sToQ4_0(data, rows, cols)
		case typ == gguf.TypeQ4_K && p.Encoding == quant.QK(4, 32) && cols%256 == 0:
			return qkToK(data, rows, cols, 4)
		case typ == gguf.TypeQ5_K && p.Encoding == quant.QK(5, 32) && cols%256 == 0:
			return qkToK(data, rows, cols, 5)
		}
	}
	x, err := DecodeTensor(f, t)
	if err != nil {
		return nil, err
	}
	size, err := typ.RowBytes(int64(rows) * int64(cols))
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	switch typ {
	case gguf.TypeF32:
		err = quant.Encode(quant.F32, out, x, rows, cols)
	case gguf.TypeF16:
		err = quant.Encode(quant.F16, out, x, rows, cols)
	case gguf.TypeBF16:
		err = quant.Encode(quant.BF16, out, x, rows, cols)
	case gguf.TypeQ8_0:
		err = gguf.QuantizeQ8_0(out, x)
	default:
		err = fmt.Errorf("cannot encode %s", typ)
	}
	return out, err
}

// q8ToQ8_0 repacks shrink's planar q8 (group 32) into Q8_0 blocks: the same
// float16 scale and int8 quants per 32 weights of a row.
func q8ToQ8_0(data []byte, rows, cols int) ([]byte, error) {
	quants, _, err := quant.Q8Planes(data, rows, cols, 32)
	if err != nil {
		return nil, err
	}
	qp := int(quant.QuantsPlaneSize(rows, cols))
	nb := cols / 32
	out := make([]byte, rows*nb*34)
	for r := 0; r < rows; r++ {
		for g := 0; g < nb; g++ {
			blk := out[(r*nb+g)*34:]
			copy(blk[:2], data[qp+2*(r*nb+g):])
			for k := 0; k < 32; k++ {
				blk[2+k] = byte(quants[r*cols+g*32+k])
			}
		}
	}
	return out, nil
}

// q4sToQ4_0 repacks shrink's q4s (group 32) into Q4_0 blocks: the same
// float16 scale and 4-bit quants per 32 weights, the quant of weight j in
// the low nibble of byte j and that of weight j+16 in its high nibble.
func q4sToQ4_0(data []byte, rows, cols int) ([]byte, error) {
	lo, _, _, sup, l, err := quant.PackedPlanes(quant.Q4S(32), data, rows, cols)
	if err != nil {
		return nil, err
	}
	nb := cols / 32
	out := make([]byte, rows*nb*18)
	q := make([]uint8, l.PaddedCols)
	for r := 0; r < rows; r++ {
		clear(q)
		quant.UnpackPlane(q, lo[r*l.LoRow:(r+1)*l.LoRow], 0, 4)
		for g := 0; g < nb; g++ {
			blk := out[(r*nb+g)*18:]
			binary.LittleEndian.PutUint16(blk, sup[r*l.Groups+g])
			for j := 0; j < 16; j++ {
				blk[2+j] = q[g*32+j]&15 | q[g*32+j+16]<<4
			}
		}
	}
	return out, nil
}

// qkToK repacks shrink's q4 or q5 (group 32) into Q4_K or Q5_K
// super-blocks of 256: float16 d and dmin, the eight 6-bit scales and mins
// packed in 12 bytes as ggml's get_scale_min_k4 reads them, for Q5_K the
// 32 bytes of fifth bits, then the nibbles, 64 weights per 32 bytes (weight
// i of the first group of a pair in the low nibble of byte i, weight i of
// the second in its high nibble).
func qkToK(data []byte, rows, cols, bits int) ([]byte, error) {
	e := quant.QK(bits, 32)
	lo, hi, sub, sup, l, err := quant.PackedPlanes(e, data, rows, cols)
	if err != nil {
		return nil, err
	}
	bb := 144
	if bits == 5 {
		bb = 176
	}
	nsb := cols / 256
	out := make([]byte, rows*nsb*bb)
	q := make([]uint8, l.PaddedCols)
	for r := 0; r < rows; r++ {
		clear(q)
		quant.UnpackPlane(q, lo[r*l.LoRow:(r+1)*l.LoRow], 0, 4)
		if bits == 5 {
			quant.UnpackPlane(q, hi[r*l.HiRow:(r+1)*l.HiRow], 4, 1)
		}
		subRow := sub[r*l.SubRow : (r+1)*l.SubRow]
		supRow := sup[r*l.SupRow/2:]
		for b := 0; b < nsb; b++ {
			blk := out[(r*nsb+b)*bb : (r*nsb+b+1)*bb]
			binary.LittleEndian.PutUint16(blk[0:], supRow[2*b])
			binary.LittleEndian.PutUint16(blk[2:], supRow[2*b+1])
			sc := blk[4:16]
			for j := 0; j < 8; j++ {
				s, m := quant.SubScales(subRow, b*8+j)
				if j < 4 {
					sc[j] |= s & 63
					sc[j+4] |= m & 63
				} else {
					sc[j+4] = s&0x0f | (m&0x0f)<<4
					sc[j-4] |= (s >> 4) << 6
					sc[j] |= (m >> 4) << 6
				}
			}
			qs, qh := kQuants(blk, bits)
			w := q[b*256:]
			for c := 0; c < 4; c++ {
				for i := 0; i < 32; i++ {
					qs[c*32+i] = w[c*64+i]&15 | (w[c*64+32+i]&15)<<4
					if qh != nil {
						qh[i] |= (w[c*64+i]>>4&1)<<(2*c) | (w[c*64+32+i]>>4&1)<<(2*c+1)
					}
				}
			}
		}
	}
	return out, nil
}

// ggufModelMetadata writes general.* and {arch}.* keys.
func ggufModelMetadata(w *gguf.Writer, cfg format.ModelConfig, name string, plan []exportTensor) error {
	arch := cfg.Arch
	ft := ggufFileTypeF32
	for _, et := range plan {
		if strings.HasSuffix(et.name, ".attn_q.weight") || strings.HasSuffix(et.name, ".attn_qkv.weight") {
			switch et.typ {
			case gguf.TypeF16:
				ft = ggufFileTypeF16
			case gguf.TypeBF16:
				ft = ggufFileTypeBF16
			case gguf.TypeQ8_0:
				ft = ggufFileTypeQ8_0
			}
			break
		}
	}
	u32 := func(v int) gguf.Value { return gguf.Uint32Value(uint32(v)) }
	key := func(k string) string { return arch + "." + k }
	kvs := []struct {
		k string
		v gguf.Value
	}{
		{"general.alignment", gguf.Uint32Value(gguf.DefaultAlignment)},
		{"general.architecture", gguf.StringValue(arch)},
		{"general.name", gguf.StringValue(name)},
		{"general.file_type", u32(ft)},
		{"general.quantization_version", u32(2)},
		{key("vocab_size"), u32(cfg.VocabSize)},
		{key("context_length"), u32(cfg.ContextLength)},
		{key("embedding_length"), u32(cfg.HiddenSize)},
		{key("block_count"), u32(cfg.NumLayers)},
		{key("feed_forward_length"), u32(cfg.IntermediateSize)},
		{key("attention.head_count"), u32(cfg.NumHeads)},
		{key("attention.head_count_kv"), u32(cfg.NumKVHeads)},
	}
	for _, kv := range kvs {
		if err := w.Set(kv.k, kv.v); err != nil {
			return err
		}
	}
	more := map[string]gguf.Value{}
	if cfg.HeadDim*cfg.NumHeads != cfg.HiddenSize {
		more[key("attention.key_length")] = u32(cfg.HeadDim)
		more[key("attention.value_length")] = u32(cfg.HeadDim)
	}
	if arch == "gpt2" {
		more[key("attention.layer_norm_epsilon")] = gguf.Float32Value(float32(cfg.NormEps))
	} else {
		more[key("rope.dimension_count")] = u32(cfg.HeadDim)
		more[key("rope.freq_base")] = gguf.Float32Value(float32(cfg.RopeTheta))
		more[key("attention.layer_norm_rms_epsilon")] = gguf.Float32Value(float32(cfg.NormEps))
	}
	for _, k := range sortedKeys(more) {
		if err := w.Set(k, more[k]); err != nil {
			return err
		}
	}
	if cfg.NormEps <= 0 || math.IsNaN(cfg.NormEps) {
		return fmt.Errorf("norm epsilon %g", cfg.NormEps)
	}
	return nil
}

func sortedKeys(m map[string]gguf.Value) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
