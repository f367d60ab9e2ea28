package eval

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/shrink-llm/shrink/runtime"
)

// Calibration holds, for every linear-layer input of the reference model
// (hook point and layer), the Gram matrix G = XᵀX of the activations X
// (tokens × inputs) seen on calibration text. It is all the activation-
// weighted error needs: ‖(W−Ŵ)Xᵀ‖²_F = trace((W−Ŵ) G (W−Ŵ)ᵀ), so no
// activation has to be kept.
type Calibration struct {
	Source string `json:"source"` // where the tokens came from
	Tokens int    `json:"tokens"` // tokens run through the model
	grams  map[gramKey]*Gram
}

type gramKey struct {
	layer int
	point string
}

// Gram is a symmetric n×n matrix, row-major, accumulated in float64.
type Gram struct {
	N    int
	Data []float64
	Rows int // activation rows (tokens) added
}

// NewGram returns an empty n×n Gram matrix.
func NewGram(n int) *Gram { return &Gram{N: n, Data: make([]float64, n*n)} }

// Add accumulates XᵀX for x of rows × g.N float32 values (row-major). Only
// the upper triangle is updated; call Symmetrize before reading.
func (g *Gram) Add(x []float32, rows int, scratch []float64) []float64 {
	n := g.N
	scratch = append(scratch[:0], make([]float64, rows*n)...)
	for i, v := range x[:rows*n] {
		scratch[i] = float64(v)
	}
	blas64.Syrk(blas.Trans, 1,
		blas64.General{Rows: rows, Cols: n, Stride: n, Data: scratch}, 1,
		blas64.Symmetric{Uplo: blas.Upper, N: n, Stride: n, Data: g.Data})
	g.Rows += rows
	return scratch
}

// addRef is the plain reference for Add (full matrix, no BLAS).
func (g *Gram) addRef(x []float32, rows int) {
	n := g.N
	for t := range rows {
		row := x[t*n : (t+1)*n]
		for i := range n {
			xi := float64(row[i])
			for j := i; j < n; j++ {
				g.Data[i*n+j] += xi * float64(row[j])
			}
		}
	}
	g.Rows += rows
}

// Symmetrize copies the upper triangle into the lower one.
func (g *Gram) Symmetrize() {
	n := g.N
	for i := range n {
		for j := i + 1; j < n; j++ {
			g.Data[j*n+i] = g.Data[i*n+j]
		}
	}
}

// QuadForm is Σ_r m_rᵀ G m_r = trace(M G Mᵀ) for M of rows × g.N float64
// values (row-major): ‖M Xᵀ‖²_F when G = XᵀX. G must be symmetrized.
func (g *Gram) QuadForm(m []float64, rows int) float64 {
	n := g.N
	prod := make([]float64, rows*n)
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: rows, Cols: n, Stride: n, Data: m},
		blas64.General{Rows: n, Cols: n, Stride: n, Data: g.Data}, 0,
		blas64.General{Rows: rows, Cols: n, Stride: n, Data: prod})
	var s float64
	for i, v := range prod {
		s += v * m[i]
	}
	return s
}

// quadFormRef is the plain reference for QuadForm.
func (g *Gram) quadFormRef(m []float64, rows int) float64 {
	n := g.N
	var s float64
	for r := range rows {
		row := m[r*n : (r+1)*n]
		for i := range n {
			var gi float64
			for j := range n {
				gi += g.Data[i*n+j] * row[j]
			}
			s += row[i] * gi
		}
	}
	return s
}

// Gram returns the Gram matrix of hook point at layer, or nil.
func (c *Calibration) Gram(layer int, point string) *Gram {
	if c == nil {
		return nil
	}
	return c.grams[gramKey{layer, point}]
}

// Calibrate runs m over tokens in consecutive windows of at most ctxLen
// tokens (each window a fresh sequence) and accumulates the Gram matrix of
// every linear-layer input. m should be the float32 reference, so that the
// activations are the original model's.
func Calibrate(ctx context.Context, m *runtime.Model, tokens []int, ctxLen int, source string) (*Calibration, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("no calibration tokens")
	}
	if c := m.Config().ContextLength; c > 0 {
		ctxLen = min(ctxLen, c)
	}
	if ctxLen < 1 {
		return nil, fmt.Errorf("calibration window %d too small", ctxLen)
	}
	if err := checkTokens(tokens, m.Config().VocabSize); err != nil {
		return nil, fmt.Errorf("calibration: %w", err)
	}
	cal := &Calibration{Source: source, Tokens: len(tokens), grams: map[gramKey]*Gram{}}
	s, err := m.NewSession(ctxLen)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var scratch []float64
	s.SetHook(func(layer int, point string, x []float32, rows, cols int) {
		k := gramKey{layer, point}
		g := cal.grams[k]
		if g == nil {
			g = NewGram(cols)
			cal.grams[k] = g
		}
		scratch = g.Add(x, rows, scratch)
	})
	for off := 0; off < len(tokens); off += ctxLen {
		s.Reset()
		if _, err := s.Prefill(ctx, tokens[off:min(off+ctxLen, len(tokens))], false); err != nil {
			return nil, fmt.Errorf("calibration, tokens %d…: %w", off, err)
		}
	}
	for _, g := range cal.grams {
		g.Symmetrize()
	}
	return cal, nil
}
