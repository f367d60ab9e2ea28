package lowrank

import "math"

// cholBlock is the block size of InverseCholeskyUpper's factorization and
// inversion: a multiple of the GEMM's kc, so each trailing update is one
// k-panel, and small enough that the unblocked work on the diagonal blocks
// (b³/3 per block) stays a few percent of the total.
const cholBlock = kc

// InverseCholeskyUpper overwrites the upper triangle (and diagonal) of the
// symmetric positive definite a (n×n, row-major, upper triangle read) with
// U, upper triangular, such that a⁻¹ = UᵀU: the upper Cholesky factor of
// the inverse, which GPTQ's error feedback walks row by row, found without
// forming a⁻¹. The strict lower triangle is used as scratch. It reports
// false, with a's contents undefined, when a is not positive definite.
//
// Writing a = R·Rᵀ with R upper triangular (a Cholesky factorization that
// starts from the last column), U = R⁻¹. With J the reversal of the index
// order, JaJ = (JRJ)(JRJ)ᵀ is an ordinary lower Cholesky factorization, so
// the work is: copy JaJ into the lower triangle, factor it (blocked,
// right-looking, the trailing updates on the packed GEMM), invert the
// lower factor (blocked, the products on the GEMM) and reverse the result
// into the upper triangle. Both cubic steps then run at the GEMM's speed
// on th threads instead of one scalar loop; the result agrees with the
// unblocked definitions to rounding.
func InverseCholeskyUpper(a []float64, n, th int) bool {
	if n == 0 {
		return true
	}
	// The lower triangle receives JaJ: (i, j) with i > j reads a's upper
	// (n−1−i, n−1−j); the diagonal is reversed in place. The upper
	// triangle is then cleared so the triangular products can read whole
	// tiles.
	for i := 1; i < n; i++ {
		src := (n - 1 - i) * n
		for j := range i {
			a[i*n+j] = a[src+n-1-j]
		}
	}
	for i := range n / 2 {
		a[i*n+i], a[(n-1-i)*n+n-1-i] = a[(n-1-i)*n+n-1-i], a[i*n+i]
	}
	for i := range n - 1 {
		clear(a[i*n+i+1 : (i+1)*n])
	}
	if !cholLower(a, n, th) || !invLower(a, n, th) {
		return false
	}
	// U = J·L⁻¹·J: the upper (i, j) is the lower (n−1−i, n−1−j).
	for i := range n - 1 {
		src := (n - 1 - i) * n
		for j := i + 1; j < n; j++ {
			a[i*n+j] = a[src+n-1-j]
		}
	}
	for i := range n / 2 {
		a[i*n+i], a[(n-1-i)*n+n-1-i] = a[(n-1-i)*n+n-1-i], a[i*n+i]
	}
	return true
}

// cholLower overwrites the lower triangle of the SPD a (row-major, lower
// triangle read, zeros above the diagonal) with L, a = L·Lᵀ, in blocks:
// factor the diagonal block, solve the panel below it against that factor
// (through its inverse, on the GEMM), subtract the panel's outer product
// from the trailing lower triangle (GEMM, lower tiles only).
func cholLower(a []float64, n, th int) bool {
	b := cholBlock
	inv := make([]float64, b*b)
	panel := make([]float64, n*b)
	for k0 := 0; k0 < n; k0 += b {
		k1 := min(k0+b, n)
		w := k1 - k0
		d := a[k0*n+k0:]
		if !cholUnblocked(d, w, n) {
			return false
		}
		m := n - k1
		if m == 0 {
			break
		}
		// inv = L_kk⁻¹ (w×w, lower, zeros above).
		loadLowerTile(inv, d, w, n)
		invLowerUnblocked(inv, w, w)
		// P ← P·L_kk⁻ᵀ: panel = A21 · invᵀ, then back into A21.
		a21 := a[k1*n+k0:]
		gemm(th, false, true, m, w, w, 1, a21, n, inv, w, 0, panel, w)
		for i := range m {
			copy(a21[i*n:i*n+w], panel[i*w:(i+1)*w])
		}
		// A22 −= P·Pᵀ on the lower triangle.
		gemmEx(th, gemmOpts{lowerC: true}, false, true, m, m, w, -1, a21, n, a21, n, 1, a[k1*n+k1:], n)
	}
	// The trailing updates also wrote the parts of diagonal tiles above
	// the diagonal; L is lower triangular.
	for i := range n - 1 {
		clear(a[i*n+i+1 : (i+1)*n])
	}
	return true
}

// invLower overwrites the lower triangular L (row-major, zeros above the
// diagonal) with L⁻¹, one block row at a time from the top: with the rows
// above already inverted, X_i,<i = −X_ii · (L_i,<i · X_<i,<i), the inner
// product on the GEMM with its lower-triangular right operand.
func invLower(a []float64, n, th int) bool {
	b := cholBlock
	tmp := make([]float64, b*n)
	xii := make([]float64, b*b)
	for i0 := 0; i0 < n; i0 += b {
		i1 := min(i0+b, n)
		w := i1 - i0
		loadLowerTile(xii, a[i0*n+i0:], w, n)
		if !invLowerUnblocked(xii, w, w) {
			return false
		}
		if i0 > 0 {
			// tmp = L_i,<i · X_<i,<i (w × i0).
			gemmEx(th, gemmOpts{lowerB: true}, false, false, w, i0, i0, 1, a[i0*n:], n, a, n, 0, tmp, i0)
			// X_i,<i = −X_ii · tmp.
			gemm(th, false, false, w, i0, w, -1, xii, w, tmp, i0, 0, a[i0*n:], n)
		}
		for i := range w {
			copy(a[(i0+i)*n+i0:(i0+i)*n+i0+i+1], xii[i*w:i*w+i+1])
		}
	}
	return true
}

// loadLowerTile sets the w×w tile t (row stride w) to the lower triangle
// and diagonal of the block at src (row stride ld), zeros above.
func loadLowerTile(t, src []float64, w, ld int) {
	clear(t[:w*w])
	for i := range w {
		copy(t[i*w:i*w+i+1], src[i*ld:i*ld+i+1])
	}
}

// cholUnblocked factors the w×w SPD block at d (row stride ld, lower
// triangle) in place: d = L·Lᵀ.
func cholUnblocked(d []float64, w, ld int) bool {
	for j := range w {
		rj := d[j*ld : j*ld+j]
		s := d[j*ld+j] - dotF64(rj, rj)
		if !(s > 0) {
			return false
		}
		s = math.Sqrt(s)
		d[j*ld+j] = s
		for i := j + 1; i < w; i++ {
			d[i*ld+j] = (d[i*ld+j] - dotF64(d[i*ld:i*ld+j], rj)) / s
		}
	}
	return true
}

// invLowerUnblocked overwrites the w×w lower triangular block at x (row
// stride ld) with its inverse, by forward substitution row by row: row i
// of X = L⁻¹ is (e_i − Σ_{k<i} L_ik X_k) / L_ii, and X_k is zero past k.
func invLowerUnblocked(x []float64, w, ld int) bool {
	for i := range w {
		d := x[i*ld+i]
		if !(d > 0) || math.IsInf(d, 0) {
			return false
		}
		// Row i's entries left of the diagonal are L's; they are read
		// before being overwritten column by column from the left, and
		// column j of the new row needs L_ik for k ≥ j only.
		row := x[i*ld : i*ld+i]
		for j := range i {
			var s float64
			for k := j; k < i; k++ {
				s += row[k] * x[k*ld+j]
			}
			row[j] = -s / d
		}
		x[i*ld+i] = 1 / d
	}
	return true
}

func dotF64(x, y []float64) float64 {
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(x); i += 2 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
	}
	if i < len(x) {
		s0 += x[i] * y[i]
	}
	return s0 + s1
}

// Gemm computes c = alpha·op(a)·op(b) + beta·c for row-major float64
// matrices, op(a) m×k (aᵀ when tA) and op(b) k×n (bᵀ when tB), on at most
// th threads: the package's packed, register-blocked product, for callers
// whose cubic work is a matrix product too (GPTQ's lazy updates). The
// result does not depend on th.
func Gemm(th int, tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gemm(th, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
