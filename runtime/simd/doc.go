// Package simd holds the innermost loops of the runtime, one family per
// encoding (f32, f16, bf16, q8):
//
//   - Dot*: one encoded weight row with an activation vector; Dot*x4: four
//     rows sharing one activation read.
//   - Dot*Rows: a whole range of rows in one call, the shape of decode (a
//     matrix times one vector). Per-call and per-block overheads are paid
//     once per range, and the kernels prefetch the next block of rows (and,
//     for q8, its scales, a stream too thin for the hardware prefetcher).
//   - Mat*: a block of a matrix-matrix product, the shape of prefill and
//     evaluation, in register tiles (four rows × four tokens for the float
//     encodings, four rows × two tokens for q8) so that each weight vector
//     loaded serves several tokens.
//   - DotPackedRows and MatPacked: the same two shapes for the packed
//     low-bit encodings (q2…q6, q4s), reading the planes as stored; int8
//     activations in blocks of 32 with their block sums (SumQ8Blocks) pay
//     for the asymmetric offsets. They run through replaceable hooks
//     (packed_dispatch.go): on amd64 with AVX-512 VNNI the generated
//     whole-row kernels (dispatch_packedk_amd64.go), with AVX2 only the
//     generated block-sum kernels (dispatch_packed_amd64.go), elsewhere the
//     Go ones.
//   - QuantizeQ8 (activations to int8 per group, for the q8 products),
//     SiLUMul (the gated MLP activation) and Softmax (attention weights).
//
// Every primitive has a pure-Go reference (the *Go functions) that defines its
// result; assembly may replace it but must agree with the reference to within
// float32 summation-order error (QuantizeQ8: bit for bit; SiLUMul and
// Softmax: a few units in the last place, their exp being float32). The
// package is separate from runtime/ so that assembly, its build tags and its
// differential tests and fuzz targets stay in one small place.
//
// On amd64 with the gc toolchain (unless built with -tags noasm) each call
// picks a kernel from the instruction-set levels of internal/cpu (read once
// at start-up; tests lower them with cpu.SetForTesting or pass levels to the
// *With functions):
//
//   - f32, f16, bf16 rows: AVX2+FMA (f16 widened with F16C VCVTPH2PS, bf16 by
//     VPMOVZXWD and a 16-bit shift, so activations stay float32 and the
//     products are exact before accumulation); eight accumulators per four
//     rows.
//   - f32, f16, bf16 tiles, SiLUMul, Softmax, QuantizeQ8: AVX-512 F/VL.
//   - q8 with AVX-512 VNNI (+BW, VL): VPDPBUSD on (w XOR 0x80)·x with the
//     excess 128·Σx subtracted per group, exact for every int8 pair;
//     512-bit kernels for group 32 (two groups per vector; rows and tiles)
//     and multiples of 64, a 256-bit kernel for other multiples of 32.
//   - q8 interleaved (Q8I, MatQ8I; AVX-512 VNNI): the rows repacked
//     sixteen to a vector, so each int32 lane accumulates one row's group
//     sum with VPDPBUSD against four activation quants broadcast from
//     memory; per group and token one conversion, two multiplications and
//     one addition, in the reference's order and rounding, so the result is
//     dotQ8Go's bit for bit for one token or eight (up to eight tokens
//     share one pass over the weights).
//   - q4s interleaved (Q4SI, MatQ4SI; AVX-512 VNNI): the same for q4s, the
//     quants kept 4 bits wide, two vectors of sixteen rows' nibbles per
//     64-byte load (a mask and a shift); per 32-weight block and token the
//     definition's float32 steps in order, so the result is
//     dotPackedRowRef's bit for bit. For one token both read a matrix's
//     blocks as two streams, its two halves side by side (the "x2"
//     kernels): one core reads two sequential streams faster than one, and
//     one-token decode waits on that read.
//   - two-level q4 and q6 interleaved (QKI, MatQKI; AVX-512 VNNI): the
//     same for the K-quant-like encodings, each 32-weight group carrying
//     its sixteen rows' 6-bit scales and offsets as bytes (one VPMOVZXBD
//     each) and, for q6, two vectors of high bits merged into the nibbles
//     (a shift, a mask and a VPTERNLOGD); every eighth group takes the next
//     super-block's float16 d and dmin. Bit for bit dotPackedRowRef's.
//   - q8 with AVX2 only: VPMADDUBSW on |w|·sign(w)·x, exact for x ≠ −128.
//   - packed low-bit encodings (Packed): the exact int32 block sums of each
//     row's whole 128-weight chunks, unpacked once per chunk for up to eight
//     tokens, by VPDPBUSD (AVX-512 VNNI) or VPMADDUBSW (AVX2); the Go
//     wrapper scales them in the definition's order, so the result is
//     dotPackedRowRef's bit for bit. With AVX-512 VNNI the whole-row
//     kernels (the encodings without an interleaved layout: q2, q3, q5,
//     q4nl, groups other than 32) do everything per 256-weight super-block in registers
//     (unpacking, VPDPBUSD, sub-scales and offsets, VCVTPH2PS of the
//     float16 scales, float32 accumulation; one token per pass or four):
//     exact block sums, the float32 sum in another order.
//
// The assembly is generated, never edited: _generate (its own module, run
// with `cd _generate && go run .`) writes dot_amd64.s, tile_amd64.s,
// dotq8_amd64.s, interleaved_amd64.s, act_amd64.s, packed_amd64.s and packedk_amd64.s from one Go function per
// kernel family, parameterized by the weight encoding (f32, f16, bf16; the
// packed planes' bit widths) or the vector width (256- or 512-bit), with
// the kernels' fixed register plan. Kernels
// with more than eight arguments (dotQ8RowsVNNI32, tileQ8x2VNNI) take a
// pointer to an argument struct, whose field offsets the generator reads
// from this package's declarations.
//
// Kernels take the block-aligned part of their input; the wrappers finish
// the rest (the last elements of a row, one partial q8 group, leftover rows
// and tokens) with the next kernel down. Other platforms, other compilers
// and -tags noasm use the portable Go kernels (portable.go), checked against
// the references in the same way; amd64 CPUs without AVX2/FMA/F16C, and q8
// group sizes that are not multiples of 32, use the references themselves.
//
// The package imports nothing of this module but two leaves: internal/half,
// the binary16 widening it shares with quant, so that the two cannot drift
// apart, and internal/cpu, the feature levels it dispatches on.
package simd
