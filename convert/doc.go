// Package convert turns transformer checkpoints into the canonical model of
// docs/DESIGN.md and writes them as .shrink files.
//
// This package owns:
//
//   - checkpoint readers: Hugging Face safetensors (single file or sharded
//     with model.safetensors.index.json; reader_safetensors.go) and llama2.c
//     v0 .bin files (reader_llama2c.go);
//   - config.json parsing for transformers 4 and 5 style keys (config.go);
//   - families, one per architecture (family_*.go), which map source tensor
//     names and layouts to canonical names, [out, in] layout and HF
//     rotate-half rotary order;
//   - tokenizer files carried verbatim into the output (tokenizer_files.go);
//   - the planner and conversion pipeline (plan.go, convert.go);
//   - low-rank compression of the projections (lowrank.go, calib.go,
//     factor.go): the LowRank policy, calibration (Calibrate runs the
//     uncompressed model through the runtime with an activation hook and
//     accumulates lowrank.Stats per layer input; with
//     CalibOptions.Layerwise, calibseq.go, block by block during the
//     conversion, each block seeing the compressed blocks before it and
//     one block's statistics held at a time), the spectrum pass
//     (SpectrumRanks, for --energy and --target-ratio), and factoring in
//     the pipeline.
//
// The planner reads no weights: with --rank or --rank-ratio a matrix's rank
// follows from its shape, and --energy/--target-ratio ranks come in as a
// table (LowRank.Ranks) computed beforehand by SpectrumRanks. So every plan,
// low-rank or not, is data that --dry-run prints and tests check.
//
// Factored matrices are computed ahead of the encoder and written in plan
// order; each reports its weight error and, given calibration statistics,
// its activation error ||(W−Ŵ)X||/||WX|| (Result.LowRank). Options.Workers
// is one thread budget for the whole run: F = min(Workers, factored
// matrices) factorisations at once with Workers/F threads each
// (lowrank.Options.Threads), and a weighted semaphore so that they and the
// dense encodings together never compute on more than Workers goroutines.
// The writer, the encoder and the factorisations share an errgroup: the
// first write, encode or factorisation error cancels the rest.
//
// Layer-by-layer calibration runs inside that pipeline: the encoder hands
// every finished projection to the Calibration (record), and the first
// request for a block's statistics (importance weights, GPTQ, a whitened
// factorisation) moves the calibration's hidden states past the blocks
// before it once they are all recorded. A factorisation that asks ahead
// waits for that before it takes its threads from the budget, so it never
// holds threads the encoder needs to finish the block before. The
// calibration's own forward runs on the runtime's threads (the same count,
// Workers) while the asking encoder or factorisation waits for it.
// Sequential calibration (CalibPassSequential) splits a block into its
// four inputs in computation order (q/k/v, attention output, gate/up,
// down): an input's statistics are collected once the projections of the
// inputs before it in the block are recorded, with those replaced, so the
// pass relies on the families' canonical tensor order inside a block as it
// already relies on block order. Asymmetric calibration (for GPTQ's
// asymmetric target, gptq.Options.Cross) carries the uncompressed model's
// hidden states beside the compressed model's and, per input, D = (X −
// X̃)·X̃ᵀ beside X̃X̃ᵀ; it holds one block's uncompressed inputs (tokens ×
// the four input widths floats) while the block is converted.
//
// Source element types are DType values (one size table, dtype.go);
// canonical names, tensor kinds and part roles are format's (format.Stem,
// format.Kind, format.Role, format.BlockName).
//
// Nothing from a checkpoint is trusted before it is checked against the
// data: declared sizes are bounded by the format's limits and by the
// tensors present (checks.go) before a family walks its layers; side files
// are read through internal/safeio (regular files only, size-capped); the
// tokenizer to embed is loaded with runtime.LoadTokenizer, the loader `run`
// uses, and made to encode a probe; non-finite weights are refused, naming
// tensor, row and column, unless Options.AllowNonFinite. Metrics are merged
// in a fixed order, so a file's bytes do not depend on the worker count.
//
// Readers are lazy: Open parses headers only and returns TensorDesc
// descriptors; weight bytes are read when a descriptor's Load is called, so
// the pipeline can stream one tensor at a time through memory.
//
// GGUF files (llama, qwen2, gpt2) are a third input. Their tensors keep
// their ggml type as DType; block-quantized ones (Q8_0, Q4_0..Q5_1,
// Q2_K..Q6_K) are dequantized by Load with llama.cpp's formulas, bit for
// bit. A Q8_0 tensor planned as q8 (group 32) is not requantized: its blocks
// are the q8 groups, so the int8 quants and float16 scales are repacked as
// they are (carryQ8); Q4_K and Q5_K planned as q4 and q5 likewise (carryQK). ExportGGUF goes the other way, from a .shrink file to
// a GGUF llama.cpp loads; this is why convert imports gguf/ and, for the
// tokenizer's metadata, runtime/tokenizer.
//
// A byte budget (--target-bpw, --target-size) is met in two steps kept
// apart so that the decision stays data: MeasureCosts encodes every
// projection in every candidate encoding as the conversion would and
// measures its (activation-weighted) relative error, which needs weights and
// the whole model's calibration statistics, or (SensitivityKL) runs a KL
// probe: the uncompressed model, through the runtime as calibration does,
// on a slice of the calibration text with that one tensor replaced,
// against the uncompressed model's next-token distributions; Allocate is a pure function from
// those measurements and the budget to one choice per tensor, and
// Plan.ApplyBudget writes the choice into the plan the encoder then follows.
package convert
