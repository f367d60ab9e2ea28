package lowrank

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Stats accumulates calibration statistics of the input of one linear layer
// (n features): the second-moment matrix Σ x xᵀ, the absolute sums Σ |x_j|
// and the number of vectors. Vectors containing NaN or ±Inf are skipped and
// counted in Skipped, so a single bad activation cannot poison a layer.
//
// Add, AddBatch and Merge must not run concurrently with each other or with
// Factorize on the same Stats; concurrent Factorize calls sharing one Stats
// (q, k and v share their input) are safe and share the cached
// decomposition.
type Stats struct {
	N int
	// XXt is n×n row-major; only the upper triangle (column ≥ row) is
	// maintained. Use Covariance for the full symmetric matrix.
	XXt     []float64
	AbsSum  []float64
	Count   int64
	Skipped int64
	// Threads bounds the goroutines AddBatch keeps busy (its own
	// included); 0 means GOMAXPROCS. The sums do not depend on it.
	Threads int

	mu    sync.Mutex
	cache *whitening // derived from the fields above; dropped on change
}

// NewStats returns empty statistics for inputs of n features.
func NewStats(n int) *Stats {
	return &Stats{N: n, XXt: make([]float64, n*n), AbsSum: make([]float64, n)}
}

func (s *Stats) invalidate() {
	s.mu.Lock()
	s.cache = nil
	s.mu.Unlock()
}

// Add accumulates one activation vector of length N.
func (s *Stats) Add(x []float32) {
	if len(x) != s.N {
		panic(fmt.Sprintf("lowrank: Stats.Add: vector of length %d, stats have %d features", len(x), s.N))
	}
	if _, ok := allFinite32(x); !ok {
		s.Skipped++
		return
	}
	s.invalidate()
	v := widen(x)
	for j, f := range v {
		s.AbsSum[j] += math.Abs(f)
	}
	blas64.Syr(1, blas64.Vector{N: s.N, Inc: 1, Data: v},
		blas64.Symmetric{N: s.N, Stride: s.N, Uplo: blas.Upper, Data: s.XXt})
	s.Count++
}

// AddBatch accumulates rows activation vectors stored row-major in X
// (rows×N, one vector per row, as a [tokens, features] activation tensor).
func (s *Stats) AddBatch(X []float32, rows int) {
	n := s.N
	if rows < 0 || len(X) != rows*n {
		panic(fmt.Sprintf("lowrank: Stats.AddBatch: %d values for %d rows of %d features", len(X), rows, n))
	}
	if rows == 0 {
		return
	}
	s.invalidate()
	// Chunks bound the float64 copy; each chunk is one rank-r update
	// XXt += bufᵀ·buf with the packed, register-blocked gemm (upper
	// triangle's tiles only), far faster than r rank-1 updates or gonum's
	// single-threaded Dsyrk. Every element of XXt is summed over the chunk
	// in one fixed order by one goroutine, so the result does not depend
	// on Threads.
	const chunk = 512
	th := s.Threads
	if th <= 0 {
		th = runtime.GOMAXPROCS(0)
	}
	buf := make([]float64, 0, min(rows, chunk)*n)
	flush := func() {
		r := len(buf) / n
		if r == 0 {
			return
		}
		gemmEx(th, gemmOpts{upperC: true}, true, false, n, n, r, 1, buf, n, buf, n, 1, s.XXt, n)
		s.Count += int64(r)
		buf = buf[:0]
	}
	for r := 0; r < rows; r++ {
		x := X[r*n : (r+1)*n]
		if _, ok := allFinite32(x); !ok {
			s.Skipped++
			continue
		}
		for j, v := range x {
			f := float64(v)
			buf = append(buf, f)
			s.AbsSum[j] += math.Abs(f)
		}
		if len(buf) == cap(buf) {
			flush()
		}
	}
	flush()
}

// Merge adds o's statistics into s (for example from parallel calibration
// workers).
func (s *Stats) Merge(o *Stats) error {
	if o.N != s.N {
		return fmt.Errorf("lowrank: merging stats of %d features into stats of %d", o.N, s.N)
	}
	s.invalidate()
	for i := 0; i < s.N; i++ {
		for j := i; j < s.N; j++ {
			s.XXt[i*s.N+j] += o.XXt[i*s.N+j]
		}
	}
	for j := range s.AbsSum {
		s.AbsSum[j] += o.AbsSum[j]
	}
	s.Count += o.Count
	s.Skipped += o.Skipped
	return nil
}

// Covariance returns the full symmetric n×n matrix X Xᵀ / Count (a new
// slice).
func (s *Stats) Covariance() []float64 {
	n := s.N
	c := make([]float64, n*n)
	inv := 1.0
	if s.Count > 0 {
		inv = 1 / float64(s.Count)
	}
	// Tiles keep the transposed writes within cache (n reaches 5632).
	const bt = 64
	for i0 := 0; i0 < n; i0 += bt {
		for j0 := i0; j0 < n; j0 += bt {
			for i := i0; i < min(i0+bt, n); i++ {
				for j := max(i, j0); j < min(j0+bt, n); j++ {
					v := s.XXt[i*n+j] * inv
					c[i*n+j], c[j*n+i] = v, v
				}
			}
		}
	}
	return c
}

// MeanAbs returns mean |x_j| per feature (a new slice).
func (s *Stats) MeanAbs() []float64 {
	out := make([]float64, s.N)
	if s.Count == 0 {
		return out
	}
	for j, v := range s.AbsSum {
		out[j] = v / float64(s.Count)
	}
	return out
}

func (s *Stats) check(n int) error {
	if s == nil {
		return fmt.Errorf("calibration statistics required")
	}
	if s.N != n {
		return fmt.Errorf("statistics have %d features but the matrix has %d input columns", s.N, n)
	}
	if len(s.XXt) != n*n || len(s.AbsSum) != n {
		return fmt.Errorf("statistics for %d features are malformed (%d, %d values)", n, len(s.XXt), len(s.AbsSum))
	}
	if s.Count == 0 {
		return fmt.Errorf("statistics hold no activations")
	}
	if !allFinite64(s.XXt) || !allFinite64(s.AbsSum) {
		return fmt.Errorf("statistics contain non-finite values")
	}
	return nil
}

// whitening returns (building on first use) the cached decomposition.
func (s *Stats) whitening() *whitening {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = &whitening{stats: s}
	}
	return s.cache
}
