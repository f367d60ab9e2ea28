package crafted

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shrinkBin is the real shrink binary, built once by TestMain.
var shrinkBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shrink-crafted-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shrinkBin = filepath.Join(dir, "shrink")
	build := exec.Command("go", "build", "-o", shrinkBin, "github.com/shrink-llm/shrink/cmd/shrink")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building shrink:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Bounds every case must keep.
const (
	caseTimeout = 60 * time.Second
	maxRSSBytes = 256 << 20 // for inputs under 10 MB
	maxErrBytes = 1000
)

// outcome is how one run ended.
type outcome struct {
	code   int
	stderr string
	rssKB  int64
	err    error // timeout or failure to start
}

func runCase(c Case) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shrinkBin, c.Args...)
	var stderr bytes.Buffer
	cmd.Stdout = nil
	cmd.Stderr = &stderr
	cmd.Dir = c.OutDir
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	err := cmd.Run()
	o := outcome{stderr: stderr.String()}
	if ctx.Err() != nil {
		o.err = fmt.Errorf("timed out after %v", caseTimeout)
	} else if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		o.err = err
	}
	if cmd.ProcessState != nil {
		o.code = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			o.rssKB = ru.Maxrss // kilobytes on Linux
		}
	}
	return o
}

// classify names the outcome, or returns a problem that fails the test.
func classify(c Case, o outcome) (string, error) {
	if o.err != nil {
		return "", o.err
	}
	for _, bad := range []string{"panic:", "fatal error:", "goroutine ", "SIGBUS", "SIGSEGV"} {
		if strings.Contains(o.stderr, bad) {
			return "", fmt.Errorf("crashed (%q): %.400s", bad, o.stderr)
		}
	}
	if c.Bytes < 10<<20 && o.rssKB*1024 > maxRSSBytes {
		return "", fmt.Errorf("max RSS %d MiB over the %d MiB bound", o.rssKB>>10, maxRSSBytes>>20)
	}
	files, err := Files(c.OutDir)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if !slices.Contains(c.Outputs, f) {
			return "", fmt.Errorf("left %s in the output folder", f)
		}
	}
	msg := strings.TrimSuffix(o.stderr, "\n")
	switch o.code {
	case 0:
		if c.Accept == "" {
			return "", fmt.Errorf("accepted, but must be refused (stderr %.200q)", o.stderr)
		}
		return "accepted", nil
	case 1, 2:
		if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "shrink: ") {
			return "", fmt.Errorf("error is not one line: %.400q", o.stderr)
		}
		if len(msg) > maxErrBytes {
			return "", fmt.Errorf("error of %d bytes", len(msg))
		}
		if c.Usage != (o.code == 2) {
			return "", fmt.Errorf("exit %d (usage error expected: %v): %s", o.code, c.Usage, msg)
		}
		if c.Accept != "" {
			return "", fmt.Errorf("refused, but should be accepted (%s): %s", c.Accept, msg)
		}
		if o.code == 2 {
			return "usage error (exit 2)", nil
		}
		return "refused (exit 1)", nil
	}
	return "", fmt.Errorf("exit code %d: %.400s", o.code, o.stderr)
}

// TestCraftedInputs runs the real binary on every crafted input and fails
// on any crash, hang, memory blow-up, leftover file, multi-line error or
// wrong verdict; it logs the count of cases per category and outcome.
func TestCraftedInputs(t *testing.T) {
	dir := t.TempDir()
	cases, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ cat, outcome string }
	counts := map[row]int{}
	var mu sync.Mutex
	var maxRSS int64
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o := runCase(c)
			verdict, err := classify(c, o)
			mu.Lock()
			defer mu.Unlock()
			maxRSS = max(maxRSS, o.rssKB)
			if err != nil {
				t.Errorf("%s (shrink %s): %v", c.Name, clipArgs(c.Args), err)
				counts[row{c.Category, "FAILED"}]++
				return
			}
			counts[row{c.Category, verdict}]++
		}()
	}
	wg.Wait()
	var rows []row
	for r := range counts {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].cat != rows[j].cat {
			return rows[i].cat < rows[j].cat
		}
		return rows[i].outcome < rows[j].outcome
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d crafted cases, max RSS of any run %d MiB:\n", len(cases), maxRSS>>10)
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-12s %-22s %4d\n", r.cat, r.outcome, counts[r])
	}
	t.Log(b.String())
}

func clipArgs(args []string) string {
	s := strings.Join(args, " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
