package runtime

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// spinFor is how long an idle worker keeps polling for the next task before
// it blocks, and how long a caller polls for its helpers before yielding. A
// decode step dispatches a few hundred short products back to back; waking
// a parked goroutine costs microseconds of futex and scheduler work each
// time, which at two threads ate more than the second thread gained.
const spinFor = 50 * time.Microsecond

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
	// pending counts helpers that have not finished with this task.
	pending atomic.Int32
	// waiter is 1 while the caller sleeps on done for the last helper.
	waiter atomic.Int32
	done   chan struct{}
	// fault is the first memory fault a thread hit on this task (see
	// fault.go); the caller raises it once every helper is done.
	fault atomic.Pointer[error]
}

// finish is called by a helper when it is done with the task.
func (t *task) finish() {
	if t.pending.Add(-1) == 0 && t.waiter.CompareAndSwap(1, 0) {
		t.done <- struct{}{}
	}
}

// wait returns once every helper has finished: it polls for spinFor (the
// usual case: helpers end within microseconds of the caller), then sleeps
// so that on a busy machine a descheduled helper gets the CPU back.
func (t *task) wait() {
	var start time.Time
	for i := 0; t.pending.Load() > 0; i++ {
		if i&255 != 255 {
			continue
		}
		if start.IsZero() {
			start = time.Now()
			continue
		}
		if time.Since(start) < spinFor {
			continue
		}
		if t.done == nil {
			t.done = make(chan struct{}, 1)
		}
		t.waiter.Store(1)
		if t.pending.Load() == 0 && t.waiter.CompareAndSwap(1, 0) {
			return // the last helper finished before seeing the waiter
		}
		<-t.done
		return
	}
}

// recordFault is deferred around work on t: a memory fault (see fault.go)
// is recorded on the task instead of crashing the process, and the other
// threads stop claiming its blocks. Any other panic goes on.
func (t *task) recordFault(r any) {
	err := asFault(r)
	if err == nil {
		panic(r)
	}
	t.fault.CompareAndSwap(nil, &err)
	t.next.Store(t.n)
}

// callerWork is work for the dispatching goroutine, which runs with
// SetPanicOnFault already on (Session.forward's guardFaults). One deferred
// recover per dispatch costs a few nanoseconds.
func (t *task) callerWork(worker int) {
	defer func() {
		if r := recover(); r != nil {
			t.recordFault(r)
		}
	}()
	t.work(worker)
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
	// Faults become panics on this goroutine for its whole life; serve
	// recovers them, so it runs again after one.
	debug.SetPanicOnFault(true)
	for p.serve(worker) {
	}
}

// serve runs tasks until the pool closes (false) or a task faults (true,
// after recording the fault and finishing the task). The recover is set up
// once per call, not once per task.
func (p *pool) serve(worker int) (again bool) {
	var cur *task
	defer func() {
		if r := recover(); r != nil {
			cur.recordFault(r)
			cur.finish()
			again = true
		}
	}()
	for {
		t, ok := p.next()
		if !ok {
			return
		}
		cur = t
		t.work(worker)
		t.finish()
	}
}

// next returns the next task, polling for up to spinFor before blocking;
// ok is false once the pool is closed.
func (p *pool) next() (t *task, ok bool) {
	var start time.Time
	for i := 0; ; i++ {
		select {
		case t, ok = <-p.ch:
			return t, ok
		default:
		}
		if i&255 == 255 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > spinFor {
				break
			}
		}
	}
	t, ok = <-p.ch
	return t, ok
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
		t.pending.Store(int32(helpers))
		for range helpers {
			p.ch <- t
		}
	}
	t.callerWork(p.threads - 1)
	if helpers > 0 {
		t.wait()
	}
	t.j = nil
	if e := t.fault.Swap(nil); e != nil {
		panic(faultPanic{*e}) // recovered by the caller's guardFaults
	}
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
