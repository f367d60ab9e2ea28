//go:build tools

package main

// The generator loads these packages' Go declarations (the argument structs
// of the wide kernels) with go/packages; importing them here keeps them in
// go.mod through go mod tidy without building them into the generator.
import (
	_ "github.com/shrink-llm/shrink/lowrank"
	_ "github.com/shrink-llm/shrink/runtime/simd"
)
