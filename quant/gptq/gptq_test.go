package gptq

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

// spiky draws synthetic layer inputs shaped like real activations: a few
// strong directions and uneven channel energies. Each input is small noise
// plus k fixed random directions, each with an N(0,1) weight times top,
// top, top−1, top−1, …, then scaled per channel by a fixed e^(spread·N(0,1)).
type spiky struct {
	dirs, scale []float64 // k×n directions; n channel scales
	top         int
}

func newSpiky(rng *rand.Rand, k, n int, spread float64, top int) spiky {
	s := spiky{dirs: make([]float64, k*n), scale: make([]float64, n), top: top}
	for i := range s.dirs {
		s.dirs[i] = rng.NormFloat64()
	}
	for i := range s.scale {
		s.scale[i] = math.Exp(spread * rng.NormFloat64())
	}
	return s
}

// draw fills x (n long) with one input.
func (s spiky) draw(rng *rand.Rand, x []float64) {
	n := len(s.scale)
	for i := range x {
		x[i] = 0.3 * rng.NormFloat64()
	}
	for d := range len(s.dirs) / n {
		z := rng.NormFloat64() * float64(s.top-d/2)
		for i := range x {
			x[i] += z * s.dirs[d*n+i]
		}
	}
	for i := range x {
		x[i] *= s.scale[i]
	}
}

// correlated returns H = XXᵀ (cols×cols) of n samples x = A·z + noise with
// a few strong directions, and a weight matrix with some outliers.
func correlated(seed uint64, rows, cols, n int) (w []float32, h []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	src := newSpiky(rng, 6, cols, 1, 4)
	h = make([]float64, cols*cols)
	x := make([]float64, cols)
	for range n {
		src.draw(rng, x)
		for i := range cols {
			for j := i; j < cols; j++ {
				h[i*cols+j] += x[i] * x[j]
			}
		}
	}
	for i := range cols {
		for j := range i {
			h[i*cols+j] = h[j*cols+i]
		}
	}
	w = make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(0.02 * rng.NormFloat64())
		if rng.IntN(200) == 0 {
			w[i] *= 8
		}
	}
	return w, h
}

// outputError is tr((W−Ŵ) H (W−Ŵ)ᵀ).
func outputError(w, got []float32, h []float64, rows, cols int) float64 {
	var s float64
	d := make([]float64, cols)
	for r := range rows {
		for i := range cols {
			d[i] = float64(w[r*cols+i]) - float64(got[r*cols+i])
		}
		for i := range cols {
			if d[i] == 0 {
				continue
			}
			var t float64
			for j := range cols {
				t += h[i*cols+j] * d[j]
			}
			s += d[i] * t
		}
	}
	return s
}

func mustParse(t *testing.T, s string) quant.Encoding {
	t.Helper()
	e, err := quant.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// quantize runs GPTQ and checks that decoding the bytes gives exactly the
// values the pass rounded to.
func quantize(t *testing.T, e quant.Encoding, w []float32, rows, cols int, h []float64, opt Options) ([]byte, []float32) {
	t.Helper()
	size, err := e.Size(rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, size)
	opt.Dequant = make([]float32, rows*cols)
	if err := Quantize(context.Background(), e, dst, w, rows, cols, h, opt); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, rows*cols)
	if err := quant.Decode(e, got, dst, rows, cols); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(opt.Dequant[i]) {
			t.Fatalf("%v: weight %d decodes to %v, the pass rounded to %v", e, i, got[i], opt.Dequant[i])
		}
	}
	return dst, got
}

func rtn(t *testing.T, e quant.Encoding, w []float32, rows, cols int) ([]byte, []float32) {
	t.Helper()
	size, _ := e.Size(rows, cols)
	dst := make([]byte, size)
	if _, err := quant.EncodeWeighted(context.Background(), e, dst, w, rows, cols, 1, nil); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, rows*cols)
	if err := quant.Decode(e, got, dst, rows, cols); err != nil {
		t.Fatal(err)
	}
	return dst, got
}

func TestBelowRTN(t *testing.T) {
	cases := []struct {
		enc        string
		rows, cols int
		act        bool
		maxRatio   float64 // GPTQ error / RTN error must stay below
	}{
		{"q4", 40, 352, false, 0.6},
		{"q4", 33, 384, true, 0.6},
		{"q3", 40, 100, false, 0.6},
		{"q3", 24, 352, true, 0.6},
		{"q4s", 40, 352, false, 0.6},
		{"q4s", 17, 100, true, 0.6},
		{"q8", 40, 384, false, 0.6},
		{"q8g64", 20, 100, false, 0.6},
		{"q6", 20, 352, false, 0.6},
		{"q2", 20, 384, false, 0.8},
	}
	for i, c := range cases {
		e := mustParse(t, c.enc)
		w, h := correlated(uint64(i+1), c.rows, c.cols, 2*c.cols)
		_, gr := rtn(t, e, w, c.rows, c.cols)
		_, gg := quantize(t, e, w, c.rows, c.cols, h, Options{ActOrder: c.act, RowBlock: 7, Threads: 2, BlockSize: 64})
		er, eg := outputError(w, gr, h, c.rows, c.cols), outputError(w, gg, h, c.rows, c.cols)
		t.Logf("%s [%d, %d] act=%v: RTN %.4g GPTQ %.4g ratio %.3f", c.enc, c.rows, c.cols, c.act, er, eg, eg/er)
		if !(eg < c.maxRatio*er) {
			t.Errorf("%s [%d, %d] act=%v: GPTQ error %.4g not below %.2f × RTN's %.4g", c.enc, c.rows, c.cols, c.act, eg, c.maxRatio, er)
		}
	}
}

// With H a multiple of the identity nothing is fed back: the bytes must
// be RTN's exactly, whatever the block sizes.
func TestIdentityIsRTN(t *testing.T) {
	cases := []struct {
		enc        string
		rows, cols int
		act        bool
		block      int
	}{
		{"q4", 9, 352, false, 128},
		{"q4", 9, 100, true, 32},
		{"q3", 5, 384, false, 0},
		{"q5g64", 5, 300, false, 0},
		{"q4sg128", 6, 352, false, 0},
		{"q4s", 6, 100, true, 0},
		{"q8", 7, 100, false, 0},
		{"q8g128", 7, 352, true, 0},
	}
	for i, c := range cases {
		e := mustParse(t, c.enc)
		w, _ := correlated(uint64(100+i), c.rows, c.cols, 1)
		h := make([]float64, c.cols*c.cols)
		for k := range c.cols {
			h[k*c.cols+k] = 3
		}
		want, _ := rtn(t, e, w, c.rows, c.cols)
		got, _ := quantize(t, e, w, c.rows, c.cols, h, Options{ActOrder: c.act, BlockSize: c.block, RowBlock: 4})
		if !bytes.Equal(got, want) {
			t.Errorf("%s [%d, %d]: GPTQ with H = 3I differs from RTN", c.enc, c.rows, c.cols)
		}
	}
}

// The factor must satisfy UᵀU = H⁻¹, i.e. UᵀU·H = I, on a random SPD H.
func TestFactor(t *testing.T) {
	for _, n := range []int{1, 2, 7, 33} {
		_, h := correlated(uint64(n), 1, n, 3*n)
		var tr float64
		for i := range n {
			tr += h[i*n+i]
		}
		for i := range n { // keep it well conditioned: U is float32
			h[i*n+i] += tr / float64(n)
		}
		p := &pass{cols: n, opt: Options{PercDamp: -1}}
		if err := p.factor(h); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			for j := range n {
				// (UᵀU H)[i][j] = Σ_k Σ_l U[k][i] U[k][l] H[l][j]
				var s float64
				for k := 0; k <= i; k++ {
					for l := k; l < n; l++ {
						s += float64(p.u[k*n+i]) * float64(p.u[k*n+l]) * h[l*n+j]
					}
				}
				want := 0.0
				if i == j {
					want = 1
				}
				if math.Abs(s-want) > 1e-3 {
					t.Fatalf("n=%d: (UᵀU·H)[%d][%d] = %v, want %v", n, i, j, s, want)
				}
			}
		}
	}
}

// Dead columns (no input energy) are stored as zero-input weights and the
// pass stays finite; a wrong-sized buffer is an error.
func TestDeadColumnsAndErrors(t *testing.T) {
	const rows, cols = 6, 64
	w, h := correlated(9, rows, cols, 2*cols)
	for _, dc := range []int{0, 17, 63} {
		for j := range cols {
			h[dc*cols+j], h[j*cols+dc] = 0, 0
		}
	}
	for _, refine := range []int{0, 3} {
		_, got := quantize(t, quant.Q4, w, rows, cols, h, Options{Refine: refine})
		for r := range rows {
			if got[r*cols+17] != 0 && math.Abs(float64(got[r*cols+17])) > 0.01 {
				t.Errorf("refine %d, row %d: dead column decodes to %v, want about 0", refine, r, got[r*cols+17])
			}
		}
	}
	if err := Quantize(context.Background(), quant.Q4, make([]byte, 3), w, rows, cols, h, Options{}); err == nil {
		t.Error("short output accepted")
	}
	if err := Quantize(context.Background(), quant.F16, make([]byte, 2*rows*cols), w, rows, cols, h, Options{}); err == nil {
		t.Error("f16 accepted")
	}
}

// A factor shared between matrices of the same input gives the same bytes
// as factoring H for each; a mismatched one is refused.
func TestSharedFactor(t *testing.T) {
	const rows, cols = 12, 100
	w, h := correlated(21, rows, cols, 2*cols)
	for _, c := range []struct {
		act    bool
		refine int
	}{{false, 0}, {true, 0}, {false, 2}, {true, 3}} {
		act := c.act
		want, _ := quantize(t, quant.Q4, w, rows, cols, h, Options{ActOrder: act, Refine: c.refine})
		f, err := NewFactor(h, cols, Options{ActOrder: act, Refine: c.refine})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := quantize(t, quant.Q4, w, rows, cols, nil, Options{ActOrder: act, Refine: c.refine, Factor: f})
		if !bytes.Equal(got, want) {
			t.Errorf("act=%v refine=%d: shared factor changes the output", act, c.refine)
		}
		size, _ := quant.Q4.Size(rows, cols)
		if err := Quantize(context.Background(), quant.Q4, make([]byte, size), w, rows, cols, nil, Options{ActOrder: !act, Refine: c.refine, Factor: f}); err == nil {
			t.Errorf("act=%v: factor with the other order accepted", act)
		}
		if c.refine == 0 {
			if err := Quantize(context.Background(), quant.Q4, make([]byte, size), w, rows, cols, nil, Options{ActOrder: act, Refine: 1, Factor: f}); err == nil {
				t.Errorf("act=%v: factor made without refinement accepted for refinement", act)
			}
		}
	}
}

// TestRefitGroups: fitting each group's sub-scales when the pass reaches
// it writes bytes that decode to what the pass rounded to (quantize checks
// that), and stays close to fitting them at the super-block's start (it is
// greedy, group by group, so it may win or lose a little; on a model the
// comparison is a measurement, see BENCHMARKS.md).
func TestRefitGroups(t *testing.T) {
	cases := []struct {
		enc        string
		rows, cols int
	}{
		{"q4", 40, 352},
		{"q3", 24, 512},
		{"q5", 17, 300},
		{"q4g64", 20, 512},
	}
	for i, c := range cases {
		e := mustParse(t, c.enc)
		w, h := correlated(uint64(60+i), c.rows, c.cols, 2*c.cols)
		_, g0 := quantize(t, e, w, c.rows, c.cols, h, Options{RowBlock: 7, Threads: 2})
		_, g1 := quantize(t, e, w, c.rows, c.cols, h, Options{RowBlock: 7, Threads: 2, RefitGroups: true})
		e0, e1 := outputError(w, g0, h, c.rows, c.cols), outputError(w, g1, h, c.rows, c.cols)
		t.Logf("%s [%d, %d]: super-block start %.5g, each group %.5g (ratio %.3f)", c.enc, c.rows, c.cols, e0, e1, e1/e0)
		if e1 > 1.1*e0 {
			t.Errorf("%s [%d, %d]: refitting groups gives error %.5g, more than %.5g", c.enc, c.rows, c.cols, e1, e0)
		}
	}
}
