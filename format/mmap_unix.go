//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package format

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/shrink-llm/shrink/internal/safeio"
)

// mapFile maps path read-only. The mapping is page aligned, so every
// 64-aligned file offset is 64-aligned in memory.
func mapFile(path string) ([]byte, func() error, error) {
	// Only a regular file: a named pipe would block the open, a device
	// cannot be mapped sensibly.
	fh, size, err := safeio.OpenSized(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close() // the mapping outlives the descriptor
	if size < PreambleSize {
		// Too small to be valid; mmap of an empty file fails, so let the
		// validator report it as truncated.
		data, err := readAligned(path)
		return data, nil, err
	}
	if uint64(size) > uint64(maxInt) {
		return nil, nil, errors.New("file too large to map")
	}
	data, err := unix.Mmap(int(fh.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	adviseHuge(data)
	return data, func() error { return unix.Munmap(data) }, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// dropPages releases this process's mapping of data's pages; a best-effort
// hint, since the pages stay cached and fault back in on use.
func dropPages(data []byte) {
	_ = unix.Madvise(data, unix.MADV_DONTNEED)
}
