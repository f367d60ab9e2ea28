// Command shrink converts transformer checkpoints into the compact .shrink
// format, measures what the compression cost, and runs the result on CPU.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit codes: 0 success, 1 bad input or a failed operation, 2 usage errors.
const (
	exitFail  = 1
	exitUsage = 2
)

// usageError marks a mistake in how the command was called (exit code 2), as
// opposed to a problem with the files it was given (exit code 1).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process exit, so tests can drive the CLI.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := unknownCommand(app, args)
	if err == nil {
		err = app.RunContext(ctx, interspersed(app, args))
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "shrink: %s\n", oneLine(err))
	return exitCode(err)
}

func newApp(stdout, stderr io.Writer) *cli.App {
	onUsage := func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
	app := &cli.App{
		Name:      "shrink",
		Usage:     "compress transformer language models, measure the cost, run them on CPU",
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			convertCommand(),
			inspectCommand(),
			exportCommand(),
			runCommand(),
			evalCommand(),
			sweepCommand(),
			demoCommand(),
			benchCommand(),
			tokenizeCommand(),
			serveCommand(),
		},
		OnUsageError:   onUsage,
		ExitErrHandler: func(*cli.Context, error) {}, // run() decides the exit code
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "shrink: unknown command %q (see shrink help)\n", clip(name))
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = onUsage
		c.Before = checkSharedFlags
	}
	return app
}

// needArgs checks the positional argument count.
func needArgs(c *cli.Context, n int, what string) error {
	if c.NArg() != n {
		return usagef("%s: want %s, got %d argument(s)", c.Command.Name, what, c.NArg())
	}
	return nil
}

// interspersed lets flags follow positional arguments, as users type them
// ("shrink convert MODEL -o out.shrink --quant q8"): urfave/cli v2 stops at
// the first positional argument, so the subcommand's flags are moved ahead
// of its positional arguments. "--" ends flag parsing as usual.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if takesValue[name] && i+1 < len(rest) {
			i++
			flags = append(flags, rest[i])
		}
	}
	out := append([]string{args[0], args[1]}, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}
