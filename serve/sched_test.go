package serve

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shrink-llm/shrink/runtime"
)

// TestJobsShareDecodeSteps queues jobs before the scheduler starts, so they
// are all admitted at its first step and are certain to decode together:
// the decode steps are then fewer than the tokens generated, and every job
// still produces Generate's text. One prompt is longer than the prefill
// chunk, so its prefill is interleaved with the others' decoding.
func TestJobsShareDecodeSteps(t *testing.T) {
	m := demoModel(t, "")
	s := newServer(t, m, Config{Parallel: 4, PrefillChunk: 8})
	ctx := context.Background()
	texts := []string{"Once upon a time", "The cat sat", strings.Repeat("Tim had a red ball and a blue car. ", 4), "Lily"}
	type want struct {
		text string
		n    int
	}
	var jobs []*job
	var wants []want
	for i, txt := range texts {
		prompt, err := m.Tokenizer().Encode(txt, true)
		if err != nil {
			t.Fatal(err)
		}
		sc := runtime.SamplerConfig{Temperature: 0.7 * float64(i%2), TopP: 1, Seed: uint64(i)}
		w, n := reference(t, m, prompt, 24, sc)
		wants = append(wants, want{w, n})
		j := &job{ctx: ctx, prompt: prompt, maxNew: 24, sc: sc, events: make(chan event, 24+3)}
		if !s.sched.submit(j) {
			t.Fatal("queue full")
		}
		jobs = append(jobs, j)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.sched.run(runCtx); close(done) }()
	total := 0
	for i, j := range jobs {
		var b strings.Builder
		for ev := range j.events {
			if !ev.final {
				b.WriteString(ev.text)
				continue
			}
			if ev.err != nil {
				t.Fatalf("job %d: %v", i, ev.err)
			}
			if b.String() != wants[i].text || ev.usage.CompletionTokens != wants[i].n {
				t.Errorf("job %d: %q (%d tokens), Generate gave %q (%d)", i, b.String(), ev.usage.CompletionTokens, wants[i].text, wants[i].n)
			}
			total += ev.usage.CompletionTokens
			break
		}
	}
	stop()
	<-done
	// Each job's first token comes from its prefill; the rest from decode
	// steps, which batch them.
	steps := testutil.CollectAndCount(s.met.batch)
	if steps != 1 {
		t.Fatalf("batch histogram: %d series", steps)
	}
	var decoded uint64
	mf, err := s.met.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mf {
		if f.GetName() == "shrink_decode_batch_size" {
			decoded = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if single := uint64(total - len(jobs)); decoded == 0 || decoded >= single {
		t.Fatalf("%d decode steps for %d decoded tokens: the jobs did not share steps", decoded, single)
	}
	t.Logf("%d decode steps for %d decoded tokens of %d jobs", decoded, total-len(jobs), len(jobs))
}
