package format

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLongOutputName: an output name near NAME_MAX still converts (the
// temporary name used to append 20 bytes to it and fail).
func TestLongOutputName(t *testing.T) {
	for _, n := range []int{200, 250, 255} {
		name := strings.Repeat("é", (n-6)/2) + ".shrink"
		for len(name) > 255 {
			name = name[2:]
		}
		path := filepath.Join(t.TempDir(), name)
		w, err := Create(path)
		if err != nil {
			t.Fatalf("%d-byte name: %v", len(name), err)
		}
		if tn := filepath.Base(w.tmpName); len(tn) > maxNameBytes {
			t.Errorf("temporary name of %d bytes", len(tn))
		}
		w.Abort()
	}
}

// TestStaleTempRemoved: a temporary file of a process that is gone (as a
// SIGKILLed convert leaves) is removed by the next writer into the folder;
// those of live processes, and other files, are kept.
func TestStaleTempRemoved(t *testing.T) {
	dir := t.TempDir()
	// A pid that surely is dead: a child that has exited and been reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	dead := cmd.Process.Pid
	files := map[string]bool{ // name → must survive
		tempName("m.shrink", dead, "abcdefgh"):         false,
		tempName("m.shrink", os.Getppid(), "abcdefgh"): true,
		".m.shrink.tmp-12345":                          true, // not ours
		"notes.txt":                                    true,
	}
	for n := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Create(filepath.Join(dir, "other.shrink"))
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	for n, keep := range files {
		_, err := os.Stat(filepath.Join(dir, n))
		if got := err == nil; got != keep {
			t.Errorf("%s: exists %v, want %v", n, got, keep)
		}
	}
}
