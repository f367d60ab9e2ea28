// Package simd holds the innermost loops of the runtime: dot products of one
// encoded weight row (or four rows, the *x4 variants) with an activation
// vector, one per encoding, plus the on-the-fly activation quantizer that q8
// products need.
//
// Every primitive has a pure-Go reference (the *Go functions) that defines its
// result; platform assembly may replace the dispatch but must agree with the
// reference to within float32 summation-order error. The package is separate
// from runtime/ so that assembly, its build tags and its differential tests
// stay in one small place.
//
// On amd64 (unless built with -tags noasm) the CPU is probed once at package
// initialisation (cpuFeatures, never modified afterwards) and each call picks
// a kernel from it:
//
//   - f32, f16, bf16: AVX2+FMA (f16 widened with F16C VCVTPH2PS, bf16 by
//     VPMOVZXWD and a 16-bit shift, so activations stay float32 and the
//     products are exact before accumulation); four accumulators, eight in
//     the x4 kernels.
//   - q8 with AVX-512 VNNI (+BW, VL): VPDPBUSD on (w XOR 0x80)·x with the
//     excess 128·Σx subtracted per group, exact for every int8 pair;
//     512-bit kernels for group 32 (two groups per vector) and multiples of
//     64, a 256-bit kernel for other multiples of 32.
//   - q8 with AVX2 only: VPMADDUBSW on |w|·sign(w)·x, exact for x ≠ −128.
//
// Kernels take the block-aligned prefix of a row; the wrappers finish the
// remaining elements (fewer than 8, or one partial q8 group) in Go. Other
// platforms, -tags noasm, group sizes that are not multiples of 32, and CPUs
// without AVX2/FMA/F16C use the references.
package simd
