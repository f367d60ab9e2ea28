package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	zero := filepath.Join(dir, "zero.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(dir, "ok.json")
	if err := os.WriteFile(ok, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"fifo", fifo, ErrNotRegular},
		{"symlink to /dev/zero", zero, ErrNotRegular},
		{"directory", dir, ErrNotRegular},
		{"over the cap", big, ErrTooLarge},
		{"regular", ok, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := ReadFile(tt.path, 1024, "a test file"); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
					t.Fatalf("err %v, want %v", err, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ReadFile blocked")
			}
		})
	}
}

// TestOpenSized: the size comes with the file, and a directory is refused
// like by Open.
func TestOpenSized(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "five")
	if err := os.WriteFile(p, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, size, err := OpenSized(p)
	if err != nil || size != 5 {
		t.Fatalf("OpenSized = %d, %v; want 5", size, err)
	}
	f.Close()
	if f, _, err := OpenSized(dir); !errors.Is(err, ErrNotRegular) || f != nil {
		t.Fatalf("OpenSized of a directory = %v, %v", f, err)
	}
}
