// Package runtime runs compressed transformer language models on the CPU,
// directly from their encoded weights.
//
// It owns the model graphs (llama — Llama 2/3, TinyLlama, Mistral,
// llama2.c —, qwen2 and gpt2, all in the canonical naming and [out, in]
// layout of docs/DESIGN.md), the matrix kernels over encoded weights, the KV
// cache, the worker pool, sampling and loading a .shrink file. It does not
// own tokenization (runtime/tokenizer), the dot-product primitives
// (runtime/simd), the encodings (quant) or the container (format).
//
// # Memory
//
// Weights are never expanded to float32: a Matrix holds typed views of the
// encoded bytes (for a file, of its read-only mapping; see FileSource), so
// resident memory is about the file size plus the KV caches (float32) plus
// scratch. Only 1-D tensors (norm weights, biases) are decoded, and embedding
// lookups decode the one row they need.
//
// One exception, for speed: where the CPU has AVX-512 VNNI, q8, q4s, q4
// and q6 matrices are copied once at load into the interleaved layouts of
// simd.Q8I, simd.Q4SI and simd.QKI (sixteen rows side by side, four quants
// at a time; q4 and q6 with their 6-bit scales and offsets widened to
// bytes, 1/8 bit per weight more than the file), whose
// kernels need no horizontal sums and so take about a third of the vector
// instructions per weight when several tokens share it (prefill, batched
// decode), and read each matrix as two sequential streams (decode). The copy
// is about as large as the encoded bytes; the loader fills it on Options.Threads threads and drops
// each run of the file's pages from the process as soon as it is copied,
// so resident memory stays about one copy of the weights. The results are
// the encodings' definitions (simd's Go references) bit for bit, as the
// row-major kernels' are within float32 summation order.
//
// # Kernels
//
// Matrix computes y = W x for one token (decode) and Y = X Wᵀ for a batch of
// tokens (prefill) for dense weights in f32, f16, bf16 and q8, for low-rank
// weights W ≈ A·B (y = A(Bx)) and for LoRC weights W ≈ Q + A·B. Work is cut
// into tiles of rows × tokens and run on a persistent pool of
// Options.Threads threads (the caller included) started once per Model; the
// innermost loops are the simd package's kernels: one call per row range for
// a single token (decode), register tiles of rows × tokens for a batch
// (prefill, evaluation). Attention is two such products per head and block
// of queries (scores against the key cache, then weights against the value
// cache, stored transposed); SiLU·up and the softmax are vector kernels too,
// since between parallel products they run on one thread.
//
// q8 weights by default also quantize the activations, per group of the
// weight's group size (scale amax/127, round to nearest), and multiply int8 by
// int8. This adds an activation rounding error of at most half a step per
// element — |Δy_r| ≤ Σ_g amax_g/254 · Σ_{i∈g}|W_ri| — on top of the weight
// quantization. Options.ExactQ8 multiplies the int8 weights by float32
// activations instead (slower, weight error only).
//
// # Graphs
//
// Norms follow transformers in float32 (mean of squares and LayerNorm
// statistics accumulated in float64), rotary embeddings use the rotate-half
// convention with frequencies and angles rounded through float32 as
// transformers does, with Llama 3 frequency scaling when configured;
// attention is grouped-query with a 1/sqrt(head_dim) scale and a float32
// softmax (float64 exp and sum in the pure-Go build). qwen2's sliding-window attention
// is not implemented: the runtime always attends to the whole cache, which
// is what transformers does for the usual use_sliding_window=false
// configurations (with the window enabled, results differ once a sequence
// outgrows the window). Prompts go through as matrices in chunks of PrefillChunk tokens;
// Decode appends one token and allocates nothing after its first call.
// A Batch advances several sessions by one token each in one pass over the
// weights (each tile of rows is read from memory once and applied to every
// session's token from cache; attention reads each session's own cache),
// which is what a server decoding many sequences needs: decode is bound by
// reading the weights. Every session's logits equal Session.Decode's bit
// for bit: q8 products use the register-tiled kernel, which keeps the
// one-token kernel's order of operations per token, and other encodings
// go token by token through the decode kernels unless Batch.SetTiled lets
// them use their (differently rounding) register tiles.
//
// With float32 weights the logits agree with transformers' float32 CPU
// logits to about 2e-5 on the small reference models in ../shared.
package runtime
