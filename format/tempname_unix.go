//go:build unix

package format

import (
	"errors"
	"syscall"
)

// processAlive reports whether process pid exists; a pid that exists but
// belongs to another user (EPERM) counts as alive.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}
