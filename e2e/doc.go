// Package e2e holds integration tests that cross package boundaries the
// architecture forbids in production code: runtime/ may never import
// convert/, yet the real checks — convert a Hugging Face checkpoint, load it
// in the runtime, compare logits with the transformers reference — need
// both. The package has no non-test code besides this file.
//
// Most tests use the checkpoints and references in ../shared (see
// ../shared/models/README.md) and skip with a message when they are absent;
// the Qwen2 tests write their own small checkpoint, since ../shared has none,
// and check it against a float64 forward pass written from transformers'
// modeling_qwen2.py.
package e2e
