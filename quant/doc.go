// Package quant owns the numeric encodings of shrink: the f32, f16, bf16 and
// q8 byte layouts and their sizes (see docs/DESIGN.md, "Encodings"), the bulk
// conversion loops between float32 and those encodings, zero-copy views of
// encoded bytes for the runtime, and the error metrics used to judge a lossy
// encoding against its float32 reference.
//
// It is pure math: it imports no other package of this module but the leaf
// internal/half (the one definition of binary16 widening, which
// runtime/simd shares and may not import quant for), does no I/O and keeps
// no global mutable state, so every other package may depend on it.
//
// Conversions follow IEEE 754 round-to-nearest-even. Narrowing to f16 and
// bf16 keeps ±Inf, keeps NaN a quiet NaN with its sign, and flushes nothing:
// subnormal results are produced exactly. Widening (F16ToF32, BF16ToF32) is
// exact. q8 stores symmetric int8 quants with one float16 scale per group of
// G weights along each row; decoding a q8 weight is the exact float32
// product scale·q.
package quant
