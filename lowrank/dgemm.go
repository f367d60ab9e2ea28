package lowrank

import (
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Blocked float64 matrix product. gonum's Dgemm is not register-blocked
// for this work, and its Dsyrk, Dtrmm and Dtrsm are single-threaded;
// the matrix products of one TinyLlama layer are ~5e11 flops, so they need
// a packed, register-blocked kernel (AVX2/FMA on amd64, plain Go elsewhere)
// running on every core.
//
// C is cut into tiles of tileM×tileN that goroutines take from a shared
// counter, so a core slowed down by other processes does not hold the
// others up. Each tile walks k in chunks of kc: it packs its slice of op(A)
// into micro-panels of mr rows and its slice of op(B) into micro-panels of
// nr columns (contiguous, so the kernel streams them), then runs the mr×nr
// micro-kernel over the tile.
const (
	mr    = 6
	nrMax = 16 // widest micro-kernel; nr is per architecture
	kc    = 256
	tileM = 384 // multiple of mr; tileM×kc packed A is 768 KiB (L2)
	tileN = 512 // multiple of nrMax
)

// gemmOpts restricts which parts of the product are needed.
type gemmOpts struct {
	// lowerC: C is square and only its lower triangle (and the diagonal) is
	// wanted; tiles entirely above the diagonal are skipped and keep
	// beta·C.
	lowerC bool
	// upperC: C is square and only its upper triangle (and the diagonal)
	// is wanted; tiles entirely below the diagonal are skipped and keep
	// beta·C.
	upperC bool
	// lowerB: op(B) is square and lower triangular (zeros above the
	// diagonal), so column j of C needs only rows p ≥ j of op(B).
	lowerB bool
}

// gemmSmall is the flop count below which gonum's Dgemm is used: packing
// and goroutines do not pay off for small products.
const gemmSmall = 1 << 21

// gonumSerial reports whether gonum's Dgemm keeps an m×n product on the
// calling goroutine: it splits C into 64×64 blocks and fans out to
// GOMAXPROCS goroutines from 4 blocks on, which a smaller thread budget
// must not do. Choosing by shape only (not by budget) keeps the rounding,
// and so the output, independent of the budget.
func gonumSerial(m, n int) bool { return ((m+63)/64)*((n+63)/64) < 4 }

// gemm computes c = alpha·op(a)·op(b) + beta·c for row-major float64
// matrices, op(a) m×k and op(b) k×n.
func gemm(th int, tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gemmEx(th, gemmOpts{}, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemmEx(th int, o gemmOpts, tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	if m*n*k < gemmSmall && !o.lowerB && !o.upperC && gonumSerial(m, n) {
		ta, tb := blas.NoTrans, blas.NoTrans
		if tA {
			ta = blas.Trans
		}
		if tB {
			tb = blas.Trans
		}
		blas64.Implementation().Dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// With beta = 0 the first k-block of each tile overwrites C, which
	// spares a pass clearing it; tiles skipped by lowerC are cleared here.
	overwrite := beta == 0
	if !overwrite {
		scaleC(m, n, beta, c, ldc)
	}
	tm, tn := (m+tileM-1)/tileM, (n+tileN-1)/tileN
	type tile struct{ i0, j0 int }
	tiles := make([]tile, 0, tm*tn)
	for ti := 0; ti < tm; ti++ {
		for tj := 0; tj < tn; tj++ {
			i0, j0 := ti*tileM, tj*tileN
			if (o.lowerC && j0 >= min(i0+tileM, m)) || (o.upperC && i0 >= min(j0+tileN, n)) {
				if overwrite {
					i1, j1 := min(i0+tileM, m), min(j0+tileN, n)
					for i := i0; i < i1; i++ {
						clear(c[i*ldc+j0 : i*ldc+j1])
					}
				}
				continue
			}
			tiles = append(tiles, tile{i0, j0})
		}
	}
	workers := max(1, min(th, len(tiles)))
	var next atomic.Int64
	parallel(workers, workers, func(int) {
		pb := packPool.Get().(*packBufs)
		defer packPool.Put(pb)
		ap, bp := pb.ap, pb.bp
		var edge [mr * nrMax]float64
		for {
			t := int(next.Add(1)) - 1
			if t >= len(tiles) {
				return
			}
			i0, j0 := tiles[t].i0, tiles[t].j0
			i1, j1 := min(i0+tileM, m), min(j0+tileN, n)
			p0 := 0
			if o.lowerB {
				p0 = j0
			}
			for ps := p0; ps < k; ps += kc {
				pe := min(ps+kc, k)
				packA(tA, a, lda, alpha, i0, i1, ps, pe, ap)
				packB(tB, b, ldb, j0, j1, ps, pe, bp)
				macroKernel(pe-ps, ap, bp, i0, i1, j0, j1, c, ldc, &edge, !overwrite || ps > p0)
			}
		}
	})
}

// packBufs are one worker's packed panels. They are pooled: a caller that
// runs many small products (GPTQ's lazy updates, one per block of columns
// and worker) would otherwise allocate and clear 1.75 MiB for each, which
// costs as much as the product. packA and packB write every element the
// kernels read (partial panels are cleared), so reuse needs no clearing.
type packBufs struct{ ap, bp []float64 }

var packPool = sync.Pool{New: func() any {
	return &packBufs{ap: make([]float64, tileM*kc), bp: make([]float64, tileN*kc)}
}}

func scaleC(m, n int, beta float64, c []float64, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// packA writes alpha·op(A)[i0:i1, p0:p1] as micro-panels of mr rows: panel
// r holds, for each p, the mr values of rows i0+r·mr…, zero-padded.
func packA(tA bool, a []float64, lda int, alpha float64, i0, i1, p0, p1 int, ap []float64) {
	kk := p1 - p0
	for r0 := i0; r0 < i1; r0 += mr {
		panel := ap[(r0-i0)*kk : (r0-i0+mr)*kk]
		rows := min(mr, i1-r0)
		if rows < mr {
			clear(panel)
		}
		for ii := 0; ii < rows; ii++ {
			i := r0 + ii
			if tA {
				for p := p0; p < p1; p++ {
					panel[(p-p0)*mr+ii] = alpha * a[p*lda+i]
				}
			} else {
				row := a[i*lda+p0 : i*lda+p1]
				for p, v := range row {
					panel[p*mr+ii] = alpha * v
				}
			}
		}
	}
}

// packB writes op(B)[p0:p1, j0:j1] as micro-panels of nr columns.
func packB(tB bool, b []float64, ldb int, j0, j1, p0, p1 int, bp []float64) {
	kk := p1 - p0
	for c0 := j0; c0 < j1; c0 += nr {
		panel := bp[(c0-j0)*kk : (c0-j0+nr)*kk]
		cols := min(nr, j1-c0)
		if cols < nr {
			clear(panel)
		}
		if tB {
			for jj := 0; jj < cols; jj++ {
				row := b[(c0+jj)*ldb+p0 : (c0+jj)*ldb+p1]
				for p, v := range row {
					panel[p*nr+jj] = v
				}
			}
			continue
		}
		if cols < nr {
			for p := p0; p < p1; p++ {
				copy(panel[(p-p0)*nr:(p-p0)*nr+cols], b[p*ldb+c0:p*ldb+c0+cols])
			}
			continue
		}
		// Explicit moves of eight: copy's call overhead dominates at 64
		// bytes.
		for p := p0; p < p1; p++ {
			for h := 0; h < nr; h += 8 {
				dst := panel[(p-p0)*nr+h : (p-p0)*nr+h+8]
				src := b[p*ldb+c0+h : p*ldb+c0+h+8]
				dst[0], dst[1], dst[2], dst[3] = src[0], src[1], src[2], src[3]
				dst[4], dst[5], dst[6], dst[7] = src[4], src[5], src[6], src[7]
			}
		}
	}
}

// macroKernel adds the packed product into C[i0:i1, j0:j1]. The B
// micro-panel (kk×nr, ≤16 KiB) stays in L1 while the A panels stream from
// L2.
func macroKernel(kk int, ap, bp []float64, i0, i1, j0, j1 int, c []float64, ldc int, edge *[mr * nrMax]float64, acc bool) {
	for c0 := j0; c0 < j1; c0 += nr {
		bpan := bp[(c0-j0)*kk : (c0-j0+nr)*kk]
		cols := min(nr, j1-c0)
		for r0 := i0; r0 < i1; r0 += mr {
			apan := ap[(r0-i0)*kk : (r0-i0+mr)*kk]
			rows := min(mr, i1-r0)
			if rows == mr && cols == nr {
				microKernel(kk, apan, bpan, c[r0*ldc+c0:], ldc, acc)
				continue
			}
			microKernel(kk, apan, bpan, edge[:], nr, false)
			for ii := 0; ii < rows; ii++ {
				row := c[(r0+ii)*ldc+c0 : (r0+ii)*ldc+c0+cols]
				for jj := range row {
					if acc {
						row[jj] += edge[ii*nr+jj]
					} else {
						row[jj] = edge[ii*nr+jj]
					}
				}
			}
		}
	}
}

// microKernelGo is the portable micro-kernel (and the reference for the
// assembly one): c[0:mr, 0:nr] (+)= Σ_p a[p·mr+i]·b[p·nr+j].
func microKernelGo(k int, a, b, c []float64, ldc int, acc bool) {
	var sum [mr][nrMax]float64
	for p := 0; p < k; p++ {
		ar := a[p*mr : p*mr+mr]
		br := b[p*nr : p*nr+nr]
		for i := 0; i < mr; i++ {
			ai := ar[i]
			for j := 0; j < nr; j++ {
				sum[i][j] += ai * br[j]
			}
		}
	}
	for i := 0; i < mr; i++ {
		row := c[i*ldc : i*ldc+nr]
		for j := range row {
			if acc {
				row[j] += sum[i][j]
			} else {
				row[j] = sum[i][j]
			}
		}
	}
}
