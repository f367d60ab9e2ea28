// Package crafted generates a corpus of hostile and broken inputs for the
// shrink command: configs declaring absurd sizes, broken tokenizers,
// truncated or overflowing safetensors, NaN weights, .shrink files with
// crafted headers and encoded values (checksums fixed so they reach the
// model validation), text inputs that are pipes or devices, and malformed
// flags. Every input is derived by a program from the built-in demo model,
// never a hand-made blob, so the corpus is reproducible and reviewable.
//
// Generate writes the inputs and returns the cases: each is a shrink
// invocation with what it must do, either fail with a one-line error
// (exit 1 for bad input, 2 for usage) or succeed for a stated reason. The
// test in this package runs the real binary on every case and classifies
// the outcome; `go run ./testdata/crafted -o DIR` writes the corpus for
// inspection.
package crafted
