package serve

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus series, in a registry of its own so
// that several servers (tests) can live in one process.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec
	promptTokens prometheus.Counter
	genTokens    prometheus.Counter
	cancelled    prometheus.Counter
	active       prometheus.Gauge
	ttft         prometheus.Histogram
	queueWait    prometheus.Histogram
	tokRate      prometheus.Histogram
	batch        prometheus.Histogram
}

func newMetrics(queueDepth func() float64) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shrink_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		promptTokens: counter("shrink_prompt_tokens_total", "Prompt tokens admitted (tokens in)."),
		genTokens:    counter("shrink_generated_tokens_total", "Tokens sampled (tokens out); rate() of this is the aggregate tokens/s."),
		cancelled:    counter("shrink_cancelled_requests_total", "Running requests ended by a client disconnect or deadline."),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shrink_active_sequences", Help: "Sequences holding a slot (prefilling or generating).",
		}),
		ttft: histogram("shrink_time_to_first_token_seconds", "From arrival to the first generated token.",
			prometheus.ExponentialBuckets(0.005, 2, 14)),
		queueWait: histogram("shrink_queue_wait_seconds", "Time requests waited for a slot.",
			prometheus.ExponentialBuckets(0.001, 2, 16)),
		tokRate: histogram("shrink_request_tokens_per_second", "Generation speed of each finished request after its first token.",
			prometheus.ExponentialBuckets(1, 2, 14)),
		batch: histogram("shrink_decode_batch_size", "Sequences advanced by each batched decode step.",
			prometheus.LinearBuckets(1, 1, 16)),
	}
	reg.MustRegister(m.requests, m.promptTokens, m.genTokens, m.cancelled, m.active, m.ttft, m.queueWait, m.tokRate, m.batch,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shrink_queue_depth", Help: "Requests waiting for a slot.",
		}, queueDepth),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}
