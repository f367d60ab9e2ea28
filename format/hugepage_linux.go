//go:build linux

package format

import "golang.org/x/sys/unix"

// adviseHuge asks the kernel to map data with 2 MiB pages where the page
// cache holds large enough folios. Decode streams the whole model per token;
// with 4 KiB pages every page is a TLB miss and a boundary the hardware
// prefetcher does not cross. A file read in after this advice is cached in
// 2 MiB folios; BENCHMARKS.md shows what that does to decode.
func adviseHuge(data []byte) { _ = unix.Madvise(data, unix.MADV_HUGEPAGE) }
