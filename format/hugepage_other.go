//go:build !linux

package format

// adviseHuge is Linux-only (MADV_HUGEPAGE).
func adviseHuge([]byte) {}
