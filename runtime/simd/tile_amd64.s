//go:build amd64 && !noasm

#include "textflag.h"

// Register-tiled matrix-matrix kernels for prefill: four weight rows × four
// tokens per call, accumulated over n elements in sixteen 512-bit registers,
// acc[r][t] = Z(4r+t). Each step loads four weight vectors and four
// activation vectors for sixteen FMAs, where the row kernels load one weight
// vector per FMA; the products become FMA-bound instead of load-bound. The
// last (n mod 16) elements go through one masked step (masked loads read
// nothing past the mask), so any n works. Weight row r is at w + r·wstride
// elements, token t's activations at x + t·xstride, and the result for
// (r, t) is written to (or, with add, added to) y[t·ldy + r].

#define TILE_ZERO \
	VPXORD Z0, Z0, Z0; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15

#define TILE_FMA \
	VFMADD231PS Z20, Z16, Z0; \
	VFMADD231PS Z21, Z16, Z1; \
	VFMADD231PS Z22, Z16, Z2; \
	VFMADD231PS Z23, Z16, Z3; \
	VFMADD231PS Z20, Z17, Z4; \
	VFMADD231PS Z21, Z17, Z5; \
	VFMADD231PS Z22, Z17, Z6; \
	VFMADD231PS Z23, Z17, Z7; \
	VFMADD231PS Z20, Z18, Z8; \
	VFMADD231PS Z21, Z18, Z9; \
	VFMADD231PS Z22, Z18, Z10; \
	VFMADD231PS Z23, Z18, Z11; \
	VFMADD231PS Z20, Z19, Z12; \
	VFMADD231PS Z21, Z19, Z13; \
	VFMADD231PS Z22, Z19, Z14; \
	VFMADD231PS Z23, Z19, Z15

#define TILE_LOADX \
	VMOVUPS (R12)(AX*4), Z20; \
	VMOVUPS (R13)(AX*4), Z21; \
	VMOVUPS (R14)(AX*4), Z22; \
	VMOVUPS (R15)(AX*4), Z23

#define TILE_LOADX_MASKED \
	VMOVUPS.Z (R12)(AX*4), K1, Z20; \
	VMOVUPS.Z (R13)(AX*4), K1, Z21; \
	VMOVUPS.Z (R14)(AX*4), K1, Z22; \
	VMOVUPS.Z (R15)(AX*4), K1, Z23

// TILE_FOLD adds the high half of every accumulator to its low half, so that
// the VEX-only horizontal adds can finish in Y0..Y15.
#define TILE_FOLD \
	VEXTRACTF64X4 $1, Z0, Y16; \
	VADDPS Y16, Y0, Y0; \
	VEXTRACTF64X4 $1, Z1, Y16; \
	VADDPS Y16, Y1, Y1; \
	VEXTRACTF64X4 $1, Z2, Y16; \
	VADDPS Y16, Y2, Y2; \
	VEXTRACTF64X4 $1, Z3, Y16; \
	VADDPS Y16, Y3, Y3; \
	VEXTRACTF64X4 $1, Z4, Y16; \
	VADDPS Y16, Y4, Y4; \
	VEXTRACTF64X4 $1, Z5, Y16; \
	VADDPS Y16, Y5, Y5; \
	VEXTRACTF64X4 $1, Z6, Y16; \
	VADDPS Y16, Y6, Y6; \
	VEXTRACTF64X4 $1, Z7, Y16; \
	VADDPS Y16, Y7, Y7; \
	VEXTRACTF64X4 $1, Z8, Y16; \
	VADDPS Y16, Y8, Y8; \
	VEXTRACTF64X4 $1, Z9, Y16; \
	VADDPS Y16, Y9, Y9; \
	VEXTRACTF64X4 $1, Z10, Y16; \
	VADDPS Y16, Y10, Y10; \
	VEXTRACTF64X4 $1, Z11, Y16; \
	VADDPS Y16, Y11, Y11; \
	VEXTRACTF64X4 $1, Z12, Y16; \
	VADDPS Y16, Y12, Y12; \
	VEXTRACTF64X4 $1, Z13, Y16; \
	VADDPS Y16, Y13, Y13; \
	VEXTRACTF64X4 $1, Z14, Y16; \
	VADDPS Y16, Y14, Y14; \
	VEXTRACTF64X4 $1, Z15, Y16; \
	VADDPS Y16, Y15, Y15

// TILE_SETUP takes w (BX = its row stride in bytes) and x: rows R8..R11,
// tokens R12..R15, CX = n, DX = n rounded down to 16, AX = 0, accumulators
// cleared.
#define TILE_SETUP \
	MOVQ w_base+32(FP), R8; \
	LEAQ (R8)(BX*1), R9; \
	LEAQ (R9)(BX*1), R10; \
	LEAQ (R10)(BX*1), R11; \
	MOVQ xstride+88(FP), BX; \
	SHLQ $2, BX; \
	MOVQ x_base+64(FP), R12; \
	LEAQ (R12)(BX*1), R13; \
	LEAQ (R13)(BX*1), R14; \
	LEAQ (R14)(BX*1), R15; \
	MOVQ n+96(FP), CX; \
	MOVQ CX, DX; \
	ANDQ $-16, DX; \
	XORQ AX, AX; \
	TILE_ZERO

// TILE_TAILMASK sets K1 to the low CX (1..15) lanes.
#define TILE_TAILMASK \
	MOVL  $1, DX; \
	SHLL  CX, DX; \
	DECL  DX; \
	KMOVW DX, K1

// TILE_STORE reduces the accumulators and writes (or, with add, adds) the
// sixteen results to y.
#define TILE_STORE \
	TILE_FOLD; \
	MOVQ y_base+0(FP), DI; \
	MOVQ ldy+24(FP), BX; \
	SHLQ $2, BX; \
	MOVQ add+104(FP), DX; \
	VHADDPS      Y4, Y0, Y0; \
	VHADDPS      Y12, Y8, Y8; \
	VHADDPS      Y8, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X4; \
	VADDPS       X4, X0, X0; \
	TESTQ        DX, DX; \
	JZ           2(PC); \
	VADDPS       (DI), X0, X0; \
	VMOVUPS      X0, (DI); \
	ADDQ         BX, DI; \
; \
	VHADDPS      Y5, Y1, Y1; \
	VHADDPS      Y13, Y9, Y9; \
	VHADDPS      Y9, Y1, Y1; \
	VEXTRACTF128 $1, Y1, X5; \
	VADDPS       X5, X1, X1; \
	TESTQ        DX, DX; \
	JZ           2(PC); \
	VADDPS       (DI), X1, X1; \
	VMOVUPS      X1, (DI); \
	ADDQ         BX, DI; \
; \
	VHADDPS      Y6, Y2, Y2; \
	VHADDPS      Y14, Y10, Y10; \
	VHADDPS      Y10, Y2, Y2; \
	VEXTRACTF128 $1, Y2, X6; \
	VADDPS       X6, X2, X2; \
	TESTQ        DX, DX; \
	JZ           2(PC); \
	VADDPS       (DI), X2, X2; \
	VMOVUPS      X2, (DI); \
	ADDQ         BX, DI; \
; \
	VHADDPS      Y7, Y3, Y3; \
	VHADDPS      Y15, Y11, Y11; \
	VHADDPS      Y11, Y3, Y3; \
	VEXTRACTF128 $1, Y3, X7; \
	VADDPS       X7, X3, X3; \
	TESTQ        DX, DX; \
	JZ           2(PC); \
	VADDPS       (DI), X3, X3; \
	VMOVUPS      X3, (DI)

// func tileF32AVX512(y []float32, ldy int, w []float32, wstride int, x []float32, xstride int, n int, add int)
TEXT ·tileF32AVX512(SB), NOSPLIT, $0-112
	MOVQ wstride+56(FP), BX
	SHLQ $2, BX
	TILE_SETUP
	TESTQ DX, DX
	JZ    tail

loop:
	VMOVUPS   (R8)(AX*4), Z16
	VMOVUPS   (R9)(AX*4), Z17
	VMOVUPS   (R10)(AX*4), Z18
	VMOVUPS   (R11)(AX*4), Z19
	TILE_LOADX
	TILE_FMA
	ADDQ $16, AX
	CMPQ AX, DX
	JLT  loop

tail:
	ANDQ  $15, CX
	JZ    reduce
	TILE_TAILMASK
	VMOVUPS.Z (R8)(AX*4), K1, Z16
	VMOVUPS.Z (R9)(AX*4), K1, Z17
	VMOVUPS.Z (R10)(AX*4), K1, Z18
	VMOVUPS.Z (R11)(AX*4), K1, Z19
	TILE_LOADX_MASKED
	TILE_FMA

reduce:
	TILE_STORE
	VZEROUPPER
	RET

// func tileF16AVX512(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride int, n int, add int)
TEXT ·tileF16AVX512(SB), NOSPLIT, $0-112
	MOVQ wstride+56(FP), BX
	SHLQ $1, BX
	TILE_SETUP
	TESTQ DX, DX
	JZ    tail

loop:
	VCVTPH2PS (R8)(AX*2), Z16
	VCVTPH2PS (R9)(AX*2), Z17
	VCVTPH2PS (R10)(AX*2), Z18
	VCVTPH2PS (R11)(AX*2), Z19
	TILE_LOADX
	TILE_FMA
	ADDQ $16, AX
	CMPQ AX, DX
	JLT  loop

tail:
	ANDQ  $15, CX
	JZ    reduce
	TILE_TAILMASK
	VMOVDQU16.Z (R8)(AX*2), K1, Y16
	VMOVDQU16.Z (R9)(AX*2), K1, Y17
	VMOVDQU16.Z (R10)(AX*2), K1, Y18
	VMOVDQU16.Z (R11)(AX*2), K1, Y19
	VCVTPH2PS   Y16, Z16
	VCVTPH2PS   Y17, Z17
	VCVTPH2PS   Y18, Z18
	VCVTPH2PS   Y19, Z19
	TILE_LOADX_MASKED
	TILE_FMA

reduce:
	TILE_STORE
	VZEROUPPER
	RET

// func tileBF16AVX512(y []float32, ldy int, w []uint16, wstride int, x []float32, xstride int, n int, add int)
TEXT ·tileBF16AVX512(SB), NOSPLIT, $0-112
	MOVQ wstride+56(FP), BX
	SHLQ $1, BX
	TILE_SETUP
	TESTQ DX, DX
	JZ    tail

loop:
	VPMOVZXWD (R8)(AX*2), Z16
	VPMOVZXWD (R9)(AX*2), Z17
	VPMOVZXWD (R10)(AX*2), Z18
	VPMOVZXWD (R11)(AX*2), Z19
	VPSLLD    $16, Z16, Z16
	VPSLLD    $16, Z17, Z17
	VPSLLD    $16, Z18, Z18
	VPSLLD    $16, Z19, Z19
	TILE_LOADX
	TILE_FMA
	ADDQ $16, AX
	CMPQ AX, DX
	JLT  loop

tail:
	ANDQ  $15, CX
	JZ    reduce
	TILE_TAILMASK
	VMOVDQU16.Z (R8)(AX*2), K1, Y16
	VMOVDQU16.Z (R9)(AX*2), K1, Y17
	VMOVDQU16.Z (R10)(AX*2), K1, Y18
	VMOVDQU16.Z (R11)(AX*2), K1, Y19
	VPMOVZXWD   Y16, Z16
	VPMOVZXWD   Y17, Z17
	VPMOVZXWD   Y18, Z18
	VPMOVZXWD   Y19, Z19
	VPSLLD      $16, Z16, Z16
	VPSLLD      $16, Z17, Z17
	VPSLLD      $16, Z18, Z18
	VPSLLD      $16, Z19, Z19
	TILE_LOADX_MASKED
	TILE_FMA

reduce:
	TILE_STORE
	VZEROUPPER
	RET

