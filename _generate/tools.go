//go:build tools

package main

// The generator loads runtime/simd's Go declarations (the argument structs
// of the wide kernels) with go/packages; importing it here keeps it in
// go.mod through go mod tidy without building it into the generator.
import _ "github.com/shrink-llm/shrink/runtime/simd"
