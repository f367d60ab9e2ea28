package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMatQ4SIEqualsDefinition: the interleaved q4s product equals
// dotPackedRowRef bit for bit on every kernel this CPU runs, on row counts
// off the block height, rows that end inside a 128-weight chunk, groups of
// 32, 64 and 128, sub-ranges of rows, one to nineteen tokens, with and
// without add.
func TestMatQ4SIEqualsDefinition(t *testing.T) {
	checkMatPackedI(t, rand.New(rand.NewPCG(81, 82)), []packedShape{{4, 32, true}, {4, 64, true}, {4, 128, true}}, Q4SIOK, buildQ4SI)
}

// buildQ4SI repacks w's rows for the interleaved q4s product.
func buildQ4SI(w *Packed, rows int) matPackedI {
	m := NewQ4SI(w, rows)
	m.Pack(w, 0, m.RowBlocks())
	return func(fs features, y []float32, ldy, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
		matQ4SIWith(fs, y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
	}
}

// matPackedI is an interleaved packed product (matQ4SIWith, matQKIWith) of
// one repacked matrix.
type matPackedI func(fs features, y []float32, ldy, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool)

// checkMatPackedI compares an interleaved packed product with
// packedRowsRef bit for bit on every kernel this CPU runs, over views of
// the given shapes that ok takes: row counts off the block
// height, four blocks and more (the one-token kernels read those as two
// runs), rows that end inside a 128-weight chunk, sub-ranges of rows, one to
// nineteen tokens, with and without add.
func checkMatPackedI(t *testing.T, r *rand.Rand, shapes []packedShape, ok func(*Packed) bool, build func(w *Packed, rows int) matPackedI) {
	t.Helper()
	for _, fs := range testFeatureSets() {
		for _, sh := range shapes {
			for _, cols := range []int{32, 100, 256, 300, 640} {
				for _, rows := range []int{1, 15, 16, 17, 40, 56, 100} {
					w := randPacked(r, sh, rows, cols)
					if !ok(w) {
						continue
					}
					mat := build(w, rows)
					for _, tokens := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 19} {
						xq, xs, xsum, xstride, xsstride := randActs(r, w, cols, tokens, 1)
						for _, rr := range [][2]int{{0, rows}, {16, rows}, {0, min(rows, 16)}} {
							r0, r1 := rr[0], rr[1]
							if r0 >= r1 {
								continue
							}
							for _, add := range []bool{false, true} {
								ldy := r1 - r0 + 3
								y0 := randF32(r, (tokens-1)*ldy+r1-r0)
								want := append([]float32(nil), y0...)
								for tok := range tokens {
									v := w.Rows(r0, r1)
									packedRowsRef(want[tok*ldy:tok*ldy+r1-r0], &v, xq[tok*xstride:], xs[tok*xsstride:], xsum[tok*xsstride:], add)
								}
								y := append([]float32(nil), y0...)
								mat(fs.f, y, ldy, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
								for i := range y {
									if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
										t.Fatalf("%s %+v cols=%d rows=%d [%d,%d) tokens=%d add=%v: y[%d] = %v, want %v",
											fs.name, sh, cols, rows, r0, r1, tokens, add, i, y[i], want[i])
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

// FuzzMatQ4SI feeds arbitrary plane bytes and shapes to every kernel this
// CPU runs, against the definition.
func FuzzMatQ4SI(f *testing.F) {
	fuzzMatPackedI(f, 5, []int{32, 64, 128}, func(_ *rand.Rand, group int) packedShape { return packedShape{4, group, true} }, Q4SIOK, buildQ4SI)
}

// fuzzMatPackedI is fuzzMatI for the interleaved packed products over views
// of the shape shape draws: the raw bytes go into the lo plane (and the hi
// and sub planes of two-level views).
func fuzzMatPackedI(f *testing.F, stream uint64, groups []int, shape func(r *rand.Rand, group int) packedShape, ok func(*Packed) bool, build func(w *Packed, rows int) matPackedI) {
	fuzzMatI(f, 400, stream, groups, func(r *rand.Rand, raw []byte, rows, cols, group, tokens int, add bool) ([]float32, []float32, func(features, []float32), bool) {
		w := randPacked(r, shape(r, group), rows, cols)
		if !ok(w) {
			return nil, nil, nil, false
		}
		for i, b := range raw {
			w.Lo[i%len(w.Lo)] = b
			if len(w.Hi) > 0 {
				w.Hi[i%len(w.Hi)] ^= b
			}
			if len(w.Sub) > 0 {
				w.Sub[i%len(w.Sub)] ^= b
			}
		}
		mat := build(w, rows)
		xq, xs, xsum, xstride, xsstride := randActs(r, w, cols, tokens, 0)
		ldy := rows
		y0 := make([]float32, tokens*ldy)
		want := append([]float32(nil), y0...)
		for tok := range tokens {
			packedRowsRef(want[tok*ldy:(tok+1)*ldy], w, xq[tok*xstride:], xs[tok*xsstride:], xsum[tok*xsstride:], add)
		}
		return y0, want, func(fs features, y []float32) {
			mat(fs, y, ldy, 0, rows, xq, xs, xsum, xstride, xsstride, tokens, add)
		}, true
	})
}

// BenchmarkMatQ4SI is BenchmarkMatQ8I for the interleaved q4s product.
func BenchmarkMatQ4SI(b *testing.B) {
	benchMatPackedI(b, packedShape{4, 32, true}, func(w *Packed, rows int) matPackedI {
		m := NewQ4SI(w, rows)
		m.Pack(w, 0, m.RowBlocks())
		return func(_ features, y []float32, ldy, r0, r1 int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, tokens int, add bool) {
			MatQ4SI(y, ldy, m, r0, r1, xq, xs, xsum, xstride, xsstride, tokens, add)
		}
	})
}

// benchMatPackedI is benchMatI for an interleaved packed product of views
// of shape sh (the exported entry point, so dispatch is included).
func benchMatPackedI(b *testing.B, sh packedShape, build func(w *Packed, rows int) matPackedI) {
	benchMatI(b, func(r *rand.Rand, rows, cols, tokens int) func() {
		w := randPacked(r, sh, rows, cols)
		mat := build(w, rows)
		xq, xs, xsum, xstride, xsstride := randActs(r, w, cols, tokens, 0)
		y := make([]float32, tokens*rows)
		return func() {
			mat(features{}, y, rows, 0, rows, xq, xs, xsum, xstride, xsstride, tokens, false)
		}
	})
}

// BenchmarkMatQ4SIStream times one-token products that stream from memory,
// in bytes read per second, beside the bandwidth `shrink bench` probes: the
// 1.1B and 110M shapes' projection matrices in forward order (what decode
// reads, a matrix at a time) and three matrices of 151 MiB each (long runs
// without a matrix boundary). The difference is what starting each matrix
// costs.
func BenchmarkMatQ4SIStream(b *testing.B) {
	layer := [][2]int{{2048, 2048}, {256, 2048}, {256, 2048}, {2048, 2048}, {5632, 2048}, {5632, 2048}, {2048, 5632}}
	small := [][2]int{{768, 768}, {768, 768}, {768, 768}, {768, 768}, {2048, 768}, {2048, 768}, {768, 2048}}
	for _, c := range []struct {
		name   string
		shapes [][2]int
		times  int
	}{
		{"tinyllama-1.1b", layer, 22},
		{"llama-110m", small, 12},
		{"long", [][2]int{{131072, 2048}}, 3},
	} {
		b.Run(c.name, func(b *testing.B) {
			type product struct {
				m                 *Q4SI
				xq                []int8
				xs                []float32
				xsum              []int32
				xstride, xsstride int
				y                 []float32
			}
			r := rand.New(rand.NewPCG(1, 2))
			views := map[[2]int]*Packed{} // one source per shape: packing is the slow part
			var ps []product
			bytes := 0
			for range c.times {
				for _, sh := range c.shapes {
					w := views[sh]
					if w == nil {
						w = randPacked(r, packedShape{4, 32, true}, sh[0], sh[1])
						views[sh] = w
					}
					m := NewQ4SI(w, sh[0])
					m.Pack(w, 0, m.RowBlocks())
					xq, xs, xsum, xstride, xsstride := randActs(r, w, sh[1], 1, 0)
					ps = append(ps, product{m, xq, xs, xsum, xstride, xsstride, make([]float32, sh[0])})
					bytes += len(m.W) + 2*len(m.S)
				}
			}
			b.ResetTimer()
			for range b.N {
				for _, p := range ps {
					MatQ4SI(p.y, p.m.Rows, p.m, 0, p.m.Rows, p.xq, p.xs, p.xsum, p.xstride, p.xsstride, 1, false)
				}
			}
			b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}
