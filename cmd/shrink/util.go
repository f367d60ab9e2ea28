package main

import (
	"io"
	"os"
	"time"

	"github.com/shrink-llm/shrink/eval"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// humanBytes and humanCount format sizes the same way everywhere shrink
// prints them.
func humanBytes(n int64) string { return eval.HumanBytes(n) }
func humanCount(n int64) string { return eval.HumanCount(n) }

// progress is a bar with ETA on a terminal, drawn by mpb. Every method is a
// no-op on a nil *progress, which is what the constructors return when the
// output is not a terminal, so that logs and pipes stay clean.
type progress struct {
	p    *mpb.Progress
	bar  *mpb.Bar
	last time.Time // of the previous update, for the ETA's moving average
}

func (b *progress) advance(n int64) {
	now := time.Now()
	b.bar.EwmaSetCurrent(n, now.Sub(b.last))
	b.last = now
}

// newProgress returns a byte counter (source bytes converted, say).
func newProgress(w io.Writer, total int64, desc string) *progress {
	return newBar(w, total, desc, decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"))
}

// newCountProgress returns a counter of items (chunks evaluated, say); the
// total arrives with the first update.
func newCountProgress(w io.Writer, desc string) *progress {
	return newBar(w, 0, desc, decor.CountersNoUnit("%d / %d chunks"))
}

func newBar(w io.Writer, total int64, desc string, counter decor.Decorator) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(150*time.Millisecond))
	bar := p.AddBar(total,
		mpb.PrependDecorators(decor.Name(desc+" "), counter),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Name(" ETA "), decor.EwmaETA(decor.ET_STYLE_GO, 30)),
		mpb.BarRemoveOnComplete(),
	)
	return &progress{p: p, bar: bar, last: time.Now()}
}

// Set64 moves the bar to n.
func (b *progress) Set64(n int64) error {
	if b != nil {
		b.advance(n)
	}
	return nil
}

// update is the eval.Options.Progress callback: done of total chunks.
func (b *progress) update(done, total int) {
	if b == nil {
		return
	}
	b.bar.SetTotal(int64(total), false)
	b.advance(int64(done))
}

// finish completes the bar and waits for it to be cleared.
func (b *progress) finish() {
	if b != nil {
		b.bar.SetTotal(-1, true)
		b.p.Wait()
	}
}

// Finish is finish for callers that want an error result.
func (b *progress) Finish() error {
	b.finish()
	return nil
}
