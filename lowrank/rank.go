package lowrank

import (
	"container/heap"
	"fmt"
	"math"

	"github.com/shrink-llm/shrink/quant"
)

// RankSpec chooses the rank k of one factorisation. The first non-zero field
// wins, in the order Rank, Ratio, Energy.
type RankSpec struct {
	// Rank is k itself.
	Rank int
	// Ratio is the fraction of the m·n parameters kept:
	// k = floor(Ratio·m·n/(m+n)).
	Ratio float64
	// Energy is the smallest k with Σ_{i≤k} σ_i² ≥ Energy·Σ σ_i² (0 < e ≤ 1).
	Energy float64
}

func (r RankSpec) validate() error {
	switch {
	case r.Rank < 0:
		return fmt.Errorf("negative rank %d", r.Rank)
	case r.Rank > 0:
		return nil
	case r.Ratio < 0 || math.IsNaN(r.Ratio):
		return fmt.Errorf("rank ratio %v out of range", r.Ratio)
	case r.Ratio > 0:
		return nil
	case !(r.Energy > 0 && r.Energy <= 1):
		if r.Energy == 0 {
			return fmt.Errorf("empty rank spec: set Rank, Ratio or Energy")
		}
		return fmt.Errorf("energy fraction %v out of (0, 1]", r.Energy)
	}
	return nil
}

// fixed reports k when it does not depend on the spectrum.
func (r RankSpec) fixed(m, n int) (int, bool) {
	switch {
	case r.Rank > 0:
		return clampRank(r.Rank, m, n), true
	case r.Ratio > 0:
		return RatioRank(m, n, r.Ratio), true
	}
	return 0, false
}

// resolve returns k for the given spectrum (descending singular values).
func (r RankSpec) resolve(m, n int, sigma []float64) int {
	if k, ok := r.fixed(m, n); ok {
		return k
	}
	return clampRank(EnergyRank(sigma, r.Energy), m, n)
}

func clampRank(k, m, n int) int {
	return max(1, min(k, m, n))
}

// RatioRank is floor(ratio·m·n/(m+n)) clamped to [1, min(m, n)].
func RatioRank(m, n int, ratio float64) int {
	return clampRank(int(math.Floor(ratio*float64(m)*float64(n)/float64(m+n))), m, n)
}

// EnergyRank is the smallest k whose leading singular values keep the
// fraction e of Σ σ²; 0 for an all-zero spectrum.
func EnergyRank(sigma []float64, e float64) int {
	total := 0.0
	for _, s := range sigma {
		total += s * s
	}
	if total == 0 {
		return 0
	}
	acc := 0.0
	for i, s := range sigma {
		acc += s * s
		// A hair of slack so e = 1 is reached despite rounding in the sum.
		if acc >= e*total*(1-1e-12) {
			return i + 1
		}
	}
	return len(sigma)
}

// BreakEvenRank is the largest k with k·(m+n) < m·n, the largest rank at
// which the factors hold fewer parameters than the dense matrix (0 if none).
func BreakEvenRank(m, n int) int {
	mn := int64(m) * int64(n)
	return int((mn - 1) / int64(m+n))
}

// WorthFactoring reports whether A (m×k) and B (k×n) in encoding factors
// take fewer bytes than W (m×n) in encoding dense. With equal encodings that
// is k·(m+n) < m·n up to q8 padding; invalid encodings report false.
func WorthFactoring(m, n, k int, dense, factors quant.Encoding) bool {
	if m <= 0 || n <= 0 || k <= 0 {
		return false
	}
	w, err := dense.Size(m, n)
	if err != nil {
		return false
	}
	a, err := factors.Size(m, k)
	if err != nil {
		return false
	}
	b, err := factors.Size(k, n)
	if err != nil {
		return false
	}
	return a+b < w
}

// Spectrum is one matrix's shape and the singular values (descending) of
// the matrix its factorisation truncates, as ComputeSpectrum or
// Factors.Sigma give them. Missing trailing values count as zero.
type Spectrum struct {
	M, N  int
	Sigma []float64
}

// AllocateRanks distributes a parameter budget of targetParamRatio·Σ m·n
// over the matrices so as to minimise the total truncation loss
// Σ_matrices Σ_{i>k} σ_i². Each matrix ends either factored at rank
// k ≤ BreakEvenRank(m, n) (k·(m+n) parameters) or dense, reported as
// k = min(m, n) (m·n parameters, zero loss).
//
// It is greedy by loss removed per parameter, taking each matrix's terms in
// order; the last step of a matrix is the jump from its break-even rank to
// dense. Because σ_i² is non-increasing the per-term rates are too, so the
// greedy is optimal except for the final, partly fitting step (as in a
// fractional knapsack); terms that do not fit are skipped and smaller ones
// still tried. Every matrix starts at rank 1 when the budget covers that
// (a projection dropped entirely is rarely what anyone wants).
func AllocateRanks(items []Spectrum, targetParamRatio float64) []int {
	ranks := make([]int, len(items))
	var total int64
	for _, it := range items {
		total += int64(it.M) * int64(it.N)
	}
	budget := int64(math.Floor(targetParamRatio * float64(total)))
	used := int64(0)
	h := &stepHeap{}
	next := func(i int) (step, bool) {
		it := items[i]
		k, be := ranks[i], BreakEvenRank(it.M, it.N)
		per := int64(it.M + it.N)
		if k < be {
			s := 0.0
			if k < len(it.Sigma) {
				s = it.Sigma[k]
			}
			return step{item: i, gain: s * s, cost: per}, true
		}
		if k == be {
			tail := 0.0
			for j := k; j < len(it.Sigma); j++ {
				tail += it.Sigma[j] * it.Sigma[j]
			}
			return step{item: i, gain: tail, cost: int64(it.M)*int64(it.N) - int64(k)*per, dense: true}, true
		}
		return step{}, false
	}
	var floor int64
	for _, it := range items {
		if it.M > 0 && it.N > 0 && BreakEvenRank(it.M, it.N) >= 1 {
			floor += int64(it.M + it.N)
		}
	}
	if floor <= budget {
		for i, it := range items {
			if it.M > 0 && it.N > 0 && BreakEvenRank(it.M, it.N) >= 1 {
				ranks[i] = 1
			}
		}
		used = floor
	}
	for i, it := range items {
		if it.M <= 0 || it.N <= 0 {
			continue
		}
		if s, ok := next(i); ok {
			heap.Push(h, s)
		}
	}
	for h.Len() > 0 {
		s := heap.Pop(h).(step)
		if used+s.cost > budget {
			continue
		}
		used += s.cost
		if s.dense {
			ranks[s.item] = min(items[s.item].M, items[s.item].N)
			continue
		}
		ranks[s.item]++
		if ns, ok := next(s.item); ok {
			heap.Push(h, ns)
		}
	}
	return ranks
}

type step struct {
	item  int
	gain  float64
	cost  int64
	dense bool
}

type stepHeap []step

func (h stepHeap) Len() int { return len(h) }
func (h stepHeap) Less(i, j int) bool {
	// Compare gain/cost without dividing; ties go to the earlier matrix so
	// the result is deterministic.
	a, b := h[i].gain*float64(h[j].cost), h[j].gain*float64(h[i].cost)
	if a != b {
		return a > b
	}
	return h[i].item < h[j].item
}
func (h stepHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *stepHeap) Push(x any)   { *h = append(*h, x.(step)) }
func (h *stepHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
