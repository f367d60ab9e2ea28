package main

import (
	"fmt"
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
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output `FILE` (.gguf)"},
			&cli.BoolFlag{Name: "exact", Usage: "refuse any tensor whose numbers would change (low-rank factors are multiplied out otherwise)"},
			&cli.StringFlag{Name: "name", Usage: "general.name `NAME` (default: the file's base name)"},
		},
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 1, "one .shrink file"); err != nil {
				return err
			}
			if c.String("out") == "" {
				return usagef("export: -o FILE is required")
			}
			f, err := format.Open(c.Args().First())
			if err != nil {
				return err
			}
			defer f.Close()
			res, err := convert.ExportGGUF(c.Context, f, c.String("out"), convert.ExportOptions{Exact: c.Bool("exact"), Name: c.String("name")})
			if err != nil {
				return err
			}
			for _, n := range res.Notes {
				fmt.Fprintf(c.App.ErrWriter, "note: %s\n", n)
			}
			exact := "every tensor carried with the same numbers"
			if len(res.Notes) > 0 {
				exact = fmt.Sprintf("%d tensor(s) re-encoded (see the notes)", len(res.Notes))
			}
			fmt.Fprintf(c.App.Writer, "wrote %s: GGUF v3, %d tensors, %s; %s\n", res.Path, res.Tensors, humanBytes(res.Bytes), strings.TrimSpace(exact))
			return nil
		},
	}
}
