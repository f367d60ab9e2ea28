// Package demo embeds the built-in demo model: llama-stories-tiny (a 1.26 M
// parameter Llama trained on TinyStories, float32, tied embeddings), copied
// from ../shared/models as its README allows, so that `shrink demo` works
// from any directory with no download.
package demo

import (
	"embed"
	"io/fs"
)

//go:embed llama-stories-tiny
var files embed.FS

// Stories is a short text the demo evaluates on: eight stories in the style
// the model was trained on, written for this project (not from its training
// or validation data), separated by <|endoftext|> lines.
//
//go:embed stories.txt
var Stories string

// Name is the demo model's name.
const Name = "llama-stories-tiny"

// FS returns the model folder: config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json, generation_config.json.
func FS() fs.FS {
	sub, err := fs.Sub(files, Name)
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
