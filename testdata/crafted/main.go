// Command crafted writes the corpus of hostile and broken inputs that
// internal/crafted's test runs shrink on, with a list of the cases, so
// they can be inspected or replayed by hand:
//
//	go run ./testdata/crafted -o /tmp/crafted
//	cat /tmp/crafted/cases.txt
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shrink-llm/shrink/internal/crafted"
)

func main() {
	out := flag.String("o", "", "output folder (created; must not exist)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "crafted: -o DIR is required")
		os.Exit(2)
	}
	if err := os.Mkdir(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "crafted:", err)
		os.Exit(1)
	}
	cases, err := crafted.Generate(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crafted:", err)
		os.Exit(1)
	}
	var b strings.Builder
	for _, c := range cases {
		want := "refused (exit 1)"
		switch {
		case c.Usage:
			want = "usage error (exit 2)"
		case c.Accept != "":
			want = "accepted: " + c.Accept
		}
		args := strings.Join(c.Args, " ")
		if len(args) > 300 {
			args = args[:300] + "…"
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\n\tshrink %s\n", c.Name, c.Category, want, args)
	}
	if err := os.WriteFile(filepath.Join(*out, "cases.txt"), []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "crafted:", err)
		os.Exit(1)
	}
	fmt.Printf("%d cases in %s (listed in cases.txt)\n", len(cases), *out)
}
