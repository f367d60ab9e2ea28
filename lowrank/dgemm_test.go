package lowrank

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refGemm is the plain triple loop: c = alpha·op(a)·op(b) + beta·c.
func refGemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				av, bv := a[i*lda+p], b[p*ldb+j]
				if tA {
					av = a[p*lda+i]
				}
				if tB {
					bv = b[j*ldb+p]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

func randF64(seed uint64, n int) []float64 {
	r := newRand(seed)
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	return x
}

func TestGemmMatchesReference(t *testing.T) {
	cases := []struct {
		m, n, k int
		o       gemmOpts
	}{
		{1, 1, 1, gemmOpts{}},
		{7, 9, 5, gemmOpts{}},
		{130, 131, 129, gemmOpts{}},             // fast path, odd edges
		{197, 515, 261, gemmOpts{}},             // crosses every block size
		{383, 17, 300, gemmOpts{}},              // thin C
		{6, 1030, 700, gemmOpts{}},              // one row panel
		{301, 301, 140, gemmOpts{lowerC: true}}, // symmetric product
		{211, 333, 333, gemmOpts{lowerB: true}}, // triangular right factor
		{700, 530, 530, gemmOpts{lowerB: true}}, // tiles beyond p0
		{530, 530, 90, gemmOpts{lowerC: true}},  // several diagonal tiles
		{129, 129, 129, gemmOpts{lowerC: true, lowerB: true}},
	}
	for ci, tc := range cases {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, beta := range []float64{0, 1, -0.5} {
				tA, tB := tr[0], tr[1]
				name := fmt.Sprintf("%dx%dx%d/%v/tA=%v/tB=%v/beta=%v", tc.m, tc.n, tc.k, tc.o, tA, tB, beta)
				if testing.Short() && tc.m*tc.n*tc.k > 1<<23 && beta != 1 {
					continue
				}
				m, n, k := tc.m, tc.n, tc.k
				lda, ldb, ldc := k+3, n+1, n+2
				if tA {
					lda = m + 3
				}
				if tB {
					ldb = k + 1
				}
				a := randF64(uint64(ci*10+1), max(m, k)*lda)
				b := randF64(uint64(ci*10+2), max(n, k)*ldb)
				if tc.o.lowerB {
					// zero op(B) above its diagonal
					for p := 0; p < k; p++ {
						for j := p + 1; j < n; j++ {
							if tB {
								b[j*ldb+p] = 0
							} else {
								b[p*ldb+j] = 0
							}
						}
					}
				}
				c0 := randF64(uint64(ci*10+3), m*ldc)
				want := append([]float64(nil), c0...)
				got := append([]float64(nil), c0...)
				refGemm(tA, tB, m, n, k, 1.5, a, lda, b, ldb, beta, want, ldc)
				gemmEx(1+ci%3, tc.o, tA, tB, m, n, k, 1.5, a, lda, b, ldb, beta, got, ldc)
				for i := 0; i < m; i++ {
					for j := 0; j < ldc; j++ {
						w, g := want[i*ldc+j], got[i*ldc+j]
						if j >= n {
							w = c0[i*ldc+j] // padding untouched
						} else if tc.o.lowerC && j > i {
							continue // unspecified above the diagonal
						}
						if math.Abs(w-g) > 1e-12*float64(k+1)*(1+math.Abs(w)) || math.IsNaN(g) {
							t.Fatalf("%s: c[%d,%d] = %v, want %v", name, i, j, g, w)
						}
					}
				}
			}
		}
	}
}

func TestMicroKernelMatchesGo(t *testing.T) {
	for _, k := range []int{0, 1, 3, 256} {
		for _, acc := range []bool{true, false} {
			a := randF64(1, k*mr+1)
			b := randF64(2, k*nr+1)
			ldc := nr + 3
			c := randF64(3, mr*ldc)
			want := append([]float64(nil), c...)
			microKernelGo(k, a, b, want, ldc, acc)
			microKernel(k, a, b, c, ldc, acc)
			for i := range c {
				if math.Abs(c[i]-want[i]) > 1e-12*float64(k+1) {
					t.Fatalf("k=%d acc=%v nr=%d: c[%d] = %v, want %v (fma=%v)", k, acc, nr, i, c[i], want[i], kernelFMA)
				}
			}
		}
	}
}

func TestDotAxpyMatchesGo(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 63, 1000} {
		row, x := randF64(4, n), randF64(5, n)
		y := randF64(6, n)
		yw := append([]float64(nil), y...)
		want := dotAxpyGo(row, x, yw, -0.75)
		got := dotAxpy(row, x, y, -0.75)
		if math.Abs(got-want) > 1e-12*float64(n+1) {
			t.Fatalf("n=%d: dot %v, want %v", n, got, want)
		}
		for i := range y {
			if math.Abs(y[i]-yw[i]) > 1e-14 {
				t.Fatalf("n=%d: y[%d] = %v, want %v", n, i, y[i], yw[i])
			}
		}
	}
}

func BenchmarkGemm2048(b *testing.B) {
	n := 2048
	x, y := randF64(1, n*n), randF64(2, n*n)
	c := make([]float64, n*n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		gemm(th, false, true, n, n, n, 1, x, n, y, n, 0, c, n)
	}
	b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// TestStatsAddBatchTiled checks the tiled rank-r update of AddBatch against
// a plain float64 sum of outer products on odd sizes (several chunks, tiles
// straddling the diagonal), and that the thread budget does not change a
// bit of it.
func TestStatsAddBatchTiled(t *testing.T) {
	for _, c := range []struct{ n, rows int }{{1, 3}, {7, 1100}, {97, 600}, {515, 531}, {600, 70}} {
		rng := rand.New(rand.NewPCG(uint64(c.n), uint64(c.rows)))
		x := make([]float32, c.n*c.rows)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		want := make([]float64, c.n*c.n)
		for r := 0; r < c.rows; r++ {
			v := x[r*c.n : (r+1)*c.n]
			for i := range v {
				for j := i; j < c.n; j++ {
					want[i*c.n+j] += float64(v[i]) * float64(v[j])
				}
			}
		}
		var first []float64
		for _, th := range []int{1, 3} {
			s := NewStats(c.n)
			s.Threads = th
			s.AddBatch(x, c.rows)
			if s.Count != int64(c.rows) {
				t.Fatalf("n=%d rows=%d: count %d", c.n, c.rows, s.Count)
			}
			for i := 0; i < c.n; i++ {
				for j := i; j < c.n; j++ {
					g, w := s.XXt[i*c.n+j], want[i*c.n+j]
					if math.Abs(g-w) > 1e-9*(1+math.Abs(w)) {
						t.Fatalf("n=%d rows=%d threads=%d: XXt[%d,%d] = %v, want %v", c.n, c.rows, th, i, j, g, w)
					}
				}
			}
			if first == nil {
				first = s.XXt
			} else {
				for i := range first {
					if math.Float64bits(first[i]) != math.Float64bits(s.XXt[i]) {
						t.Fatalf("n=%d rows=%d: XXt[%d] differs between 1 and %d threads", c.n, c.rows, i, th)
					}
				}
			}
		}
	}
}
