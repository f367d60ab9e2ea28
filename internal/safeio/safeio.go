package safeio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped by the error for a path that is not a regular
// file.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by the error for a file over its size cap.
var ErrTooLarge = errors.New("file too large")

// Open opens path for reading if it is a regular file. The file is opened
// without blocking (O_NONBLOCK), so a named pipe with no writer is refused
// instead of hanging the open; the check is made on the opened file, so a
// path swapped between a check and the open cannot slip through.
func Open(path string) (*os.File, error) {
	f, _, err := OpenSized(path)
	return f, err
}

// OpenSized is Open that also returns the file's size, from the same stat
// of the opened file that found it regular.
func OpenSized(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(st.Mode()))
	}
	return f, st.Size(), nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeCharDevice != 0, m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// ReadFile reads the regular file at path whole, refusing it when it holds
// more than limit bytes (what is read is capped too, should the file grow
// while it is read). what names the file's role in the error ("config.json").
func ReadFile(path string, limit int64, what string) ([]byte, error) {
	f, size, err := OpenSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, over the %d-byte limit for %s", path, ErrTooLarge, size, limit, what)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: %w: over the %d-byte limit for %s", path, ErrTooLarge, limit, what)
	}
	return b, nil
}
