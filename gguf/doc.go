// Package gguf reads and writes GGUF files (versions 2 and 3), the
// single-file model format of llama.cpp and ggml: a header, typed metadata
// key/value pairs, tensor descriptors, and aligned tensor data. It also
// dequantizes the ggml block types that shrink understands (F32, F16, BF16,
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K) to float32 with llama.cpp's
// definitions, bit for bit.
//
// The reader treats the file as hostile. Open parses the header, the
// metadata and the tensor descriptors, and checks every count, length,
// offset and size against the bytes that remain in the file before it uses
// it, so a crafted file costs at most a few times its own size in memory and
// gets a one-line error, never a panic. Tensor data is never read by Open:
// each Tensor is a descriptor whose bytes are reached through an
// io.SectionReader, and large metadata arrays (a vocabulary's tokens and
// scores) are decoded only when asked for.
//
// Validation follows llama.cpp's gguf.cpp where it is stricter than the
// format text: tensor names are unique and shorter than 64 bytes, 1 to 4
// dimensions, every tensor's first dimension a multiple of its type's block
// size, offsets multiples of general.alignment (a power of two, default 32)
// and tensor data ranges inside the file and disjoint. Nested arrays and
// big-endian files are refused.
//
// The writer produces files that this reader and llama.cpp accept, streaming
// tensor data after a header computed from the declared descriptors.
//
// gguf is a bottom-level package: it imports only quant/ (for the float16
// and bfloat16 conversions), so convert/ (GGUF input) and cmd/shrink
// (GGUF export) can both use it.
package gguf
