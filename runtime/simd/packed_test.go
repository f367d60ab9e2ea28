package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// packedShape is one layout the tests build views for.
type packedShape struct {
	bits, group int
	sym         bool
}

var packedShapes = []packedShape{
	{4, 32, false}, {4, 64, false}, {4, 128, false}, {2, 32, false}, {3, 32, false},
	{5, 32, false}, {6, 64, false}, {4, 32, true}, {4, 128, true},
}

// randPacked builds a random view of rows rows of cols weights, every byte
// of every plane drawn from r (the sup plane as finite float16 values).
func randPacked(r *rand.Rand, s packedShape, rows, cols int) *Packed {
	blocks := (cols + 31) / 32
	lob := 4
	if s.bits < 4 {
		lob = 2
	}
	w := &Packed{LoBits: lob, HiBits: s.bits - lob, Group: s.group, Sym: s.sym, Blocks: blocks}
	ng := (cols + s.group - 1) / s.group
	w.LoRow, w.HiRow = 32*blocks*lob/8, 32*blocks*w.HiBits/8
	if s.sym {
		w.SupRow = ng
	} else {
		w.SubRow = 3 * ((ng + 1) / 2)
		w.SupRow = 2 * ((cols + 255) / 256)
	}
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	w.Lo, w.Hi, w.Sub = fill(rows*w.LoRow), fill(rows*w.HiRow), fill(rows*w.SubRow)
	w.Sup = randF16(r, rows*w.SupRow)
	return w
}

// randActs quantizes random activations for tokens tokens of a view's
// width, each token padded by pad extra blocks (a stride wider than the
// row), zero beyond the row's cols.
func randActs(r *rand.Rand, w *Packed, cols, tokens, pad int) (xq []int8, xs []float32, xsum []int32, xstride, xsstride int) {
	xsstride = w.Blocks + pad
	xstride = 32 * xsstride
	xq = make([]int8, tokens*xstride)
	xs = make([]float32, tokens*xsstride)
	xsum = make([]int32, tokens*xsstride)
	for t := range tokens {
		x := randF32(r, cols)
		quantizeQ8Go(xq[t*xstride:t*xstride+cols], xs[t*xsstride:t*xsstride+(cols+31)/32], x, 32)
	}
	sumActs(xq, xsum, xstride, xsstride, tokens)
	return
}

// sumActs sets the block sums xsum of tokens tokens' activations xq.
func sumActs(xq []int8, xsum []int32, xstride, xsstride, tokens int) {
	for t := range tokens {
		SumQ8Blocks(xsum[t*xsstride:(t+1)*xsstride], xq[t*xstride:(t+1)*xstride])
	}
}

// TestPackedDefinition checks the reference against a float64 evaluation of
// the decoded weights a·q − m: the definition is what decoding promises.
func TestPackedDefinition(t *testing.T) {
	checkDefinition(t, rand.New(rand.NewPCG(5, 6)), packedShapes,
		func(w *Packed, row int, xq []int8, xs []float32, xsum []int32) float32 {
			return dotPackedRowRef(w, row, xq, xs, xsum)
		},
		func(w *Packed, row, i int, q uint8) (float64, float64) {
			a, m := w.groupParams(row, i/w.Group)
			return float64(a)*float64(q) - float64(m), math.Abs(float64(a)*float64(q)) + math.Abs(float64(m))
		})
}

// checkDefinition requires a definition def of one row's dot product to
// agree, on three rows of odd widths per shape, with the float64 sum of
// weight·xq·xs over the row's decoded weights (weight returns weight i of
// the row from its quant q, and the magnitude that bounds its rounding).
func checkDefinition(t *testing.T, r *rand.Rand, shapes []packedShape,
	def func(w *Packed, row int, xq []int8, xs []float32, xsum []int32) float32,
	weight func(w *Packed, row, i int, q uint8) (v, mag float64)) {
	t.Helper()
	for _, s := range shapes {
		for _, cols := range []int{32, 37, 96, 352, 384, 1000} {
			w := randPacked(r, s, 3, cols)
			xq, xs, xsum, _, _ := randActs(r, w, cols, 1, 0)
			q := make([]uint8, 32*w.Blocks)
			for row := range 3 {
				w.unpackRowRef(q, row)
				var want, abs float64
				for i := range cols {
					v, mag := weight(w, row, i, q[i])
					x := float64(xq[i]) * float64(xs[i/32])
					want += v * x
					abs += mag * math.Abs(x)
				}
				got := def(w, row, xq, xs, xsum)
				if math.Abs(float64(got)-want) > 1e-5*abs+1e-30 {
					t.Fatalf("%+v cols %d row %d: definition %v, decoded weights give %v", s, cols, row, got, want)
				}
			}
		}
	}
}

// packedCheck compares one family of kernels with the definition on the view
// w (rows rows of cols weights) and tokens tokens' activations (xq, xs, xsum
// at strides xstride, xsstride), accumulating (add) or not.
type packedCheck func(t *testing.T, s packedShape, w *Packed, cols int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, rows, tokens int, add bool)

// packedKernelCase is one family of kernels TestPackedKernels checks, on
// every shape of shapes and every (rows, cols, tokens) of sizes.
type packedKernelCase struct {
	name   string
	seed   uint64
	shapes []packedShape
	sizes  [][3]int
	check  packedCheck
}

// oddSizes are rows, cols and tokens the kernels must handle: one row and
// one token, partial blocks, whole chunks, a lone last chunk (384), more
// tokens than a tile.
var oddSizes = [][3]int{{1, 32, 1}, {5, 37, 3}, {4, 352, 9}, {7, 384, 2}, {9, 160, 17}, {3, 1000, 5}}

// packedKernelCases are the kernel families; the amd64 tests append the
// assembly kernels' own (init).
var packedKernelCases = []packedKernelCase{
	{"installed", 7, packedShapes, oddSizes, checkPackedInstalled},
	{"nl", 13, nlShapes, oddSizes, checkPackedNLKernels},
}

// TestPackedKernels runs each kernel family on random views of odd shapes
// that neither start at row 0 nor end at the matrix's last row, padded
// activation strides, with and without accumulation.
func TestPackedKernels(t *testing.T) {
	for _, c := range packedKernelCases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(c.seed, c.seed+1))
			for _, s := range c.shapes {
				for _, sh := range c.sizes {
					rows, cols, tokens := sh[0], sh[1], sh[2]
					w := randPacked(r, s, rows+2, cols)
					xq, xs, xsum, xstride, xsstride := randActs(r, w, cols, tokens, 1)
					v := w.Rows(1, rows+1)
					for _, add := range []bool{false, true} {
						c.check(t, s, &v, cols, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
					}
				}
			}
		})
	}
}

// checkPackedInstalled compares the installed row-range and tile kernels
// with the definitions: bit for bit for the Go kernels (they keep the
// definition's order), within float32 reordering otherwise.
func checkPackedInstalled(t *testing.T, s packedShape, v *Packed, cols int, xq []int8, xs []float32, xsum []int32, xstride, xsstride, rows, tokens int, add bool) {
	t.Helper()
	ldy, want, got, y := presetOutputs(rows, tokens)
	matPackedRef(want, ldy, v, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
	MatPacked(got, ldy, v, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
	tol := func(i int) float64 {
		u, r := i/ldy, i%ldy
		if r >= rows {
			return 0
		}
		init := float32(0)
		if add {
			init = float32(i)
		}
		return reorderTol(v, r, xq[u*xstride:], xs[u*xsstride:], xsum[u*xsstride:], init)
	}
	compareExact(t, "MatPacked", s, rows, cols, got, want, tol)
	DotPackedRows(y, v, xq, xs, xsum, add)
	compareExact(t, "DotPackedRows", s, rows, cols, y, want[:rows], tol)
}

// presetOutputs returns a definition's and a tile kernel's outputs for
// tokens tokens (rows rows each, at stride ldy: a gap of rows nothing may
// write) and a row kernel's (one token), each output preset to its index so
// that accumulation and stray writes show.
func presetOutputs(rows, tokens int) (ldy int, want, got, y []float32) {
	ldy = rows + 3
	want = make([]float32, tokens*ldy)
	got = make([]float32, tokens*ldy)
	for i := range want {
		want[i] = float32(i)
		got[i] = float32(i)
	}
	y = append([]float32(nil), want[:rows]...)
	return ldy, want, got, y
}

// compareExact requires got = want, or (when a reordering kernel is
// installed) |got − want| within reorderTol of output i (row i%ld, token
// i/ld; init the output's value before an add).
func compareExact(t *testing.T, name string, s packedShape, rows, cols int, got, want []float32, tol func(i int) float64) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] && !(packedKernelsReorder && math.Abs(float64(got[i])-float64(want[i])) <= tol(i)) {
			t.Fatalf("%s %+v [%d, %d] element %d: got %v, definition %v", name, s, rows, cols, i, got[i], want[i])
		}
	}
}

// reorderTol is how far a float32 sum of the definition's terms for row r
// and one token may land from the definition's in another order:
// (blocks + 16)·2^-22·(Σ|term| + |init|).
func reorderTol(w *Packed, r int, xq []int8, xs []float32, xsum []int32, init float32) float64 {
	s := math.Abs(float64(init))
	for b, isum := range w.blockSumsRef(r, xq, func(q uint8) int32 { return int32(q) }) {
		a, m := w.groupParams(r, 32*b/w.Group)
		s += math.Abs(float64(xs[b])) * (math.Abs(float64(a)*float64(isum)) + math.Abs(float64(m)*float64(xsum[b])))
	}
	return float64(w.Blocks+16) * 0x1p-22 * s
}

// packedKernelsReorder is true when an assembly kernel (which may sum in
// another order) is installed.
var packedKernelsReorder = false

func TestPackedViewPanics(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	w := randPacked(r, packedShapes[0], 2, 64)
	xq, xs, xsum, _, _ := randActs(r, w, 64, 1, 0)
	defer func() {
		if recover() == nil {
			t.Error("short activations accepted")
		}
	}()
	DotPackedRows(make([]float32, 2), w, xq[:40], xs, xsum, false)
}

// FuzzPackedRows feeds arbitrary plane bytes and activations to the
// installed kernels and compares them with the definition.
func FuzzPackedRows(f *testing.F) {
	f.Add([]byte{1, 2, 3, 0xff, 0x80}, uint8(0), uint16(37), uint8(3), uint64(1))
	f.Add(make([]byte, 200), uint8(5), uint16(352), uint8(2), uint64(2))
	f.Fuzz(func(t *testing.T, raw []byte, sel uint8, colsRaw uint16, tokRaw uint8, seed uint64) {
		s := packedShapes[int(sel)%len(packedShapes)]
		cols := 1 + int(colsRaw)%1100
		tokens := 1 + int(tokRaw)%10
		r := rand.New(rand.NewPCG(seed, 3))
		rows := 1 + int(seed%5)
		w := randPacked(r, s, rows, cols)
		// The fuzzer's bytes overwrite the start of every plane.
		copy(w.Lo, raw)
		copy(w.Hi, raw)
		copy(w.Sub, raw)
		for i := 0; i+1 < len(raw) && i/2 < len(w.Sup); i += 2 {
			h := uint16(raw[i]) | uint16(raw[i+1])<<8
			if h&0x7c00 != 0x7c00 { // finite float16 only
				w.Sup[i/2] = h
			}
		}
		xq, xs, xsum, xstride, xsstride := randActs(r, w, cols, tokens, 0)
		for i := 0; i < len(raw) && i < len(xq); i++ {
			if i%xstride < cols {
				xq[i] = max(int8(raw[i]), -127)
			}
		}
		sumActs(xq, xsum, xstride, xsstride, tokens)
		want := make([]float32, tokens*rows)
		got := make([]float32, tokens*rows)
		matPackedRef(want, rows, w, xq, xs, xsum, xstride, xsstride, rows, tokens, false)
		MatPacked(got, rows, w, xq, xs, xsum, xstride, xsstride, rows, tokens, false)
		for i := range want {
			if got[i] != want[i] && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) &&
				!(packedKernelsReorder && math.Abs(float64(got[i])-float64(want[i])) <= reorderTol(w, i%rows, xq[i/rows*xstride:], xs[i/rows*xsstride:], xsum[i/rows*xsstride:], 0)) {
				t.Fatalf("%+v [%d, %d] × %d: element %d got %v, definition %v", s, rows, cols, tokens, i, got[i], want[i])
			}
		}
		y := make([]float32, rows)
		DotPackedRows(y, w, xq, xs, xsum, false)
		for i := range y {
			if y[i] != want[i] && !(math.IsNaN(float64(y[i])) && math.IsNaN(float64(want[i]))) &&
				!(packedKernelsReorder && math.Abs(float64(y[i])-float64(want[i])) <= reorderTol(w, i, xq, xs, xsum, 0)) {
				t.Fatalf("%+v rows kernel [%d, %d]: row %d got %v, definition %v", s, rows, cols, i, y[i], want[i])
			}
		}
	})
}

func BenchmarkPackedRowsQ4(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	w := randPacked(r, packedShapes[0], 1024, 1024)
	xq, xs, xsum, _, _ := randActs(r, w, 1024, 1, 0)
	y := make([]float32, 1024)
	b.SetBytes(int64(len(w.Lo) + len(w.Sub) + 2*len(w.Sup)))
	for b.Loop() {
		DotPackedRows(y, w, xq, xs, xsum, false)
	}
}

func BenchmarkMatPackedQ4(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	w := randPacked(r, packedShapes[0], 32, 1024)
	xq, xs, xsum, xstride, xsstride := randActs(r, w, 1024, 16, 0)
	y := make([]float32, 16*32)
	for b.Loop() {
		MatPacked(y, 32, w, xq, xs, xsum, xstride, xsstride, 32, 16, false)
	}
}
