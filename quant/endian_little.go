//go:build 386 || amd64 || amd64p32 || arm || arm64 || loong64 || mips64le || mips64p32le || mipsle || ppc64le || riscv || riscv64 || wasm

package quant

// hostLittleEndian lets the byte layouts (always little-endian) alias
// []float32 and []uint16 memory directly instead of copying.
const hostLittleEndian = true
