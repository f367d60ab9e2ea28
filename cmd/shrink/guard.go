package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/shrink-llm/shrink/convert"

	"github.com/urfave/cli/v2"

	"github.com/shrink-llm/shrink/format"
	"github.com/shrink-llm/shrink/internal/textdata"
	"github.com/shrink-llm/shrink/runtime"
)

// This file holds the checks every command shares, so that the exit codes
// and the shape of error messages are decided in one place: a flag value out
// of range is a usage error (exit 2) before any file is opened, and whatever
// error reaches the user is one line of bounded length.

// stopSignals end a command the way Ctrl-C does: its context is cancelled,
// so a conversion removes its temporary file and nothing is left half
// written. SIGTERM is what service managers and `timeout` send.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// maxMessage bounds the error line printed to the user: errors may quote
// input (a tensor name, a config value, a prompt), and a crafted input must
// not turn into a megabyte-long line.
const maxMessage = 600

// oneLine makes err's text a single line of at most maxMessage bytes:
// line breaks (from joined errors, or quoted input) become "; " and an
// overlong message keeps its start and its end, where the file and the
// cause are named.
func oneLine(err error) string {
	s := strings.TrimSpace(err.Error())
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
	if len(s) <= maxMessage {
		return s
	}
	head, tail := s[:maxMessage*2/3], s[len(s)-maxMessage/3:]
	for !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	for !utf8.ValidString(tail) {
		tail = tail[1:]
	}
	return fmt.Sprintf("%s … (%d bytes cut) … %s", head, len(s)-len(head)-len(tail), tail)
}

// unknownCommand is the usage error for a first argument that names no
// command; urfave/cli only prints a message and succeeds.
func unknownCommand(app *cli.App, args []string) error {
	if len(args) < 2 {
		return nil
	}
	name := args[1]
	if (name == "help" || name == "h") && len(args) > 2 {
		name = args[2] // "shrink help NAME" must name a command too
	} else if strings.HasPrefix(name, "-") || name == "help" || name == "h" {
		return nil
	}
	if app.Command(name) != nil {
		return nil
	}
	return usagef("unknown command %q (see shrink help)", clip(name))
}

// clip cuts echoed user input to about 200 characters.
func clip(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	cut := s[:limit]
	for !utf8.ValidString(cut) {
		cut = cut[:len(cut)-1]
	}
	return cut + fmt.Sprintf("…(%d bytes)", len(s))
}

// maxReps bounds bench's repetitions.
const maxReps = 10000

// checkSharedFlags is every command's Before hook: the flags several
// commands share are range-checked here, once, as usage errors.
func checkSharedFlags(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		fi, ok := f.(*cli.IntFlag)
		if !ok {
			continue
		}
		v := c.Int(fi.Name)
		switch fi.Name {
		case "threads":
			if v < 0 || v > runtime.MaxThreads {
				return usagef("--threads %d: want 1 to %d (0 or unset: all cores)", v, runtime.MaxThreads)
			}
		case "n":
			if v < 0 {
				return usagef("-n %d: want a non-negative number of tokens", v)
			}
		case "reps":
			// Each repetition keeps its timing: bounded like any count
			// that sizes memory.
			if v < 1 || v > maxReps {
				return usagef("--reps %d: want 1 to %d", v, maxReps)
			}
		}
	}
	return nil
}

// exitCode maps an error to the process exit status.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFail
}

// verifyModel runs on an opened file the checks `run` makes when it loads
// one, so that `inspect --verify` accepts exactly the files `run` can use:
// the tokenizer must load, and the model must build over the tensors
// (declared sizes against real shapes, q8 scales and norms finite).
func verifyModel(f *format.File) error {
	tok, err := runtime.LoadTokenizer(f)
	if err != nil {
		return fmt.Errorf("%s: tokenizer: %w", f.Path(), err)
	}
	m, err := runtime.New(runtime.FileSource{F: f}, tok, runtime.Options{Threads: 1})
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path(), err)
	}
	return m.Close()
}

// readCalibDocs streams the documents of rng from the calibration text,
// bounded by what tokens tokens can need (convert.ReadCalibDocs).
func readCalibDocs(path string, rng textdata.DocRange, tokens int) ([]string, error) {
	return convert.ReadCalibDocs(path, rng, tokens)
}
