package simd

import (
	"math"

	"github.com/shrink-llm/shrink/internal/half"
)

// DotF32 returns Σ a[i]·b[i] over len(a) elements; b must be at least as long.
func DotF32(a, b []float32) float32 { return dotF32(a, prefix(b, len(a))) }

// DotF16 returns Σ f16(w[i])·x[i]; w holds IEEE binary16 bit patterns.
func DotF16(w []uint16, x []float32) float32 { return dotF16(w, prefix(x, len(w))) }

// DotBF16 returns Σ bf16(w[i])·x[i]; w holds bfloat16 bit patterns.
func DotBF16(w []uint16, x []float32) float32 { return dotBF16(w, prefix(x, len(w))) }

// DotQ8 returns Σ_g ws[g]·xs[g]·Σ_{i∈g} wq[i]·xq[i] for one row: groups of
// size group along the row, the last one shorter when len(wq)%group ≠ 0.
// ws are float16 weight scales, xs float32 activation scales.
//
// xq must lie in [−127, 127] (QuantizeQ8's range; the q8 encoding clamps
// weights the same way): the AVX2 kernel cannot represent −(−128).
func DotQ8(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32 {
	ng := checkGroup(len(wq), group)
	return dotQ8(wq, prefix(ws, ng), prefix(xq, len(wq)), prefix(xs, ng), group)
}

// QuantizeQ8 quantizes activations x into xq with one float32 scale per group
// (symmetric, scale = amax/127, round to nearest), for use with DotQ8.
func QuantizeQ8(xq []int8, xs []float32, x []float32, group int) {
	ng := checkGroup(len(x), group)
	quantizeQ8(prefix(xq, len(x)), prefix(xs, ng), x, group)
}

// The x4 variants compute four dot products that share one activation
// vector x, for matrix kernels: row r (r = 0..3) starts stride elements after
// row r−1, so for a row-major [rows, cols] matrix w[i·cols:] with stride cols
// yields rows i..i+3. Reading x once for four rows saves load bandwidth and
// lets the four accumulation chains overlap. Each result agrees with the
// single-row function up to float32 summation order (not bit for bit).

// DotF32x4 returns out[r] = Σ_i w[r·stride+i]·x[i] for i < len(x).
func DotF32x4(w []float32, stride int, x []float32) [4]float32 {
	var out [4]float32
	checkRows4(len(w), stride, len(x))
	dotF32x4(&out, w, stride, x)
	return out
}

// DotF16x4 returns out[r] = Σ_i f16(w[r·stride+i])·x[i] for i < len(x).
func DotF16x4(w []uint16, stride int, x []float32) [4]float32 {
	var out [4]float32
	checkRows4(len(w), stride, len(x))
	dotF16x4(&out, w, stride, x)
	return out
}

// DotBF16x4 returns out[r] = Σ_i bf16(w[r·stride+i])·x[i] for i < len(x).
func DotBF16x4(w []uint16, stride int, x []float32) [4]float32 {
	var out [4]float32
	checkRows4(len(w), stride, len(x))
	dotBF16x4(&out, w, stride, x)
	return out
}

// DotQ8x4 is DotQ8 for four weight rows and one activation vector of
// n = len(xq) quants: row r's quants start at wq[r·stride] and its scales at
// ws[r·sstride]. For a q8 tensor [rows, cols] (DESIGN.md: quants plane, then
// scales plane) rows i..i+3 are wq = quants[i·cols:], stride = cols,
// ws = scales[i·ngroups:], sstride = ngroups.
func DotQ8x4(wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int) [4]float32 {
	var out [4]float32
	ng := checkGroup(len(xq), group)
	checkRows4(len(wq), stride, len(xq))
	checkRows4(len(ws), sstride, ng)
	dotQ8x4(&out, wq, ws, stride, sstride, xq, prefix(xs, ng), group)
	return out
}

// The Rows variants compute len(y) dot products with one activation vector
// x: y[r] = Σ_i w[r·stride+i]·x[i] for i < len(x), or y[r] += … when add.
// For a row-major [rows, cols] matrix, rows i..j are w[i·cols:], stride
// cols, y = out[i:j]. One call streams the whole row range, which is how
// decode reads a matrix: the per-call and per-row-block costs are paid once,
// not once per four rows. Results agree with the x4 functions bit for bit
// on the assembly path and up to summation order elsewhere.

// DotF32Rows is the Rows variant of DotF32.
func DotF32Rows(y []float32, w []float32, stride int, x []float32, add bool) {
	checkRows(len(y), len(w), stride, len(x))
	dotF32Rows(y, w, stride, x, add)
}

// DotF16Rows is the Rows variant of DotF16.
func DotF16Rows(y []float32, w []uint16, stride int, x []float32, add bool) {
	checkRows(len(y), len(w), stride, len(x))
	dotF16Rows(y, w, stride, x, add)
}

// DotBF16Rows is the Rows variant of DotBF16.
func DotBF16Rows(y []float32, w []uint16, stride int, x []float32, add bool) {
	checkRows(len(y), len(w), stride, len(x))
	dotBF16Rows(y, w, stride, x, add)
}

// The Mat functions compute a block of a matrix-matrix product, as prefill
// and evaluation need it: y[t·ldy + r] = Σ_{i<n} w[r·wstride+i]·x[t·xstride+i]
// for rows r < rows and tokens t < tokens (y[…] += … when add). Where the CPU
// allows, four rows × four tokens go through one register-tiled kernel, so
// each weight vector loaded serves four tokens; leftover rows and tokens
// use the Rows kernels. Results agree with the Rows functions up to
// summation order.

// MatF32 is the Mat variant of DotF32Rows.
func MatF32(y []float32, ldy int, w []float32, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	checkMat(len(y), ldy, len(w), wstride, len(x), xstride, rows, tokens, n)
	matF32(y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}

// MatF16 is the Mat variant of DotF16Rows.
func MatF16(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	checkMat(len(y), ldy, len(w), wstride, len(x), xstride, rows, tokens, n)
	matF16(y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}

// MatBF16 is the Mat variant of DotBF16Rows.
func MatBF16(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride, rows, tokens, n int, add bool) {
	checkMat(len(y), ldy, len(w), wstride, len(x), xstride, rows, tokens, n)
	matBF16(y, ldy, w, wstride, x, xstride, rows, tokens, n, add)
}

// MatQ8 is the Mat variant of DotQ8Rows: row r's quants and scales start at
// wq[r·stride] and ws[r·sstride], token t's at xq[t·xstride] and
// xs[t·xsstride]; n = quants per row. With VNNI and groups of 32 four rows
// × two tokens share one kernel call (each weight vector serves two
// tokens, each activation vector four rows). Each result equals, bit for
// bit, what DotQ8Rows gives that token alone over the same rows (the tile
// keeps the row kernel's order of operations), so a token's products do
// not depend on which other tokens share the call.
func MatQ8(y []float32, ldy int, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, xstride, xsstride, rows, tokens, n, group int, add bool) {
	ng := checkGroup(n, group)
	checkMat(len(y), ldy, len(wq), stride, len(xq), xstride, rows, tokens, n)
	if rows > 0 && tokens > 0 {
		checkRows(rows, len(ws), sstride, ng)
		checkRows(tokens, len(xs), xsstride, ng)
	}
	matQ8(y, ldy, wq, ws, stride, sstride, xq, xs, xstride, xsstride, rows, tokens, n, group, add)
}

// checkMat panics unless the operands of a Mat call fit their slices.
func checkMat(ly, ldy, lw, wstride, lx, xstride, rows, tokens, n int) {
	if rows < 0 || tokens < 0 || n < 0 {
		panic("simd: negative matrix dimension")
	}
	if rows == 0 || tokens == 0 {
		return
	}
	checkRows(rows, lw, wstride, n)
	checkRows(tokens, lx, xstride, n)
	checkRows(tokens, ly, ldy, rows)
}

// matWalk walks a Mat call of rows × tokens: for each group of step tokens,
// tile(t, r4) covers those tokens' rows [0, r4), r4 being rows rounded down
// to 4, and rowsK(u, r4) the rest of each; every token left over goes
// through rowsK(u, 0). With tile nil, every token goes through rowsK.
// Tokens are the outer loop: a few activation rows stay in L1 while the
// weight rows stream past them.
func matWalk(rows, tokens, step int, tile func(t, r4 int), rowsK func(u, r0 int)) {
	t := 0
	if tile != nil {
		r4 := rows &^ 3
		for ; t+step <= tokens; t += step {
			if r4 > 0 {
				tile(t, r4)
			}
			for u := t; u < t+step && r4 < rows; u++ {
				rowsK(u, r4)
			}
		}
	}
	for ; t < tokens; t++ {
		rowsK(t, 0)
	}
}

// DotQ8Rows is the Rows variant of DotQ8 (see DotQ8x4 for the layout): row
// r's quants start at wq[r·stride] and its scales at ws[r·sstride].
func DotQ8Rows(y []float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int, add bool) {
	ng := checkGroup(len(xq), group)
	checkRows(len(y), len(wq), stride, len(xq))
	checkRows(len(y), len(ws), sstride, ng)
	dotQ8Rows(y, wq, ws, stride, sstride, xq, prefix(xs, ng), group, add)
}

// dotQ8RowsFrom finishes DotQ8Rows from row r with the x4 and single-row
// kernels the features select.
func dotQ8RowsFrom(f features, r int, y []float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int, add bool) {
	n := len(xq)
	ng := checkGroup(n, group)
	rowsFrom(r, y, add,
		func(r int) (o [4]float32) {
			dotQ8x4With(f, &o, wq[r*stride:], ws[r*sstride:], stride, sstride, xq, xs, group)
			return o
		},
		func(r int) float32 {
			return dotQ8With(f, wq[r*stride:r*stride+n], ws[r*sstride:r*sstride+ng], xq, xs, group)
		})
}

func store4(y []float32, v *[4]float32, add bool) {
	y = y[:4]
	if add {
		y[0] += v[0]
		y[1] += v[1]
		y[2] += v[2]
		y[3] += v[3]
		return
	}
	y[0], y[1], y[2], y[3] = v[0], v[1], v[2], v[3]
}

// SiLUMul sets g[i] = silu(g[i])·u[i] = g·u/(1+exp(−g)), the gated
// activation of Llama-style MLPs, for i < len(g); u must be at least as
// long. The vector path evaluates exp in float32 (Cephes' expf), within a few
// units in the last place of the float64 reference.
func SiLUMul(g, u []float32) { siluMul(g, prefix(u, len(g))) }

func siluMulGo(g, u []float32) {
	for i, v := range g {
		g[i] = float32(float64(v)/(1+math.Exp(-float64(v)))) * u[i]
	}
}

// Softmax sets w to softmax(scale·w): w[i] = exp(scale·w[i] − m)/Σ with m
// the largest scale·w[i]; scale must be positive. The vector path evaluates
// exp and Σ in float32 (as transformers does), the reference in float64.
func Softmax(w []float32, scale float32) {
	if !(scale > 0) {
		panic("simd: Softmax scale must be positive")
	}
	softmax(w, scale)
}

func softmaxGo(w []float32, scale float32) {
	mx := float32(math.Inf(-1))
	for i, v := range w {
		w[i] = v * scale
		mx = max(mx, w[i])
	}
	var sum float64
	for i, v := range w {
		e := float32(math.Exp(float64(v - mx)))
		w[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range w {
		w[i] *= inv
	}
}

// prefix returns s[:n], panicking when len(s) < n (plain s[:n] would
// silently read into spare capacity).
func prefix[T any](s []T, n int) []T {
	if len(s) < n {
		panic("simd: slice shorter than the row")
	}
	return s[:n]
}

// checkGroup returns the number of groups in a row of n elements and panics
// on a group size the loops cannot advance with.
func checkGroup(n, group int) int {
	if group <= 0 {
		panic("simd: q8 group size must be positive")
	}
	return (n + group - 1) / group
}

// checkRows panics unless rows rows of n elements, stride apart, fit in a
// slice of length l.
func checkRows(rows, l, stride, n int) {
	if rows == 0 {
		return
	}
	if stride < 0 || l < n || (rows > 1 && stride > (l-n)/(rows-1)) {
		panic("simd: the rows do not fit in the weight slice")
	}
}

// rowsFrom finishes a Rows call from row r with an x4 kernel and a
// single-row kernel, each given the index of its first row.
func rowsFrom(r int, y []float32, add bool, x4 func(r int) [4]float32, one func(r int) float32) {
	for ; r+4 <= len(y); r += 4 {
		out := x4(r)
		store4(y[r:r+4], &out, add)
	}
	for ; r < len(y); r++ {
		v := one(r)
		if add {
			v += y[r]
		}
		y[r] = v
	}
}

// checkRows4 panics unless four rows of n elements, stride apart, fit in a
// slice of length l; the kernels rely on it instead of per-element checks.
func checkRows4(l, stride, n int) {
	if stride < 0 || l < n || stride > (l-n)/3 {
		panic("simd: four rows do not fit in the weight slice")
	}
}

func dotF32Go(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16Go(w []uint16, x []float32) float32 {
	var s float32
	for i, h := range w {
		s += F16ToF32(h) * x[i]
	}
	return s
}

func dotBF16Go(w []uint16, x []float32) float32 {
	var s float32
	for i, h := range w {
		s += math.Float32frombits(uint32(h)<<16) * x[i]
	}
	return s
}

func dotQ8Go(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32 {
	var s float32
	for g := 0; g*group < len(wq); g++ {
		lo, hi := g*group, min((g+1)*group, len(wq))
		var acc int32
		for i := lo; i < hi; i++ {
			acc += int32(wq[i]) * int32(xq[i])
		}
		s += q8Term(ws[g], xs[g], acc)
	}
	return s
}

// dotRows4 sets dst[r] to dot(row r of w, x) for the four rows of w,
// stride apart: the four-row kernels of the references and of the portable
// build, each from its own single-row kernel.
func dotRows4[T float32 | uint16](dst *[4]float32, w []T, stride int, x []float32, dot func([]T, []float32) float32) {
	for r := range dst {
		dst[r] = dot(w[r*stride:r*stride+len(x)], x)
	}
}

// dotQ8Rows4 is dotRows4 for q8 rows, their scales sstride apart.
func dotQ8Rows4(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int,
	dot func(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32) {
	for r := range dst {
		dst[r] = dot(wq[r*stride:r*stride+len(xq)], ws[r*sstride:], xq, xs, group)
	}
}

func quantizeQ8Go(xq []int8, xs []float32, x []float32, group int) {
	for g := 0; g*group < len(x); g++ {
		lo, hi := g*group, min((g+1)*group, len(x))
		var amax float32
		for _, v := range x[lo:hi] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		if amax < 0x1p-120 {
			// 1/(amax/127) would overflow: a group this small (far
			// below any activation that matters) quantizes to zeros.
			amax = 0
		}
		d := amax / 127
		xs[g] = d
		var inv float32
		if d != 0 {
			inv = 1 / d
		}
		for i := lo; i < hi; i++ {
			xq[i] = int8(math.Round(float64(x[i] * inv)))
		}
	}
}

// F16ToF32 widens one IEEE binary16 value exactly (internal/half holds the
// definition, shared with quant).
func F16ToF32(h uint16) float32 { return half.ToFloat32(h) }
