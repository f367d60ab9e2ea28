//go:build !linux

package runtime

// adviseHuge is Linux-only (MADV_HUGEPAGE).
func adviseHuge([]byte) {}
