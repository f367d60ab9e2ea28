// Package ggufcraft builds hostile GGUF files byte by byte (huge counts,
// lengths past the end, overlapping or misaligned tensor data, unknown
// types) for the tests of every layer that opens GGUF input: the gguf
// reader itself, the converter and the command line.
package ggufcraft
