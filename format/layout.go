package format

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Layout constants of version 1 (see SPEC.md §1–2).
const (
	// Magic is the first 8 bytes of every .shrink file.
	Magic = "SHRINK\x00\x00"
	// PreambleSize is the fixed preamble at offset 0; the data section
	// starts right after it.
	PreambleSize = 64
	// Alignment of every blob, tensor part and of the header.
	Alignment = 64
	// MaxHeaderSize caps the JSON header so a hostile length cannot make a
	// reader allocate without bound.
	MaxHeaderSize = 64 << 20
	// MaxBlobRawSize caps a blob's decompressed size for the same reason.
	MaxBlobRawSize = 1 << 30
	// maxNameLen bounds tensor and blob names.
	maxNameLen = 1024
	// maxDim bounds every shape dimension so rows and cols fit an int
	// everywhere, 32-bit platforms included.
	maxDim = 1<<31 - 1
)

// Tokenizer kinds (Header.TokenizerKind).
const (
	TokenizerNone    = ""
	TokenizerHF      = "hf"
	TokenizerLlama2c = "llama2c"
	// TokenizerSPM is a SentencePiece tokenizer.model (BPE), encoded as
	// Hugging Face's LlamaTokenizer does.
	TokenizerSPM = "spm"
	// TokenizerGGUF is a tokenizer taken from GGUF metadata, encoded as
	// llama.cpp does (the gguf-vocab blob, SPEC.md §5.2).
	TokenizerGGUF = "gguf"
)

// Blob names of the tokenizer files.
const (
	BlobTokenizerJSON   = "tokenizer.json"
	BlobTokenizerConfig = "tokenizer_config.json"
	BlobSpecialTokens   = "special_tokens_map.json"
	BlobTokenizerBin    = "tokenizer.bin"
	BlobTokenizerModel  = "tokenizer.model"
	BlobGGUFVocab       = "gguf-vocab.bin"
)

// tokenizerBlob is the blob each tokenizer kind is read from.
var tokenizerBlob = map[string]string{
	TokenizerHF:      BlobTokenizerJSON,
	TokenizerLlama2c: BlobTokenizerBin,
	TokenizerSPM:     BlobTokenizerModel,
	TokenizerGGUF:    BlobGGUFVocab,
}

// Blob compressions (Blob.Compression).
const (
	CompressionNone = ""
	CompressionZstd = "zstd"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC-32C (Castagnoli) used for the header, parts and blobs.
func Checksum(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// preamble is the decoded fixed-size prefix of a file.
type preamble struct {
	version   uint32
	flags     uint32
	headerOff uint64
	headerLen uint64
	headerCRC uint32
}

func (p preamble) marshal() []byte {
	b := make([]byte, PreambleSize)
	copy(b, Magic)
	binary.LittleEndian.PutUint32(b[8:], p.version)
	binary.LittleEndian.PutUint32(b[12:], p.flags)
	binary.LittleEndian.PutUint64(b[16:], p.headerOff)
	binary.LittleEndian.PutUint64(b[24:], p.headerLen)
	binary.LittleEndian.PutUint32(b[32:], p.headerCRC)
	return b
}

// parsePreamble checks the preamble in isolation (magic, version, flags,
// reserved bytes, header bounds against the file size).
func parsePreamble(data []byte) (preamble, error) {
	size := uint64(len(data))
	if size < PreambleSize {
		if size >= 8 && string(data[:8]) != Magic {
			return preamble{}, problem(ErrNotShrink, "bad magic")
		}
		return preamble{}, problem(ErrCorrupt, fmt.Sprintf("truncated: %d bytes, shorter than the %d-byte preamble", size, PreambleSize))
	}
	if string(data[:8]) != Magic {
		return preamble{}, problem(ErrNotShrink, fmt.Sprintf("bad magic %q (want %q)", data[:8], Magic))
	}
	p := preamble{
		version:   binary.LittleEndian.Uint32(data[8:]),
		flags:     binary.LittleEndian.Uint32(data[12:]),
		headerOff: binary.LittleEndian.Uint64(data[16:]),
		headerLen: binary.LittleEndian.Uint64(data[24:]),
		headerCRC: binary.LittleEndian.Uint32(data[32:]),
	}
	if p.version != Version {
		return p, problem(ErrUnsupported, fmt.Sprintf("unsupported version %d (this reader knows %d)", p.version, Version))
	}
	if p.flags != 0 {
		return p, problem(ErrUnsupported, fmt.Sprintf("unknown flags %#x", p.flags))
	}
	for i := 36; i < PreambleSize; i++ {
		if data[i] != 0 {
			return p, problem(ErrCorrupt, fmt.Sprintf("reserved preamble byte %d is %#02x, want 0", i, data[i]))
		}
	}
	if p.headerOff < PreambleSize || p.headerOff%Alignment != 0 {
		return p, problem(ErrCorrupt, fmt.Sprintf("header offset %d is not a multiple of %d at or after the preamble", p.headerOff, Alignment))
	}
	if p.headerLen == 0 || p.headerLen > MaxHeaderSize {
		return p, problem(ErrCorrupt, fmt.Sprintf("header length %d outside 1..%d", p.headerLen, MaxHeaderSize))
	}
	if p.headerOff > size || p.headerLen > size-p.headerOff {
		return p, problem(ErrCorrupt, fmt.Sprintf("truncated: header at offset %d with length %d extends past the end of the %d-byte file", p.headerOff, p.headerLen, size))
	}
	if end := p.headerOff + p.headerLen; end != size {
		return p, problem(ErrCorrupt, fmt.Sprintf("%d trailing bytes after the header (header ends at %d, file is %d bytes)", size-end, end, size))
	}
	return p, nil
}

func alignUp(n uint64) uint64 { return (n + Alignment - 1) &^ (Alignment - 1) }
