// Package eval measures what compression cost.
//
// At the model level it runs a reference and a candidate model on exactly
// the same token chunks and compares their next-token distributions
// position by position (perplexity, KL divergence, Δp, top-1 agreement),
// with the definitions llama.cpp's llama-perplexity --kl-divergence uses so
// that figures are comparable, but computed from full-precision
// log-probabilities rather than llama.cpp's 16-bit stored base logits
// (Run, RunMany, Report). Sweep, its Markdown table and its plots gather
// many candidates of one model.
//
// At the tensor level it reconstructs every stored tensor (dense, low-rank,
// LoRC) and compares it with the original (CompareTensors), optionally
// weighted by the reference model's activations on calibration text
// (Calibrate), which predicts model-level damage better than weight error.
//
// It is its own package because it sits above runtime/ (it drives models)
// and beside convert/ (a checkpoint reference is converted on the fly, and
// original tensors are read from the checkpoint), and both the CLI's eval
// and sweep commands use it. It names quant/gptq's Options only to carry a
// sweep's GPTQ tuning to convert (SweepOptions.GPTQ), as convert --gptq-*
// does.
package eval
