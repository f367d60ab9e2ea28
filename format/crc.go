package format

import (
	"hash/crc32"
	"unsafe"
)

func crcUpdate(crc uint32, p []byte) uint32 { return crc32.Update(crc, castagnoli, p) }

// addrOf is the address of a buffer's first byte, for alignment only.
func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
