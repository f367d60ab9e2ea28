// Package tokenizer turns text into token ids and back for the CPU runtime.
//
// It owns two tokenizer formats:
//
//   - Hugging Face tokenizer.json (FromHF), reproducing the `tokenizers`
//     library exactly for the components language models use: added tokens,
//     normalizers (Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD, Lowercase,
//     Strip, StripAccents, ByteLevel), pre-tokenizers (ByteLevel, Split,
//     Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation,
//     BertPreTokenizer, Sequence), the BPE model (merges, byte fallback,
//     unknown-token fusing, ignore_merges, subword prefix/suffix),
//     post-processors (TemplateProcessing, ByteLevel, Roberta, Bert,
//     Sequence) and decoders (ByteLevel, Metaspace, Replace, ByteFallback,
//     Fuse, Strip, BPEDecoder, Sequence);
//   - llama2.c tokenizer.bin (FromLlama2C), encoding as llama2.c's run.c does.
//
// The split rules of GPT-2 and Llama-3 (whose regular expressions use
// lookahead, which Go's regexp lacks) are implemented as hand-written rune
// scanners selected by their exact pattern strings; other Split patterns go
// through Go's regexp after translating \s, \d and \w to their Unicode
// meanings, and patterns with lookaround are rejected with an error.
//
// A Tokenizer is immutable after construction apart from an internal word
// cache guarded by a mutex, so it is safe for concurrent use. StreamDecoder
// is not; use one per generation.
package tokenizer
