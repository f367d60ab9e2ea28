package serve

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shrink-llm/shrink/runtime"
	"github.com/shrink-llm/shrink/runtime/tokenizer"
)

// Finish reasons of the OpenAI API.
const (
	finishStop   = "stop"   // EOS or a stop string
	finishLength = "length" // max_tokens reached
)

// errShutdown ends requests still running when the shutdown grace period
// is over.
var errShutdown = errors.New("the server is shutting down")

// job is one admitted generation request.
type job struct {
	ctx    context.Context
	prompt []int
	maxNew int
	sc     runtime.SamplerConfig
	stops  []string
	// events carries text pieces and then one final event. It is buffered
	// for every event the job can produce (at most one per token plus the
	// final one), so the scheduler never blocks on a slow client.
	events chan event
	queued time.Time
}

type event struct {
	text   string
	final  bool
	finish string
	usage  usage
	err    error
}

// slot is one sequence being served.
type slot struct {
	j        *job
	s        *runtime.Session
	smp      *runtime.Sampler
	dec      *tokenizer.StreamDecoder
	done     int // prompt tokens prefilled
	next     int // token to feed at the next decode step
	gen      int // tokens sampled
	all      strings.Builder
	emitted  int // bytes of all sent
	maxStop  int
	firstTok time.Time
	// skip is prompt text the decoder still holds after priming (a run of
	// byte tokens at the prompt's end is held until a later token
	// completes it); it is not part of the completion.
	skip int
}

type scheduler struct {
	m        *runtime.Model
	tok      *tokenizer.Tokenizer
	eos      []int
	queue    chan *job
	parallel int
	ctxLen   int
	chunk    int
	met      *metrics

	free   []*runtime.Session
	nsess  int
	slots  []*slot
	batch  *runtime.Batch
	rr     int // round-robin position for prefill
	ss     []*runtime.Session
	toks   []int
	active []*slot
	// mixed: prompt chunks ride in the decode step (runtime.Batch.Step)
	// instead of a pass over the weights of their own; only where that
	// gives every token the bits it gets alone (Batch.TokensIndependent),
	// so that the text stays `shrink run`'s.
	mixed bool
	lists [][]int
	pre   *slot // the slot whose chunk is in the step under way
	draws []draw
}

func newScheduler(m *runtime.Model, parallel, queue, ctxLen, chunk int, met *metrics) (*scheduler, error) {
	// Room for every slot's decode token plus one prompt chunk.
	b, err := m.NewBatch(parallel + chunk)
	if err != nil {
		return nil, err
	}
	return &scheduler{
		m: m, tok: m.Tokenizer(), eos: m.Config().EOS, queue: make(chan *job, queue),
		parallel: parallel, ctxLen: ctxLen, chunk: chunk, met: met, batch: b,
		mixed: b.TokensIndependent(),
	}, nil
}

// submit queues j, or reports false when the queue is full.
func (sc *scheduler) submit(j *job) bool {
	select {
	case sc.queue <- j:
		return true
	default:
		return false
	}
}

// run serves jobs until ctx ends; then every queued and running job gets a
// final event carrying errShutdown, and every session is closed.
func (sc *scheduler) run(ctx context.Context) {
	defer sc.drain()
	for {
		if !sc.admit(ctx) {
			return
		}
		sc.dropCancelled()
		if !sc.mixed {
			if err := sc.prefillStep(ctx); err != nil {
				return
			}
		}
		if err := sc.step(ctx, sc.mixed); err != nil {
			return
		}
		sc.met.active.Set(float64(len(sc.slots)))
	}
}

// admit moves queued jobs into free slots, blocking while nothing is
// running; it reports false once ctx has ended.
func (sc *scheduler) admit(ctx context.Context) bool {
	for len(sc.slots) < sc.parallel {
		var j *job
		if len(sc.slots) == 0 {
			sc.met.active.Set(0)
			select {
			case j = <-sc.queue:
			case <-ctx.Done():
				return false
			}
		} else {
			select {
			case j = <-sc.queue:
			default:
				return ctx.Err() == nil
			}
		}
		if j.ctx.Err() != nil {
			sc.finish(&slot{j: j}, "", j.ctx.Err())
			continue
		}
		s, err := sc.session()
		if err != nil {
			sc.finish(&slot{j: j}, "", err)
			continue
		}
		smp, err := runtime.NewSampler(j.sc)
		if err != nil {
			sc.finish(&slot{j: j}, "", err)
			sc.free = append(sc.free, s)
			continue
		}
		sl := &slot{j: j, s: s, smp: smp}
		for _, st := range j.stops {
			sl.maxStop = max(sl.maxStop, len(st))
		}
		// Primed with the prompt so that the first generated token is
		// decoded as a continuation, exactly as `shrink run` prints it.
		sl.dec = sc.tok.NewDecoder()
		primed := 0
		for _, id := range j.prompt {
			txt, err := sl.dec.Next(id)
			if err != nil {
				sl.dec = nil
				break
			}
			primed += len(txt)
		}
		if whole, err := sc.tok.Decode(j.prompt, false); err == nil && sl.dec != nil {
			sl.skip = max(0, len(whole)-primed)
		}
		sc.met.queueWait.Observe(time.Since(j.queued).Seconds())
		sc.slots = append(sc.slots, sl)
	}
	return ctx.Err() == nil
}

// session takes a session from the pool, creating one while fewer than
// Parallel exist.
func (sc *scheduler) session() (*runtime.Session, error) {
	if n := len(sc.free); n > 0 {
		s := sc.free[n-1]
		sc.free = sc.free[:n-1]
		return s, nil
	}
	s, err := sc.m.NewSession(sc.ctxLen)
	if err != nil {
		return nil, err
	}
	sc.nsess++
	return s, nil
}

// dropCancelled ends the slots whose client went away or whose deadline
// passed.
func (sc *scheduler) dropCancelled() {
	for _, sl := range slices.Clone(sc.slots) {
		if err := sl.j.ctx.Err(); err != nil {
			sc.met.cancelled.Inc()
			sc.finish(sl, "", err)
		}
	}
}

// prefillStep pushes one chunk of one prompt (round robin over the slots
// still prefilling) and, when that completes the prompt, samples its first
// token.
func (sc *scheduler) prefillStep(ctx context.Context) error {
	n := len(sc.slots)
	for i := range n {
		sl := sc.slots[(sc.rr+i)%n]
		if sl.done == len(sl.j.prompt) {
			continue
		}
		sc.rr = (sc.rr + i + 1) % n
		end := min(sl.done+sc.chunk, len(sl.j.prompt))
		lg, err := sl.s.Prefill(ctx, sl.j.prompt[sl.done:end], false)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			sc.finish(sl, "", err)
			return nil
		}
		sl.done = end
		if end == len(sl.j.prompt) {
			sl.firstTok = time.Now()
			sc.met.ttft.Observe(sl.firstTok.Sub(sl.j.queued).Seconds())
			sc.sampled(sl, sl.smp.Sample(lg[0]))
		}
		return nil
	}
	return nil
}

// step advances every generating slot by one token in one batch and, with
// chunk, pushes one chunk of one prompt (round robin over the slots still
// prefilling) in the same pass over the weights; a prompt's last chunk
// yields its first token.
func (sc *scheduler) step(ctx context.Context, chunk bool) error {
	sc.ss, sc.lists, sc.active, sc.pre = sc.ss[:0], sc.lists[:0], sc.active[:0], nil
	n := len(sc.slots)
	for i := range n {
		if !chunk {
			break
		}
		sl := sc.slots[(sc.rr+i)%n]
		if sl.done < len(sl.j.prompt) {
			sc.rr = (sc.rr + i + 1) % n
			sc.pre = sl
			end := min(sl.done+sc.chunk, len(sl.j.prompt))
			sc.ss = append(sc.ss, sl.s)
			sc.lists = append(sc.lists, sl.j.prompt[sl.done:end])
			sc.active = append(sc.active, sl)
			break
		}
	}
	sc.toks = sc.toks[:0]
	for _, sl := range sc.slots {
		if sl.done == len(sl.j.prompt) {
			sc.toks = append(sc.toks, sl.next)
		}
	}
	k := 0
	for _, sl := range sc.slots {
		if sl.done == len(sl.j.prompt) {
			sc.ss = append(sc.ss, sl.s)
			sc.lists = append(sc.lists, sc.toks[k:k+1])
			sc.active = append(sc.active, sl)
			k++
		}
	}
	if len(sc.ss) == 0 {
		return nil
	}
	sc.met.batch.Observe(float64(len(sc.ss)))
	lgs, err := sc.batch.Step(ctx, sc.ss, sc.lists)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, sl := range sc.active {
			sc.finish(sl, "", err)
		}
		return nil
	}
	sc.draws = sc.draws[:0]
	for i, sl := range sc.active {
		if sl == sc.pre {
			sl.done += len(sc.lists[i])
			if sl.done < len(sl.j.prompt) {
				continue
			}
			sl.firstTok = time.Now()
			sc.met.ttft.Observe(sl.firstTok.Sub(sl.j.queued).Seconds())
		}
		sc.draws = append(sc.draws, draw{sl: sl, logits: lgs[i]})
	}
	sc.sample()
	for _, d := range sc.draws {
		sc.sampled(d.sl, d.id)
	}
	return nil
}

// draw is one slot's sampling after a step: its logits and the token drawn.
type draw struct {
	sl     *slot
	logits []float32
	id     int
}

func (d *draw) run() { d.id = d.sl.smp.Sample(d.logits) }

// sample draws every pending token, the slots' samplers side by side on
// the model's threads (each sampler is its own and the logits stay put
// until the next step). Sampling a 32,000-token vocabulary is a softmax
// in float64, about 0.3 ms; eight of them one after another were a few
// per cent of a step at eight streams while the matrix threads stood idle.
// The tokens are then handled in slot order, so the result is the same as
// drawing them one by one.
func (sc *scheduler) sample() {
	if len(sc.draws) == 1 || sc.m.Threads() == 1 {
		for i := range sc.draws {
			sc.draws[i].run()
		}
		return
	}
	var g errgroup.Group
	g.SetLimit(sc.m.Threads())
	for i := range sc.draws {
		g.Go(func() error {
			sc.draws[i].run()
			return nil
		})
	}
	_ = g.Wait() // the draws cannot fail
}

// sampled handles a slot's new token as Generate does: EOS ends the
// sequence without being shown, max_tokens ends it after the token.
func (sc *scheduler) sampled(sl *slot, id int) {
	sl.gen++
	sc.met.genTokens.Inc()
	if slices.Contains(sc.eos, id) {
		sc.flushText(sl)
		sc.finish(sl, finishStop, nil)
		return
	}
	if sc.emit(sl, sc.text(sl, id)) {
		sc.finish(sl, finishStop, nil)
		return
	}
	if sl.gen == sl.j.maxNew {
		sc.flushText(sl)
		sc.finish(sl, finishLength, nil)
		return
	}
	sl.next = id
}

// text is the printable text of a token (special tokens print nothing).
func (sc *scheduler) text(sl *slot, id int) string {
	if sc.tok.IsSpecial(id) {
		return ""
	}
	if sl.dec == nil {
		return sc.tok.Token(id)
	}
	txt, err := sl.dec.Next(id)
	if err != nil {
		return ""
	}
	return sl.dropSkipped(txt)
}

// dropSkipped removes held prompt text from the front of decoder output.
func (sl *slot) dropSkipped(txt string) string {
	n := min(sl.skip, len(txt))
	sl.skip -= n
	return txt[n:]
}

// flushText emits what the stream decoder still holds; true when that
// completed a stop string (the finish reason is stop then either way).
func (sc *scheduler) flushText(sl *slot) {
	if sl.dec != nil {
		sc.emit(sl, sl.dropSkipped(sl.dec.Flush()))
	}
	sc.emitHeld(sl)
}

// emit appends txt to the slot's text and sends what can no longer turn
// into a stop string; it reports whether a stop string is complete (the
// text before it has then been sent, and nothing after).
func (sc *scheduler) emit(sl *slot, txt string) bool {
	if txt == "" {
		return false
	}
	sl.all.WriteString(txt)
	all := sl.all.String()
	if sl.maxStop > 0 {
		from := max(0, sl.emitted-sl.maxStop)
		cut := -1
		for _, st := range sl.j.stops {
			if i := strings.Index(all[from:], st); i >= 0 && (cut < 0 || from+i < cut) {
				cut = from + i
			}
		}
		if cut >= 0 {
			sc.send(sl, all[sl.emitted:cut])
			sl.emitted = len(all)
			return true
		}
	}
	// Hold back the longest tail that is the start of a stop string.
	safe := len(all)
	for _, st := range sl.j.stops {
		for k := min(len(st)-1, len(all)-sl.emitted); k > 0; k-- {
			if strings.HasSuffix(all, st[:k]) {
				safe = min(safe, len(all)-k)
				break
			}
		}
	}
	sc.send(sl, all[sl.emitted:safe])
	sl.emitted = safe
	return false
}

// emitHeld sends text held back for a stop string that never came.
func (sc *scheduler) emitHeld(sl *slot) {
	all := sl.all.String()
	if sl.emitted < len(all) {
		sc.send(sl, all[sl.emitted:])
		sl.emitted = len(all)
	}
}

func (sc *scheduler) send(sl *slot, txt string) {
	if txt != "" && sl.j != nil {
		sl.j.events <- event{text: txt}
	}
}

// finish sends the final event and returns the slot's session to the pool.
func (sc *scheduler) finish(sl *slot, reason string, err error) {
	j := sl.j
	if j == nil {
		return
	}
	if err == nil && !sl.firstTok.IsZero() && sl.gen > 1 {
		if d := time.Since(sl.firstTok); d > 0 {
			sc.met.tokRate.Observe(float64(sl.gen-1) / d.Seconds())
		}
	}
	j.events <- event{final: true, finish: reason, err: err,
		usage: usage{PromptTokens: len(j.prompt), CompletionTokens: sl.gen, TotalTokens: len(j.prompt) + sl.gen}}
	sl.j = nil
	if sl.s != nil {
		sl.s.Reset()
		sc.free = append(sc.free, sl.s)
		sl.s = nil
	}
	if i := slices.Index(sc.slots, sl); i >= 0 {
		sc.slots = slices.Delete(sc.slots, i, i+1)
	}
}

// drain ends everything at shutdown.
func (sc *scheduler) drain() {
	for len(sc.slots) > 0 {
		sc.finish(sc.slots[0], "", errShutdown)
	}
	for {
		select {
		case j := <-sc.queue:
			sc.finish(&slot{j: j}, "", errShutdown)
		default:
			for _, s := range sc.free {
				s.Close()
			}
			sc.free = nil
			sc.met.active.Set(0)
			return
		}
	}
}
