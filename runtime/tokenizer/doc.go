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
//   - llama2.c tokenizer.bin (FromLlama2C), encoding as llama2.c's run.c does;
//   - SentencePiece tokenizer.model (FromSentencePiece), read with a small
//     bounded protobuf wire-format reader (protowire.go) and encoded as
//     Hugging Face's LlamaTokenizer does: split at control pieces, dummy
//     prefix and whitespace escaping, BPE with byte fallback. Merges are
//     ordered by piece id, as in the tokenizer.json Hugging Face converts
//     from the same model (this matches the shared llama2 cases; the
//     sentencepiece library orders by score, which differs only for the
//     whitespace-run pieces that Llama scores -1e9);
//   - GGUF vocabularies (VocabFromGGUF, FromGGUFVocab), encoded as
//     llama.cpp's llama-vocab.cpp does: special-token partition, the SPM
//     session ("llama": merges by score) or the byte-level BPE session
//     ("gpt2": merges by rank, words split by the rule that
//     tokenizer.ggml.pre names) or the WordPiece session ("bert").
//     GGUFVocab.MarshalBinary is the gguf-vocab blob a .shrink stores
//     (format/SPEC.md §5.2); VocabFromSentencePiece and VocabFromLlama2C
//     give the same description of the other formats, for GGUF export.
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
