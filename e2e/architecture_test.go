package e2e

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/shrink-llm/shrink/"

// allowedImports is the dependency rule of docs/DESIGN.md: which of our
// packages each package's production code may import.
var allowedImports = map[string][]string{
	"quant":               {},
	"lowrank":             {"quant"},
	"format":              {"quant"},
	"runtime/simd":        {},
	"runtime/tokenizer":   {},
	"runtime":             {"format", "quant", "runtime/simd", "runtime/tokenizer"},
	"internal/textdata":   {},
	"internal/membw":      {"runtime/simd"},
	"internal/testshared": {"quant"},
	"gguf":                {"quant"},
	"convert":             {"format", "quant", "lowrank", "runtime", "internal/textdata", "gguf", "runtime/tokenizer"},
	"eval":                {"convert", "format", "quant", "runtime", "internal/textdata"},
}

// TestArchitecture parses every production file of each package and fails
// on an import the design forbids (runtime importing convert, say).
func TestArchitecture(t *testing.T) {
	root := filepath.Join("..")
	for pkg, allowed := range allowedImports {
		files, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("package %s has no Go files: update the table", pkg)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				ours, ok := strings.CutPrefix(path, module)
				if !ok {
					continue
				}
				if !slices.Contains(allowed, ours) {
					t.Errorf("%s imports %s, which docs/DESIGN.md does not allow", f, ours)
				}
			}
		}
	}
}
