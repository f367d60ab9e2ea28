package runtime

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHuge asks for 2 MiB pages over the whole 2 MiB-aligned part of b, a
// large heap buffer about to be written once (a repacked q8 matrix): one
// fault per 2 MiB instead of per 4 KiB cuts the load time where faults are
// dear (virtual machines). Advice only; errors are ignored.
func adviseHuge(b []byte) {
	const huge = 2 << 20
	if len(b) < 2*huge {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (p+huge-1)&^(huge-1) - p
	hi := (p+uintptr(len(b)))&^(huge-1) - p
	if hi > lo {
		_ = unix.Madvise(b[lo:hi], unix.MADV_HUGEPAGE)
	}
}
