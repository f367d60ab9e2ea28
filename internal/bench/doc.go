// Package bench measures a .shrink model's prompt processing and
// generation speed as llama-bench does (ppN: prefill N random tokens into
// an empty cache; tgN: decode N tokens one at a time from an empty cache),
// and sets the decode speed against the memory-bandwidth roofline measured
// right before and after it (internal/membw). `shrink bench` parses flags,
// calls Run and prints the results.
package bench
