// Package gptq rounds a weight matrix to one of quant's encodings with
// GPTQ-style error feedback: given H = XXᵀ of the matrix's calibration
// inputs, each column's rounding error is pushed onto the columns not yet
// rounded along the directions H says matter, so that the output error
// tr((W−Ŵ) H (W−Ŵ)ᵀ) falls well below round-to-nearest's.
//
// The output is byte for byte the encoding's own layout (q8, q4s and the
// packed q2…q6 family): group parameters come from quant's encoder run on
// the updated weights of a span (one group for q8 and q4s, one 256-weight
// super-block for the two-level packed family, whose 6-bit sub-scales
// share a float16 pair) when the pass enters that span, and each weight is
// then rounded against the stored parameters with the encoder's own
// rounding. With H a multiple of the identity there is no feedback and the
// bytes equal quant.EncodeWeighted's.
//
// Asymmetric calibration (GPTAQ; AsymmetricTarget, Options.Cross): when
// the inputs the compressed model gives a matrix (X̃, whose XXᵀ is H)
// differ from the uncompressed model's (X), fitting the uncompressed
// output W·X is GPTQ's own problem for the least-squares target
// W + W·D·Hd⁻¹ with D = (X − X̃)·X̃ᵀ, so the pass rounds that target
// (scaled toward W by AsymAlpha) instead of W.
//
// Activation order (columns by decreasing diag H) uses static groups: all
// group parameters are chosen from the original weights first, so groups
// stay contiguous in the stored order.
//
// The factor (the upper Cholesky factor of the damped H⁻¹) is cubic in the
// columns: a 5632-column input of a 1.1B model is about 1.2e11 flops, which
// a scalar loop takes most of a minute over, once per input of every
// layer. It comes from lowrank.InverseCholeskyUpper, blocked on lowrank's
// packed GEMM under the thread budget; that is the one import besides
// quant (a change of docs/DESIGN.md's table, which gave gptq quant only).
// Memory is O(cols²) for the factor plus one block of rows per worker.
package gptq
