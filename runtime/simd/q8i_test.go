package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// q8iCase is one MatQ8I product with its row-major operands, padded the way
// the runtime pads activations (zero quants beyond cols).
type q8iCase struct {
	rows, cols, group, tokens int
	wq                        []int8
	ws                        []uint16
	xq                        []int8
	xs                        []float32
	xe                        []int32
	xstride, xsstride, ldy    int
}

func newQ8ICase(r *rand.Rand, rows, cols, group, tokens int) *q8iCase {
	ng := (cols + group - 1) / group
	c := &q8iCase{rows: rows, cols: cols, group: group, tokens: tokens,
		xstride: ng*group + 32, xsstride: ng + 3, ldy: rows + 5}
	c.wq = randQ8(r, rows*cols, -128)
	c.ws = randF16(r, rows*ng)
	c.xq = make([]int8, (tokens-1)*c.xstride+ng*group)
	c.xs = randF32(r, (tokens-1)*c.xsstride+ng)
	c.xe = make([]int32, len(c.xs))
	for t := range tokens {
		x := randQ8(r, cols, -127)
		if t == 1 {
			clear(x) // a zero vector: the sign of a zero sum
		}
		copy(c.xq[t*c.xstride:], x)
		Q8Excess(c.xe[t*c.xsstride:t*c.xsstride+ng], c.xq[t*c.xstride:], group)
	}
	return c
}

// want is the definition on the row-major bytes: dotQ8Go per (row, token).
func (c *q8iCase) want(y0 []float32, r0, r1 int, add bool) []float32 {
	ng := (c.cols + c.group - 1) / c.group
	y := append([]float32(nil), y0...)
	for t := range c.tokens {
		xq, xs := c.xq[t*c.xstride:t*c.xstride+c.cols], c.xs[t*c.xsstride:t*c.xsstride+ng]
		for r := r0; r < r1; r++ {
			store1(y[t*c.ldy:], r-r0, dotQ8Go(c.wq[r*c.cols:(r+1)*c.cols], c.ws[r*ng:(r+1)*ng], xq, xs, c.group), add)
		}
	}
	return y
}

// TestMatQ8IEqualsDefinition: the interleaved product equals dotQ8Go bit for
// bit on every kernel this CPU runs (so batched decode equals one-token
// decode, and the noasm build equals the assembly), on row counts off the
// block height, short last groups, larger groups, sub-ranges of rows, one to
// nineteen tokens (the kernels take up to eight), with and without add.
func TestMatQ8IEqualsDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	for _, fs := range testFeatureSets() {
		for _, group := range []int{32, 64, 128} {
			for _, cols := range []int{32, 40, 96, 288, 1000} {
				for _, rows := range []int{1, 15, 16, 17, 40, 56} {
					m := NewQ8I(rows, cols, group)
					for _, tokens := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 19} {
						c := newQ8ICase(r, rows, cols, group, tokens)
						m.Pack(c.wq, c.ws, 0, m.Blocks())
						for _, rr := range [][2]int{{0, rows}, {16, rows}, {0, min(rows, 16)}} {
							r0, r1 := rr[0], rr[1]
							if r0 >= r1 {
								continue
							}
							for _, add := range []bool{false, true} {
								y0 := randF32(r, (tokens-1)*c.ldy+r1-r0)
								want := c.want(y0, r0, r1, add)
								y := append([]float32(nil), y0...)
								matQ8IWith(fs.f, y, c.ldy, m, r0, r1, c.xq, c.xs, c.xe, c.xstride, c.xsstride, tokens, add)
								for i := range y {
									if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
										t.Fatalf("%s g=%d cols=%d rows=%d [%d,%d) tokens=%d add=%v: y[%d] = %v, want %v",
											fs.name, group, cols, rows, r0, r1, tokens, add, i, y[i], want[i])
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

// TestMatQ8IExtremes: all quants at the ends of their ranges (−128 weights
// times −127 activations, the largest group sums) stay exact.
func TestMatQ8IExtremes(t *testing.T) {
	for _, fs := range testFeatureSets() {
		for _, v := range [][2]int8{{-128, -127}, {-128, 127}, {127, 127}, {127, -127}} {
			rows, cols, group := 17, 256, 128
			r := rand.New(rand.NewPCG(1, 2))
			c := newQ8ICase(r, rows, cols, group, 3)
			for i := range c.wq {
				c.wq[i] = v[0]
			}
			for i := range c.xq {
				if c.xq[i] != 0 || i < cols {
					c.xq[i] = v[1]
				}
			}
			for tok := range c.tokens {
				Q8Excess(c.xe[tok*c.xsstride:tok*c.xsstride+2], c.xq[tok*c.xstride:], group)
			}
			m := NewQ8I(rows, cols, group)
			m.Pack(c.wq, c.ws, 0, m.Blocks())
			y0 := make([]float32, (c.tokens-1)*c.ldy+rows)
			want := c.want(y0, 0, rows, false)
			y := append([]float32(nil), y0...)
			matQ8IWith(fs.f, y, c.ldy, m, 0, rows, c.xq, c.xs, c.xe, c.xstride, c.xsstride, c.tokens, false)
			for i := range y {
				if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s %v: y[%d] = %v, want %v", fs.name, v, i, y[i], want[i])
				}
			}
		}
	}
}

// FuzzMatQ8I feeds arbitrary quants, scales (any float16 bits but the
// non-finite ones, which the runtime rejects at load) and shapes to every
// kernel this CPU runs, against the definition.
func FuzzMatQ8I(f *testing.F) {
	fuzzMatI(f, 300, 3, []int{32, 64, 128}, func(r *rand.Rand, raw []byte, rows, cols, group, tokens int, add bool) ([]float32, []float32, func(features, []float32), bool) {
		c := newQ8ICase(r, rows, cols, group, tokens)
		for i, b := range raw {
			c.wq[i%len(c.wq)] = int8(b)
			if h := uint16(b)<<8 | uint16(raw[(i+1)%len(raw)]); h&0x7c00 != 0x7c00 {
				c.ws[i%len(c.ws)] = h
			}
		}
		m := NewQ8I(rows, cols, group)
		m.Pack(c.wq, c.ws, 0, m.Blocks())
		y0 := make([]float32, (tokens-1)*c.ldy+rows)
		return y0, c.want(y0, 0, rows, add), func(fs features, y []float32) {
			matQ8IWith(fs, y, c.ldy, m, 0, rows, c.xq, c.xs, c.xe, c.xstride, c.xsstride, tokens, add)
		}, true
	})
}

// fuzzMatI is the interleaved products' fuzz harness. It draws the shape
// from the fuzzed integers (1 to 72 rows, 1 to maxCols columns, 1 to 19
// tokens, one of groups, add from bit 3 of the seed) and a
// generator from the seed and stream; setup builds the case, writing raw
// into its weights, and returns the starting y, the definition's result
// and the product under one feature set (ok false skips the input). Every
// kernel this CPU runs must match the definition bit for bit, any NaN
// matching any NaN.
func fuzzMatI(f *testing.F, maxCols int, stream uint64, groups []int, setup func(r *rand.Rand, raw []byte, rows, cols, group, tokens int, add bool) (y0, want []float32, mat func(features, []float32), ok bool)) {
	f.Add([]byte{1, 2, 3, 250, 128, 0}, uint8(3), uint16(40), uint8(2), uint64(7))
	f.Add(make([]byte, 64), uint8(17), uint16(96), uint8(5), uint64(9))
	f.Fuzz(func(t *testing.T, raw []byte, rowsRaw uint8, colsRaw uint16, tokRaw uint8, seed uint64) {
		rows, cols, tokens := int(rowsRaw)%72+1, int(colsRaw)%maxCols+1, int(tokRaw)%19+1
		group := groups[seed%uint64(len(groups))]
		y0, want, mat, ok := setup(rand.New(rand.NewPCG(seed, stream)), raw, rows, cols, group, tokens, seed&8 != 0)
		if !ok {
			return
		}
		for _, fs := range testFeatureSets() {
			y := append([]float32(nil), y0...)
			mat(fs.f, y)
			for i := range y {
				if math.Float32bits(y[i]) != math.Float32bits(want[i]) && !(y[i] != y[i] && want[i] != want[i]) {
					t.Fatalf("%s rows=%d cols=%d g=%d tokens=%d: y[%d] = %v, want %v", fs.name, rows, cols, group, tokens, i, y[i], want[i])
				}
			}
		}
	})
}

func ExampleQ8I() {
	// Two rows of 32 quants, one group each, scale 1.0 (0x3c00).
	wq := make([]int8, 64)
	for i := range wq {
		wq[i] = int8(i%32 - 16)
	}
	ws := []uint16{0x3c00, 0x3c00}
	m := NewQ8I(2, 32, 32)
	m.Pack(wq, ws, 0, m.Blocks())
	xq := make([]int8, 32)
	for i := range xq {
		xq[i] = 1
	}
	xs, xe := []float32{0.5}, make([]int32, 1)
	Q8Excess(xe, xq, 32)
	y := make([]float32, 2)
	MatQ8I(y, 2, m, 0, 2, xq, xs, xe, 32, 1, 1, false)
	fmt.Println(y)
	// Output: [-8 -8]
}
