// Package cpu says which x86 instruction-set levels the assembly kernels of
// runtime/simd and lowrank may use. It reads golang.org/x/sys/cpu once, at
// start-up, and groups the flags into the levels the kernels are written
// for, so that every package dispatches on the same definition.
//
// Tests can lower the levels with SetForTesting (to run the AVX2 kernels on
// an AVX-512 machine, or the pure-Go paths on any machine); nothing else
// changes them. On other architectures every level is false.
package cpu
