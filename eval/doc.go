// Package eval measures what compression cost at the model level: it runs a
// reference and a candidate model on exactly the same token chunks and
// compares their next-token distributions position by position (perplexity,
// KL divergence, Δp, top-1 agreement), with the definitions llama.cpp's
// llama-perplexity --kl-divergence uses so that figures are comparable, but
// computed from full-precision log-probabilities rather than llama.cpp's
// 16-bit stored base logits.
//
// It is its own package because it sits above runtime/ (it drives models)
// and beside convert/ (a checkpoint reference is converted on the fly), and
// both the CLI and the sweep use it.
package eval
