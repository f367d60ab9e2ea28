// Package format owns the .shrink container: its byte layout (SPEC.md in
// this directory is normative), the header types shared by the converter
// and the runtime (Header, ModelConfig, Tensor, Part, Blob), a streaming
// atomic Writer, and a reader that memory-maps a file and validates it
// strictly before use.
//
// A file is a 64-byte preamble, a data section of 64-byte aligned blobs and
// tensor parts, and a JSON header written last. Every byte range carries a
// CRC-32C. The Writer streams data to a temporary file in the destination
// directory and renames it into place on Commit, so readers never observe a
// partial file. Open checks the preamble, the header checksum and JSON,
// every offset, length and shape (with overflow-checked arithmetic), that no
// two byte ranges overlap, and, unless OpenOptions.SkipVerify is set, every
// data checksum. Unknown versions, encodings, kinds, compressions and
// tokenizer kinds fail with ErrUnsupported rather than being misread.
//
// Errors are *Error values: one line naming the file, the tensor part or
// blob, and the problem, classified by ErrNotShrink, ErrUnsupported,
// ErrCorrupt, ErrChecksum or ErrInvalid.
//
// Encodings and their byte layouts belong to package quant; format only
// records which encoding each part uses and checks its size.
package format
