package crafted

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shrink-llm/shrink/internal/demo"
)

// slowConvert starts a conversion that spends seconds calibrating (its
// scratch directory sits in out while it does) and waits until that
// scratch exists.
func slowConvert(t *testing.T, out string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if err := os.CopyFS(model, demo.FS()); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "calib.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat(demo.Stories+"\n<|endoftext|>\n", 300)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shrinkBin, "convert", model, "-o", filepath.Join(out, "m.shrink"), "--threads", "1",
		"--lowrank", "whiten", "--rank", "8", "--calib", text, "--calib-tokens", "300000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if names, _ := Files(out); len(names) > 0 {
			return cmd
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatal("the conversion never created its scratch files")
	return nil
}

// TestSIGTERMCleansUp: SIGTERM ends a conversion like Ctrl-C: exit 1 and
// nothing left in the output folder (it used to leave its scratch behind).
func TestSIGTERMCleansUp(t *testing.T) {
	out := t.TempDir()
	cmd := slowConvert(t, out)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit after SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d after SIGTERM, want 1", code)
	}
	if names, _ := Files(out); len(names) != 0 {
		t.Errorf("left %v", names)
	}
}

// TestSIGKILLLeftoversRemoved: what a SIGKILLed conversion leaves (it has
// no chance to clean up) is removed by the next conversion into the folder.
func TestSIGKILLLeftoversRemoved(t *testing.T) {
	out := t.TempDir()
	cmd := slowConvert(t, out)
	cmd.Process.Kill()
	cmd.Wait()
	left, _ := Files(out)
	if len(left) == 0 {
		t.Fatal("the killed conversion left nothing to clean up; the test proves nothing")
	}
	model := filepath.Join(t.TempDir(), "model")
	if err := os.CopyFS(model, demo.FS()); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(shrinkBin, "convert", model, "-o", filepath.Join(out, "next.shrink")).CombinedOutput(); err != nil {
		t.Fatalf("next convert: %v: %s", err, b)
	}
	names, _ := Files(out)
	if len(names) != 1 || names[0] != "next.shrink" {
		t.Errorf("after the next conversion the folder holds %v (the killed one left %v)", names, left)
	}
}

// TestEvalTextStreamed: eval reads --text a document at a time and, with
// --chunks, tokenizes only what it evaluates, so a large text costs a
// bounded amount of memory (it used to be read whole: 3 GB of RSS for a
// 1 GiB file with --chunks 1).
func TestEvalTextStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 160 MiB file")
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "big.txt")
	f, err := os.Create(text)
	if err != nil {
		t.Fatal(err)
	}
	chunk := []byte(strings.Repeat(demo.Stories+"\n<|endoftext|>\n", 64))
	for written := 0; written < 160<<20; written += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	model := filepath.Join(dir, "m.shrink")
	src := filepath.Join(dir, "model")
	if err := os.CopyFS(src, demo.FS()); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(shrinkBin, "convert", src, "-o", model).CombinedOutput(); err != nil {
		t.Fatalf("convert: %v: %s", err, b)
	}
	o := runCase(Case{Args: []string{"eval", "--ref", model, "--model", model, "--text", text, "--ctx", "64", "--chunks", "2"}, OutDir: dir})
	if o.err != nil || o.code != 0 {
		t.Fatalf("eval: exit %d, %v: %s", o.code, o.err, o.stderr)
	}
	if o.rssKB > 128<<10 {
		t.Errorf("max RSS %d MiB for a 160 MiB text evaluated on 2 chunks; want under 128 MiB", o.rssKB>>10)
	}
	t.Logf("max RSS %d MiB", o.rssKB>>10)
}
