//go:build 386 || amd64 || amd64p32 || arm || arm64 || loong64 || mips64le || mips64p32le || mipsle || ppc64le || riscv || riscv64 || wasm

package quant

// HostLittleEndian reports a little-endian host, where the byte layouts
// (always little-endian) can alias []float32 and []uint16 memory directly
// instead of copying. It is the one endianness check of the module.
const HostLittleEndian = true
