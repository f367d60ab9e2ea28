// Package membw measures the machine's memory read bandwidth on the spot, so
// that a decode speed can be set against the roofline it cannot exceed
// (tokens/s × weight bytes read per token ≤ bandwidth).
//
// The probe streams over a buffer far larger than the last-level cache with
// a given number of threads, each reading its own contiguous share as two
// streams side by side (the product of its two halves, with the SIMD
// dot-product kernel the runtime itself uses: one core reads two streams
// faster than one, as the one-token kernels do), and reports the best of a
// few passes (interference from other processes only ever slows a pass
// down).
package membw
