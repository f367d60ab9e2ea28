// Package e2e holds integration tests that cross package boundaries the
// architecture forbids in production code: runtime/ may never import
// convert/, yet the real checks — convert a Hugging Face checkpoint, load it
// in the runtime, compare logits with the transformers reference — need
// both. The package has no non-test code besides this file.
//
// Every test uses the checkpoints and references in ../shared (see
// ../shared/models/README.md) and skips with a message when they are absent.
package e2e
