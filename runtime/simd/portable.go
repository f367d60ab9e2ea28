//go:build !amd64 || noasm

package simd

import "math"

// The portable kernels are what builds without assembly (other platforms,
// or -tags noasm) run. They compute the same sums as the references but
// keep four independent accumulators, so the additions do not wait on each
// other, and widen float16 through a table instead of bit logic; the
// references stay the plain definitions the tests compare against.

// halfTable holds the float32 value of every float16 bit pattern. It is
// built once and never written afterwards.
var halfTable = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = F16ToF32(uint16(i))
	}
	return &t
}()

func dotF32Portable(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		s0 += a[i]*b[i] + a[i+4]*b[i+4]
		s1 += a[i+1]*b[i+1] + a[i+5]*b[i+5]
		s2 += a[i+2]*b[i+2] + a[i+6]*b[i+6]
		s3 += a[i+3]*b[i+3] + a[i+7]*b[i+7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF16Portable(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	t := halfTable
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += t[w[i]] * x[i]
		s1 += t[w[i+1]] * x[i+1]
		s2 += t[w[i+2]] * x[i+2]
		s3 += t[w[i+3]] * x[i+3]
	}
	for ; i < len(w); i++ {
		s0 += t[w[i]] * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotBF16Portable(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += math.Float32frombits(uint32(w[i])<<16) * x[i]
		s1 += math.Float32frombits(uint32(w[i+1])<<16) * x[i+1]
		s2 += math.Float32frombits(uint32(w[i+2])<<16) * x[i+2]
		s3 += math.Float32frombits(uint32(w[i+3])<<16) * x[i+3]
	}
	for ; i < len(w); i++ {
		s0 += math.Float32frombits(uint32(w[i])<<16) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotQ8Portable(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32 {
	xq = xq[:len(wq)]
	var s float32
	for g := 0; g*group < len(wq); g++ {
		lo, hi := g*group, min((g+1)*group, len(wq))
		a, b := wq[lo:hi], xq[lo:hi]
		b = b[:len(a)]
		var c0, c1, c2, c3 int32
		i := 0
		for ; i+4 <= len(a); i += 4 {
			c0 += int32(a[i]) * int32(b[i])
			c1 += int32(a[i+1]) * int32(b[i+1])
			c2 += int32(a[i+2]) * int32(b[i+2])
			c3 += int32(a[i+3]) * int32(b[i+3])
		}
		for ; i < len(a); i++ {
			c0 += int32(a[i]) * int32(b[i])
		}
		// Integer sums are exact, so only the scaling differs from the
		// reference's order of operations (it does not).
		s += halfTable[ws[g]] * xs[g] * float32((c0+c1)+(c2+c3))
	}
	return s
}
