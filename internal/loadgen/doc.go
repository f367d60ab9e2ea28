// Package loadgen drives a running `shrink serve` (or any OpenAI-compatible
// server) over loopback with a bounded number of requests: a throughput
// sweep (aggregate generated tokens/s and time to first token at several
// numbers of concurrent streams) and a soak (many requests, some clients
// disconnecting mid-stream, some sending malformed bodies, checking that
// nothing but 503 comes back as a 5xx and that the server's goroutines and
// memory do not grow). cmd/shrink-load is its command line.
package loadgen
