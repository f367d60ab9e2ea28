package simd

// Kernel hooks of the packed low-bit encodings. They are variables so that
// an assembly build can install faster kernels at initialisation (after
// probing the CPU) behind exactly these signatures and semantics — see
// DotPackedRows and MatPacked:
//
//	packedRows(y, w, xq, xs, xsum, add)
//	    len(y) rows of w × one token; xq holds 32·w.Blocks int8 quants
//	    (zero beyond the row), xs and xsum w.Blocks values.
//	matPacked(y, ldy, w, xq, xs, xsum, xstride, xsstride, rows, tokens, add)
//	    rows × tokens; token t at xq[t·xstride:], xs/xsum[t·xsstride:];
//	    output y[t·ldy + r].
//
// The arguments are checked by the exported wrappers before the hooks run.
// Integer block sums must be exact; the float32 combination may be
// reordered. The Go kernels stay the fallback, and the differential tests
// compare whatever is installed with the plain definitions.
var (
	packedRows = packedRowsGo
	matPacked  = matPackedGo
)
