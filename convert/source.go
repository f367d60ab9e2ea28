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
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/gguf"
	"github.com/shrink-llm/shrink/internal/safeio"
	"github.com/shrink-llm/shrink/quant"
)

// SourceTensor is one tensor as it is stored in a checkpoint file: its bytes
// live at [off, off+size) of r. Families receive these and turn them into
// canonical TensorDesc values.
type SourceTensor struct {
	Name  string  // name in the source file
	DType DType   // element type as stored, e.g. DTypeBF16
	Shape []int64 // shape as stored
	File  string  // path of the file holding the bytes

	r    io.ReaderAt
	off  int64 // absolute offset of the first byte in r
	size int64 // byte length

	// GGUF tensors: DType is the ggml type name; block-quantized types
	// (Q8_0, Q4_K, ...) are dequantized by Load.
	fromGGUF bool
	ggml     gguf.TensorType
}

// blockQuant reports whether the source holds a ggml block-quantized type.
func (s *SourceTensor) blockQuant() bool { return s.fromGGUF && !s.DType.Float() }

// bytesOf is the source size of n elements (a multiple of the block size
// for block-quantized types).
func (s *SourceTensor) bytesOf(n int64) int64 {
	if s.blockQuant() {
		b, _ := s.ggml.RowBytes(n)
		return b
	}
	return n * s.DType.Size()
}

// NumElements is the product of Shape (1 for a scalar).
func (s *SourceTensor) NumElements() int64 { return Numel(s.Shape) }

// Numel is the number of elements of a tensor of the given shape, the
// product of its dimensions (1 for a scalar).
func Numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// transform says how the canonical tensor is derived from its source.
type transform uint8

const (
	// xfSlice: canonical = source elements [elemOff, elemOff+NumElements)
	// in order (the whole tensor, or a contiguous range such as one third of
	// GPT-2's fused c_attn bias).
	xfSlice transform = iota
	// xfTranspose: source is [srcRows, srcCols] (Conv1D [in, out]);
	// canonical is source columns [colOff, colOff+Shape[0]) transposed to
	// [Shape[0], srcRows].
	xfTranspose
	// xfRotary: source rows are in llama2.c's interleaved rotary order;
	// within each head of headDim rows, canonical row j < headDim/2 is
	// source row 2j and canonical row headDim/2+j is source row 2j+1
	// (HF rotate-half order).
	xfRotary
)

// TensorDesc is a lazy descriptor: it reads no weight bytes until Load.
type TensorDesc struct {
	Name       string  // canonical name, e.g. "blk.0.attn_q.weight"
	Shape      []int64 // canonical shape: [out, in] for matrices, [n] for vectors
	DType      DType   // source dtype: DTypeF32, DTypeF16 or DTypeBF16
	File       string  // source file path, for error messages
	SourceName string  // name in the source file (e.g. "model.layers.0.self_attn.q_proj.weight")

	src     *SourceTensor
	xf      transform
	elemOff int64 // xfSlice: first source element
	srcRows int64 // xfTranspose: rows of the source matrix
	srcCols int64 // xfTranspose: columns of the source matrix
	colOff  int64 // xfTranspose: first source column taken
	headDim int64 // xfRotary: rows per head
}

// NumElements is the product of the canonical shape.
func (d *TensorDesc) NumElements() int64 { return Numel(d.Shape) }

// Raw returns a reader of the exact source bytes when the canonical tensor is
// the source tensor byte for byte (no transform), for a byte-copy fast path.
// A contiguous element range of a source tensor also qualifies.
func (d *TensorDesc) Raw() (*io.SectionReader, bool) {
	if d.xf != xfSlice || d.src.blockQuant() {
		return nil, false
	}
	es := d.DType.Size()
	return io.NewSectionReader(d.src.r, d.src.off+d.elemOff*es, d.NumElements()*es), true
}

// Load decodes into dst (len == NumElements) in canonical layout.
func (d *TensorDesc) Load(ctx context.Context, dst []float32) error {
	_, err := d.load(ctx, dst, 1, false)
	return err
}

// load is Load with the reading and widening split over up to threads
// goroutines, each taking a contiguous range of the source; the caller holds
// that many threads of the conversion's budget. With scan it also reports
// whether any loaded value is NaN or ±Inf, checked on each chunk while it
// is in cache (the bits of the source where widening is exact), so the
// common all-finite tensor needs no second pass. Every range is read in
// chunks through pooled buffers straight into its place in dst, so a load
// allocates nothing in proportion to the tensor: llama.cpp's rotary row
// order of GGUF q and k is undone row by row as the rows arrive, not
// through a second copy of the tensor.
func (d *TensorDesc) load(ctx context.Context, dst []float32, threads int, scan bool) (nonFinite bool, err error) {
	n := d.NumElements()
	if int64(len(dst)) != n {
		return false, fmt.Errorf("convert: load %s: dst has %d elements, tensor has %d", d.Name, len(dst), n)
	}
	var bad atomic.Bool
	sc := &bad
	if !scan {
		sc = nil
	}
	switch d.xf {
	case xfSlice:
		unit := int64(1)
		if d.src.blockQuant() {
			unit = max(1, d.src.ggml.BlockSize())
		}
		err = inParts(n, unit, threads, func(lo, hi int64) error {
			return readWidenedScan(ctx, d.src, d.elemOff+lo, dst[lo:hi], sc)
		})
	case xfTranspose:
		tmp := make([]float32, d.srcRows*d.srcCols)
		if err = readWidenedScan(ctx, d.src, 0, tmp, sc); err == nil {
			transposeCols(dst, tmp, int(d.srcRows), int(d.srcCols), int(d.colOff), int(d.Shape[0]))
		}
	case xfRotary:
		rows, cols := d.Shape[0], d.Shape[1]
		err = inParts(rows, 1, threads, func(lo, hi int64) error {
			return readRotary(ctx, d.src, cols, d.headDim, lo, hi, dst, sc)
		})
	default:
		err = fmt.Errorf("unknown transform %d", d.xf)
	}
	if err != nil {
		return false, fmt.Errorf("convert: load %s (%s in %s): %w", d.Name, d.SourceName, d.File, err)
	}
	return bad.Load(), nil
}

// inParts runs f on up to threads ranges [lo, hi) that cut [0, n) at
// multiples of unit, at once, and returns the error of the first range
// that failed, so the error does not depend on the thread count's timing.
func inParts(n, unit int64, threads int, f func(lo, hi int64) error) error {
	units := (n + unit - 1) / unit
	parts := max(1, min(int64(threads), units))
	if parts == 1 {
		return f(0, n)
	}
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for k := range parts {
		lo, hi := units*k/parts*unit, min(units*(k+1)/parts*unit, n)
		wg.Go(func() { errs[k] = f(lo, hi) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// loadChunkBytes bounds the scratch buffer of one Load and how often it
// checks ctx: small enough to stay in L2, large enough that pread overhead is
// negligible.
const loadChunkBytes = 1 << 20

// chunkPool holds the loads' read buffers (loadChunkBytes each), so that a
// conversion reuses a few of them instead of leaving one per tensor for the
// garbage collector, which let the heap, and the page faults of refilling
// it, grow by the model's tensor count.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, loadChunkBytes); return &b }}

// readWidened reads len(dst) elements of src starting at element elemOff and
// widens them to float32 (dequantizes block-quantized GGUF sources).
func readWidened(ctx context.Context, src *SourceTensor, elemOff int64, dst []float32) error {
	return readWidenedScan(ctx, src, elemOff, dst, nil)
}

// readWidenedScan is readWidened that, when bad is not nil, sets it if a
// value read is NaN or ±Inf.
func readWidenedScan(ctx context.Context, src *SourceTensor, elemOff int64, dst []float32, bad *atomic.Bool) error {
	bq := src.blockQuant()
	if !bq && !src.DType.Float() {
		return fmt.Errorf("unsupported dtype %s", src.DType)
	}
	n := int64(len(dst))
	unit, unitBytes := int64(1), src.DType.Size()
	if bq {
		unit, unitBytes = src.ggml.BlockSize(), src.ggml.BlockBytes()
		if unit <= 0 || elemOff%unit != 0 || n%unit != 0 {
			return fmt.Errorf("element range [%d, %d) does not fall on %s blocks", elemOff, elemOff+n, src.ggml)
		}
	}
	if elemOff < 0 || (elemOff+n)/unit*unitBytes > src.size {
		return fmt.Errorf("element range [%d, %d) outside the %d-byte tensor", elemOff, elemOff+n, src.size)
	}
	base := src.off + elemOff/unit*unitBytes
	if src.DType == DTypeF32 && quant.HostLittleEndian {
		// The file bytes are the float32 values: read straight into dst.
		b := float32Bytes(dst)
		for start := 0; start < len(b); start += loadChunkBytes * 4 {
			if err := ctx.Err(); err != nil {
				return err
			}
			end := min(start+loadChunkBytes*4, len(b))
			if _, err := src.r.ReadAt(b[start:end], base+int64(start)); err != nil {
				return fmt.Errorf("read: %w", err)
			}
			if bad != nil && !bad.Load() && hasNonFinite(dst[start/4:end/4]) {
				bad.Store(true)
			}
		}
		return nil
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	per := max(1, int64(len(buf))/unitBytes) // units per chunk
	if per*unitBytes > int64(len(buf)) {
		buf = make([]byte, unitBytes)
	}
	for u := int64(0); u < n/unit; u += per {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := min(per, n/unit-u)
		raw := buf[:m*unitBytes]
		if _, err := src.r.ReadAt(raw, base+u*unitBytes); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if err := widen(dst[u*unit:(u+m)*unit], raw, src, bad); err != nil {
			return err
		}
	}
	return nil
}

// readRotary reads source rows [r0, r1) of a [rows, cols] source whose rows
// are in interleaved rotary order within heads of hd rows and writes each
// into its canonical (rotate-half) row of dst, the whole tensor: source row
// h·hd + 2j + t is canonical row h·hd + t·hd/2 + j (see rotaryToHalf).
func readRotary(ctx context.Context, src *SourceTensor, cols, hd, r0, r1 int64, dst []float32, bad *atomic.Bool) error {
	if hd <= 0 || hd%2 != 0 {
		return fmt.Errorf("rotary head dimension %d is not even", hd)
	}
	if src.blockQuant() && (src.ggml.BlockSize() <= 0 || cols%src.ggml.BlockSize() != 0) {
		return fmt.Errorf("rows of %d elements do not fall on %s blocks", cols, src.ggml)
	}
	if !src.blockQuant() && !src.DType.Float() {
		return fmt.Errorf("unsupported dtype %s", src.DType)
	}
	rowBytes := src.bytesOf(cols)
	if rowBytes <= 0 || r0 < 0 || r1*rowBytes > src.size || r1*cols > int64(len(dst)) {
		return fmt.Errorf("rows [%d, %d) of %d bytes outside the %d-byte tensor", r0, r1, rowBytes, src.size)
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	if rowBytes > int64(len(buf)) {
		buf = make([]byte, rowBytes)
	}
	per := int64(len(buf)) / rowBytes
	half := hd / 2
	for r := r0; r < r1; r += per {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := min(per, r1-r)
		raw := buf[:m*rowBytes]
		if _, err := src.r.ReadAt(raw, src.off+r*rowBytes); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		for i := range m {
			s := r + i
			k := s % hd
			c := s - k + (k%2)*half + k/2
			if err := widen(dst[c*cols:(c+1)*cols], raw[i*rowBytes:(i+1)*rowBytes], src, bad); err != nil {
				return err
			}
		}
	}
	return nil
}

// widen decodes the source bytes raw (whole elements, or whole blocks of a
// block-quantized type) into dst, and sets bad (when not nil) if a value is
// NaN or ±Inf. raw starts at a pooled buffer's start or a multiple of the
// element size from it, so the uint16 view is aligned.
func widen(dst []float32, raw []byte, src *SourceTensor, bad *atomic.Bool) error {
	if src.blockQuant() {
		if err := gguf.Dequantize(src.ggml, dst, raw); err != nil {
			return err
		}
		if bad != nil && !bad.Load() && hasNonFinite(dst) {
			bad.Store(true)
		}
		return nil
	}
	le := quant.HostLittleEndian
	// Widening is exact, so the half-width source has a NaN or ±Inf
	// exactly where the result does: its exponent field is all ones.
	exp16 := uint16(0)
	switch {
	case le && src.DType == DTypeF32:
		copy(float32Bytes(dst), raw)
	case le && src.DType == DTypeBF16:
		quant.BF16ToF32(dst, bytesUint16(raw))
		exp16 = 0x7f80
	case le && src.DType == DTypeF16:
		quant.F16ToF32(dst, bytesUint16(raw))
		exp16 = 0x7c00
	default:
		decodeLE(dst, raw, src.DType)
	}
	if bad == nil || bad.Load() {
		return nil
	}
	if exp16 != 0 && hasNonFinite16(bytesUint16(raw), exp16) || exp16 == 0 && hasNonFinite(dst) {
		bad.Store(true)
	}
	return nil
}

// hasNonFinite reports whether x holds a NaN or ±Inf: the largest exponent
// field, kept in four independent maxima, is all ones.
func hasNonFinite(x []float32) bool {
	const exp = 0x7f800000
	var m0, m1, m2, m3 uint32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		m0 = max(m0, math.Float32bits(x[i])&exp)
		m1 = max(m1, math.Float32bits(x[i+1])&exp)
		m2 = max(m2, math.Float32bits(x[i+2])&exp)
		m3 = max(m3, math.Float32bits(x[i+3])&exp)
	}
	for ; i < len(x); i++ {
		m0 = max(m0, math.Float32bits(x[i])&exp)
	}
	return max(m0, m1, m2, m3) == exp
}

// hasNonFinite16 is hasNonFinite over half-width bit patterns whose
// exponent field is exp.
func hasNonFinite16(x []uint16, exp uint16) bool {
	var m0, m1, m2, m3 uint16
	i := 0
	for ; i+4 <= len(x); i += 4 {
		m0 = max(m0, x[i]&exp)
		m1 = max(m1, x[i+1]&exp)
		m2 = max(m2, x[i+2]&exp)
		m3 = max(m3, x[i+3]&exp)
	}
	for ; i < len(x); i++ {
		m0 = max(m0, x[i]&exp)
	}
	return max(m0, m1, m2, m3) == exp
}

func bytesUint16(b []byte) []uint16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

// decodeLE is the portable reference decoder: little-endian bytes of dtype
// into float32, one element at a time.
func decodeLE(dst []float32, b []byte, dtype DType) {
	switch dtype {
	case DTypeF32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case DTypeBF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case DTypeF16:
		for i := range dst {
			dst[i] = quant.HalfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
		}
	}
}

func float32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

// transposeCols writes columns [c0, c0+m) of the rows×cols matrix src,
// transposed, into dst [m, rows]. Tiled so both sides stay in cache.
func transposeCols(dst, src []float32, rows, cols, c0, m int) {
	const tile = 32
	for rb := 0; rb < rows; rb += tile {
		re := min(rb+tile, rows)
		for jb := 0; jb < m; jb += tile {
			je := min(jb+tile, m)
			for r := rb; r < re; r++ {
				s := src[r*cols+c0 : r*cols+c0+m]
				for j := jb; j < je; j++ {
					dst[j*rows+r] = s[j]
				}
			}
		}
	}
}

// transposeColsRef is the plain definition transposeCols is tested against.
func transposeColsRef(dst, src []float32, rows, cols, c0, m int) {
	for j := 0; j < m; j++ {
		for r := 0; r < rows; r++ {
			dst[j*rows+r] = src[r*cols+c0+j]
		}
	}
}

// rotaryToHalf permutes the rows of src [rows, cols] from interleaved rotary
// pairs (2j, 2j+1) to rotate-half pairs (j, j+hd/2) within each head of hd
// rows: the inverse of the permutation llama2.c's export applies to HF
// weights.
func rotaryToHalf(dst, src []float32, rows, cols, hd int) {
	for d := range rows / hd * hd {
		s := interleavedRow(d, hd)
		copy(dst[d*cols:(d+1)*cols], src[s*cols:(s+1)*cols])
	}
}

// interleavedRow is where rotate-half row r stands in interleaved rotary
// order, within heads of hd rows: row h·hd + t·hd/2 + j is row h·hd + 2j + t.
func interleavedRow(r, hd int) int {
	half := hd / 2
	return r/hd*hd + 2*(r%half) + (r%hd)/half
}

// Model is an opened checkpoint: its canonical config, lazy tensor
// descriptors and tokenizer files. Close releases the open weight files.
type Model struct {
	Path           string
	Config         format.ModelConfig
	Tensors        []*TensorDesc     // canonical order: token_embd, position_embd, blk.0.* (attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down; weights then biases), ..., output_norm, output
	TokenizerKind  string            // format.TokenizerHF, TokenizerLlama2c, TokenizerSPM or TokenizerGGUF
	TokenizerFiles map[string][]byte // the kind's blobs (format/SPEC.md §5.1), those present
	SourceBytes    int64             // total size of the weight files

	files  []*os.File
	byName map[string]*TensorDesc
}

// Close closes the weight files; descriptors cannot Load afterwards.
func (m *Model) Close() error {
	var errs []error
	for _, f := range m.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.files = nil
	return errors.Join(errs...)
}

// Tensor finds a descriptor by canonical name.
func (m *Model) Tensor(name string) (*TensorDesc, bool) {
	d, ok := m.byName[name]
	return d, ok
}

func (m *Model) index() error {
	m.byName = make(map[string]*TensorDesc, len(m.Tensors))
	for _, d := range m.Tensors {
		if _, dup := m.byName[d.Name]; dup {
			return fmt.Errorf("convert: %s: canonical tensor %s produced twice", m.Path, d.Name)
		}
		m.byName[d.Name] = d
	}
	return nil
}

// OpenOptions tunes Open.
type OpenOptions struct {
	// Tokenizer is a tokenizer file to carry into the output, recognised
	// from its bytes: a tokenizer.json, a SentencePiece tokenizer.model, a
	// llama2.c tokenizer.bin or a GGUF file (its tokenizer.ggml.* metadata).
	// For llama2.c checkpoints, when empty, "tokenizer.bin" or the single
	// "tok*.bin" beside the checkpoint is used. For Hugging Face folders it
	// replaces tokenizer.json and tokenizer.model.
	Tokenizer string
	// NoTokenizer makes a weights-only file: no tokenizer is read, checked
	// or carried, and the output runs on token ids only.
	NoTokenizer bool
}

// Open reads a checkpoint's headers: a directory with config.json is a
// Hugging Face checkpoint, a file is a llama2.c .bin.
func Open(path string, opts OpenOptions) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("convert: open checkpoint: %w", err)
	}
	var m *Model
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "config.json")); err != nil {
			return nil, fmt.Errorf("convert: %s: a Hugging Face checkpoint folder needs config.json: %w", path, err)
		}
		m, err = openHF(path, opts)
	} else {
		if ext := strings.ToLower(filepath.Ext(path)); ext == ".safetensors" || ext == ".json" {
			return nil, fmt.Errorf("convert: %s: pass the Hugging Face checkpoint folder (with config.json), not one of its files", path)
		}
		read := readLlama2c
		if gguf.IsFile(path) {
			read = readGGUF
		}
		m, err = openFile(path, opts, read)
	}
	if err != nil {
		return nil, err
	}
	if err := m.index(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// openFile opens a one-file checkpoint (GGUF, llama2.c .bin) and reads it
// with read. The Model keeps the file open for loading; it is closed when
// read fails.
func openFile(path string, opts OpenOptions, read func(f *os.File, size int64, path string, opts OpenOptions) (*Model, error)) (*Model, error) {
	f, size, err := safeio.OpenSized(path)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	m, err := read(f, size, path, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.SourceBytes, m.files = size, []*os.File{f}
	return m, nil
}

// Family plugs one architecture in. Optional abilities are found by type
// assertion later.
type Family interface {
	Arch() string // "llama", "qwen2", "gpt2"
	Config(hf *HFConfig) (format.ModelConfig, error)
	// Tensors maps source names to canonical descriptors; every source
	// tensor must be used or explicitly ignored, else it is an error listing
	// the leftovers.
	Tensors(cfg format.ModelConfig, src map[string]*SourceTensor) ([]*TensorDesc, error)
}

// families lists the supported architectures by config.json's
// architectures[0].
func families() map[string]Family {
	return map[string]Family{
		"LlamaForCausalLM":   llamaFamily{},
		"MistralForCausalLM": llamaFamily{mistral: true},
		"Qwen2ForCausalLM":   qwen2Family(),
		"GPT2LMHeadModel":    gpt2Family{},
	}
}

// lookupFamily picks the family for config.json's architectures[0].
func lookupFamily(hf *HFConfig) (Family, error) {
	arch := hf.Architectures[0]
	fam, ok := families()[arch]
	if !ok {
		return nil, fmt.Errorf("%s: architecture %s is not supported (supported: %s)", hf.Path, arch, supportedArchitectures())
	}
	return fam, nil
}

func supportedArchitectures() string {
	names := make([]string, 0, 4)
	for k := range families() {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// tensorPicker hands source tensors to a family once each and reports the
// ones nobody took.
type tensorPicker struct {
	src  map[string]*SourceTensor
	used map[string]bool
	errs []string // need's problems, for err
}

func newPicker(src map[string]*SourceTensor) *tensorPicker {
	return &tensorPicker{src: src, used: make(map[string]bool, len(src))}
}

// take returns the named source tensor after checking its dtype and shape.
func (p *tensorPicker) take(name string, shape ...int64) (*SourceTensor, error) {
	s, ok := p.src[name]
	if !ok {
		return nil, fmt.Errorf("missing tensor %s", name)
	}
	p.used[name] = true
	if !s.DType.Float() && !s.blockQuant() {
		return nil, fmt.Errorf("%s: tensor %s has dtype %s; supported: F32, F16, BF16", s.File, name, s.DType)
	}
	if !slices.Equal(s.Shape, shape) {
		return nil, fmt.Errorf("%s: tensor %s has shape %v, want %v", s.File, name, s.Shape, shape)
	}
	return s, nil
}

// need is take for mappings that report all their problems at once: it
// keeps the error for err and returns nil.
func (p *tensorPicker) need(name string, shape ...int64) *SourceTensor {
	s, err := p.take(name, shape...)
	if err != nil {
		p.errs = append(p.errs, err.Error())
		return nil
	}
	return s
}

// err names the first problems need met, else the leftovers; nil when the
// mapping took every source tensor as it wanted.
func (p *tensorPicker) err(arch string) error {
	if len(p.errs) > 0 {
		return fmt.Errorf("%s: %s", arch, firstErrors(p.errs))
	}
	return p.leftovers(arch)
}

func (p *tensorPicker) has(name string) bool { _, ok := p.src[name]; return ok }

// ignore marks a tensor as deliberately unused (e.g. rotary inv_freq buffers).
func (p *tensorPicker) ignore(name string) {
	if _, ok := p.src[name]; ok {
		p.used[name] = true
	}
}

// ignoreMatching marks every tensor whose name satisfies f as unused on purpose.
func (p *tensorPicker) ignoreMatching(f func(string) bool) {
	for name := range p.src {
		if f(name) {
			p.used[name] = true
		}
	}
}

// leftovers is an error naming the unused tensors, or nil.
func (p *tensorPicker) leftovers(arch string) error {
	var left []string
	for name := range p.src {
		if !p.used[name] {
			left = append(left, name)
		}
	}
	if len(left) == 0 {
		return nil
	}
	sort.Strings(left)
	more := ""
	if len(left) > 20 {
		more = fmt.Sprintf(" and %d more", len(left)-20)
		left = left[:20]
	}
	return fmt.Errorf("%s: %d source tensors not used by the %s mapping: %s%s", arch, len(left), arch, strings.Join(left, ", "), more)
}

// whole describes the canonical tensor name as source s unchanged.
func whole(name string, s *SourceTensor) *TensorDesc {
	return &TensorDesc{Name: name, Shape: append([]int64(nil), s.Shape...), DType: s.DType, File: s.File, SourceName: s.Name, src: s}
}

// sliceOf describes elements [off, off+n) of the 1-D or flattened source.
func sliceOf(name string, s *SourceTensor, off, n int64) *TensorDesc {
	return &TensorDesc{Name: name, Shape: []int64{n}, DType: s.DType, File: s.File, SourceName: s.Name, src: s, elemOff: off}
}

// transposed describes columns [c0, c0+m) of the 2-D source, transposed.
func transposed(name string, s *SourceTensor, c0, m int64) *TensorDesc {
	return &TensorDesc{Name: name, Shape: []int64{m, s.Shape[0]}, DType: s.DType, File: s.File, SourceName: s.Name,
		src: s, xf: xfTranspose, srcRows: s.Shape[0], srcCols: s.Shape[1], colOff: c0}
}

// rotaryPermuted describes the 2-D source with rows reordered from
// interleaved to rotate-half rotary within heads of hd rows.
func rotaryPermuted(name string, s *SourceTensor, hd int64) *TensorDesc {
	return &TensorDesc{Name: name, Shape: append([]int64(nil), s.Shape...), DType: s.DType, File: s.File, SourceName: s.Name,
		src: s, xf: xfRotary, headDim: hd}
}

// openHF opens a Hugging Face checkpoint folder.
func openHF(dir string, opts OpenOptions) (*Model, error) {
	hf, err := readHFConfig(dir)
	if err != nil {
		return nil, err
	}
	fam, err := lookupFamily(hf)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	cfg, err := fam.Config(hf)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	set, err := openSafetensorsDir(dir)
	if err != nil {
		return nil, err
	}
	m := &Model{Path: dir, Config: cfg, SourceBytes: set.bytes, files: set.files}
	if err := checkDeclared(hf.Path, &cfg, len(set.tensors)); err != nil {
		m.Close()
		return nil, fmt.Errorf("convert: %w", err)
	}
	if m.Tensors, err = fam.Tensors(cfg, set.tensors); err != nil {
		m.Close()
		return nil, fmt.Errorf("convert: %s: %w", dir, err)
	}
	if opts.NoTokenizer {
		return m, nil
	}
	if m.TokenizerKind, m.TokenizerFiles, err = readHFTokenizer(dir, opts.Tokenizer, cfg.VocabSize); err != nil {
		m.Close()
		return nil, err
	}
	if err := checkTokenizer(dir, m.TokenizerKind, m.TokenizerFiles, cfg); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}
