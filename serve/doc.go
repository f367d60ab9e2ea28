// Package serve is shrink's OpenAI-compatible HTTP server: POST
// /v1/completions and /v1/chat/completions (whole responses or server-sent
// events), GET /v1/models, /health and /metrics (Prometheus text).
//
// # Scheduling
//
// One scheduler goroutine owns the model. At every step it admits waiting
// requests into free slots (at most Config.Parallel, each with its own
// session, i.e. KV cache, taken from a bounded pool and reused), pushes one
// chunk of one waiting prompt through prefill (so a long prompt delays the
// others by one chunk per step, never by its whole length), and then
// advances every sequence that is generating by one token with a single
// runtime.Batch step: one pass over the weights for all of them. A request
// joins at the next step and a finished, cancelled or disconnected one
// leaves at the next step, freeing its slot. Requests beyond the slots wait
// in a bounded queue; when that is full the server answers 503 with
// Retry-After at once rather than letting latency grow without bound.
//
// Tokens are sampled exactly as runtime.Model.Generate (and so `shrink run`)
// samples them, one runtime.Sampler per request, from logits that the
// batch computes bit for bit as a lone decode would: with the same seed and
// parameters a request generates the same tokens as `shrink run`, however
// many others share its steps (q8 weights decode on the register-tiled
// kernels, which are exact per sequence). Config.TiledBatch trades that
// exactness for the register-tiled kernels of the other encodings too (see
// runtime.Batch).
//
// # Chat
//
// /v1/chat/completions renders the messages with the chat template of the
// model's tokenizer_config.json (which conversion stores in the .shrink file
// verbatim), using the ardanlabs/jinja engine. A model without a template
// answers 400: guessing a prompt format would silently produce worse
// answers.
//
// # Faults
//
// Bodies over Config.MaxBodyBytes, malformed JSON, wrongly typed fields,
// prompts that do not fit the context and max_tokens beyond it get a 4xx
// with an OpenAI-style error object. Each request has a deadline
// (Config.RequestTimeout) and each streamed write one (Config.WriteTimeout),
// so a client that stops reading cannot hold a slot. Serve stops accepting
// when its context ends, lets running requests finish for
// Config.ShutdownGrace, then cancels the rest.
package serve
