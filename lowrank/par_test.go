package lowrank

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// peakGoroutines runs f with parallelHook counting the goroutines that
// parallel has running at once and returns the largest count (0 when f ran
// everything on the calling goroutine).
func peakGoroutines(f func()) int {
	var mu sync.Mutex
	cur, peak := 0, 0
	parallelHook = func(d int) {
		mu.Lock()
		cur += d
		peak = max(peak, cur)
		mu.Unlock()
	}
	defer func() { parallelHook = nil }()
	f()
	return peak
}

// TestThreadsBudget factors matrices on every route with Threads 1, 2 and
// 3 and checks that no more goroutines than the budget ever run at once
// (with 1, none are started: the caller's goroutine does the work), and
// that the results are identical across budgets.
func TestThreadsBudget(t *testing.T) {
	r := newRand(5)
	_, st := activations(r, 300, 900, func(j int) float64 { return 1 + float64(j%7) })
	cases := []struct {
		name   string
		m, n   int
		method Method
		route  Route
		rank   int
	}{
		{"gram-left", 280, 300, MethodSVD, RouteGram, 40},
		{"gram-right", 700, 300, MethodSVD, RouteGram, 40},
		{"whiten", 520, 300, MethodWhiten, RouteGram, 30},
		{"randomized", 600, 300, MethodSVD, RouteRandomized, 8},
		{"exact", 90, 300, MethodASVD, RouteExact, 10},
	}
	for _, c := range cases {
		w := randMat(r, c.m, c.n)
		var ref *Factors
		for _, th := range []int{1, 2, 3} {
			t.Run(fmt.Sprintf("%s/threads%d", c.name, th), func(t *testing.T) {
				var f *Factors
				var err error
				peak := peakGoroutines(func() {
					f, err = Factorize(ctx, w, c.m, c.n, c.method, st, RankSpec{Rank: c.rank}, Options{Route: c.route, Seed: 3, Threads: th})
				})
				if err != nil {
					t.Fatal(err)
				}
				if th == 1 && peak != 0 || peak > th {
					t.Fatalf("%d goroutines ran at once with a budget of %d", peak, th)
				}
				if th > 1 && c.route != RouteExact && peak == 0 {
					t.Fatalf("a budget of %d started no goroutine", th)
				}
				if ref == nil {
					ref = f
					return
				}
				// The budget changes who computes what, never the rounding.
				if !slices.Equal(f.A, ref.A) || !slices.Equal(f.B, ref.B) || !slices.Equal(f.Sigma, ref.Sigma) {
					t.Fatalf("factors with %d threads differ from those with 1", th)
				}
			})
		}
	}
}

func TestParallelLimit(t *testing.T) {
	for _, c := range []struct{ th, n int }{{1, 5}, {2, 7}, {4, 3}, {3, 40}} {
		var mu sync.Mutex
		done := make([]int, c.n)
		peak := peakGoroutines(func() {
			parallel(c.th, c.n, func(i int) {
				mu.Lock()
				done[i]++
				mu.Unlock()
			})
		})
		for i, d := range done {
			if d != 1 {
				t.Fatalf("th=%d n=%d: task %d ran %d times", c.th, c.n, i, d)
			}
		}
		if want := min(c.th, c.n); peak > want || (want == 1 && peak != 0) {
			t.Fatalf("th=%d n=%d: %d at once", c.th, c.n, peak)
		}
	}
}
