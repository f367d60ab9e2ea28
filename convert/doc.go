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
//   - the planner and conversion pipeline (plan.go, convert.go).
//
// Readers are lazy: Open parses headers only and returns TensorDesc
// descriptors; weight bytes are read when a descriptor's Load is called, so
// the pipeline can stream one tensor at a time through memory.
package convert
