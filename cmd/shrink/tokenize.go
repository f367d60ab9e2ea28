package main

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/shrink-llm/shrink/convert"
	"github.com/urfave/cli/v2"

	"github.com/shrink-llm/shrink/internal/safeio"
)

func tokenizeCommand() *cli.Command {
	return &cli.Command{
		Name:      "tokenize",
		Usage:     "show how a model's tokenizer splits text into tokens",
		ArgsUsage: "MODEL (.shrink, .gguf, tokenizer.json, tokenizer.model, tokenizer.bin or a Hugging Face folder)",
		Flags: []cli.Flag{
			promptFlag("the text to tokenize"),
			&cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the text from a file instead (used exactly, final newline included)"},
			&cli.BoolFlag{Name: "ids", Usage: "print only the ids, space-separated, on one line"},
			&cli.BoolFlag{Name: "special", Usage: "add BOS/EOS as the tokenizer does for a prompt, and read special tokens written in the text"},
		},
		Action: withPath("one model or tokenizer", func(c *cli.Context, path string) error {
			text := c.String("prompt")
			switch {
			case c.IsSet("prompt") && c.IsSet("file"):
				return usagef("tokenize: give the text with -p or -f, not both")
			case c.IsSet("file"):
				b, err := safeio.ReadFile(c.String("file"), 256<<20, "text to tokenize")
				if err != nil {
					return err
				}
				text = string(b)
			case !c.IsSet("prompt"):
				return usagef("tokenize: no text (use -p TEXT or -f FILE)")
			}
			tok, _, err := convert.OpenTokenizer(path)
			if err != nil {
				return err
			}
			ids, err := tok.Encode(text, c.Bool("special"))
			if err != nil {
				return err
			}
			w := bufio.NewWriter(c.App.Writer)
			if c.Bool("ids") {
				s := make([]string, len(ids))
				for i, id := range ids {
					s[i] = strconv.Itoa(id)
				}
				fmt.Fprintln(w, strings.Join(s, " "))
			} else {
				for _, id := range ids {
					fmt.Fprintf(w, "%6d  %s\n", id, strconv.Quote(tok.Token(id)))
				}
			}
			return w.Flush()
		}),
	}
}
