package runtime

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shrink-llm/shrink/internal/testshared"
	"github.com/shrink-llm/shrink/quant"
	"github.com/shrink-llm/shrink/runtime/simd"
)

// refMul is the plain reference: Y[t, r] = Σ_i W[r, i]·X[t, i] in float64
// over the dequantized weights, plus the per-output bound Σ|W||X| used to
// scale float32 rounding tolerances.
func refMul(W []float64, rows, cols int, X []float64, T int) (Y, mag []float64) {
	Y = make([]float64, T*rows)
	mag = make([]float64, T*rows)
	for t := range T {
		for r := range rows {
			var s, a float64
			for i := range cols {
				p := W[r*cols+i] * X[t*cols+i]
				s += p
				a += math.Abs(p)
			}
			Y[t*rows+r] = s
			mag[t*rows+r] = a
		}
	}
	return Y, mag
}

// quantizedActs rounds X the way the q8 fast path does (one group scale per
// weight group), using simd.QuantizeQ8 as the definition.
func quantizedActs(X []float32, T, cols, group int) []float64 {
	out := make([]float64, len(X))
	ng := (cols + group - 1) / group
	xq := make([]int8, cols)
	xs := make([]float32, ng)
	for t := range T {
		simd.QuantizeQ8(xq, xs, X[t*cols:(t+1)*cols], group)
		for i := range cols {
			out[t*cols+i] = float64(xs[i/group]) * float64(xq[i])
		}
	}
	return out
}

// intActs reports whether enc's products quantize the activations to int8.
func intActs(enc quant.Encoding) bool { return enc.Kind == quant.KindQ8 || enc.IsPacked() }

func TestMatrixKernelsMatchReference(t *testing.T) {
	sizes := [][2]int{{1, 1}, {7, 33}, {65, 129}, {130, 257}}
	kinds := []string{"dense", "lowrank", "lorc"}
	rng := newRand(1)
	for _, enc := range allEncodings {
		for _, sz := range sizes {
			for _, kind := range kinds {
				rows, cols := sz[0], sz[1]
				w, mat := kindT(t, rng, "w", enc, kind, rows, cols, max(1, min(rows, cols)/3), 1/math.Sqrt(float64(cols)))
				W, _, _ := denseOf(t, w)
				for _, T := range []int{1, 5, 19} {
					X := randn(rng, T*cols, 1)
					X64 := testshared.Convert[float64](X)
					for _, threads := range []int{1, 3} {
						for _, exact := range []bool{true, false} {
							if exact && !intActs(enc) {
								continue // only q8 and the packed encodings have two paths
							}
							name := fmt.Sprintf("%v/%dx%d/%s/T%d/th%d/exact=%v", enc, rows, cols, kind, T, threads, exact)
							checkMul(t, name, mat, w, W, X, X64, T, threads, exact, enc)
						}
					}
				}
			}
		}
	}
}

func checkMul(t *testing.T, name string, mat *Matrix, w *Weight, W []float64, X []float32, X64 []float64, T, threads int, exact bool, enc quant.Encoding) {
	t.Helper()
	rows, cols := mat.Rows(), mat.Cols()
	p := newPool(threads)
	defer p.close()
	e := newExec(p, exact)
	// Reference for the q8 fast path: the same product with activations
	// rounded to the int8 grid. For low-rank parts the intermediate B·x is
	// rounded as well, so compare those against the exact reference with a
	// bound instead.
	refX := X64
	fast := intActs(enc) && !exact
	group := enc.Group
	if enc.IsPacked() {
		group = quant.PackBlock // packed weights pair with blocks of 32 activations
	}
	if fast && w.Kind == "dense" {
		refX = quantizedActs(X, T, cols, group)
	}
	want, mag := refMul(W, rows, cols, refX, T)
	for _, add := range []bool{false, true} {
		Y := make([]float32, T*rows)
		base := make([]float64, len(Y))
		if add {
			for i := range Y {
				Y[i] = float32(i%7) - 3
				base[i] = float64(Y[i])
			}
		}
		e.mul(mat, Y, X, T, add)
		for i := range Y {
			ref := want[i] + base[i]
			tol := 2e-6*mag[i] + 1e-6
			if fast && w.Kind != "dense" {
				tol = 0.03*mag[i] + 1e-4 // two int8 roundings of activations
			}
			if d := math.Abs(float64(Y[i]) - ref); d > tol || math.IsNaN(float64(Y[i])) {
				t.Fatalf("%s add=%v: Y[%d] = %v, want %v (diff %.3g, tol %.3g)", name, add, i, Y[i], ref, d, tol)
			}
		}
	}
	if fast && w.Kind == "dense" {
		// The activation rounding stays within its analytic bound: half a
		// step (amax/127/2) per element times Σ|W|.
		exactY, _ := refMul(W, rows, cols, X64, T)
		Y := make([]float32, T*rows)
		e.mul(mat, Y, X, T, false)
		for tt := range T {
			for r := range rows {
				var bound float64
				for g := 0; g*group < cols; g++ {
					lo, hi := g*group, min((g+1)*group, cols)
					var amax, sw float64
					for i := lo; i < hi; i++ {
						amax = max(amax, math.Abs(X64[tt*cols+i]))
						sw += math.Abs(W[r*cols+i])
					}
					bound += amax / 127 / 2 * sw
				}
				i := tt*rows + r
				if d := math.Abs(float64(Y[i]) - exactY[i]); d > bound*1.01+1e-5 {
					t.Fatalf("%s: activation rounding error %.3g exceeds bound %.3g", name, d, bound)
				}
			}
		}
	}
}

func TestMatrixRowMatchesReference(t *testing.T) {
	rng := newRand(2)
	for _, enc := range allEncodings {
		for _, kind := range []string{"dense", "lowrank", "lorc"} {
			rows, cols := 11, 45
			w, mat := kindT(t, rng, "e", enc, kind, rows, cols, 4, 1)
			W, _, _ := denseOf(t, w)
			scr := make([]float32, embScratch(mat))
			dst := make([]float32, cols)
			for r := range rows {
				mat.row(dst, r, scr)
				if d := maxAbsDiff32(dst, W[r*cols:(r+1)*cols]); d > 1e-5 {
					t.Fatalf("%v %s row %d: max diff %g", enc, kind, r, d)
				}
			}
		}
	}
}

func TestNewMatrixRejectsBadWeights(t *testing.T) {
	rng := newRand(3)
	good := denseT(t, rng, "w", quant.F16, 4, 8, 1)
	short := *good
	short.Parts = []WeightPart{good.Parts[0]}
	short.Parts[0].Data = short.Parts[0].Data[:10]
	lr := lowRankT(t, rng, "w", quant.F32, 4, 8, 2, false, 1)
	badB := *lr
	badB.Parts = append([]WeightPart(nil), lr.Parts...)
	badB.Parts[1].Shape = []int64{3, 8}
	badB.Parts[1].Data = testshared.Encode(t, quant.F32, make([]float32, 24), 3, 8)
	tests := []struct {
		name string
		w    *Weight
	}{
		{"1-D", DenseWeight("v", []int64{8}, quant.F32, make([]byte, 32))},
		{"short data", &short},
		{"unknown kind", &Weight{Name: "x", Shape: []int64{4, 8}, Kind: "weird", Parts: good.Parts}},
		{"missing part", &Weight{Name: "x", Shape: []int64{4, 8}, Kind: "lowrank", Parts: lr.Parts[:1]}},
		{"rank mismatch", &badB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewMatrix(tc.w); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestPoolRunsEveryBlockOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 5} {
		p := newPool(threads)
		var tk task
		for _, n := range []int{0, 1, 3, 100} {
			j := &countJob{hits: make([]int32, n), maxWorker: threads}
			p.run(&tk, j, n)
			for b, h := range j.hits {
				if h != 1 {
					t.Fatalf("threads %d n %d: block %d ran %d times", threads, n, b, h)
				}
			}
			if j.badWorker {
				t.Fatalf("threads %d: worker id out of range", threads)
			}
		}
		p.close()
	}
}

type countJob struct {
	hits      []int32
	maxWorker int
	badWorker bool
}

func (j *countJob) run(b, w int) {
	j.hits[b]++ // each block is claimed exactly once, so no race
	if w < 0 || w >= j.maxWorker {
		j.badWorker = true
	}
}

// TestQ8HandleReuse: the activation quantization is reused only through a
// valid q8Acts handle. A handle made by quantizing X skips the next
// quantization (shown by writing X in place and still getting X's old
// product), and stops working as soon as anything else has gone through
// the scratch (other group sizes, low-rank parts whose intermediate is
// quantized too, a larger reservation); products without a handle, such
// as a new graph step writing new values into the same buffer, always see
// the new values.
func TestQ8HandleReuse(t *testing.T) {
	rng := newRand(8)
	const rows, cols, T = 40, 96, 3
	mk := func(enc quant.Encoding, kind string) *Matrix {
		_, m := kindT(t, rng, "w", enc, kind, rows, cols, 7, 0.1)
		return m
	}
	// The same for q8, packed and mixed neighbours (packed weights need the
	// block sums a q8 quantization does not make).
	for _, target := range []*Matrix{mk(quant.Q8Group(32), "dense"), mk(quant.Q4, "dense"), mk(quant.QK(6, 32), "dense")} {
		X := randn(rng, T*cols, 1)
		X2 := randn(rng, T*cols, 1) // the next step's values
		p := newPool(2)
		defer p.close()
		fresh := func(X []float32) []float32 {
			y := make([]float32, T*rows)
			newExec(p, false).mul(target, y, X, T, false)
			return y
		}
		want, want2 := fresh(X), fresh(X2)
		same := func(name string, got, want []float32) {
			t.Helper()
			if !slices.Equal(got, want) {
				t.Fatalf("%s: product differs from a fresh one", name)
			}
		}
		got := make([]float32, T*rows)

		// A valid handle is used: X is overwritten, yet the product is X's.
		e := newExec(p, false)
		var h q8Acts
		buf := slices.Clone(X)
		e.mulWith(target, got, buf, T, false, &h)
		same("first product", got, want)
		copy(buf, X2)
		e.mulWith(target, got, buf, T, false, &h)
		same("valid handle", got, want)
		// Without the handle (mul, a new step) the new values are seen.
		e.mul(target, got, buf, T, false)
		same("new step", got, want2)

		// Anything quantized in between invalidates the handle.
		for i, other := range []*Matrix{
			mk(quant.Q8Group(32), "dense"), mk(quant.Q8Group(64), "dense"),
			mk(quant.Q8Group(32), "lowrank"), mk(quant.Q8Group(32), "lorc"), mk(quant.Q8Group(128), "lorc"),
			mk(quant.Q4, "dense"), mk(quant.QK(3, 64), "lorc"), mk(quant.QK(5, 32), "lowrank"), mk(quant.Q4NL(32), "dense"),
		} {
			e := newExec(p, false)
			var h q8Acts
			buf := slices.Clone(X)
			e.mulWith(target, got, buf, T, false, &h)
			tmp := make([]float32, T*rows)
			e.mul(other, tmp, randn(rng, T*cols, 1), T, false)
			copy(buf, X2)
			e.mulWith(target, got, buf, T, false, &h)
			same(fmt.Sprintf("case %d: stale handle", i), got, want2)
		}
		// So does growing the scratch.
		e = newExec(p, false)
		h = q8Acts{}
		buf = slices.Clone(X)
		e.mulWith(target, got, buf, T, false, &h)
		e.reserve(4*T, target)
		copy(buf, X2)
		e.mulWith(target, got, buf, T, false, &h)
		same("after reserve", got, want2)

		// mulShared on non-fusable matrices shares one quantization and gives
		// what separate products give; the next step's values are then seen.
		ms := []*Matrix{mk(quant.Q8Group(32), "lorc"), target, mk(quant.Q8Group(32), "lowrank"), mk(quant.Q4, "lorc")}
		for _, step := range [][]float32{X, X2} {
			copy(buf, step)
			Ys := make([][]float32, len(ms))
			for i := range Ys {
				Ys[i] = make([]float32, T*rows)
			}
			e.mulShared(ms, Ys, buf, T)
			for i, m := range ms {
				y := make([]float32, T*rows)
				newExec(p, false).mul(m, y, step, T, false)
				same(fmt.Sprintf("mulShared part %d", i), Ys[i], y)
			}
		}
	}
}

// TestPackedRejectsNonFiniteScales: a crafted packed part with an Inf or
// NaN float16 scale (checksums can be valid) is refused at load, naming it.
func TestPackedRejectsNonFiniteScales(t *testing.T) {
	rng := newRand(11)
	for _, enc := range []quant.Encoding{quant.Q4, quant.QK(5, 64), quant.Q4S(32), quant.Q4NL(64)} {
		for _, bad := range []uint16{0x7c00, 0xfe00} {
			w := denseT(t, rng, "w", enc, 5, 300, 0.1)
			l := enc.Layout(5, 300)
			at := int(l.SupAt) + 3*l.SupRow + 2 // row 3, second scale
			w.Parts[0].Data[at], w.Parts[0].Data[at+1] = byte(bad), byte(bad>>8)
			_, err := NewMatrix(w)
			if err == nil || !strings.Contains(err.Error(), "row 3 is not finite") {
				t.Errorf("%v with scale %#x: %v", enc, bad, err)
			}
		}
	}
}
