//go:build !(386 || amd64 || amd64p32 || arm || arm64 || loong64 || mips64le || mips64p32le || mipsle || ppc64le || riscv || riscv64 || wasm)

package quant

// HostLittleEndian is false on big-endian hosts (and on any architecture not
// known to be little-endian), which then take the portable copying paths.
const HostLittleEndian = false
