package convert

import (
	"context"
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/lowrank"
	"github.com/shrink-llm/shrink/quant"
)

// LowRankReport is what factoring one matrix achieved, measured on what was
// stored (the encoded factors decoded back, plus the decoded base for lorc).
type LowRankReport struct {
	Name   string         `json:"name"`
	Kind   format.Kind    `json:"kind"`
	Method lowrank.Method `json:"method"`
	Rank   int            `json:"rank"`
	Route  lowrank.Route  `json:"route"`
	// Whitening is how the statistics were factored, if they were.
	Whitening string `json:"whitening,omitempty"`
	// RelFrobenius is ||W − Ŵ||_F / ||W||_F.
	RelFrobenius float64 `json:"rel_frobenius"`
	// RelActErr is ||(W − Ŵ)X||_F / ||W X||_F over the calibration inputs
	// X (what whitening minimises); -1 without statistics.
	RelActErr float64 `json:"rel_act_err"`
	// BaseRelFrobenius and BaseRelActErr are the same errors of the
	// quantized base alone (lorc), before the correction; -1 otherwise.
	BaseRelFrobenius float64 `json:"base_rel_frobenius"`
	BaseRelActErr    float64 `json:"base_rel_act_err"`
	Seconds          float64 `json:"seconds"`
}

// factorTensor loads one matrix, factors it as pe says and encodes the
// parts. stats may be nil when the method needs none; when present they
// are also used to measure the activation error.
func factorTensor(ctx context.Context, d *TensorDesc, pe PlanEntry, stats *lowrank.Stats, lopts lowrank.Options, workers int) (format.Tensor, [][]byte, LowRankReport, error) {
	start := time.Now()
	rep := LowRankReport{Name: d.Name, Kind: pe.Kind, Method: pe.Method, Rank: pe.Rank, RelActErr: -1, BaseRelFrobenius: -1, BaseRelActErr: -1}
	m, n, err := matrixShape(d.Shape)
	if err != nil {
		return format.Tensor{}, nil, rep, err
	}
	k := pe.Rank
	lorc := pe.Kind == format.KindLoRC
	if want := 2 + boolInt(lorc); len(pe.Parts) != want || k < 1 {
		return format.Tensor{}, nil, rep, fmt.Errorf("plan entry for a %s tensor has %d parts and rank %d", pe.Kind, len(pe.Parts), k)
	}
	w := make([]float32, m*n)
	if err := d.Load(ctx, w); err != nil {
		return format.Tensor{}, nil, rep, err
	}
	// A factorisation of a matrix holding NaN or Inf is NaN throughout.
	if err := nonFiniteError(w, n); err != nil {
		return format.Tensor{}, nil, rep, err
	}
	t := format.Tensor{Name: d.Name, Shape: append([]int64(nil), d.Shape...), Kind: pe.Kind, SourceDType: string(d.DType)}
	for _, p := range pe.Parts {
		t.Parts = append(t.Parts, format.Part{Role: p.Role, Shape: append([]int64(nil), p.Shape...), Encoding: p.Encoding})
	}
	var data [][]byte
	var base []float32 // lorc: the decoded quantized matrix
	target := w
	if lorc {
		wp := pe.Parts[0]
		qb := make([]byte, wp.Bytes)
		if err := quant.EncodeParallel(ctx, wp.Encoding, qb, w, m, n, workers); err != nil {
			return t, nil, rep, fmt.Errorf("part w: %w", err)
		}
		base = make([]float32, m*n)
		if err := quant.Decode(wp.Encoding, base, qb, m, n); err != nil {
			return t, nil, rep, fmt.Errorf("part w: %w", err)
		}
		data = append(data, qb)
		target = lowrank.Residual(w, base)
		lopts.LoRCWhiten = pe.Whiten
		rep.BaseRelFrobenius = quant.Compare(w, base).RelFrobenius
		if stats != nil {
			rep.BaseRelActErr = activationError(w, base, m, n, stats)
		}
	}
	f, err := lowrank.Factorize(ctx, target, m, n, pe.Method, stats, lowrank.RankSpec{Rank: k}, lopts)
	if err != nil {
		return t, nil, rep, err
	}
	if f.K != k {
		return t, nil, rep, fmt.Errorf("factorisation has rank %d, the plan %d", f.K, k)
	}
	rep.Route, rep.Whitening = f.Route, f.Whitening
	ap, bp := pe.Parts[len(pe.Parts)-2], pe.Parts[len(pe.Parts)-1]
	a, ab, err := encodeDecoded(ctx, ap, f.A, m, k, workers)
	if err != nil {
		return t, nil, rep, err
	}
	b, bb, err := encodeDecoded(ctx, bp, f.B, k, n, workers)
	if err != nil {
		return t, nil, rep, err
	}
	data = append(data, ab, bb)
	recon := reconstruct(a, b, base, m, n, k)
	t.Metrics = toFormatMetrics(quant.Compare(w, recon))
	rep.RelFrobenius = t.Metrics.RelFrobenius
	if stats != nil {
		rep.RelActErr = activationError(w, recon, m, n, stats)
	}
	rep.Seconds = time.Since(start).Seconds()
	return t, data, rep, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// encodeDecoded encodes a factor as its part says and returns what the
// runtime will read back (the decoded values) along with the bytes.
func encodeDecoded(ctx context.Context, p PlanPart, v []float32, rows, cols, workers int) ([]float32, []byte, error) {
	buf := make([]byte, p.Bytes)
	if err := quant.EncodeParallel(ctx, p.Encoding, buf, v, rows, cols, workers); err != nil {
		return nil, nil, fmt.Errorf("part %s: %w", p.Role, err)
	}
	back := make([]float32, rows*cols)
	if err := quant.Decode(p.Encoding, back, buf, rows, cols); err != nil {
		return nil, nil, fmt.Errorf("part %s: %w", p.Role, err)
	}
	return back, buf, nil
}

// reconBlock is the rows reconstructed per float64 product, which bounds
// the float64 scratch to reconBlock·n values.
const reconBlock = 64

// gemmSerial computes c = a·b (a m×k, b k×n, row-major with the given
// strides) on the calling goroutine. gonum's Dgemm fans out to GOMAXPROCS
// goroutines once C has 4 or more 64×64 blocks, which would break the
// conversion's thread budget (a factorisation gets its share of it, often
// one thread); products of at most 64 rows × 192 columns stay serial, so C
// is cut into those.
func gemmSerial(m, n, k int, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	const rows, cols = 64, 192
	for i0 := 0; i0 < m; i0 += rows {
		r := min(rows, m-i0)
		for j0 := 0; j0 < n; j0 += cols {
			w := min(cols, n-j0)
			blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
				blas64.General{Rows: r, Cols: k, Stride: lda, Data: a[i0*lda:]},
				blas64.General{Rows: k, Cols: w, Stride: ldb, Data: b[j0:]},
				0, blas64.General{Rows: r, Cols: w, Stride: ldc, Data: c[i0*ldc+j0:]})
		}
	}
}

// reconstruct returns base + a·b (base may be nil) as float32, with the
// product and the sum in float64. a is m×k, b k×n, row-major.
func reconstruct(a, b, base []float32, m, n, k int) []float32 {
	out := make([]float32, m*n)
	b64 := widen64(b)
	blk := min(reconBlock, m)
	a64 := make([]float64, blk*k)
	c64 := make([]float64, blk*n)
	for r0 := 0; r0 < m; r0 += blk {
		r := min(blk, m-r0)
		for i, v := range a[r0*k : (r0+r)*k] {
			a64[i] = float64(v)
		}
		gemmSerial(r, n, k, a64[:r*k], k, b64, n, c64[:r*n], n)
		o := out[r0*n : (r0+r)*n]
		for i, v := range c64[:r*n] {
			if base != nil {
				v += float64(base[r0*n+i])
			}
			o[i] = float32(v)
		}
	}
	return out
}

// DecodeTensor decodes a stored tensor to float32 in its logical shape: the
// dense part w, or a·b for a low-rank tensor, or w + a·b for LoRC, with the
// product and the sum in float64 (reconstruct, the same numbers conversion
// measured). The GGUF export and eval's tensor comparison both read tensors
// through it. Its errors name neither the file nor the tensor: callers add
// them.
func DecodeTensor(f *format.File, t *format.Tensor) ([]float32, error) {
	rows, cols, err := matrixShape(t.Shape)
	if err != nil {
		return nil, err
	}
	var w, a, b []float32
	var ra, ca, rb, cb int
	for i := range t.Parts {
		p := &t.Parts[i]
		r, c, err := matrixShape(p.Shape)
		if err != nil {
			return nil, fmt.Errorf("part %s: %w", p.Role, err)
		}
		x := make([]float32, r*c)
		if err := quant.Decode(p.Encoding, x, f.PartData(p), r, c); err != nil {
			return nil, fmt.Errorf("part %s: %w", p.Role, err)
		}
		switch p.Role {
		case format.RoleW:
			w = x
		case format.RoleA:
			a, ra, ca = x, r, c
		case format.RoleB:
			b, rb, cb = x, r, c
		}
	}
	if w != nil && len(w) != rows*cols {
		return nil, fmt.Errorf("part w has %d values for shape %v", len(w), t.Shape)
	}
	switch t.Kind {
	case format.KindDense, "": // empty means dense
		if w == nil {
			return nil, fmt.Errorf("dense tensor without part w")
		}
		return w, nil
	case format.KindLowRank, format.KindLoRC:
		if a == nil || b == nil || (t.Kind == format.KindLoRC && w == nil) {
			return nil, fmt.Errorf("%s tensor lacks a part", t.Kind)
		}
		if ca != rb || ra != rows || cb != cols {
			return nil, fmt.Errorf("%s tensor: factors [%d, %d]·[%d, %d] do not make shape %v", t.Kind, ra, ca, rb, cb, t.Shape)
		}
		return reconstruct(a, b, w, rows, cols, ca), nil
	}
	return nil, fmt.Errorf("unknown kind %q", t.Kind)
}

// activationError is ||(W − Ŵ)X||_F / ||W X||_F for the inputs X the
// statistics summarise, through C = X Xᵀ: ||E X||² = Σ_rows e C eᵀ. The
// count normalisation cancels in the ratio. Returns -1 when undefined.
func activationError(w, got []float32, m, n int, st *lowrank.Stats) float64 {
	if st == nil || st.N != n || st.Count == 0 {
		return -1
	}
	c := st.Covariance()
	blk := min(reconBlock, m)
	e64 := make([]float64, 2*blk*n) // rows of E, then the same rows of W
	g64 := make([]float64, 2*blk*n)
	var num, den float64
	for r0 := 0; r0 < m; r0 += blk {
		r := min(blk, m-r0)
		for i := range r * n {
			wv := float64(w[r0*n+i])
			e64[i] = wv - float64(got[r0*n+i])
			e64[r*n+i] = wv
		}
		gemmSerial(2*r, n, n, e64[:2*r*n], n, c, n, g64[:2*r*n], n)
		for i := range r * n {
			num += g64[i] * e64[i]
			den += g64[r*n+i] * e64[r*n+i]
		}
	}
	if math.IsNaN(num) || math.IsInf(num, 0) {
		return -1
	}
	return relErr(math.Max(num, 0), den)
}

func widen64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
