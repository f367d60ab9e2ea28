//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package format

// mapFile reads the file into an aligned buffer where mmap is unavailable.
func mapFile(path string) ([]byte, func() error, error) {
	data, err := readAligned(path)
	return data, nil, err
}

// syncDir is a no-op: directories cannot be synced on these platforms
// (Windows), and rename is as durable as the OS makes it.
func syncDir(string) error { return nil }

// dropPages has nothing to release where files are read, not mapped.
func dropPages([]byte) {}
