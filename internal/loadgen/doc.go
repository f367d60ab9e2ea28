// Package loadgen drives a running `shrink serve` (or any OpenAI-compatible
// server) over loopback with a bounded number of requests: a throughput
// sweep (aggregate generated tokens/s and time to first token at several
// numbers of concurrent streams) and a soak (many requests, some clients
// disconnecting mid-stream, some sending malformed bodies, checking that
// nothing but 503 comes back as a 5xx and that the server's goroutines and
// memory do not grow). cmd/shrink-load is its command line.
//
// The sweep speaks the OpenAI streaming completions protocol that both
// shrink serve and llama.cpp's llama-server implement (POST
// /v1/completions with "stream": true, server-sent events ending in
// "data: [DONE]", usage in the last event), so one tool measures both in
// the same way; it sends llama-server's "cache_prompt": false unless told
// otherwise, so that neither server skips the prefill of a repeated prompt.
package loadgen
