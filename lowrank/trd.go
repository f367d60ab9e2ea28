package lowrank

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/gonum"
)

// Householder tridiagonalisation Qᵀ·A·Q = T of a symmetric matrix (lower
// triangle, row-major), blocked as in LAPACK's DSYTRD/DLATRD and with the
// same output layout, so gonum's Dorgtr and the back-transform read it
// unchanged. gonum's Dsytrd runs both halves of its work on one core: the
// matrix–vector product with the trailing matrix in each column (BLAS-2,
// bound by memory) and the symmetric rank-2·nb update after each panel. Here
// the first is split across cores by rows and the second is one parallel
// packed product (gemmEx) on the lower triangle.

const trdBlock = 32

// tridiagonalize overwrites a (n×n, lower triangle read) with the reflectors
// below the subdiagonal; d, e receive the tridiagonal matrix and tau
// (n−1) the reflector scales, exactly as Dsytrd(blas.Lower, …).
func tridiagonalize(th int, a []float64, n int, d, e, tau []float64) {
	var impl gonum.Implementation
	nb := trdBlock
	w := make([]float64, n*nb)
	sy := newParSymv(th, n)
	i0 := 0
	for ; n-i0 > 3*nb; i0 += nb {
		m := n - i0
		sub := a[i0*n+i0:]
		latrdLower(m, nb, sub, n, e[i0:], tau[i0:], w[:m*nb], nb, sy)
		// A22 −= V·Wᵀ + W·Vᵀ as one product [V W]·[W V]ᵀ, lower triangle.
		m2 := m - nb
		x := make([]float64, m2*2*nb)
		y := make([]float64, m2*2*nb)
		for r := 0; r < m2; r++ {
			v := sub[(nb+r)*n : (nb+r)*n+nb]
			wr := w[(nb+r)*nb : (nb+r+1)*nb]
			copy(x[r*2*nb:], v)
			copy(x[r*2*nb+nb:], wr)
			copy(y[r*2*nb:], wr)
			copy(y[r*2*nb+nb:], v)
		}
		gemmEx(th, gemmOpts{lowerC: true}, false, true, m2, m2, 2*nb, -1, x, 2*nb, y, 2*nb, 1, sub[nb*n+nb:], n)
		for j := i0; j < i0+nb; j++ {
			a[(j+1)*n+j] = e[j]
			d[j] = a[j*n+j]
		}
	}
	impl.Dsytd2(blas.Lower, n-i0, a[i0*n+i0:], n, d[i0:], e[i0:], tau[i0:])
}

// latrdLower reduces the first nb columns of the m×m symmetric matrix a
// (lower, stride lda) and returns in w (m×nb, stride ldw) the matrix W of
// the update A22 −= V·Wᵀ + W·Vᵀ (LAPACK DLATRD, lower case).
func latrdLower(m, nb int, a []float64, lda int, e, tau, w []float64, ldw int, sy *parSymv) {
	var impl gonum.Implementation
	bi := blas64.Implementation()
	v := make([]float64, m)
	t1 := make([]float64, nb)
	t2 := make([]float64, nb)
	for i := 0; i < nb; i++ {
		if i > 0 {
			// A[i:m, i] −= A[i:m, :i]·W[i, :i]ᵀ + W[i:m, :i]·A[i, :i]ᵀ
			wi := w[i*ldw : i*ldw+i]
			ai := a[i*lda : i*lda+i]
			for r := i; r < m; r++ {
				a[r*lda+i] -= bi.Ddot(i, a[r*lda:], 1, wi, 1) + bi.Ddot(i, w[r*ldw:], 1, ai, 1)
			}
		}
		if i == m-1 {
			break
		}
		// Reflector H(i) annihilating A[i+2:m, i].
		beta, ti := impl.Dlarfg(m-i-1, a[(i+1)*lda+i], a[min(i+2, m-1)*lda+i:], lda)
		e[i], tau[i] = beta, ti
		a[(i+1)*lda+i] = 1
		l := m - i - 1
		vv := v[:l]
		for r := 0; r < l; r++ {
			vv[r] = a[(i+1+r)*lda+i]
		}
		// W[i+1:m, i] = A[i+1:m, i+1:m]·v, then the corrections for the
		// columns already reduced in this panel.
		wc := make([]float64, l)
		sy.mul(l, a[(i+1)*lda+i+1:], lda, vv, wc)
		// t1 = W[i+1:m, :i]ᵀ·v and t2 = A[i+1:m, :i]ᵀ·v, row by row so
		// that memory is read contiguously.
		clear(t1[:i])
		clear(t2[:i])
		for r := 0; r < l && i > 0; r++ {
			bi.Daxpy(i, vv[r], w[(i+1+r)*ldw:], 1, t1, 1)
			bi.Daxpy(i, vv[r], a[(i+1+r)*lda:], 1, t2, 1)
		}
		for r := 0; r < l; r++ {
			s := wc[r]
			if i > 0 {
				s -= bi.Ddot(i, a[(i+1+r)*lda:], 1, t1, 1) + bi.Ddot(i, w[(i+1+r)*ldw:], 1, t2, 1)
			}
			wc[r] = ti * s
		}
		alpha := -0.5 * ti * bi.Ddot(l, wc, 1, vv, 1)
		for r := 0; r < l; r++ {
			w[(i+1+r)*ldw+i] = wc[r] + alpha*vv[r]
		}
	}
}

// parSymv computes y = A·x for a symmetric matrix given by its lower
// triangle, rows split into symvParts ranges of equal triangle area, each
// accumulated into its own y and the parts then summed in order. The split
// does not depend on the thread budget, so neither does the rounding: a
// conversion gives the same bytes whatever --threads is.
type parSymv struct {
	th    int
	parts [][]float64
}

// symvParts is the number of row ranges: enough to keep a few cores busy
// with uneven progress, few enough that summing the parts (symvParts·n)
// stays negligible next to the n²/2 product.
const symvParts = 8

func newParSymv(th, n int) *parSymv {
	s := &parSymv{th: th, parts: make([][]float64, symvParts)}
	for i := range s.parts {
		s.parts[i] = make([]float64, n)
	}
	return s
}

func (s *parSymv) mul(n int, a []float64, lda int, x, y []float64) {
	p := len(s.parts)
	if n < 256 {
		p = 1
	}
	bounds := make([]int, p+1)
	for t := 1; t <= p; t++ {
		// rows [0, r) hold r²/2 of the triangle
		bounds[t] = int(float64(n) * math.Sqrt(float64(t)/float64(p)))
	}
	bounds[p] = n
	parallel(s.th, p, func(t int) {
		yt := s.parts[t][:n]
		clear(yt)
		symvRowsLower(a, lda, x, yt, bounds[t], bounds[t+1])
	})
	copy(y[:n], s.parts[0][:n])
	for t := 1; t < p; t++ {
		for i, v := range s.parts[t][:n] {
			y[i] += v
		}
	}
}

// symvRowsLower adds the contribution of rows [r0, r1) of the lower triangle
// to y: y_r += A[r, :r+1]·x[:r+1] and y[:r] += x_r·A[r, :r].
func symvRowsLower(a []float64, lda int, x, y []float64, r0, r1 int) {
	for r := r0; r < r1; r++ {
		row := a[r*lda : r*lda+r+1]
		y[r] += dotAxpy(row[:r], x[:r], y[:r], x[r]) + row[r]*x[r]
	}
}

// dotAxpyGo is the portable dotAxpy (and the reference for the assembly).
func dotAxpyGo(row, x, y []float64, s float64) float64 {
	x = x[:len(row)]
	y = y[:len(row)]
	var d0, d1, d2, d3 float64
	j := 0
	for ; j+4 <= len(row); j += 4 {
		r0, r1, r2, r3 := row[j], row[j+1], row[j+2], row[j+3]
		d0 += r0 * x[j]
		d1 += r1 * x[j+1]
		d2 += r2 * x[j+2]
		d3 += r3 * x[j+3]
		y[j] += s * r0
		y[j+1] += s * r1
		y[j+2] += s * r2
		y[j+3] += s * r3
	}
	for ; j < len(row); j++ {
		d0 += row[j] * x[j]
		y[j] += s * row[j]
	}
	return (d0 + d1) + (d2 + d3)
}

// applyQ overwrites the row-major n×k matrix z with Q·z, where Q = H(0)·…·
// H(n−2) is stored by tridiagonalize in a and tau. Reflectors are applied
// in blocks of qBlock as I − V·T·Vᵀ (compact WY form, T upper triangular),
// last block first, so nearly all of the 2·n²·k flops are parallel packed
// products; forming Q explicitly (Dorgtr) would cost another (4/3)·n³ on
// one core.
func applyQ(th int, a, tau []float64, n int, z []float64, k int) {
	const qBlock = 64
	if n < 2 || k == 0 {
		return
	}
	nr := n - 1 // reflectors
	for j0 := ((nr - 1) / qBlock) * qBlock; j0 >= 0; j0 -= qBlock {
		j1 := min(j0+qBlock, nr)
		b := j1 - j0
		l := n - j0 - 1 // rows j0+1 … n−1
		// V (l×b): column c is reflector j0+c, unit at row c, zero above.
		v := make([]float64, l*b)
		for r := 0; r < l; r++ {
			row := a[(j0+1+r)*n+j0 : (j0+1+r)*n+j1]
			for c := 0; c < b; c++ {
				switch {
				case r > c:
					v[r*b+c] = row[c]
				case r == c:
					v[r*b+c] = 1
				}
			}
		}
		vtv := make([]float64, b*b)
		gemm(th, true, false, b, b, l, 1, v, b, v, b, 0, vtv, b)
		// T: T[c,c] = τ_c, T[:c, c] = −τ_c·T[:c, :c]·(Vᵀv_c)[:c].
		t := make([]float64, b*b)
		for c := 0; c < b; c++ {
			tc := tau[j0+c]
			t[c*b+c] = tc
			for i := 0; i < c; i++ {
				s := 0.0
				for j := i; j < c; j++ {
					s += t[i*b+j] * vtv[j*b+c]
				}
				t[i*b+c] = -tc * s
			}
		}
		zs := z[(j0+1)*k:]
		y := make([]float64, b*k)
		gemm(th, true, false, b, k, l, 1, v, b, zs, k, 0, y, k)
		ty := make([]float64, b*k)
		gemm(th, false, false, b, k, b, 1, t, b, y, k, 0, ty, k)
		gemm(th, false, false, l, k, b, -1, v, b, ty, k, 1, zs, k)
	}
}
