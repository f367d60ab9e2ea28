package runtime

import (
	"errors"
	"fmt"
	"math"
	goruntime "runtime"
	"sync/atomic"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

// ActivationHook receives the input of each group of linear layers during a
// forward pass: x holds rows × cols float32 (one row per token of the batch,
// row-major). point is "attn_in" (input of attn_q/k/v), "attn_out_in" (input
// of attn_output), "ffn_in" (input of ffn_gate/ffn_up) or "ffn_down_in"
// (input of ffn_down). x is scratch that is overwritten after the hook
// returns, so a hook must copy what it keeps. Long prompts reach the hook in
// chunks of at most PrefillChunk rows.
type ActivationHook func(layer int, point string, x []float32, rows, cols int)

// Activation hook points.
const (
	HookAttnIn    = "attn_in"
	HookAttnOutIn = "attn_out_in"
	HookFFNIn     = "ffn_in"
	HookFFNDownIn = "ffn_down_in"
)

// ProjectionInput is the hook point whose activation multiplies the
// projection s ("" when s is not a projection): q, k and v share
// HookAttnIn, gate and up share HookFFNIn, so they share statistics.
func ProjectionInput(s format.Stem) string {
	switch s {
	case format.AttnQ, format.AttnK, format.AttnV:
		return HookAttnIn
	case format.AttnOutput:
		return HookAttnOutIn
	case format.FFNGate, format.FFNUp:
		return HookFFNIn
	case format.FFNDown:
		return HookFFNDownIn
	}
	return ""
}

// PrefillChunk is the most prompt tokens pushed through the graph as one
// matrix; longer prompts go through in consecutive chunks (same result, as
// later chunks attend to the earlier ones through the KV cache), which
// bounds the scratch memory.
const PrefillChunk = 256

// Options configure a Model.
type Options struct {
	// Threads is the number of threads matrix products and attention use,
	// the caller's included; 0 means runtime.NumCPU().
	Threads int
	// Hook, when set, is the default ActivationHook of every session.
	Hook ActivationHook
	// ExactQ8 makes q8 weights multiply float32 activations instead of
	// quantizing the activations to int8 (slower; see Matrix).
	ExactQ8 bool
}

// MaxThreads is the most threads a model computes with: each thread has
// its own scratch and attention buffers, so an absurd count is refused
// before anything is allocated by it.
const MaxThreads = 1024

// The declared sizes of a model are bounded by the format's hard limits.
const (
	maxDim     = format.MaxDim
	maxContext = format.MaxContext
)

// layer holds one transformer block. Vectors (norms, biases) are decoded to
// float32; they are tiny. Absent biases are nil.
type layer struct {
	attnNorm, attnNormB []float32
	q, k, v, o          *Matrix
	qb, kb, vb, ob      []float32
	ffnNorm, ffnNormB   []float32
	gate, up, down      *Matrix
	upb, downb          []float32
}

// Model is a loaded model: encoded weights, graph settings and a worker
// pool. It is safe for concurrent use by several sessions.
type Model struct {
	cfg   format.ModelConfig
	tok   *tokenizer.Tokenizer
	file  interface{ Close() error } // set by Open
	opts  Options
	arch  string
	rope  bool // rotary positions (llama, qwen2) vs learned (gpt2)
	rms   bool // RMSNorm vs LayerNorm
	glu   bool // SwiGLU vs GELU MLP
	kvDim int
	qDim  int
	ffn   int

	embd, posEmbd     *Matrix
	layers            []layer
	outNorm, outNormB []float32
	output            *Matrix
	invFreq           []float32
	embdScratch       int // floats Matrix.row needs for the embeddings
	weightBytes       int64
	pool              *pool
	closed            atomic.Bool
	sessionBytes      atomic.Int64
}

// ErrClosed is returned by sessions of a closed model.
var ErrClosed = errors.New("runtime: model is closed")

// New builds a model over the weights of src. tok may be nil (token ids
// only). The weights are used in place: nothing is dequantized except 1-D
// tensors (norm weights and biases).
func New(src WeightSource, tok *tokenizer.Tokenizer, opts Options) (*Model, error) {
	cfg := src.Config()
	m := &Model{cfg: cfg, tok: tok, opts: opts}
	if opts.Threads < 0 || opts.Threads > MaxThreads {
		return nil, fmt.Errorf("threads %d: want 0 (all cores) to %d", opts.Threads, MaxThreads)
	}
	if err := m.setup(src); err != nil {
		return nil, err
	}
	if err := m.load(src); err != nil {
		return nil, err
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = goruntime.NumCPU()
	}
	m.opts.Threads = threads
	m.pool = newPool(threads)
	return m, nil
}

// setup validates the configuration against the tensors of src and fills
// the derived settings. Nothing is allocated by a declared size before it
// has been checked against a hard limit or a tensor's real shape.
func (m *Model) setup(src WeightSource) error {
	c := &m.cfg
	switch c.Arch {
	case "llama", "qwen2":
		m.rope = true
		m.rms, m.glu = true, true
	case "gpt2":
		m.rms, m.glu = false, false
	default:
		return fmt.Errorf("model config: unsupported arch %q (want llama, qwen2 or gpt2)", c.Arch)
	}
	m.arch = c.Arch
	switch c.NormKind {
	case "":
	case "rmsnorm":
		m.rms = true
	case "layernorm":
		m.rms = false
	default:
		return fmt.Errorf("model config: unknown norm_kind %q", c.NormKind)
	}
	switch c.Activation {
	case "":
	case "silu":
		m.glu = true
	case "gelu_tanh", "gelu_new", "gelu_pytorch_tanh":
		m.glu = false
	default:
		return fmt.Errorf("model config: unknown activation %q", c.Activation)
	}
	if c.HiddenSize <= 0 || c.NumLayers <= 0 || c.NumHeads <= 0 || c.VocabSize <= 0 {
		return fmt.Errorf("model config: hidden_size %d, num_layers %d, num_heads %d, vocab_size %d must all be positive",
			c.HiddenSize, c.NumLayers, c.NumHeads, c.VocabSize)
	}
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.NumKVHeads < 0 || c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("model config: num_heads %d is not a multiple of num_kv_heads %d", c.NumHeads, c.NumKVHeads)
	}
	if c.HeadDim == 0 {
		if c.HiddenSize%c.NumHeads != 0 {
			return fmt.Errorf("model config: hidden_size %d not divisible by num_heads %d and no head_dim", c.HiddenSize, c.NumHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if c.HeadDim <= 0 || (m.rope && c.HeadDim%2 != 0) {
		return fmt.Errorf("model config: invalid head_dim %d", c.HeadDim)
	}
	if c.ContextLength <= 0 {
		return fmt.Errorf("model config: context_length %d must be positive", c.ContextLength)
	}
	if c.NormEps < 0 || math.IsNaN(c.NormEps) || math.IsInf(c.NormEps, 0) {
		return fmt.Errorf("model config: invalid norm_eps %v", c.NormEps)
	}
	for _, d := range []struct {
		name  string
		v, mx int
	}{
		{"hidden_size", c.HiddenSize, maxDim}, {"num_heads", c.NumHeads, maxDim}, {"num_kv_heads", c.NumKVHeads, maxDim},
		{"head_dim", c.HeadDim, maxDim}, {"vocab_size", c.VocabSize, maxDim}, {"intermediate_size", c.IntermediateSize, maxDim},
		{"context_length", c.ContextLength, maxContext},
	} {
		if d.v > d.mx {
			return fmt.Errorf("model config: %s %d exceeds the limit of %d", d.name, d.v, d.mx)
		}
	}
	m.qDim = c.NumHeads * c.HeadDim
	m.kvDim = c.NumKVHeads * c.HeadDim
	// The declared layer count and head geometry must match tensors that
	// exist before anything is sized by them: the last layer must be there
	// (earlier ones are checked as they load), and the first query
	// projection must have heads × head_dim rows.
	last := fmt.Sprintf("blk.%d.attn_q.weight", c.NumLayers-1)
	if _, ok := src.Weight(last); !ok {
		return fmt.Errorf("model config: num_layers %d, but tensor %s is missing", c.NumLayers, last)
	}
	if w, ok := src.Weight("blk.0.attn_q.weight"); ok && len(w.Shape) == 2 && w.Shape[0] != int64(m.qDim) {
		return fmt.Errorf("model config: num_heads %d × head_dim %d = %d, but blk.0.attn_q.weight has %d rows",
			c.NumHeads, c.HeadDim, m.qDim, w.Shape[0])
	}
	if m.rope {
		if c.RopeTheta == 0 {
			c.RopeTheta = 10000
		}
		inv, err := ropeInvFreq(c.HeadDim, c.RopeTheta, c.RopeScaling)
		if err != nil {
			return fmt.Errorf("model config: %w", err)
		}
		m.invFreq = inv
	}
	return nil
}

// load resolves every tensor the graph needs and checks its shape.
func (m *Model) load(src WeightSource) error {
	c := &m.cfg
	h := c.HiddenSize
	// The matrices' interleaved copies, filled in parallel at the end.
	var pending []*dense
	mat := func(name string, rows, cols int) (*Matrix, error) {
		w, ok := src.Weight(name)
		if !ok {
			return nil, fmt.Errorf("missing tensor %s", name)
		}
		mm, err := newMatrix(w)
		if err != nil {
			return nil, err
		}
		pending = append(pending, mm.denses()...)
		if (rows >= 0 && mm.rows != rows) || mm.cols != cols {
			return nil, fmt.Errorf("tensor %s: shape [%d, %d], want [%d, %d] (-1 = any)", name, mm.rows, mm.cols, rows, cols)
		}
		m.weightBytes += mm.Bytes()
		return mm, nil
	}
	vec := func(name string, n int, required bool) ([]float32, error) {
		w, ok := src.Weight(name)
		if !ok {
			if required {
				return nil, fmt.Errorf("missing tensor %s", name)
			}
			return nil, nil
		}
		if len(w.Parts) != 1 || !w.Kind.Dense() {
			return nil, fmt.Errorf("tensor %s: 1-D tensor must be dense with one part", name)
		}
		p := &w.Parts[0]
		rows, cols, err := checkPart(p)
		if err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		if rows*cols != n {
			return nil, fmt.Errorf("tensor %s: %d values, want %d", name, rows*cols, n)
		}
		out := make([]float32, n)
		for r := range rows {
			decodeRow(out[r*cols:(r+1)*cols], p.Data, p.Encoding, rows, cols, r)
		}
		// Norms and biases scale every activation: one NaN silences the
		// model (it then prints nothing and succeeds), so refuse it here.
		for i, x := range out {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("tensor %s: value %d is %v", name, i, x)
			}
		}
		m.weightBytes += int64(4 * n)
		return out, nil
	}
	var err error
	// setMat and setVec load a tensor only while err is nil, so that in a
	// run of them the first missing or malformed tensor is the error.
	setMat := func(dst **Matrix, name string, rows, cols int) {
		if err == nil {
			*dst, err = mat(name, rows, cols)
		}
	}
	setVec := func(dst *[]float32, name string, n int, required bool) {
		if err == nil {
			*dst, err = vec(name, n, required)
		}
	}
	if m.embd, err = mat(format.Name(format.TokenEmbd, format.Weight), c.VocabSize, h); err != nil {
		return err
	}
	if !m.rope {
		if m.posEmbd, err = mat(format.Name(format.PositionEmbd, format.Weight), -1, h); err != nil {
			return err
		}
		if m.posEmbd.rows < c.ContextLength {
			return fmt.Errorf("tensor position_embd.weight: %d positions, model context is %d", m.posEmbd.rows, c.ContextLength)
		}
	}
	m.embdScratch = embScratch(m.embd, m.posEmbd)
	// Grown as layers load rather than sized by the declared count, so a
	// file that declares more layers than it holds fails at the first
	// missing one.
	m.layers = make([]layer, 0, min(c.NumLayers, 1024))
	for i := range c.NumLayers {
		m.layers = append(m.layers, layer{})
		L := &m.layers[i]
		setVec(&L.attnNorm, format.BlockName(i, format.AttnNorm, format.Weight), h, true)
		setVec(&L.attnNormB, format.BlockName(i, format.AttnNorm, format.Bias), h, false)
		setVec(&L.ffnNorm, format.BlockName(i, format.FFNNorm, format.Weight), h, true)
		setVec(&L.ffnNormB, format.BlockName(i, format.FFNNorm, format.Bias), h, false)
		setMat(&L.q, format.BlockName(i, format.AttnQ, format.Weight), m.qDim, h)
		setMat(&L.k, format.BlockName(i, format.AttnK, format.Weight), m.kvDim, h)
		setMat(&L.v, format.BlockName(i, format.AttnV, format.Weight), m.kvDim, h)
		setMat(&L.o, format.BlockName(i, format.AttnOutput, format.Weight), h, m.qDim)
		need := c.AttnBias
		setVec(&L.qb, format.BlockName(i, format.AttnQ, format.Bias), m.qDim, need)
		setVec(&L.kb, format.BlockName(i, format.AttnK, format.Bias), m.kvDim, need)
		setVec(&L.vb, format.BlockName(i, format.AttnV, format.Bias), m.kvDim, need)
		setVec(&L.ob, format.BlockName(i, format.AttnOutput, format.Bias), h, false)
		setMat(&L.up, format.BlockName(i, format.FFNUp, format.Weight), -1, h)
		if err != nil {
			return err
		}
		if m.ffn == 0 {
			m.ffn = L.up.rows
			if c.IntermediateSize != 0 && c.IntermediateSize != m.ffn {
				return fmt.Errorf("tensor %s: %d rows, config intermediate_size is %d", format.BlockName(i, format.FFNUp, format.Weight), m.ffn, c.IntermediateSize)
			}
		} else if L.up.rows != m.ffn {
			return fmt.Errorf("tensor %s: %d rows, earlier layers have %d", format.BlockName(i, format.FFNUp, format.Weight), L.up.rows, m.ffn)
		}
		if m.glu {
			setMat(&L.gate, format.BlockName(i, format.FFNGate, format.Weight), m.ffn, h)
		}
		setMat(&L.down, format.BlockName(i, format.FFNDown, format.Weight), h, m.ffn)
		setVec(&L.upb, format.BlockName(i, format.FFNUp, format.Bias), m.ffn, false)
		setVec(&L.downb, format.BlockName(i, format.FFNDown, format.Bias), h, false)
		if err != nil {
			return err
		}
	}
	setVec(&m.outNorm, format.Name(format.OutputNorm, format.Weight), h, true)
	setVec(&m.outNormB, format.Name(format.OutputNorm, format.Bias), h, false)
	if err != nil {
		return err
	}
	if _, ok := src.Weight(format.Name(format.Output, format.Weight)); ok && !c.TiedEmbeddings {
		if m.output, err = mat(format.Name(format.Output, format.Weight), c.VocabSize, h); err != nil {
			return err
		}
	} else if c.TiedEmbeddings {
		m.output = m.embd
	} else {
		return fmt.Errorf("missing tensor output.weight (and tied_embeddings is false)")
	}
	threads := m.opts.Threads
	if threads <= 0 {
		threads = goruntime.NumCPU()
	}
	var drop func([]byte)
	if d, ok := src.(interface{ DropPages([]byte) }); ok {
		drop = d.DropPages
	}
	packInterleaved(pending, threads, drop)
	return nil
}

// embScratch is the scratch Matrix.row needs for any of the given matrices.
func embScratch(ms ...*Matrix) int {
	n := 0
	for _, mm := range ms {
		if mm != nil && mm.a != nil {
			n = max(n, mm.rank+mm.cols)
		}
	}
	return n
}

// Config returns the model configuration (with defaults filled in).
func (m *Model) Config() format.ModelConfig { return m.cfg }

// Tokenizer returns the tokenizer, or nil when the model has none.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Threads is the number of threads the model computes with.
func (m *Model) Threads() int { return m.opts.Threads }

// Close stops the worker pool and releases the file the model was opened
// from. Sessions must not be used afterwards.
func (m *Model) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.pool.close()
	if m.file != nil {
		return m.file.Close()
	}
	return nil
}

// ResidentBytes is the memory the model uses for inference: the encoded
// weights it reads (mapped from the file when opened from one), the decoded
// 1-D tensors, and the KV caches and scratch of its open sessions.
func (m *Model) ResidentBytes() int64 {
	return m.weightBytes + m.sessionBytes.Load()
}

// WeightBytes is the size of the weights the model reads.
func (m *Model) WeightBytes() int64 { return m.weightBytes }

// DecodeBytes is the weight data one decode step reads: every layer's
// matrices and 1-D tensors, the final norm and the output head in full, and
// one row of the token (and position) embedding. Decoding is bound by memory
// bandwidth, so tokens/s × DecodeBytes ≤ bandwidth is its roofline.
func (m *Model) DecodeBytes() int64 {
	vec := func(vs ...[]float32) int64 {
		var n int64
		for _, v := range vs {
			n += int64(4 * len(v))
		}
		return n
	}
	rowBytes := func(mm *Matrix) int64 {
		if mm == nil {
			return 0
		}
		return (mm.Bytes() + int64(mm.rows) - 1) / int64(mm.rows)
	}
	var n int64
	for i := range m.layers {
		L := &m.layers[i]
		for _, mm := range []*Matrix{L.q, L.k, L.v, L.o, L.gate, L.up, L.down} {
			if mm != nil {
				n += mm.Bytes()
			}
		}
		n += vec(L.attnNorm, L.attnNormB, L.qb, L.kb, L.vb, L.ob, L.ffnNorm, L.ffnNormB, L.upb, L.downb)
	}
	n += vec(m.outNorm, m.outNormB) + m.output.Bytes()
	if m.output != m.embd {
		n += rowBytes(m.embd)
	}
	return n + rowBytes(m.posEmbd)
}
