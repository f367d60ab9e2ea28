package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

type namedFeatures struct {
	name string
	f    features
}

var testLengths = []int{0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 1000, 4097}

// unitRoundoff is float32's u = 2^-24.
const unitRoundoff = 0x1p-24

// withinSumError reports whether got is within float32 summation-order error
// of the exact value want, where abs = Σ|terms| over n terms. Every kernel
// (and reference) sums at most n/4 + 32 terms in one chain, so the bound
// (n/4 + 32)·u·abs holds for all of them while one missing or doubled term
// of typical size (abs/n) is still far outside it for the lengths tested.
func withinSumError(got float32, want, abs float64, n int) bool {
	// The second term covers results in float32's subnormal range, where
	// rounding error is absolute (half of 2^-149 per operation).
	tol := float64(n/4+32)*unitRoundoff*abs + float64(n+1)*0x1p-149
	return math.Abs(float64(got)-want) <= tol
}

func randF32(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// randF16 draws finite binary16 values spanning 2^-14..2^6 plus subnormals.
func randF16(r *rand.Rand, n int) []uint16 {
	v := make([]uint16, n)
	for i := range v {
		exp := uint16(r.IntN(21)) // 0 = subnormal
		v[i] = uint16(r.IntN(2))<<15 | exp<<10 | uint16(r.IntN(1024))
	}
	return v
}

// randBF16 truncates normal float32 draws to bfloat16.
func randBF16(r *rand.Rand, n int) []uint16 {
	v := make([]uint16, n)
	for i := range v {
		v[i] = uint16(math.Float32bits(float32(r.NormFloat64()*8)) >> 16)
	}
	return v
}

func randQ8(r *rand.Rand, n int, lo int) []int8 {
	v := make([]int8, n)
	for i := range v {
		v[i] = int8(lo + r.IntN(128-lo))
	}
	return v
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// offsetCopy returns a copy of v that starts off elements into a fresh
// backing array, to exercise unaligned loads.
func offsetCopy[T any](v []T, off int) []T {
	buf := make([]T, off+len(v)+8)
	copy(buf[off:], v)
	return buf[off : off+len(v)]
}

func exactDot[W any](w []W, x []float32, widen func(W) float64) (sum, abs float64) {
	for i := range w {
		p := widen(w[i]) * float64(x[i])
		sum += p
		abs += math.Abs(p)
	}
	return sum, abs
}

func f32w(v float32) float64 { return float64(v) }
func f16w(h uint16) float64  { return float64(F16ToF32(h)) }
func bf16w(h uint16) float64 { return float64(bf16ToF32(h)) }

// exactQ8 returns Σ_g d_g·Σ_i w_i·x_i with integer group sums and float64
// scaling, plus Σ_g |d_g|·Σ_i |w_i·x_i| for the tolerance.
func exactQ8(wq []int8, ws []uint16, xq []int8, xs []float32, group int) (sum, abs float64) {
	for g := 0; g*group < len(wq); g++ {
		var acc, accAbs int64
		for i := g * group; i < min((g+1)*group, len(wq)); i++ {
			p := int64(wq[i]) * int64(xq[i])
			acc += p
			accAbs += max(p, -p)
		}
		d := float64(F16ToF32(ws[g])) * float64(xs[g])
		sum += d * float64(acc)
		abs += math.Abs(d) * float64(accAbs)
	}
	return sum, abs
}

func TestDotFloatDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, fs := range testFeatureSets() {
		for _, n := range testLengths {
			for off := range 8 {
				x := offsetCopy(randF32(r, n), (off+3)%8)

				a := offsetCopy(randF32(r, n), off)
				want, abs := exactDot(a, x, f32w)
				if got := dotF32With(fs.f, a, x); !withinSumError(got, want, abs, n) {
					t.Errorf("%s DotF32 n=%d off=%d: got %v, exact %v (Σ|ab|=%v)", fs.name, n, off, got, want, abs)
				}

				h := offsetCopy(randF16(r, n), off)
				want, abs = exactDot(h, x, f16w)
				if got := dotF16With(fs.f, h, x); !withinSumError(got, want, abs, n) {
					t.Errorf("%s DotF16 n=%d off=%d: got %v, exact %v (Σ|ab|=%v)", fs.name, n, off, got, want, abs)
				}

				b := offsetCopy(randBF16(r, n), off)
				want, abs = exactDot(b, x, bf16w)
				if got := dotBF16With(fs.f, b, x); !withinSumError(got, want, abs, n) {
					t.Errorf("%s DotBF16 n=%d off=%d: got %v, exact %v (Σ|ab|=%v)", fs.name, n, off, got, want, abs)
				}
			}
		}
	}
}

// TestDotFloatExactIntegers uses small integer inputs whose every partial sum
// is exactly representable, so any summation order must give the exact
// result: a dropped, doubled or misaligned element cannot hide in rounding.
func TestDotFloatExactIntegers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, fs := range testFeatureSets() {
		for _, n := range testLengths {
			a, x := make([]float32, n), make([]float32, n)
			h, b := make([]uint16, n), make([]uint16, n)
			var want float32
			for i := range a {
				a[i] = float32(r.IntN(17) - 8)
				x[i] = float32(r.IntN(17) - 8)
				h[i] = f32ToF16Small(a[i])
				b[i] = uint16(math.Float32bits(a[i]) >> 16)
				want += a[i] * x[i]
			}
			for off := range 8 {
				ao, ho, bo, xo := offsetCopy(a, off), offsetCopy(h, off), offsetCopy(b, off), offsetCopy(x, 7-off)
				if got := dotF32With(fs.f, ao, xo); got != want {
					t.Errorf("%s DotF32 n=%d off=%d: got %v want %v", fs.name, n, off, got, want)
				}
				if got := dotF16With(fs.f, ho, xo); got != want {
					t.Errorf("%s DotF16 n=%d off=%d: got %v want %v", fs.name, n, off, got, want)
				}
				if got := dotBF16With(fs.f, bo, xo); got != want {
					t.Errorf("%s DotBF16 n=%d off=%d: got %v want %v", fs.name, n, off, got, want)
				}
			}
		}
	}
}

// f32ToF16Small encodes an integer in [-8, 8] as binary16.
func f32ToF16Small(v float32) uint16 {
	if v == 0 {
		return 0
	}
	var sign uint16
	if v < 0 {
		sign, v = 0x8000, -v
	}
	e := math.Ilogb(float64(v))
	mant := uint16(float64(v)/math.Ldexp(1, e)*1024) & 0x3ff
	return sign | uint16(e+15)<<10 | mant
}

func TestF16ToF32Specials(t *testing.T) {
	tests := []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 0x1p-24}, {0x03ff, 1023 * 0x1p-24},
		{0x0400, 0x1p-14}, {0x8000, float32(math.Copysign(0, -1))}, {0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	}
	for _, tt := range tests {
		if got := F16ToF32(tt.h); math.Float32bits(got) != math.Float32bits(tt.want) {
			t.Errorf("F16ToF32(%#04x) = %v, want %v", tt.h, got, tt.want)
		}
	}
	if got := F16ToF32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("F16ToF32(0x7e00) = %v, want NaN", got)
	}
}

// sameSpecial reports whether got and want agree in being NaN or ±Inf.
func sameSpecial(got, want float32) bool {
	g, w := float64(got), float64(want)
	if math.IsNaN(w) || math.IsNaN(g) {
		return math.IsNaN(w) && math.IsNaN(g)
	}
	if math.IsInf(w, 0) || math.IsInf(g, 0) {
		return got == want
	}
	return true
}

func TestDotHalfSpecials(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		name   string
		f16    uint16
		bf16   uint16
		xsign  float32
		expect string
	}{
		{"+inf", 0x7c00, 0x7f80, 1, "+inf"},
		{"-inf", 0xfc00, 0xff80, 1, "-inf"},
		{"inf*neg", 0x7c00, 0x7f80, -1, "-inf"},
		{"nan", 0x7e00, 0x7fc0, 1, "nan"},
		{"inf*0", 0x7c00, 0x7f80, 0, "nan"},
	}
	for _, fs := range testFeatureSets() {
		for _, n := range []int{1, 9, 33, 100} {
			for _, c := range cases {
				x := randF32(r, n)
				h, b := randF16(r, n), randBF16(r, n)
				for i := range x {
					x[i] = float32(math.Abs(float64(x[i]))) + 0.5
				}
				pos := r.IntN(n)
				h[pos], b[pos], x[pos] = c.f16, c.bf16, c.xsign
				for _, got := range []float32{dotF16With(fs.f, h, x), dotBF16With(fs.f, b, x)} {
					ok := false
					switch c.expect {
					case "+inf":
						ok = math.IsInf(float64(got), 1)
					case "-inf":
						ok = math.IsInf(float64(got), -1)
					case "nan":
						ok = math.IsNaN(float64(got))
					}
					if !ok {
						t.Errorf("%s %s n=%d pos=%d: got %v, want %s", fs.name, c.name, n, pos, got, c.expect)
					}
				}
			}
		}
	}
}

func TestDotQ8Differential(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	eachQ8Shape(func(fs namedFeatures, group, n, ng int) {
		for off := range 8 {
			wq := offsetCopy(randQ8(r, n, -128), off)
			xq := offsetCopy(randQ8(r, n, -127), 7-off)
			ws := offsetCopy(randF16(r, ng), off%3)
			xs := randF32(r, ng)
			want, abs := exactQ8(wq, ws, xq, xs, group)
			if got := dotQ8With(fs.f, wq, ws, xq, xs, group); !withinSumError(got, want, abs, ng*8) {
				t.Errorf("%s DotQ8 g=%d n=%d off=%d: got %v, exact %v (abs %v)", fs.name, group, n, off, got, want, abs)
			}
		}
	})
}

// eachQ8Shape calls check, in order, for every feature set this CPU runs
// and every shape the q8 differential tests cover: groups that split the
// 32-quant chunk evenly and ones that do not (96, 48), on testLengths and
// a long row. ng is the row's group count.
func eachQ8Shape(check func(fs namedFeatures, group, n, ng int)) {
	for _, fs := range testFeatureSets() {
		for _, group := range []int{32, 64, 128, 96, 48} {
			for _, n := range append(testLengths, 5632) {
				check(fs, group, n, (n+group-1)/group)
			}
		}
	}
}

// TestDotQ8ExactIntegers uses unit scales so the result is the integer dot
// product itself, exact in float32 while it stays below 2^24: any error in
// the integer pipeline (saturation, sign handling, a lost chunk) shows up.
func TestDotQ8ExactIntegers(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, fs := range testFeatureSets() {
		for _, group := range []int{32, 64, 128} {
			for _, n := range []int{0, 1, 31, 32, 33, 64, 127, 128, 129, 256, 500, 1000} {
				ng := (n + group - 1) / group
				ws, xs := make([]uint16, ng), make([]float32, ng)
				for g := range ws {
					ws[g], xs[g] = 0x3c00, 1
				}
				for _, pattern := range []string{"random", "extreme"} {
					wq, xq := randQ8(r, n, -128), randQ8(r, n, -127)
					if pattern == "extreme" { // largest products, worst case for 16-bit pair sums
						for i := range wq {
							wq[i], xq[i] = -128, -127
							if i%2 == 1 {
								wq[i], xq[i] = 127, 127
							}
						}
					}
					var want int64
					for i := range wq {
						want += int64(wq[i]) * int64(xq[i])
					}
					if got := dotQ8With(fs.f, wq, ws, xq, xs, group); float64(got) != float64(want) {
						t.Errorf("%s DotQ8 %s g=%d n=%d: got %v want %d", fs.name, pattern, group, n, got, want)
					}
				}
			}
		}
	}
}

func TestDotX4Differential(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, fs := range testFeatureSets() {
		for _, n := range testLengths {
			for _, pad := range []int{0, 1, 5} {
				stride := n + pad
				rows := 3*stride + n
				x := offsetCopy(randF32(r, n), pad)
				a := offsetCopy(randF32(r, rows), pad+1)
				h := offsetCopy(randF16(r, rows), pad+2)
				b := offsetCopy(randBF16(r, rows), pad+3)
				var ga, gh, gb [4]float32
				dotF32x4With(fs.f, &ga, a, stride, x)
				dotF16x4With(fs.f, &gh, h, stride, x)
				dotBF16x4With(fs.f, &gb, b, stride, x)
				for row := range 4 {
					lo, hi := row*stride, row*stride+n
					if want, abs := exactDot(a[lo:hi], x, f32w); !withinSumError(ga[row], want, abs, n) {
						t.Errorf("%s DotF32x4 n=%d stride=%d row %d: got %v exact %v", fs.name, n, stride, row, ga[row], want)
					}
					if want, abs := exactDot(h[lo:hi], x, f16w); !withinSumError(gh[row], want, abs, n) {
						t.Errorf("%s DotF16x4 n=%d stride=%d row %d: got %v exact %v", fs.name, n, stride, row, gh[row], want)
					}
					if want, abs := exactDot(b[lo:hi], x, bf16w); !withinSumError(gb[row], want, abs, n) {
						t.Errorf("%s DotBF16x4 n=%d stride=%d row %d: got %v exact %v", fs.name, n, stride, row, gb[row], want)
					}
				}
			}
		}
	}
}

func TestDotQ8x4Differential(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	eachQ8Shape(func(fs namedFeatures, group, n, ng int) {
		for _, pad := range []int{0, 3} {
			stride, sstride := n+pad*16, ng+pad
			wq := offsetCopy(randQ8(r, 3*stride+n, -128), pad)
			ws := offsetCopy(randF16(r, 3*sstride+ng), pad)
			xq, xs := offsetCopy(randQ8(r, n, -127), pad+1), randF32(r, ng)
			var got [4]float32
			dotQ8x4With(fs.f, &got, wq, ws, stride, sstride, xq, xs, group)
			for row := range 4 {
				want, abs := exactQ8(wq[row*stride:row*stride+n], ws[row*sstride:], xq, xs, group)
				if !withinSumError(got[row], want, abs, ng*8) {
					t.Errorf("%s DotQ8x4 g=%d n=%d pad=%d row %d: got %v exact %v", fs.name, group, n, pad, row, got[row], want)
				}
			}
		}
	})
}

// The Rows tests run the row-range kernels over row counts that are not
// multiples of four, padded strides, and with and without add, checking
// every row against the exact value.

var testRowCounts = []int{1, 3, 4, 5, 8, 13}

// checkRowsResult compares y (computed from y0) with the exact row values.
func checkRowsResult(t *testing.T, what string, y, y0 []float32, add bool, n int, exact func(row int) (float64, float64)) {
	t.Helper()
	for row := range y {
		want, abs := exact(row)
		if add {
			want += float64(y0[row])
			abs += math.Abs(float64(y0[row]))
		}
		if !withinSumError(y[row], want, abs, n+4) {
			t.Errorf("%s add=%v row %d: got %v exact %v", what, add, row, y[row], want)
		}
	}
}

func TestDotRowsDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, fs := range testFeatureSets() {
		for _, n := range []int{1, 7, 8, 9, 16, 24, 33, 100, 256, 1000} {
			for _, rows := range testRowCounts {
				for _, pad := range []int{0, 5} {
					for _, add := range []bool{false, true} {
						stride := n + pad
						a := offsetCopy(randF32(r, (rows-1)*stride+n), pad)
						h := offsetCopy(randF16(r, (rows-1)*stride+n), pad)
						b := randBF16(r, (rows-1)*stride+n)
						x := offsetCopy(randF32(r, n), 1)
						y0 := randF32(r, rows)
						what := fmt.Sprintf("%s n=%d rows=%d stride=%d", fs.name, n, rows, stride)
						y := append([]float32(nil), y0...)
						dotF32RowsWith(fs.f, y, a, stride, x, add)
						checkRowsResult(t, "DotF32Rows "+what, y, y0, add, n, func(row int) (float64, float64) {
							return exactDot(a[row*stride:row*stride+n], x, f32w)
						})
						y = append(y[:0], y0...)
						dotF16RowsWith(fs.f, y, h, stride, x, add)
						checkRowsResult(t, "DotF16Rows "+what, y, y0, add, n, func(row int) (float64, float64) {
							return exactDot(h[row*stride:row*stride+n], x, f16w)
						})
						y = append(y[:0], y0...)
						dotBF16RowsWith(fs.f, y, b, stride, x, add)
						checkRowsResult(t, "DotBF16Rows "+what, y, y0, add, n, func(row int) (float64, float64) {
							return exactDot(b[row*stride:row*stride+n], x, bf16w)
						})
					}
				}
			}
		}
	}
}

// TestMatDifferential checks the matrix-matrix functions (4×4 tiles plus
// leftover rows and tokens) against exact values, with padded strides and
// sizes around the tile and vector widths.
func TestMatDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, fs := range testFeatureSets() {
		for _, n := range []int{1, 15, 16, 17, 40, 64, 100, 257} {
			for _, rows := range []int{1, 4, 7, 9} {
				for _, tokens := range []int{1, 3, 4, 5, 8, 11} {
					for _, add := range []bool{false, true} {
						ws, xs, ldy := n+3, n+1, rows+2
						a := randF32(r, (rows-1)*ws+n)
						h := randF16(r, (rows-1)*ws+n)
						b := randBF16(r, (rows-1)*ws+n)
						x := randF32(r, (tokens-1)*xs+n)
						y0 := randF32(r, (tokens-1)*ldy+rows)
						what := fmt.Sprintf("%s n=%d rows=%d tokens=%d add=%v", fs.name, n, rows, tokens, add)
						for _, k := range []struct {
							name  string
							run   func(y []float32)
							exact func(row, tok int) (float64, float64)
						}{
							{"MatF32", func(y []float32) { matF32With(fs.f, y, ldy, a, ws, x, xs, rows, tokens, n, add) },
								func(row, tok int) (float64, float64) {
									return exactDot(a[row*ws:row*ws+n], x[tok*xs:], f32w)
								}},
							{"MatF16", func(y []float32) { matF16With(fs.f, y, ldy, h, ws, x, xs, rows, tokens, n, add) },
								func(row, tok int) (float64, float64) {
									return exactDot(h[row*ws:row*ws+n], x[tok*xs:], f16w)
								}},
							{"MatBF16", func(y []float32) { matBF16With(fs.f, y, ldy, b, ws, x, xs, rows, tokens, n, add) },
								func(row, tok int) (float64, float64) {
									return exactDot(b[row*ws:row*ws+n], x[tok*xs:], bf16w)
								}},
						} {
							y := append([]float32(nil), y0...)
							k.run(y)
							for tok := range tokens {
								for row := range ldy {
									i := tok*ldy + row
									if i >= len(y) {
										break
									}
									if row >= rows { // padding between tokens: untouched
										if y[i] != y0[i] {
											t.Errorf("%s %s: wrote padding y[%d]", k.name, what, i)
										}
										continue
									}
									want, abs := k.exact(row, tok)
									if add {
										want += float64(y0[i])
										abs += math.Abs(float64(y0[i]))
									}
									if !withinSumError(y[i], want, abs, n+4) {
										t.Errorf("%s %s row %d token %d: got %v exact %v", k.name, what, row, tok, y[i], want)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestMatQ8Differential(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for _, fs := range testFeatureSets() {
		for _, group := range []int{32, 64} {
			for _, n := range []int{32, 64, 128, 200, 256, 320, 576, 2048} {
				ng := (n + group - 1) / group
				for _, rows := range []int{1, 4, 7, 12} {
					for _, tokens := range []int{1, 2, 3, 5} {
						for _, add := range []bool{false, true} {
							stride, sstride, xstride, xsstride, ldy := n+64, ng+3, n+32, ng+1, rows+1
							wq := randQ8(r, (rows-1)*stride+n, -128)
							ws := randF16(r, (rows-1)*sstride+ng)
							xq := randQ8(r, (tokens-1)*xstride+n, -127)
							xs := randF32(r, (tokens-1)*xsstride+ng)
							y0 := randF32(r, (tokens-1)*ldy+rows)
							y := append([]float32(nil), y0...)
							matQ8With(fs.f, y, ldy, wq, ws, stride, sstride, xq, xs, xstride, xsstride, rows, tokens, n, group, add)
							for tok := range tokens {
								for row := range ldy {
									i := tok*ldy + row
									if i >= len(y) {
										break
									}
									if row >= rows {
										if y[i] != y0[i] {
											t.Errorf("%s MatQ8: wrote padding y[%d]", fs.name, i)
										}
										continue
									}
									want, abs := exactQ8(wq[row*stride:row*stride+n], ws[row*sstride:], xq[tok*xstride:tok*xstride+n], xs[tok*xsstride:], group)
									if add {
										want += float64(y0[i])
										abs += math.Abs(float64(y0[i]))
									}
									if !withinSumError(y[i], want, abs, ng*8+4) {
										t.Errorf("%s MatQ8 g=%d n=%d rows=%d tokens=%d add=%v row %d token %d: got %v exact %v", fs.name, group, n, rows, tokens, add, row, tok, y[i], want)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestDotQ8RowsDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, fs := range testFeatureSets() {
		for _, group := range []int{32, 64, 48} {
			for _, n := range []int{1, 31, 32, 33, 64, 96, 224, 256, 288, 1000, 2048} {
				ng := (n + group - 1) / group
				for _, rows := range testRowCounts {
					for _, pad := range []int{0, 3} {
						for _, add := range []bool{false, true} {
							stride, sstride := n+pad*16, ng+pad
							wq := offsetCopy(randQ8(r, (rows-1)*stride+n, -128), rows%3)
							ws := randF16(r, (rows-1)*sstride+ng)
							xq, xs := offsetCopy(randQ8(r, n, -127), 1), randF32(r, ng)
							y0 := randF32(r, rows)
							y := append([]float32(nil), y0...)
							dotQ8RowsWith(fs.f, y, wq, ws, stride, sstride, xq, xs, group, add)
							what := fmt.Sprintf("%s DotQ8Rows g=%d n=%d rows=%d pad=%d", fs.name, group, n, rows, pad)
							checkRowsResult(t, what, y, y0, add, ng*8, func(row int) (float64, float64) {
								return exactQ8(wq[row*stride:row*stride+n], ws[row*sstride:], xq, xs, group)
							})
						}
					}
				}
			}
		}
	}
}

// TestPublicAPI checks that the exported functions route to a path that
// agrees with the references and enforce their length contracts.
func TestPublicAPI(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	const n, group = 200, 64
	a, x := randF32(r, 4*n), randF32(r, n+5)
	if got, want := DotF32(a[:n], x), dotF32Go(a[:n], x[:n]); !withinSumError(got, float64(want), float64(n)*4, n) {
		t.Errorf("DotF32 = %v, reference %v", got, want)
	}
	h := randF16(r, 4*n)
	if got, want := DotF16(h[:n], x), dotF16Go(h[:n], x[:n]); math.Abs(float64(got-want)) > 1e-3*math.Abs(float64(want))+1e-3 {
		t.Errorf("DotF16 = %v, reference %v", got, want)
	}
	q := DotF32x4(a, n, x[:n])
	for row := range 4 {
		if want := dotF32Go(a[row*n:(row+1)*n], x); math.Abs(float64(q[row]-want)) > 1e-4*float64(n) {
			t.Errorf("DotF32x4 row %d = %v, reference %v", row, q[row], want)
		}
	}
	xq, xs := make([]int8, n), make([]float32, (n+group-1)/group)
	QuantizeQ8(xq, xs, x[:n], group)
	wq, ws := randQ8(r, 4*n, -127), randF16(r, 4*len(xs))
	q8 := DotQ8x4(wq, ws, n, len(xs), xq, xs, group)
	for row := range 4 {
		want, abs := exactQ8(wq[row*n:(row+1)*n], ws[row*len(xs):], xq, xs, group)
		if !withinSumError(q8[row], want, abs, 64) {
			t.Errorf("DotQ8x4 row %d = %v, exact %v", row, q8[row], want)
		}
		if got := DotQ8(wq[row*n:(row+1)*n], ws[row*len(xs):], xq, xs, group); !withinSumError(got, want, abs, 64) {
			t.Errorf("DotQ8 row %d = %v, exact %v", row, got, want)
		}
	}

	panics := []struct {
		name string
		f    func()
	}{
		{"DotF32x4 short w", func() { DotF32x4(a[:4*n-1], n, x[:n]) }},
		{"DotF32x4 negative stride", func() { DotF32x4(a, -1, x[:n]) }},
		{"DotF16 short x", func() { DotF16(h[:n], x[:n-1]) }},
		{"DotQ8 zero group", func() { DotQ8(wq[:n], ws, xq, xs, 0) }},
		{"DotQ8 short scales", func() { DotQ8(wq[:n], ws[:1], xq, xs, group) }},
		{"DotQ8x4 short scales", func() { DotQ8x4(wq, ws[:4*len(xs)-1], n, len(xs), xq, xs, group) }},
		{"DotQ8Rows short quants", func() { DotQ8Rows(make([]float32, 4), wq[:4*n-1], ws, n, len(xs), xq, xs, group, false) }},
		{"DotQ8Rows short scales", func() { DotQ8Rows(make([]float32, 4), wq, ws[:4*len(xs)-1], n, len(xs), xq, xs, group, false) }},
		{"DotF16Rows short w", func() { DotF16Rows(make([]float32, 4), h[:4*n-1], n, x[:n], false) }},
		{"DotF32Rows negative stride", func() { DotF32Rows(make([]float32, 2), a, -1, x[:n], false) }},
		{"MatF16 short y", func() { MatF16(make([]float32, 2*n+3), n, h, n, x, 0, 4, 3, n, false) }},
		{"MatF32 short x", func() { MatF32(make([]float32, 16), 4, a, n, x[:n], n, 4, 2, n, false) }},
	}
	for _, p := range panics {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", p.name)
				}
			}()
			p.f()
		}()
	}
}

// checkQuantizeQ8 compares every path's quantization of x with the reference
// bit for bit.
func checkQuantizeQ8(t *testing.T, x []float32, group int) {
	t.Helper()
	ng := (len(x) + group - 1) / group
	wq, ws := make([]int8, len(x)), make([]float32, ng)
	quantizeQ8Go(wq, ws, x, group)
	for _, fs := range testFeatureSets() {
		gq, gs := make([]int8, len(x)), make([]float32, ng)
		quantizeQ8With(fs.f, gq, gs, x, group)
		for g := range ng {
			if math.Float32bits(gs[g]) != math.Float32bits(ws[g]) {
				t.Fatalf("%s g=%d n=%d: scale %d is %v, reference %v", fs.name, group, len(x), g, gs[g], ws[g])
			}
		}
		for i := range x {
			if gq[i] != wq[i] {
				t.Fatalf("%s g=%d n=%d: x[%d]=%v quantized to %d, reference %d", fs.name, group, len(x), i, x[i], gq[i], wq[i])
			}
		}
	}
}

// TestQuantizeQ8Differential: the assembly quantizer equals the reference
// exactly, including ties (x·inv = k + ½, which must round away from zero)
// and groups of zeros.
func TestQuantizeQ8Differential(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, group := range []int{32, 64} {
		for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1000, 4096} {
			x := randF32(r, n)
			checkQuantizeQ8(t, x, group)
		}
	}
	// amax 127 gives scale 1 and inv 1: x itself is rounded.
	ties := make([]float32, 64)
	for i := range ties {
		ties[i] = float32(i%16)/2 - 3.75 + 0.25*float32(i%2)
	}
	ties[0], ties[40] = 127, -127
	checkQuantizeQ8(t, ties, 32)
	checkQuantizeQ8(t, make([]float32, 96), 32)
}

// TestSiLUMul compares the vector SiLU·u with a float64 evaluation over the
// whole useful range, including where exp under- and overflows (there the
// result is below 1e-30 either way: float32 evaluation, as in transformers,
// gives 0).
func TestSiLUMul(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, fs := range testFeatureSets() {
		for _, n := range []int{0, 1, 15, 16, 17, 100, 1000} {
			g := randF32(r, n)
			for i := range g {
				g[i] *= float32([]float64{1, 4, 30, 120}[i%4])
			}
			if n > 20 {
				g[0], g[1], g[2], g[3] = 0, -0, 200, -200
			}
			u := randF32(r, n)
			got := append([]float32(nil), g...)
			siluMulWith(fs.f, got, u)
			for i, x := range g {
				want := float64(x) / (1 + math.Exp(-float64(x))) * float64(u[i])
				if d := math.Abs(float64(got[i]) - want); d > 4*unitRoundoff*math.Abs(want)+1e-30 {
					t.Fatalf("%s n=%d: silu(%v)·%v = %v, want %v", fs.name, n, x, u[i], got[i], want)
				}
			}
		}
	}
}

// TestSoftmax compares every path with a float64 softmax, over lengths
// around the vector width and score ranges where most weights underflow.
func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, fs := range testFeatureSets() {
		for _, n := range []int{1, 2, 15, 16, 17, 31, 33, 100, 2049} {
			for _, spread := range []float64{0.1, 3, 40} {
				w := randF32(r, n)
				for i := range w {
					w[i] *= float32(spread)
				}
				const scale = 0.125
				want := make([]float64, n)
				mx := math.Inf(-1)
				for _, v := range w {
					mx = max(mx, float64(v)*scale)
				}
				var sum float64
				for i, v := range w {
					want[i] = math.Exp(float64(v)*scale - mx)
					sum += want[i]
				}
				got := append([]float32(nil), w...)
				softmaxWith(fs.f, got, scale)
				var gotSum float64
				for i := range got {
					want[i] /= sum
					gotSum += float64(got[i])
					// float32 differences scale·w − m carry an absolute
					// error of u·|scale·w − m| into exp's argument; allow
					// that plus the float32 sum's.
					tol := (8+math.Abs(float64(w[i])*scale-mx)+float64(n)/16)*unitRoundoff*want[i] + 1e-30
					if d := math.Abs(float64(got[i]) - want[i]); d > tol {
						t.Fatalf("%s n=%d spread=%v: w[%d] = %v, want %v", fs.name, n, spread, i, got[i], want[i])
					}
				}
				if math.Abs(gotSum-1) > 1e-5 {
					t.Fatalf("%s n=%d: weights sum to %v", fs.name, n, gotSum)
				}
			}
		}
	}
}

func TestQuantizeQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, group := range []int{32, 64, 128} {
		for _, n := range []int{0, 1, 33, 129, 1000} {
			x := randF32(r, n)
			if n > 40 {
				clear(x[:group]) // an all-zero group gets scale 0
			}
			xq, xs := make([]int8, n), make([]float32, (n+group-1)/group)
			QuantizeQ8(xq, xs, x, group)
			for i, v := range x {
				g := i / group
				if xq[i] < -127 {
					t.Fatalf("g=%d n=%d: xq[%d] = %d out of range", group, n, i, xq[i])
				}
				if err := math.Abs(float64(xs[g])*float64(xq[i]) - float64(v)); err > 0.5001*float64(xs[g]) {
					t.Errorf("g=%d n=%d: x[%d]=%v quantized to %d·%v (error %v)", group, n, i, v, xq[i], xs[g], err)
				}
			}
		}
	}
}

func FuzzDotF16(f *testing.F) {
	f.Add([]byte{0x00, 0x3c, 0x00, 0x7c, 0x01, 0x00}, uint64(1))
	f.Add(make([]byte, 66), uint64(2))
	f.Fuzz(func(t *testing.T, raw []byte, seed uint64) {
		w := make([]uint16, len(raw)/2)
		for i := range w {
			w[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
		}
		x := randF32(rand.New(rand.NewPCG(seed, 0)), len(w))
		checkHalfFuzz(t, "DotF16", w, x, f16w, dotF16Go, dotF16With)
	})
}

func FuzzDotBF16(f *testing.F) {
	f.Add([]byte{0x80, 0x3f, 0x80, 0x7f, 0x01, 0x00}, uint64(1))
	f.Add([]byte{0x01, 0x20}, uint64(0)) // subnormal product: absolute, not relative, error
	f.Add(make([]byte, 66), uint64(2))
	f.Fuzz(func(t *testing.T, raw []byte, seed uint64) {
		w := make([]uint16, len(raw)/2)
		for i := range w {
			// Keep |w| < 2^64 so sums of products with |x| < ~5 cannot overflow float32.
			w[i] = (uint16(raw[2*i]) | uint16(raw[2*i+1])<<8) & 0x9fff
		}
		x := randF32(rand.New(rand.NewPCG(seed, 0)), len(w))
		checkHalfFuzz(t, "DotBF16", w, x, bf16w, dotBF16Go, dotBF16With)
	})
}

func checkHalfFuzz(t *testing.T, name string, w []uint16, x []float32, widen func(uint16) float64,
	ref func([]uint16, []float32) float32, with func(features, []uint16, []float32) float32) {
	want := ref(w, x)
	exact, abs := exactDot(w, x, widen)
	for _, fs := range testFeatureSets() {
		got := with(fs.f, w, x)
		if !sameSpecial(got, want) {
			t.Fatalf("%s %s n=%d: got %v, reference %v", fs.name, name, len(w), got, want)
		}
		if !math.IsNaN(exact) && !math.IsInf(float64(want), 0) && !withinSumError(got, exact, abs, len(w)) {
			t.Fatalf("%s %s n=%d: got %v, exact %v", fs.name, name, len(w), got, exact)
		}
	}
}

func FuzzDotQ8(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0x80, 0x7f}, []byte{0x81, 0x7f, 5, 6}, uint8(0), uint64(1))
	f.Add(make([]byte, 300), make([]byte, 300), uint8(2), uint64(2))
	f.Fuzz(func(t *testing.T, wraw, xraw []byte, gsel uint8, seed uint64) {
		group := []int{32, 64, 128, 40}[gsel%4]
		n := min(len(wraw), len(xraw))
		wq, xq := make([]int8, n), make([]int8, n)
		for i := range n {
			wq[i], xq[i] = int8(wraw[i]), max(int8(xraw[i]), -127)
		}
		r := rand.New(rand.NewPCG(seed, 1))
		ng := (n + group - 1) / group
		ws, xs := randF16(r, ng), randF32(r, ng)
		want, abs := exactQ8(wq, ws, xq, xs, group)
		for _, fs := range testFeatureSets() {
			if got := dotQ8With(fs.f, wq, ws, xq, xs, group); !withinSumError(got, want, abs, ng*8) {
				t.Fatalf("%s DotQ8 g=%d n=%d: got %v, exact %v", fs.name, group, n, got, want)
			}
			// Up to nine overlapping rows through the row-range kernel
			// (the kernels only read).
			rows := 1 + int(seed%9)
			rs := n / (rows + 1)
			m := n - (rows-1)*rs
			y := make([]float32, rows)
			dotQ8RowsWith(fs.f, y, wq, ws, rs, 0, xq[:m], xs, group, false)
			for row := range rows {
				wr, ar := exactQ8(wq[row*rs:row*rs+m], ws, xq, xs, group)
				if !withinSumError(y[row], wr, ar, ng*8) {
					t.Fatalf("%s DotQ8Rows g=%d n=%d rows=%d row %d: got %v, exact %v", fs.name, group, m, rows, row, y[row], wr)
				}
			}
			// The matrix-matrix kernel: tokens overlapping in xq like rows
			// in wq, with their scales shared (stride 0).
			toks := min(rows, 1+int(seed/9%4))
			mq := m &^ (group - 1) // whole groups only for the token strides
			if mq > 0 && group&(group-1) == 0 {
				ngm := mq / group
				ym := make([]float32, toks*rows)
				matQ8With(fs.f, ym, rows, wq, ws, rs, 0, xq, xs, rs, 0, rows, toks, mq, group, false)
				for tok := range toks {
					for row := range rows {
						want, abs := exactQ8(wq[row*rs:row*rs+mq], ws, xq[tok*rs:tok*rs+mq], xs, group)
						if got := ym[tok*rows+row]; !withinSumError(got, want, abs, ngm*8) {
							t.Fatalf("%s MatQ8 g=%d n=%d rows=%d tokens=%d row %d token %d: got %v, exact %v", fs.name, group, mq, rows, toks, row, tok, got, want)
						}
					}
				}
			}
			var got4 [4]float32
			stride := n / 4 // four overlapping rows; the kernels only read
			dotQ8x4With(fs.f, &got4, wq, ws, stride, 0, xq[:n-3*stride], xs, group)
			for row := range 4 {
				w4, a4 := exactQ8(wq[row*stride:row*stride+n-3*stride], ws, xq, xs, group)
				if !withinSumError(got4[row], w4, a4, ng*8) {
					t.Fatalf("%s DotQ8x4 g=%d n=%d row %d: got %v, exact %v", fs.name, group, n, row, got4[row], w4)
				}
			}
		}
	})
}

func FuzzQuantizeQ8(f *testing.F) {
	f.Add(make([]byte, 128))
	f.Add([]byte{0, 0, 0x20, 0x40, 0, 0, 0xfe, 0x42, 0, 0, 0x20, 0xc0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		x := make([]float32, len(raw)/4)
		for i := range x {
			v := math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
			if v != v || math.IsInf(float64(v), 0) {
				v = 0 // activations are finite
			}
			x[i] = v
		}
		checkQuantizeQ8(t, x, 32)
	})
}

// FuzzActivations checks the vector SiLU·u and softmax against float64 on
// arbitrary finite inputs of any length.
func FuzzActivations(f *testing.F) {
	f.Add(make([]byte, 64), uint8(3))
	f.Add([]byte{0, 0, 0xc8, 0x42, 0, 0, 0xc8, 0xc2, 1, 2, 3, 4}, uint8(0))
	f.Fuzz(func(t *testing.T, raw []byte, sc uint8) {
		x := make([]float32, len(raw)/4)
		for i := range x {
			v := math.Float32frombits(uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24)
			if v != v || math.Abs(float64(v)) > 1e6 {
				v = 1 // activations and scores are finite and moderate
			}
			x[i] = v
		}
		u := make([]float32, len(x))
		for i := range u {
			u[i] = float32(i%7) - 3
		}
		scale := float32(sc%16+1) / 16
		for _, fs := range testFeatureSets() {
			g := append([]float32(nil), x...)
			siluMulWith(fs.f, g, u)
			for i, v := range x {
				want := float64(v) / (1 + math.Exp(-float64(v))) * float64(u[i])
				if d := math.Abs(float64(g[i]) - want); d > 4*unitRoundoff*math.Abs(want)+1e-30 {
					t.Fatalf("%s SiLUMul: silu(%v)·%v = %v, want %v", fs.name, v, u[i], g[i], want)
				}
			}
			if len(x) == 0 {
				continue
			}
			w := append([]float32(nil), x...)
			softmaxWith(fs.f, w, scale)
			var sum float64
			for _, v := range w {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("%s Softmax: weight %v outside [0, 1]", fs.name, v)
				}
				sum += float64(v)
			}
			if math.Abs(sum-1) > 1e-5*(1+float64(len(w))/64) {
				t.Fatalf("%s Softmax of %d scores sums to %v", fs.name, len(w), sum)
			}
		}
	})
}

func FuzzDotF32(f *testing.F) {
	f.Add(uint16(17), uint8(3), uint64(1))
	f.Fuzz(func(t *testing.T, n uint16, off uint8, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 2))
		a := offsetCopy(randF32(r, int(n%5000)), int(off%8))
		x := randF32(r, len(a))
		want, abs := exactDot(a, x, f32w)
		rows := 1 + int(seed%9)
		rs := len(a) / (rows + 1) // overlapping rows for the row-range kernels
		m := len(a) - (rows-1)*rs
		h, b := make([]uint16, len(a)), make([]uint16, len(a))
		for i, v := range a {
			h[i] = float16.Fromfloat32(v).Bits()
			b[i] = uint16(math.Float32bits(v) >> 16)
		}
		y := make([]float32, rows)
		for _, fs := range testFeatureSets() {
			if got := dotF32With(fs.f, a, x); !withinSumError(got, want, abs, len(a)) {
				t.Fatalf("%s DotF32 n=%d: got %v, exact %v", fs.name, len(a), got, want)
			}
			for _, k := range []struct {
				name  string
				run   func()
				exact func(row int) (float64, float64)
			}{
				{"DotF32Rows", func() { dotF32RowsWith(fs.f, y, a, rs, x[:m], false) },
					func(row int) (float64, float64) { return exactDot(a[row*rs:row*rs+m], x, f32w) }},
				{"DotF16Rows", func() { dotF16RowsWith(fs.f, y, h, rs, x[:m], false) },
					func(row int) (float64, float64) { return exactDot(h[row*rs:row*rs+m], x, f16w) }},
				{"DotBF16Rows", func() { dotBF16RowsWith(fs.f, y, b, rs, x[:m], false) },
					func(row int) (float64, float64) { return exactDot(b[row*rs:row*rs+m], x, bf16w) }},
			} {
				k.run()
				for row := range rows {
					if wr, ar := k.exact(row); !withinSumError(y[row], wr, ar, m) {
						t.Fatalf("%s %s n=%d rows=%d row %d: got %v, exact %v", fs.name, k.name, m, rows, row, y[row], wr)
					}
				}
			}
			// The matrix-matrix kernels, with tokens taken from x the way
			// rows are taken from a (overlapping, stride rs).
			toks := min(rows, 1+int(seed/9%6))
			ym := make([]float32, toks*rows)
			for _, k := range []struct {
				name string
				run  func()
			}{
				{"MatF32", func() { matF32With(fs.f, ym, rows, a, rs, x, rs, rows, toks, m, false) }},
				{"MatF16", func() { matF16With(fs.f, ym, rows, h, rs, x, rs, rows, toks, m, false) }},
				{"MatBF16", func() { matBF16With(fs.f, ym, rows, b, rs, x, rs, rows, toks, m, false) }},
			} {
				k.run()
				for tok := range toks {
					xt := x[tok*rs : tok*rs+m]
					for row := range rows {
						var want, abs float64
						switch k.name {
						case "MatF32":
							want, abs = exactDot(a[row*rs:row*rs+m], xt, f32w)
						case "MatF16":
							want, abs = exactDot(h[row*rs:row*rs+m], xt, f16w)
						default:
							want, abs = exactDot(b[row*rs:row*rs+m], xt, bf16w)
						}
						if got := ym[tok*rows+row]; !withinSumError(got, want, abs, m) {
							t.Fatalf("%s %s n=%d rows=%d tokens=%d row %d token %d: got %v, exact %v", fs.name, k.name, m, rows, toks, row, tok, got, want)
						}
					}
				}
			}
		}
	})
}

var _ = fmt.Sprint
