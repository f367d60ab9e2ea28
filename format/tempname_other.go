//go:build !unix

package format

// processAlive cannot tell here, so no leftover is ever removed.
func processAlive(int) bool { return true }
