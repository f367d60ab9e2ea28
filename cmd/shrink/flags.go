package main

import "github.com/urfave/cli/v2"

// Flags and argument checks the commands share, declared once so that the
// same flag has the same name, alias and meaning in every command.

// threadsFlag is --threads of the commands that run a model; guard.go
// bounds it.
func threadsFlag() cli.Flag {
	return &cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "worker `N` threads (default: all cores)"}
}

// jsonFlag is --json: print what the command prints as JSON instead.
func jsonFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: usage}
}

// outFlag is --out/-o, the command's output.
func outFlag(what string) cli.Flag {
	return &cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output " + what}
}

// promptFlag is --prompt/-p, the text given on the command line.
func promptFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "prompt", Aliases: []string{"p"}, Usage: usage}
}

// withoutArgs is the Action of a command that takes flags only (use names
// the flags to give instead, for the usage error).
func withoutArgs(use string, action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 0 {
			return usagef("%s: takes no positional arguments (use %s)", c.Command.Name, use)
		}
		return action(c)
	}
}

// withPath is the Action of a command that takes exactly one path (what
// describes it in the usage error).
func withPath(what string, action func(c *cli.Context, path string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := needArgs(c, 1, what); err != nil {
			return err
		}
		return action(c, c.Args().First())
	}
}
