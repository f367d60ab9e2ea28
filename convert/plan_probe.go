package convert

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime"
)

// Sensitivity names how the planner's measurement predicts the damage of a
// candidate encoding of one tensor.
type Sensitivity string

const (
	// SensitivityOutputError is the tensor's own relative output error
	// ‖(W−Ŵ)X‖²/‖WX‖² (activation-weighted with calibration statistics),
	// weighted by its share of the projections' weights. It reads one
	// tensor at a time and runs no model.
	SensitivityOutputError Sensitivity = "output-error"
	// SensitivityKL is a KL probe: the mean KL divergence of the model's
	// next-token distributions on a slice of the calibration text, from
	// the uncompressed model's, with that tensor alone replaced by its
	// encoded version. It measures what the output cares about.
	SensitivityKL Sensitivity = "kl"
)

// ParseSensitivity reads a --plan-sensitivity value ("" is refused: the
// command line picks the default, which depends on --calib).
func ParseSensitivity(s string) (Sensitivity, error) {
	return parseChoice("sensitivity", s, "", SensitivityKL, SensitivityOutputError)
}

// DefaultProbeTokens is how many calibration tokens the KL probe runs per
// candidate when ProbeOptions.Tokens is 0.
const DefaultProbeTokens = 1024

// ProbeOptions choose the KL probe's text (SensitivityKL).
type ProbeOptions struct {
	// Documents are the calibration documents (already selected); the
	// probe frames them as calibration does and takes the first Tokens.
	Documents []string
	// Tokens is the probe's token budget (default DefaultProbeTokens);
	// every candidate of every tensor runs the blocks from the tensor's
	// on, and the head, over them.
	Tokens int
	// Seq is the tokens per sequence (default 256, at most the model's
	// context and runtime.PrefillChunk).
	Seq int
	// TempDir holds the temporary uncompressed model (default os.TempDir()).
	TempDir string
}

// klProbe holds the uncompressed model and, for the probe's sequences,
// every block's input hidden states and the reference next-token
// distributions, so that a tensor of block l is probed by running blocks
// l… and the head only.
type klProbe struct {
	rt     *runtime.Model
	file   *format.File
	dir    string
	sess   *runtime.Session
	layers int
	vocab  int
	// hidden[l][i] is block l's input for sequence i (seqLen[i]×hidden).
	hidden [][][]float32
	seqLen []int
	tokens int
	// ref[i] is sequence i's reference probabilities (seqLen[i]×vocab),
	// refNegH its per-position Σ p·log p and refSum Σ p.
	ref     [][]float32
	refNegH [][]float64
	refSum  [][]float64
	x       []float32
	logits  []float32
	workers int
	// base, when set (setBase), holds the projections the model runs with
	// besides the probed one; nil: the uncompressed model's.
	base *runtime.MemSource
}

func (p *klProbe) baseSource() runtime.WeightSource {
	if p.base != nil {
		return p.base
	}
	return runtime.FileSource{F: p.file}
}

// setBase makes base's projections (decoded float32) the ones every
// later probe runs with, and recomputes each block's input hidden states
// through them. The reference distributions stay the uncompressed model's.
func (p *klProbe) setBase(ctx context.Context, base *runtime.MemSource) error {
	for l := range p.layers {
		if err := p.rt.ReplaceBlock(l, base); err != nil {
			return fmt.Errorf("KL probe: %w", err)
		}
	}
	p.base = base
	h := p.rt.Config().HiddenSize
	for i, T := range p.seqLen {
		x := p.x[:T*h]
		copy(x, p.hidden[0][i])
		for l := range p.layers - 1 {
			if err := p.sess.Block(ctx, l, x, 0); err != nil {
				return fmt.Errorf("KL probe: block %d: %w", l, err)
			}
			copy(p.hidden[l+1][i], x)
		}
	}
	return nil
}

// f32Weight wraps a float32 matrix as a dense runtime weight (its bytes on
// little-endian hosts, a little-endian copy elsewhere).
func f32Weight(name string, w []float32, rows, cols int) *runtime.Weight {
	data := float32Bytes(w)
	if !quant.HostLittleEndian {
		data = make([]byte, 4*len(w))
		for i, v := range w {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
		}
	}
	return runtime.DenseWeight(name, []int64{int64(rows), int64(cols)}, quant.F32, data)
}

// newKLProbe converts the model losslessly to a temporary .shrink, frames
// the probe text and runs the uncompressed model once over it, keeping
// each block's input and the final distributions.
func newKLProbe(ctx context.Context, m *Model, o ProbeOptions, workers int) (_ *klProbe, err error) {
	if len(o.Documents) == 0 {
		return nil, fmt.Errorf("the KL probe needs calibration text (--calib)")
	}
	tokens := o.Tokens
	if tokens <= 0 {
		tokens = DefaultProbeTokens
	}
	dir, err := format.MkdirTemp(o.TempDir, "shrink-probe")
	if err != nil {
		return nil, fmt.Errorf("KL probe: %w", err)
	}
	p := &klProbe{dir: dir, workers: max(workers, 1)}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	enc := losslessEncoding(m.Tensors)
	plan, err := MakePlan(m.Config, m.Tensors, Policy{Quant: enc, Embed: &enc, Output: &enc})
	if err != nil {
		return nil, fmt.Errorf("KL probe: %w", err)
	}
	tmp := filepath.Join(dir, "reference.shrink")
	if _, err := Convert(ctx, m, plan, tmp, Options{Workers: workers}); err != nil {
		return nil, fmt.Errorf("KL probe: converting the uncompressed model: %w", err)
	}
	if p.file, err = format.Open(tmp); err != nil {
		return nil, fmt.Errorf("KL probe: %w", err)
	}
	tok, err := runtime.LoadTokenizer(p.file)
	if err != nil {
		return nil, fmt.Errorf("KL probe: tokenizer: %w", err)
	}
	if tok == nil {
		return nil, fmt.Errorf("KL probe: the model has no tokenizer to read the text with")
	}
	if p.rt, err = runtime.New(runtime.FileSource{F: p.file}, tok, runtime.Options{Threads: workers, ExactQ8: true}); err != nil {
		return nil, fmt.Errorf("KL probe: %w", err)
	}
	ids, _, err := textdata.FrameLimit(tok, o.Documents, tokens)
	if err != nil {
		return nil, fmt.Errorf("KL probe text: %w", err)
	}
	ids = ids[:min(len(ids), tokens)]
	if len(ids) == 0 {
		return nil, fmt.Errorf("KL probe: the calibration text holds no tokens")
	}
	cfg := p.rt.Config()
	seq := o.Seq
	if seq <= 0 {
		seq = 256
	}
	seq = min(seq, runtime.PrefillChunk)
	if c := cfg.ContextLength; c > 0 {
		seq = min(seq, c)
	}
	if p.sess, err = p.rt.NewSession(seq); err != nil {
		return nil, fmt.Errorf("KL probe: %w", err)
	}
	p.layers, p.vocab, p.tokens = cfg.NumLayers, cfg.VocabSize, len(ids)
	h := cfg.HiddenSize
	p.hidden = make([][][]float32, p.layers)
	p.x = make([]float32, seq*h)
	p.logits = make([]float32, seq*p.vocab)
	for off := 0; off < len(ids); off += seq {
		end := min(off+seq, len(ids))
		T := end - off
		x := p.x[:T*h]
		if err := p.sess.Embed(x, ids[off:end], 0); err != nil {
			return nil, fmt.Errorf("KL probe: tokens %d-%d: %w", off, end, err)
		}
		for l := range p.layers {
			p.hidden[l] = append(p.hidden[l], append([]float32(nil), x...))
			if err := p.sess.Block(ctx, l, x, 0); err != nil {
				return nil, fmt.Errorf("KL probe: block %d: %w", l, err)
			}
		}
		lg := p.logits[:T*p.vocab]
		if err := p.sess.Head(x, lg); err != nil {
			return nil, fmt.Errorf("KL probe: %w", err)
		}
		ref := make([]float32, T*p.vocab)
		negH, sum := make([]float64, T), make([]float64, T)
		for t := range T {
			negH[t], sum[t] = softmaxRow(ref[t*p.vocab:(t+1)*p.vocab], lg[t*p.vocab:(t+1)*p.vocab])
		}
		p.ref, p.refNegH, p.refSum = append(p.ref, ref), append(p.refNegH, negH), append(p.refSum, sum)
		p.seqLen = append(p.seqLen, T)
	}
	return p, nil
}

func (p *klProbe) close() {
	if p.sess != nil {
		p.sess.Close()
	}
	if p.rt != nil {
		p.rt.Close()
	}
	if p.file != nil {
		p.file.Close()
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// cost is the mean KL divergence, over the probe's positions, of the model
// with tensor name (a projection of some block) replaced by the float32
// matrix w from the uncompressed model's distributions.
func (p *klProbe) cost(ctx context.Context, name string, w []float32, rows, cols int) (float64, error) {
	layer, _, ok := projection(name)
	if !ok || layer >= p.layers {
		return 0, fmt.Errorf("KL probe: %s is not a projection of a block of this model", name)
	}
	src := &runtime.MemSource{Cfg: p.rt.Config()}
	src.Add(f32Weight(name, w, rows, cols))
	if err := p.rt.ReplaceBlock(layer, src); err != nil {
		return 0, fmt.Errorf("KL probe: %w", err)
	}
	// Back to the base weights whatever happens.
	defer p.rt.ReplaceBlock(layer, p.baseSource())
	h := p.rt.Config().HiddenSize
	var total float64
	for i, T := range p.seqLen {
		x := p.x[:T*h]
		copy(x, p.hidden[layer][i])
		for l := layer; l < p.layers; l++ {
			if err := p.sess.Block(ctx, l, x, 0); err != nil {
				return 0, fmt.Errorf("KL probe: block %d: %w", l, err)
			}
		}
		lg := p.logits[:T*p.vocab]
		if err := p.sess.Head(x, lg); err != nil {
			return 0, fmt.Errorf("KL probe: %w", err)
		}
		total += p.klSum(i, lg)
	}
	return max(total/float64(p.tokens), 0), nil
}

// klSum is Σ over sequence i's positions of KL(ref ‖ softmax(logits)),
// positions split among the workers and the partial sums added in order.
func (p *klProbe) klSum(i int, logits []float32) float64 {
	T, v := p.seqLen[i], p.vocab
	return sumInChunks(T, p.workers, func(lo, hi int) float64 {
		var s float64
		for t := lo; t < hi; t++ {
			s += klRow(p.ref[i][t*v:(t+1)*v], p.refNegH[i][t], p.refSum[i][t], logits[t*v:(t+1)*v])
		}
		return s
	})
}

// softmaxRow writes softmax(z) into p (float32) and returns Σ p·log p and
// Σ p of the stored float32 values, in float64, so that a probe equal to
// the reference gives a KL of zero up to float64 rounding.
func softmaxRow(p, z []float32) (negH, sum float64) {
	lse := logSumExp(z)
	for j, zj := range z {
		p[j] = float32(math.Exp(float64(zj) - lse))
		if pj := float64(p[j]); pj > 0 {
			negH += pj * math.Log(pj)
			sum += pj
		}
	}
	return negH, sum
}

// klRow is KL(p̂ ‖ softmax(z)) for p̂ = p/Σp, the stored float32
// probabilities renormalized: (Σ p·log p − Σ p·z)/Σp − log Σp + logsumexp(z).
// Without the renormalization the float32 rounding of p, whose sum misses 1
// by up to about 1e-7, would bias every position's KL by Σp − 1 whatever
// z is.
func klRow(p []float32, negH, sum float64, z []float32) float64 {
	var pz float64
	for j, pj := range p {
		pz += float64(pj) * float64(z[j])
	}
	return (negH-pz)/sum - math.Log(sum) + logSumExp(z)
}

// logSumExp is log Σ exp(z) in float64, shifted by the maximum.
func logSumExp(z []float32) float64 {
	m := float32(math.Inf(-1))
	for _, v := range z {
		m = max(m, v)
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v - m))
	}
	return float64(m) + math.Log(s)
}
