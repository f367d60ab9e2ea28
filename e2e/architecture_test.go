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

// allowedImports reads the dependency rule from docs/DESIGN.md's table
// "Packages and imports" (first column: the package; last column: which of
// our packages it may import), so the test and the contract cannot drift
// apart. Rows whose last column is "all" or "—" (the CLI, e2e, generators in
// their own module) are not checked.
func allowedImports(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}
	section, ok := strings.CutPrefix(string(doc[strings.Index(string(doc), "## Packages and imports"):]), "## Packages and imports")
	if !ok {
		t.Fatal("docs/DESIGN.md has no section \"Packages and imports\"")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	rules := map[string][]string{}
	for _, line := range strings.Split(section, "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 5 || !strings.HasPrefix(strings.TrimSpace(cols[1]), "`") {
			continue
		}
		last := strings.TrimSpace(cols[len(cols)-2])
		if last == "all" || last == "—" || strings.Contains(cols[1], "own module") {
			continue
		}
		var allowed []string
		for _, name := range backticked(last) {
			allowed = append(allowed, strings.TrimSuffix(name, "/"))
		}
		for _, name := range backticked(cols[1]) {
			rules[strings.TrimSuffix(name, "/")] = allowed
		}
	}
	if len(rules) < 10 {
		t.Fatalf("read only %d package rows from docs/DESIGN.md", len(rules))
	}
	return rules
}

// backticked returns the `quoted` names in s, in order.
func backticked(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(s[i+1:], '`')
		if j < 0 {
			return out
		}
		out = append(out, s[i+1:i+1+j])
		s = s[i+2+j:]
	}
}

// TestArchitecture parses every production file of each package and fails
// on an import the design forbids (runtime importing convert, say).
func TestArchitecture(t *testing.T) {
	root := filepath.Join("..")
	for pkg, allowed := range allowedImports(t) {
		files, err := filepath.Glob(filepath.Join(root, pkg, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Errorf("package %s has no Go files: update the table in docs/DESIGN.md", pkg)
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
