package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/shrink-llm/shrink/convert"
	"github.com/shrink-llm/shrink/format"
	"github.com/urfave/cli/v2"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write a .shrink model as a GGUF file for llama.cpp, ollama and LM Studio",
		ArgsUsage: "FILE.shrink",
		Flags: []cli.Flag{
			outFlag("`FILE` (.gguf)"),
			&cli.BoolFlag{Name: "exact", Usage: "refuse any tensor whose numbers would change (low-rank factors are multiplied out otherwise)"},
			&cli.StringFlag{Name: "name", Usage: "general.name `NAME` (default: the file's base name)"},
		},
		Action: withPath("one .shrink file", func(c *cli.Context, path string) error {
			if c.String("out") == "" {
				return usagef("export: -o FILE is required")
			}
			return doExport(c.Context, c.App.Writer, c.App.ErrWriter, path, c.String("out"),
				convert.ExportOptions{Exact: c.Bool("exact"), Name: c.String("name")})
		}),
	}
}

func doExport(ctx context.Context, stdout, stderr io.Writer, in, out string, opts convert.ExportOptions) error {
	f, err := format.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	res, err := convert.ExportGGUF(ctx, f, out, opts)
	if err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	exact := "every tensor carried with the same numbers"
	if res.Reencoded > 0 {
		exact = fmt.Sprintf("%d of them re-encoded (see the notes)", res.Reencoded)
	}
	fmt.Fprintf(stdout, "wrote %s: GGUF v3, %d tensors, %s; %s\n", res.Path, res.Tensors, humanBytes(res.Bytes), exact)
	return nil
}

// convertToGGUF is convert --format gguf: a conversion into a temporary
// .shrink beside the output, then its export. The GGUF name is the source's.
func convertToGGUF(ctx context.Context, stdout, stderr io.Writer, a convertArgs) error {
	tmp, err := os.MkdirTemp(filepath.Dir(a.out), ".shrink-convert-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := a.out
	a.out = filepath.Join(tmp, "model.shrink")
	if err := doConvert(ctx, io.Discard, stderr, a); err != nil {
		return err
	}
	name := strings.TrimSuffix(filepath.Base(filepath.Clean(a.src)), filepath.Ext(a.src))
	return doExport(ctx, stdout, stderr, a.out, out, convert.ExportOptions{Name: name})
}
