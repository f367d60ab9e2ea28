package lowrank

import "golang.org/x/sync/errgroup"

// parallel runs fn(0) … fn(n−1) with at most th of them at once (the
// calling goroutine waits, so it does not count) and returns when all are
// done. Every parallel section of the package goes through it, so that
// Options.Threads bounds the whole call.
func parallel(th, n int, fn func(i int)) {
	if th <= 1 || n <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var g errgroup.Group
	g.SetLimit(th)
	for i := range n {
		g.Go(func() error {
			if parallelHook != nil {
				parallelHook(1)
				defer parallelHook(-1)
			}
			fn(i)
			return nil
		})
	}
	_ = g.Wait() // fn cannot fail
}

// parallelHook, when a test sets it, sees every goroutine parallel starts
// (+1) and ends (−1), so the test can check the budget is kept.
var parallelHook func(delta int)
