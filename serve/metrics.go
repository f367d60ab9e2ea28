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
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shrink_prompt_tokens_total", Help: "Prompt tokens admitted (tokens in).",
		}),
		genTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shrink_generated_tokens_total", Help: "Tokens sampled (tokens out); rate() of this is the aggregate tokens/s.",
		}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shrink_cancelled_requests_total", Help: "Running requests ended by a client disconnect or deadline.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shrink_active_sequences", Help: "Sequences holding a slot (prefilling or generating).",
		}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shrink_time_to_first_token_seconds", Help: "From arrival to the first generated token.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shrink_queue_wait_seconds", Help: "Time requests waited for a slot.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		tokRate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shrink_request_tokens_per_second", Help: "Generation speed of each finished request after its first token.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shrink_decode_batch_size", Help: "Sequences advanced by each batched decode step.",
			Buckets: prometheus.LinearBuckets(1, 1, 16),
		}),
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
