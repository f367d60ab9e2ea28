// Package membw measures the machine's memory read bandwidth on the spot, so
// that a decode speed can be set against the roofline it cannot exceed
// (tokens/s × weight bytes read per token ≤ bandwidth).
//
// The probe streams over a buffer far larger than the last-level cache with
// a given number of threads, each summing its own contiguous share with the
// SIMD dot-product kernel the runtime itself uses, and reports the best of a
// few passes (interference from other processes only ever slows a pass
// down).
package membw
