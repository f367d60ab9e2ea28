package lowrank

import (
	"math"
	"testing"

	"github.com/shrink-llm/shrink/quant"
)

func TestRankSpecResolve(t *testing.T) {
	sigma := []float64{4, 3, 2, 1} // energies 16, 9, 4, 1 of 30
	cases := []struct {
		name string
		spec RankSpec
		m, n int
		want int
	}{
		{"rank", RankSpec{Rank: 3}, 4, 4, 3},
		{"rank-clamped", RankSpec{Rank: 9}, 4, 6, 4},
		{"rank-wins", RankSpec{Rank: 2, Ratio: 0.9, Energy: 1}, 4, 4, 2},
		{"ratio-2048", RankSpec{Ratio: 0.8}, 2048, 2048, 819},
		{"ratio-kv", RankSpec{Ratio: 0.8}, 256, 2048, 182},
		{"ratio-ffn", RankSpec{Ratio: 0.8}, 5632, 2048, 1201},
		{"ratio-min1", RankSpec{Ratio: 1e-9}, 4, 4, 1},
		{"energy-half", RankSpec{Energy: 0.5}, 4, 4, 1},
		{"energy-0.8", RankSpec{Energy: 0.8}, 4, 4, 2},
		{"energy-0.9", RankSpec{Energy: 0.9}, 4, 4, 3},
		{"energy-all", RankSpec{Energy: 1}, 4, 4, 4},
	}
	for _, c := range cases {
		if err := c.spec.validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := c.spec.resolve(c.m, c.n, sigma); got != c.want {
			t.Errorf("%s: k = %d, want %d", c.name, got, c.want)
		}
	}
	for _, bad := range []RankSpec{{}, {Rank: -1}, {Ratio: -0.1}, {Energy: 1.2}, {Energy: -1}, {Ratio: math.NaN()}} {
		if bad.validate() == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if EnergyRank([]float64{0, 0}, 0.9) != 0 {
		t.Error("zero spectrum should need rank 0")
	}
}

func TestBreakEvenAndWorth(t *testing.T) {
	for _, c := range []struct{ m, n, want int }{{2048, 2048, 1023}, {256, 2048, 227}, {5632, 2048, 1501}, {1, 1, 0}, {3, 5, 1}} {
		k := BreakEvenRank(c.m, c.n)
		if k != c.want {
			t.Errorf("BreakEvenRank(%d,%d) = %d, want %d", c.m, c.n, k, c.want)
		}
		if k > 0 && k*(c.m+c.n) >= c.m*c.n || (k+1)*(c.m+c.n) < c.m*c.n {
			t.Errorf("BreakEvenRank(%d,%d) = %d is not the largest saving rank", c.m, c.n, k)
		}
	}
	cases := []struct {
		m, n, k     int
		dense, fact quant.Encoding
		want        bool
	}{
		{2048, 2048, 819, quant.F32, quant.F32, true},
		{2048, 2048, 1023, quant.F16, quant.F16, true},
		{2048, 2048, 1024, quant.F16, quant.F16, false},
		{2048, 2048, 819, quant.Q8, quant.F32, false},
		{2048, 2048, 400, quant.Q8, quant.F16, true},
		{64, 64, 0, quant.F32, quant.F32, false},
		{64, 64, 8, quant.Encoding{}, quant.F32, false},
	}
	for _, c := range cases {
		if got := WorthFactoring(c.m, c.n, c.k, c.dense, c.fact); got != c.want {
			t.Errorf("WorthFactoring(%d,%d,%d,%v,%v) = %v", c.m, c.n, c.k, c.dense, c.fact, got)
		}
	}
}

func allocLoss(items []Spectrum, ranks []int) (loss float64, params int64) {
	for i, it := range items {
		k := ranks[i]
		if k >= min(it.M, it.N) {
			params += int64(it.M * it.N)
			continue
		}
		params += int64(k * (it.M + it.N))
		loss += tail2(it.Sigma, k)
	}
	return
}

func TestAllocateRanks(t *testing.T) {
	geo := func(n int, q float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = math.Pow(q, float64(i))
		}
		return s
	}
	flat := func(n int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = 1 - 0.001*float64(i)
		}
		return s
	}
	items := []Spectrum{
		{M: 64, N: 64, Sigma: geo(64, 0.5)}, // fast decay: cheap to truncate
		{M: 64, N: 64, Sigma: flat(64)},
		{M: 32, N: 96, Sigma: geo(32, 0.9)},
		{M: 96, N: 32, Sigma: flat(32)},
	}
	var total int64
	for _, it := range items {
		total += int64(it.M * it.N)
	}
	for _, ratio := range []float64{0.05, 0.2, 0.4, 0.6, 1} {
		ranks := AllocateRanks(items, ratio)
		loss, params := allocLoss(items, ranks)
		if float64(params) > ratio*float64(total) {
			t.Fatalf("ratio %v: %d params over budget %v", ratio, params, ratio*float64(total))
		}
		// Uniform allocation at the same ratio as a baseline.
		uni := make([]int, len(items))
		for i, it := range items {
			uni[i] = RatioRank(it.M, it.N, ratio)
			if ratio >= 1 {
				uni[i] = min(it.M, it.N)
			}
		}
		uloss, uparams := allocLoss(items, uni)
		if uparams <= int64(ratio*float64(total)) && loss > uloss*(1+1e-12) {
			t.Errorf("ratio %v: loss %v worse than uniform %v (ranks %v vs %v)", ratio, loss, uloss, ranks, uni)
		}
		if ranks[0] >= ranks[1] && ranks[1] < 64 {
			t.Errorf("ratio %v: fast-decaying matrix got rank %d ≥ flat matrix's %d", ratio, ranks[0], ranks[1])
		}
	}
	if r := AllocateRanks(items, 1); r[1] != 64 || r[3] != 32 {
		t.Errorf("full budget should keep flat matrices dense, got %v", r)
	}
	if r := AllocateRanks(nil, 0.5); len(r) != 0 {
		t.Error("empty input")
	}
}

// TestAllocateRanksOptimalSmall compares the greedy with brute force on tiny
// instances.
func TestAllocateRanksOptimalSmall(t *testing.T) {
	r := newRand(13)
	for trial := 0; trial < 30; trial++ {
		items := make([]Spectrum, 3)
		for i := range items {
			m, n := 4+r.IntN(6), 4+r.IntN(6)
			s := make([]float64, min(m, n))
			v := 1 + r.Float64()
			q := 0.3 + 0.7*r.Float64()
			for j := range s {
				s[j] = v
				v *= q
			}
			items[i] = Spectrum{M: m, N: n, Sigma: s}
		}
		ratio := 0.2 + 0.6*r.Float64()
		ranks := AllocateRanks(items, ratio)
		loss, params := allocLoss(items, ranks)
		var total int64
		for _, it := range items {
			total += int64(it.M * it.N)
		}
		budget := int64(math.Floor(ratio * float64(total)))
		if params > budget {
			t.Fatalf("over budget")
		}
		best := math.Inf(1)
		var rec func(i int, cur []int)
		rec = func(i int, cur []int) {
			if i == len(items) {
				l, p := allocLoss(items, cur)
				if p <= budget && l < best {
					best = l
				}
				return
			}
			it := items[i]
			for k := 0; k <= BreakEvenRank(it.M, it.N); k++ {
				rec(i+1, append(cur, k))
			}
			rec(i+1, append(cur, min(it.M, it.N)))
		}
		rec(0, nil)
		// Greedy is optimal up to the one partly fitting step per matrix.
		var slack float64
		for _, it := range items {
			slack += it.Sigma[0] * it.Sigma[0]
		}
		if loss > best+slack {
			t.Fatalf("trial %d: greedy loss %v, optimum %v", trial, loss, best)
		}
	}
}

func TestStats(t *testing.T) {
	r := newRand(14)
	n, rows := 13, 1100 // more than one AddBatch chunk
	x := randMat(r, rows, n)
	x[5*n+2] = float32(math.NaN())
	x[7*n] = float32(math.Inf(1))
	a := NewStats(n)
	for t := 0; t < rows; t++ {
		a.Add(x[t*n : (t+1)*n])
	}
	b := NewStats(n)
	b.AddBatch(x, rows)
	c1, c2 := NewStats(n), NewStats(n)
	c1.AddBatch(x[:400*n], 400)
	c2.AddBatch(x[400*n:], rows-400)
	if err := c1.Merge(c2); err != nil {
		t.Fatal(err)
	}
	if a.Count != int64(rows-2) || a.Skipped != 2 || b.Count != a.Count || c1.Count != a.Count || b.Skipped != 2 || c1.Skipped != 2 {
		t.Fatalf("counts %d/%d %d/%d %d/%d", a.Count, a.Skipped, b.Count, b.Skipped, c1.Count, c1.Skipped)
	}
	// Reference: plain loops over the finite rows.
	ref := make([]float64, n*n)
	abs := make([]float64, n)
	for t := 0; t < rows; t++ {
		v := x[t*n : (t+1)*n]
		if _, ok := allFinite32(v); !ok {
			continue
		}
		for i := 0; i < n; i++ {
			abs[i] += math.Abs(float64(v[i]))
			for j := 0; j < n; j++ {
				ref[i*n+j] += float64(v[i]) * float64(v[j])
			}
		}
	}
	for _, s := range []*Stats{a, b, c1} {
		cov := s.Covariance()
		for i := range ref {
			if math.Abs(cov[i]-ref[i]/float64(s.Count)) > 1e-9 {
				t.Fatalf("covariance[%d] = %v, want %v", i, cov[i], ref[i]/float64(s.Count))
			}
		}
		ma := s.MeanAbs()
		for i := range abs {
			if math.Abs(ma[i]-abs[i]/float64(s.Count)) > 1e-9 {
				t.Fatalf("mean abs[%d]", i)
			}
		}
	}
	if err := a.Merge(NewStats(n + 1)); err == nil {
		t.Error("merge of mismatched stats: no error")
	}
	// Adding after a factorisation must invalidate the cached whitening.
	w := randMat(r, 5, n)
	f1, err := Factorize(ctx, w, 5, n, MethodWhiten, b, RankSpec{Rank: 2}, Options{Route: RouteExact})
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, n)
	y[0] = 1000
	b.Add(y)
	f2, err := Factorize(ctx, w, 5, n, MethodWhiten, b, RankSpec{Rank: 2}, Options{Route: RouteExact})
	if err != nil {
		t.Fatal(err)
	}
	if f1.Sigma[0] == f2.Sigma[0] {
		t.Error("stale whitening after Add")
	}
}
