package runtime

import (
	"sync"
	"sync/atomic"
)

// job is a unit of parallel work split into numbered blocks. run is called
// once per block, from any thread; worker identifies the calling thread
// (0 ≤ worker < pool.threads) so jobs can index per-thread scratch.
type job interface {
	run(block, worker int)
}

// task is one dispatch of a job. Callers keep a task in their own state and
// reuse it, so dispatching allocates nothing.
type task struct {
	j    job
	n    int64
	next atomic.Int64
	wg   sync.WaitGroup
}

// work claims blocks until none are left.
func (t *task) work(worker int) {
	for {
		b := t.next.Add(1) - 1
		if b >= t.n {
			return
		}
		t.j.run(int(b), worker)
	}
}

// pool is a fixed set of worker goroutines started once per Model. The
// calling goroutine always works on its own task too, so threads-1 workers
// give threads-way parallelism, and a pool of one thread runs everything
// inline. Tasks from several sessions may be in flight at once: a worker
// takes whichever task it receives and a task is complete once its caller
// has seen every block finish.
type pool struct {
	threads int
	ch      chan *task
	done    sync.WaitGroup
	closed  atomic.Bool
}

func newPool(threads int) *pool {
	p := &pool{threads: max(threads, 1)}
	if p.threads > 1 {
		p.ch = make(chan *task, 4*p.threads)
		for w := 0; w < p.threads-1; w++ {
			p.done.Add(1)
			go p.loop(w)
		}
	}
	return p
}

func (p *pool) loop(worker int) {
	defer p.done.Done()
	for t := range p.ch {
		t.work(worker)
		t.wg.Done()
	}
}

// run executes blocks [0, n) of j and returns when all are done. The caller
// works as thread threads-1.
func (p *pool) run(t *task, j job, n int) {
	if n <= 0 {
		return
	}
	t.j = j
	t.n = int64(n)
	t.next.Store(0)
	helpers := min(p.threads-1, n-1)
	if helpers > 0 {
		t.wg.Add(helpers)
		for range helpers {
			p.ch <- t
		}
	}
	t.work(p.threads - 1)
	if helpers > 0 {
		t.wg.Wait()
	}
	t.j = nil
}

// close stops the workers; the pool must not be used afterwards.
func (p *pool) close() {
	if p.closed.Swap(true) {
		return
	}
	if p.ch != nil {
		close(p.ch)
		p.done.Wait()
	}
}
