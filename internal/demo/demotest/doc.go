// Package demotest is what tests need to run a checkpoint end to end: the
// demo model unpacked to a folder, a checkpoint folder converted to a
// .shrink file, the file opened with the runtime, a prompt's logits and its
// greedy continuation, and a short story in the demo model's domain to
// evaluate on. Each step fails the test on error and cleans up after it, so
// a test states only what it checks.
package demotest
