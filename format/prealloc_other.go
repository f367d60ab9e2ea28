//go:build !linux

package format

import "os"

// preallocate is a no-op where no portable fallocate exists; it is only a
// speed hint.
func preallocate(*os.File, int64) error { return nil }
