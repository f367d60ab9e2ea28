//go:build amd64 && !noasm

#include "textflag.h"

// q8 kernels. Each takes whole groups only: len(xs) groups of `group`
// elements, group a multiple of 32. A group's integer dot product is built
// exactly in int32 lanes, converted to float (exact: |sum| < 2^24) and
// accumulated as d·sum with d = f16(ws[g])·xs[g].
//
// AVX2 path: VPMADDUBSW needs an unsigned and a signed operand, so it
// multiplies |w| by sign(w)·x. This is exact as long as x ≠ −128 (negating
// −128 wraps); QuantizeQ8 produces values in [−127, 127].
//
// VNNI path: VPDPBUSD multiplies unsigned by signed bytes and adds four
// products into each int32 lane without saturation. It is fed w+128 (w XOR
// 0x80, always in 0..255) and x; the excess 128·Σx is accumulated alongside
// by VPDPBUSD(0x80…, x) and subtracted per group. Exact for every int8 input.

// Y15 = 0x0001 in every int16 lane (AVX2 path: VPMADDWD pair sums).
#define ONES16_Y15 \
	MOVL         $0x00010001, AX; \
	VMOVD        AX, X15; \
	VPBROADCASTD X15, Y15

// Y14 = 0x80 in every byte (VNNI path).
#define C80_Y14 \
	MOVL         $0x80808080, AX; \
	VMOVD        AX, X14; \
	VPBROADCASTD X14, Y14

// The scale macros start from a zeroing idiom so that VPINSRW does not
// carry a dependency on the previous group's scale through the register.

// Q8SCALE_Y6 sets Y6 to f16(*BX)·*DX in every lane.
#define Q8SCALE_Y6 \
	VPXOR        X6, X6, X6; \
	VPINSRW      $0, (BX), X6, X6; \
	VCVTPH2PS    X6, X6; \
	VMULSS       (DX), X6, X6; \
	VBROADCASTSS X6, Y6

// Q8SCALE4 stores d_r = f16(ws_r[g])·xs[g] for the four rows (scale row
// pointers R12, R13, BX, SI; xs pointer DX) at 0(SP)..12(SP).
#define Q8SCALE4 \
	VPXOR        X9, X9, X9; \
	VPINSRW      $0, (R12), X9, X9; \
	VPINSRW      $1, (R13), X9, X9; \
	VPINSRW      $2, (BX), X9, X9; \
	VPINSRW      $3, (SI), X9, X9; \
	VCVTPH2PS    X9, X9; \
	VBROADCASTSS (DX), X10; \
	VMULPS       X10, X9, X9; \
	VMOVUPS      X9, (SP)

// Q8ACC4 converts the int32 group sums Y0..Y3 to float and accumulates
// d_r·sum into Y4..Y7.
#define Q8ACC4 \
	VCVTDQ2PS    Y0, Y0; \
	VCVTDQ2PS    Y1, Y1; \
	VCVTDQ2PS    Y2, Y2; \
	VCVTDQ2PS    Y3, Y3; \
	VBROADCASTSS (SP), Y10; \
	VBROADCASTSS 4(SP), Y11; \
	VBROADCASTSS 8(SP), Y12; \
	VBROADCASTSS 12(SP), Y13; \
	VFMADD231PS  Y10, Y0, Y4; \
	VFMADD231PS  Y11, Y1, Y5; \
	VFMADD231PS  Y12, Y2, Y6; \
	VFMADD231PS  Y13, Y3, Y7

// ROWS4 sets R9..R11 to R8 plus one, two, three times REG.
#define ROWS4(REG) \
	LEAQ (R8)(REG*1), R9; \
	LEAQ (R9)(REG*1), R10; \
	LEAQ (R10)(REG*1), R11

// SROWS4 sets R13, BX, SI to the scale row R12 plus one, two, three times
// REG.
#define SROWS4(REG) \
	LEAQ (R12)(REG*1), R13; \
	LEAQ (R13)(REG*1), BX; \
	LEAQ (BX)(REG*1), SI

// Q8X4_SETUP loads the x4 arguments: quant rows R8..R11, x DI, scale rows
// R12, R13, BX, SI, xs DX, group count CX; clears Y4..Y7.
#define Q8X4_SETUP \
	MOVQ   wq_base+8(FP), R8; \
	MOVQ   stride+56(FP), AX; \
	ROWS4(AX); \
	MOVQ   ws_base+32(FP), R12; \
	MOVQ   sstride+64(FP), AX; \
	SHLQ   $1, AX; \
	SROWS4(AX); \
	MOVQ   xq_base+72(FP), DI; \
	MOVQ   xs_base+96(FP), DX; \
	MOVQ   xs_len+104(FP), CX; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7

// Q8X4_NEXT advances the scale pointers by one group.
#define Q8X4_NEXT \
	ADDQ $2, R12; \
	ADDQ $2, R13; \
	ADDQ $2, BX; \
	ADDQ $2, SI; \
	ADDQ $4, DX

// func dotQ8AVX2(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-108
	MOVQ   wq_base+0(FP), SI
	MOVQ   ws_base+24(FP), BX
	MOVQ   xq_base+48(FP), DI
	MOVQ   xs_base+72(FP), DX
	MOVQ   xs_len+80(FP), CX
	MOVQ   group+96(FP), R8
	SHRQ   $5, R8
	ONES16_Y15
	VXORPS Y0, Y0, Y0
	TESTQ  CX, CX
	JZ     done

group:
	MOVQ R8, R9
	VPXOR Y2, Y2, Y2

chunk:
	VMOVDQU    (SI), Y4
	VMOVDQU    (DI), Y5
	VPSIGNB    Y4, Y5, Y5
	VPABSB     Y4, Y4
	VPMADDUBSW Y5, Y4, Y4
	VPMADDWD   Y15, Y4, Y4
	VPADDD     Y4, Y2, Y2
	ADDQ       $32, SI
	ADDQ       $32, DI
	DECQ       R9
	JNZ        chunk

	Q8SCALE_Y6
	VCVTDQ2PS   Y2, Y2
	VFMADD231PS Y6, Y2, Y0
	ADDQ        $2, BX
	ADDQ        $4, DX
	DECQ        CX
	JNZ         group

done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+104(FP)
	RET

// func dotQ8x4AVX2(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int)
TEXT ·dotQ8x4AVX2(SB), NOSPLIT, $16-128
	Q8X4_SETUP
	ONES16_Y15
	TESTQ CX, CX
	JZ    done

group:
	MOVQ  group+120(FP), AX
	SHRQ  $5, AX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

chunk:
	VMOVDQU    (DI), Y8
	VMOVDQU    (R8), Y9
	VPSIGNB    Y9, Y8, Y10
	VPABSB     Y9, Y9
	VPMADDUBSW Y10, Y9, Y9
	VPMADDWD   Y15, Y9, Y9
	VPADDD     Y9, Y0, Y0
	VMOVDQU    (R9), Y11
	VPSIGNB    Y11, Y8, Y12
	VPABSB     Y11, Y11
	VPMADDUBSW Y12, Y11, Y11
	VPMADDWD   Y15, Y11, Y11
	VPADDD     Y11, Y1, Y1
	VMOVDQU    (R10), Y9
	VPSIGNB    Y9, Y8, Y10
	VPABSB     Y9, Y9
	VPMADDUBSW Y10, Y9, Y9
	VPMADDWD   Y15, Y9, Y9
	VPADDD     Y9, Y2, Y2
	VMOVDQU    (R11), Y11
	VPSIGNB    Y11, Y8, Y12
	VPABSB     Y11, Y11
	VPMADDUBSW Y12, Y11, Y11
	VPMADDWD   Y15, Y11, Y11
	VPADDD     Y11, Y3, Y3
	ADDQ       $32, R8
	ADDQ       $32, R9
	ADDQ       $32, R10
	ADDQ       $32, R11
	ADDQ       $32, DI
	DECQ       AX
	JNZ        chunk

	Q8SCALE4
	Q8ACC4
	Q8X4_NEXT
	DECQ CX
	JNZ  group

done:
	VMOVAPS Y4, Y0
	VMOVAPS Y5, Y1
	VMOVAPS Y6, Y2
	VMOVAPS Y7, Y3
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	MOVQ         dst+0(FP), R8
	VMOVUPS      X0, (R8)
	VZEROUPPER
	RET

// The VNNI kernels walk the row in blocks of up to eight groups. At the
// start of a block they compute the eight combined scales d_g of each row
// with masked (fault-free past the end) loads, VCVTPH2PS and one VMULPS, and
// park them on the stack; each group then needs a single FMA with an
// embedded broadcast of its d_g. Groups remaining: R15; block size: CX·4
// bytes of scales; position in block: R14 (bytes).

// Q8VNNI_BLOCK sets CX = 4·min(8, R15) and K1 to the block's lane mask.
#define Q8VNNI_BLOCK \
	MOVQ  R15, CX; \
	CMPQ  CX, $8; \
	JLE   2(PC); \
	MOVQ  $8, CX; \
	MOVL  $1, AX; \
	SHLL  CX, AX; \
	DECL  AX; \
	KMOVW AX, K1; \
	SHLQ  $2, CX; \
	XORQ  R14, R14

// func dotQ8VNNI(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32
TEXT ·dotQ8VNNI(SB), NOSPLIT, $32-108
	MOVQ   wq_base+0(FP), SI
	MOVQ   ws_base+24(FP), BX
	MOVQ   xq_base+48(FP), DI
	MOVQ   xs_base+72(FP), DX
	MOVQ   xs_len+80(FP), R15
	MOVQ   group+96(FP), R8
	SHRQ   $5, R8
	C80_Y14
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	TESTQ  R15, R15
	JZ     done

block:
	Q8VNNI_BLOCK
	VMOVDQU16.Z (BX), K1, X6
	VCVTPH2PS   X6, Y6
	VMOVUPS.Z   (DX), K1, Y7
	VMULPS      Y7, Y6, Y6
	VMOVUPS     Y6, (SP)

group:
	MOVQ  R8, R9
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

chunk:
	VMOVDQU  (DI), Y5
	VPXOR    (SI), Y14, Y4
	VPDPBUSD Y5, Y4, Y2
	VPDPBUSD Y5, Y14, Y3
	ADDQ     $32, SI
	ADDQ     $32, DI
	DECQ     R9
	JNZ      chunk

	VPSUBD           Y3, Y2, Y2
	VCVTDQ2PS        Y2, Y2
	VFMADD231PS.BCST (SP)(R14*1), Y2, Y0
	VMOVAPS          Y0, Y3
	VMOVAPS          Y1, Y0
	VMOVAPS          Y3, Y1
	ADDQ             $4, R14
	CMPQ             R14, CX
	JLT              group

	ADDQ CX, DX
	SHRQ $1, CX
	ADDQ CX, BX
	SHRQ $1, CX
	SUBQ CX, R15
	JNZ  block

done:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+104(FP)
	RET

// func dotQ8x4VNNI(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int)
TEXT ·dotQ8x4VNNI(SB), NOSPLIT, $128-128
	Q8X4_SETUP
	MOVQ CX, R15
	C80_Y14
	TESTQ R15, R15
	JZ    done

block:
	Q8VNNI_BLOCK
	VMOVUPS.Z   (DX), K1, Y13
	VMOVDQU16.Z (R12), K1, X9
	VCVTPH2PS   X9, Y9
	VMULPS      Y13, Y9, Y9
	VMOVUPS     Y9, (SP)
	VMOVDQU16.Z (R13), K1, X9
	VCVTPH2PS   X9, Y9
	VMULPS      Y13, Y9, Y9
	VMOVUPS     Y9, 32(SP)
	VMOVDQU16.Z (BX), K1, X9
	VCVTPH2PS   X9, Y9
	VMULPS      Y13, Y9, Y9
	VMOVUPS     Y9, 64(SP)
	VMOVDQU16.Z (SI), K1, X9
	VCVTPH2PS   X9, Y9
	VMULPS      Y13, Y9, Y9
	VMOVUPS     Y9, 96(SP)

group:
	MOVQ  group+120(FP), AX
	SHRQ  $5, AX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y15, Y15, Y15

chunk:
	VMOVDQU  (DI), Y8
	VPDPBUSD Y8, Y14, Y15
	VPXOR    (R8), Y14, Y9
	VPXOR    (R9), Y14, Y10
	VPXOR    (R10), Y14, Y11
	VPXOR    (R11), Y14, Y12
	VPDPBUSD Y8, Y9, Y0
	VPDPBUSD Y8, Y10, Y1
	VPDPBUSD Y8, Y11, Y2
	VPDPBUSD Y8, Y12, Y3
	ADDQ     $32, R8
	ADDQ     $32, R9
	ADDQ     $32, R10
	ADDQ     $32, R11
	ADDQ     $32, DI
	DECQ     AX
	JNZ      chunk

	VPSUBD           Y15, Y0, Y0
	VPSUBD           Y15, Y1, Y1
	VPSUBD           Y15, Y2, Y2
	VPSUBD           Y15, Y3, Y3
	VCVTDQ2PS        Y0, Y0
	VCVTDQ2PS        Y1, Y1
	VCVTDQ2PS        Y2, Y2
	VCVTDQ2PS        Y3, Y3
	VFMADD231PS.BCST (SP)(R14*1), Y0, Y4
	VFMADD231PS.BCST 32(SP)(R14*1), Y1, Y5
	VFMADD231PS.BCST 64(SP)(R14*1), Y2, Y6
	VFMADD231PS.BCST 96(SP)(R14*1), Y3, Y7
	ADDQ             $4, R14
	CMPQ             R14, CX
	JLT              group

	ADDQ CX, DX
	SHRQ $1, CX
	ADDQ CX, R12
	ADDQ CX, R13
	ADDQ CX, BX
	ADDQ CX, SI
	SHRQ $1, CX
	SUBQ CX, R15
	JNZ  block

done:
	VMOVAPS      Y4, Y0
	VMOVAPS      Y5, Y1
	VMOVAPS      Y6, Y2
	VMOVAPS      Y7, Y3
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	MOVQ         dst+0(FP), R8
	VMOVUPS      X0, (R8)
	VZEROUPPER
	RET

// The 512-bit VNNI kernels are the same algorithm with 64-byte chunks, for
// group sizes that are a multiple of 64 (half the instructions per byte).

// Z14 = 0x80 in every byte.
#define C80_Z14 \
	MOVL         $0x80808080, AX; \
	VMOVD        AX, X14; \
	VPBROADCASTD X14, Z14

// func dotQ8VNNI512(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32
TEXT ·dotQ8VNNI512(SB), NOSPLIT, $32-108
	MOVQ   wq_base+0(FP), SI
	MOVQ   ws_base+24(FP), BX
	MOVQ   xq_base+48(FP), DI
	MOVQ   xs_base+72(FP), DX
	MOVQ   xs_len+80(FP), R15
	MOVQ   group+96(FP), R8
	SHRQ   $6, R8
	C80_Z14
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	TESTQ  R15, R15
	JZ     done

block:
	Q8VNNI_BLOCK
	VMOVDQU16.Z (BX), K1, X6
	VCVTPH2PS   X6, Y6
	VMOVUPS.Z   (DX), K1, Y7
	VMULPS      Y7, Y6, Y6
	VMOVUPS     Y6, (SP)

group:
	MOVQ  R8, R9
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3

chunk:
	VMOVDQU64 (DI), Z5
	VPXORD    (SI), Z14, Z4
	VPDPBUSD Z5, Z4, Z2
	VPDPBUSD Z5, Z14, Z3
	ADDQ     $64, SI
	ADDQ     $64, DI
	DECQ     R9
	JNZ      chunk

	VPSUBD           Z3, Z2, Z2
	VCVTDQ2PS        Z2, Z2
	VFMADD231PS.BCST (SP)(R14*1), Z2, Z0
	VMOVAPS          Z0, Z3
	VMOVAPS          Z1, Z0
	VMOVAPS          Z3, Z1
	ADDQ             $4, R14
	CMPQ             R14, CX
	JLT              group

	ADDQ CX, DX
	SHRQ $1, CX
	ADDQ CX, BX
	SHRQ $1, CX
	SUBQ CX, R15
	JNZ  block

done:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+104(FP)
	RET

// func dotQ8x4VNNI512(dst *[4]float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, group int)
TEXT ·dotQ8x4VNNI512(SB), NOSPLIT, $128-128
	Q8X4_SETUP
	MOVQ CX, R15
	C80_Z14
	TESTQ R15, R15
	JZ    done

block:
	Q8VNNI_BLOCK
	VMOVUPS.Z   (DX), K1, Y13
	VMOVDQU16.Z (R12), K1, X9
	VCVTPH2PS   X9, Y9
	VMULPS      Y13, Y9, Y9
	VMOVUPS     Y9, (SP)
	VMOVDQU16.Z (R13), K1, X9
	VCVTPH2PS   X9, Y9
	VMULPS      Y13, Y9, Y9
	VMOVUPS     Y9, 32(SP)
	VMOVDQU16.Z (BX), K1, X9
	VCVTPH2PS   X9, Y9
	VMULPS      Y13, Y9, Y9
	VMOVUPS     Y9, 64(SP)
	VMOVDQU16.Z (SI), K1, X9
	VCVTPH2PS   X9, Y9
	VMULPS      Y13, Y9, Y9
	VMOVUPS     Y9, 96(SP)

group:
	MOVQ  group+120(FP), AX
	SHRQ  $6, AX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z15, Z15, Z15

chunk:
	VMOVDQU64 (DI), Z8
	VPDPBUSD Z8, Z14, Z15
	VPXORD    (R8), Z14, Z9
	VPXORD    (R9), Z14, Z10
	VPXORD    (R10), Z14, Z11
	VPXORD    (R11), Z14, Z12
	VPDPBUSD Z8, Z9, Z0
	VPDPBUSD Z8, Z10, Z1
	VPDPBUSD Z8, Z11, Z2
	VPDPBUSD Z8, Z12, Z3
	ADDQ     $64, R8
	ADDQ     $64, R9
	ADDQ     $64, R10
	ADDQ     $64, R11
	ADDQ     $64, DI
	DECQ     AX
	JNZ      chunk

	VPSUBD           Z15, Z0, Z0
	VPSUBD           Z15, Z1, Z1
	VPSUBD           Z15, Z2, Z2
	VPSUBD           Z15, Z3, Z3
	VCVTDQ2PS        Z0, Z0
	VCVTDQ2PS        Z1, Z1
	VCVTDQ2PS        Z2, Z2
	VCVTDQ2PS        Z3, Z3
	VFMADD231PS.BCST (SP)(R14*1), Z0, Z4
	VFMADD231PS.BCST 32(SP)(R14*1), Z1, Z5
	VFMADD231PS.BCST 64(SP)(R14*1), Z2, Z6
	VFMADD231PS.BCST 96(SP)(R14*1), Z3, Z7
	ADDQ             $4, R14
	CMPQ             R14, CX
	JLT              group

	ADDQ CX, DX
	SHRQ $1, CX
	ADDQ CX, R12
	ADDQ CX, R13
	ADDQ CX, BX
	ADDQ CX, SI
	SHRQ $1, CX
	SUBQ CX, R15
	JNZ  block

done:
	VEXTRACTF64X4 $1, Z4, Y0
	VEXTRACTF64X4 $1, Z5, Y1
	VEXTRACTF64X4 $1, Z6, Y2
	VEXTRACTF64X4 $1, Z7, Y3
	VADDPS        Y4, Y0, Y0
	VADDPS        Y5, Y1, Y1
	VADDPS        Y6, Y2, Y2
	VADDPS        Y7, Y3, Y3
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	MOVQ         dst+0(FP), R8
	VMOVUPS      X0, (R8)
	VZEROUPPER
	RET

// The group-32 512-bit kernels cover two groups per 64-byte chunk. The two
// int32 half-vectors are scaled at once by [d_g ×8 | d_g+1 ×8], gathered
// from the block's scale vector with VPERMPS and an index vector that starts
// at [0 ×8 | 1 ×8] (Z18) and steps by 2 (Z17) per pair. A block with an odd
// number of groups (only the last one) finishes with one 256-bit group,
// accumulated separately so no 256-bit write clears a 512-bit accumulator.

// Q8PAIR_CONST sets Z18 = [0 ×8 | 1 ×8], Z17 = 2 in every lane.
#define Q8PAIR_CONST \
	MOVL         $0xff00, AX; \
	KMOVW        AX, K2; \
	VPXORD       Z18, Z18, Z18; \
	MOVL         $1, AX; \
	VPBROADCASTD AX, K2, Z18; \
	MOVL         $2, AX; \
	VPBROADCASTD AX, Z17

// func dotQ8VNNI32(wq []int8, ws []uint16, xq []int8, xs []float32, group int) float32
TEXT ·dotQ8VNNI32(SB), NOSPLIT, $32-108
	MOVQ   wq_base+0(FP), SI
	MOVQ   ws_base+24(FP), BX
	MOVQ   xq_base+48(FP), DI
	MOVQ   xs_base+72(FP), DX
	MOVQ   xs_len+80(FP), R15
	C80_Z14
	Q8PAIR_CONST
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z8, Z8, Z8
	TESTQ  R15, R15
	JZ     done

block:
	Q8VNNI_BLOCK
	VMOVDQU16.Z (BX), K1, X6
	VCVTPH2PS   X6, Y6
	VMOVUPS.Z   (DX), K1, Y7
	VMULPS      Y7, Y6, Y6
	VMOVUPS     Y6, (SP)
	VMOVDQA32   Z18, Z16
	MOVQ        CX, R9
	ANDQ        $-8, R9
	JZ          odd

pair:
	VMOVDQU64   (DI), Z5
	VPXORD      (SI), Z14, Z4
	VPXORD      Z2, Z2, Z2
	VPXORD      Z3, Z3, Z3
	VPDPBUSD    Z5, Z4, Z2
	VPDPBUSD    Z5, Z14, Z3
	VPSUBD      Z3, Z2, Z2
	VCVTDQ2PS   Z2, Z2
	VPERMPS     Z6, Z16, Z7
	VPADDD      Z17, Z16, Z16
	VFMADD231PS Z7, Z2, Z0
	VMOVAPS     Z0, Z3
	VMOVAPS     Z1, Z0
	VMOVAPS     Z3, Z1
	ADDQ        $64, SI
	ADDQ        $64, DI
	ADDQ        $8, R14
	CMPQ        R14, R9
	JLT         pair

odd:
	CMPQ             R14, CX
	JGE              next
	VMOVDQU          (DI), Y5
	VPXOR            (SI), Y14, Y4
	VPXOR            Y2, Y2, Y2
	VPXOR            Y3, Y3, Y3
	VPDPBUSD         Y5, Y4, Y2
	VPDPBUSD         Y5, Y14, Y3
	VPSUBD           Y3, Y2, Y2
	VCVTDQ2PS        Y2, Y2
	VFMADD231PS.BCST (SP)(R14*1), Y2, Y8
	ADDQ             $32, SI
	ADDQ             $32, DI

next:
	ADDQ CX, DX
	SHRQ $1, CX
	ADDQ CX, BX
	SHRQ $1, CX
	SUBQ CX, R15
	JNZ  block

done:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z8, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VADDPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VADDSS        X1, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+104(FP)
	RET

// Q8X4_PAIRROW handles one row of a pair step: w' = w XOR 0x80 from PTR,
// int sums into ACC (corrected by Z15 = 128·Σx), scaled by the row's pair
// scales from SCALES and added to FACC.
#define Q8X4_PAIRROW(PTR, ACC, TMP, SCALES, FACC) \
	VPXORD      (PTR), Z14, TMP; \
	VPXORD      ACC, ACC, ACC; \
	VPDPBUSD    Z8, TMP, ACC; \
	VPSUBD      Z15, ACC, ACC; \
	VCVTDQ2PS   ACC, ACC; \
	VPERMPS     SCALES, Z16, TMP; \
	VFMADD231PS TMP, ACC, FACC

// Q8X4_ROWSCALE loads eight scales of one row (from PTR, mask K1), widens
// them and multiplies by the activation scales in Y13.
#define Q8X4_ROWSCALE(PTR, DST) \
	VMOVDQU16.Z (PTR), K1, X9; \
	VCVTPH2PS   X9, DST; \
	VMULPS      Y13, DST, DST

// Q8X4_ODDROW handles one 32-byte group of one row (x in Y8, Σx term in Y15).
#define Q8X4_ODDROW(PTR, ACC, TMP, OFF, FACC) \
	VPXORD           (PTR), Y14, TMP; \
	VPXORD           ACC, ACC, ACC; \
	VPDPBUSD         Y8, TMP, ACC; \
	VPSUBD           Y15, ACC, ACC; \
	VCVTDQ2PS        ACC, ACC; \
	VFMADD231PS.BCST OFF(SP)(R14*1), ACC, FACC

// func dotQ8RowsVNNI32(y []float32, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, add int)
//
// y[r] (+)= row r times x for len(y) rows, a multiple of 4: row r's quants
// start at wq[r·stride], its scales at ws[r·sstride]; a row has len(xq) =
// 32·len(xs) quants. The quants of the next block and, at every step of
// eight groups, the scales of the next block are prefetched: the scale
// stream is too thin for the hardware prefetcher to pick up, and without
// it decode streams about 30 % slower.
TEXT ·dotQ8RowsVNNI32(SB), NOSPLIT, $184-144
	MOVQ   y_len+8(FP), AX
	SHRQ   $2, AX
	JZ     ret
	MOVQ   AX, 152(SP)
	MOVQ   y_base+0(FP), AX
	MOVQ   AX, 144(SP)
	MOVQ   wq_base+24(FP), R8
	MOVQ   R8, 168(SP)
	MOVQ   ws_base+48(FP), R12
	MOVQ   R12, 176(SP)
	// Quants are prefetched one block (four rows) and 512 bytes ahead,
	// the best of the distances measured.
	MOVQ   stride+72(FP), AX
	SHLQ   $2, AX
	ADDQ   $512, AX
	MOVQ   AX, 136(SP)
	MOVQ   sstride+80(FP), AX
	SHLQ   $3, AX
	MOVQ   AX, 160(SP)
	C80_Z14
	Q8PAIR_CONST

rowblk:
	MOVQ   stride+72(FP), AX
	ROWS4(AX)
	MOVQ   sstride+80(FP), AX
	SHLQ   $1, AX
	SROWS4(AX)
	MOVQ   xq_base+88(FP), DI
	MOVQ   xs_base+112(FP), DX
	MOVQ   xs_len+120(FP), CX
	MOVQ   CX, R15
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31

block:
	MOVQ       160(SP), AX
	PREFETCHT0 (R12)(AX*1)
	PREFETCHT0 (R13)(AX*1)
	PREFETCHT0 (BX)(AX*1)
	PREFETCHT0 (SI)(AX*1)
	Q8VNNI_BLOCK
	VMOVUPS.Z (DX), K1, Y13
	Q8X4_ROWSCALE(R12, Y20)
	Q8X4_ROWSCALE(R13, Y21)
	Q8X4_ROWSCALE(BX, Y22)
	Q8X4_ROWSCALE(SI, Y23)
	VMOVUPS   Y20, (SP)
	VMOVUPS   Y21, 32(SP)
	VMOVUPS   Y22, 64(SP)
	VMOVUPS   Y23, 96(SP)
	VMOVDQA32 Z18, Z16
	MOVQ      CX, AX
	ANDQ      $-8, AX
	JZ        odd
	MOVQ      AX, 128(SP)
	MOVQ      136(SP), AX

pair:
	PREFETCHT0 (R8)(AX*1)
	PREFETCHT0 (R9)(AX*1)
	PREFETCHT0 (R10)(AX*1)
	PREFETCHT0 (R11)(AX*1)
	VMOVDQU64 (DI), Z8
	VPXORD    Z15, Z15, Z15
	VPDPBUSD  Z8, Z14, Z15
	Q8X4_PAIRROW(R8, Z0, Z9, Z20, Z4)
	Q8X4_PAIRROW(R9, Z1, Z10, Z21, Z5)
	Q8X4_PAIRROW(R10, Z2, Z11, Z22, Z6)
	Q8X4_PAIRROW(R11, Z3, Z12, Z23, Z7)
	VPADDD    Z17, Z16, Z16
	ADDQ      $64, R8
	ADDQ      $64, R9
	ADDQ      $64, R10
	ADDQ      $64, R11
	ADDQ      $64, DI
	ADDQ      $8, R14
	CMPQ      R14, 128(SP)
	JLT       pair

odd:
	CMPQ     R14, CX
	JGE      next
	VMOVDQU  (DI), Y8
	VPXOR    Y15, Y15, Y15
	VPDPBUSD Y8, Y14, Y15
	Q8X4_ODDROW(R8, Y0, Y9, 0, Y28)
	Q8X4_ODDROW(R9, Y1, Y10, 32, Y29)
	Q8X4_ODDROW(R10, Y2, Y11, 64, Y30)
	Q8X4_ODDROW(R11, Y3, Y12, 96, Y31)
	ADDQ     $32, R8
	ADDQ     $32, R9
	ADDQ     $32, R10
	ADDQ     $32, R11
	ADDQ     $32, DI

next:
	ADDQ CX, DX
	SHRQ $1, CX
	ADDQ CX, R12
	ADDQ CX, R13
	ADDQ CX, BX
	ADDQ CX, SI
	SHRQ $1, CX
	SUBQ CX, R15
	JNZ  block

	VADDPS        Z28, Z4, Z4
	VADDPS        Z29, Z5, Z5
	VADDPS        Z30, Z6, Z6
	VADDPS        Z31, Z7, Z7
	VEXTRACTF64X4 $1, Z4, Y0
	VEXTRACTF64X4 $1, Z5, Y1
	VEXTRACTF64X4 $1, Z6, Y2
	VEXTRACTF64X4 $1, Z7, Y3
	VADDPS        Y4, Y0, Y0
	VADDPS        Y5, Y1, Y1
	VADDPS        Y6, Y2, Y2
	VADDPS        Y7, Y3, Y3
	VHADDPS       Y1, Y0, Y0
	VHADDPS       Y3, Y2, Y2
	VHADDPS       Y2, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	MOVQ          144(SP), AX
	MOVQ          add+136(FP), CX
	TESTQ         CX, CX
	JZ            store
	VADDPS        (AX), X0, X0

store:
	VMOVUPS X0, (AX)
	ADDQ    $16, AX
	MOVQ    AX, 144(SP)

	// Next block: four rows further.
	MOVQ    stride+72(FP), AX
	SHLQ    $2, AX
	ADDQ    168(SP), AX
	MOVQ    AX, 168(SP)
	MOVQ    AX, R8
	MOVQ    160(SP), AX
	ADDQ    176(SP), AX
	MOVQ    AX, 176(SP)
	MOVQ    AX, R12
	DECQ    152(SP)
	JNZ     rowblk
	VZEROUPPER

ret:
	RET



// func quantizeQ8AVX512(xq []int8, xs []float32, x []float32)
//
// quantizeQ8Go for len(xs) whole groups of 32: xs[g] = max|x|/127, and
// xq = round(x·(1/xs[g])) rounded half away from zero, as math.Round does
// (VCVTPS2DQ would round half to even): t = trunc(v), then t moves one away
// from zero where |v − t| ≥ 0.5. Every step is exact for |v| ≤ 127, so the
// result equals the Go reference bit for bit (NaN inputs excepted). A group
// whose max|x| is below 2^-120 is a zero group, as in the reference.
TEXT ·quantizeQ8AVX512(SB), NOSPLIT, $0-72
	MOVQ         xq_base+0(FP), DI
	MOVQ         xs_base+24(FP), DX
	MOVQ         xs_len+32(FP), CX
	MOVQ         x_base+48(FP), SI
	TESTQ        CX, CX
	JZ           qdone
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z31                // |·| mask
	MOVL         $0x80000000, AX
	VPBROADCASTD AX, Z30                // sign mask
	MOVL         $0x3f000000, AX
	VPBROADCASTD AX, Z29                // 0.5
	MOVL         $0x3f800000, AX
	VPBROADCASTD AX, Z28                // 1.0
	MOVL         $0x42fe0000, AX
	VMOVD        AX, X27                // 127.0
	MOVL         $0x3f800000, AX
	VMOVD        AX, X26                // 1.0
	MOVL         $0x03800000, AX
	VMOVD        AX, X25                // 2^-120

qloop:
	VMOVUPS       (SI), Z0
	VMOVUPS       64(SI), Z1
	VANDPS        Z31, Z0, Z2
	VANDPS        Z31, Z1, Z3
	VMAXPS        Z3, Z2, Z2
	VEXTRACTF64X4 $1, Z2, Y3
	VMAXPS        Y3, Y2, Y2
	VEXTRACTF128  $1, Y2, X3
	VMAXPS        X3, X2, X2
	VMOVHLPS      X2, X2, X3
	VMAXPS        X3, X2, X2
	VMOVSHDUP     X2, X3
	VMAXSS        X3, X2, X2            // amax
	VUCOMISS      X25, X2
	JCC           qnorm
	VXORPS        X2, X2, X2            // too small to invert: a zero group

qnorm:
	VDIVSS        X27, X2, X2           // d = amax/127
	VMOVSS        X2, (DX)
	VXORPS        X4, X4, X4
	VUCOMISS      X4, X2
	JEQ           qzero
	VDIVSS        X2, X26, X4           // inv = 1/d

qzero:
	VBROADCASTSS  X4, Z4
	VMULPS        Z4, Z0, Z0            // v = x·inv
	VMULPS        Z4, Z1, Z1
	VRNDSCALEPS   $0x0b, Z0, Z2         // t = trunc(v)
	VRNDSCALEPS   $0x0b, Z1, Z3
	VSUBPS        Z2, Z0, Z5            // v − t
	VSUBPS        Z3, Z1, Z6
	VANDPS        Z31, Z5, Z5
	VANDPS        Z31, Z6, Z6
	VCMPPS        $0x1d, Z29, Z5, K1    // |v − t| ≥ 0.5
	VCMPPS        $0x1d, Z29, Z6, K2
	VANDPS        Z30, Z0, Z5           // ±1 with v's sign
	VANDPS        Z30, Z1, Z6
	VORPS         Z28, Z5, Z5
	VORPS         Z28, Z6, Z6
	VADDPS        Z5, Z2, K1, Z2
	VADDPS        Z6, Z3, K2, Z3
	VCVTTPS2DQ    Z2, Z2
	VCVTTPS2DQ    Z3, Z3
	VPMOVSDB      Z2, (DI)
	VPMOVSDB      Z3, 16(DI)
	ADDQ          $128, SI
	ADDQ          $32, DI
	ADDQ          $4, DX
	DECQ          CX
	JNZ           qloop
	VZEROUPPER

qdone:
	RET

// func tileQ8x2VNNI(y []float32, ldy int, wq []int8, ws []uint16, stride, sstride int, xq []int8, xs []float32, xstride, xsstride, ng, rows, add int)
//
// The q8 matrix-matrix kernel: tiles of four weight rows × two tokens, over
// ng groups of 32 (ng even), for rows/4 consecutive tiles down the rows. Row r's quants are at wq[r·stride], its scales at
// ws[r·sstride]; token t's quants at xq[t·xstride], its scales at
// xs[t·xsstride]; the result for (r, t) goes to (add: is added to)
// y[t·ldy + r]. Each pair step loads four weight vectors and two activation
// vectors for eight VPDPBUSD; an int32 group sum is seeded with −128·Σx (so
// w XOR 0x80 can be the unsigned operand, as in the row kernels), converted,
// scaled by the row's weight scale and accumulated with the token's scale.
// acc[r][t] = Z(2r+t).
TEXT ·tileQ8x2VNNI(SB), NOSPLIT, $48-184
	MOVQ   wq_base+32(FP), AX
	MOVQ   AX, 16(SP)
	MOVQ   ws_base+56(FP), AX
	MOVQ   AX, 24(SP)
	MOVQ   y_base+0(FP), AX
	MOVQ   AX, 32(SP)
	MOVQ   rows+168(FP), AX
	SHRQ   $2, AX
	JZ     tret
	MOVQ   AX, 40(SP)
	MOVQ   xstride+144(FP), R15
	MOVQ   xsstride+152(FP), AX
	SHLQ   $2, AX
	MOVQ   AX, 8(SP)
	C80_Z14
	Q8PAIR_CONST
	VPXORD Z19, Z19, Z19

trowblk:
	MOVQ   16(SP), R8
	MOVQ   stride+80(FP), AX
	ROWS4(AX)
	MOVQ   24(SP), R12
	MOVQ   sstride+88(FP), AX
	SHLQ   $1, AX
	SROWS4(AX)
	MOVQ   xq_base+96(FP), DI
	MOVQ   xs_base+120(FP), DX
	MOVQ   ng+160(FP), AX
	MOVQ   AX, 0(SP)
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	TESTQ  AX, AX
	JZ     tdone

tblock:
	// Up to eight groups: mask K1, CX = count.
	MOVQ        0(SP), CX
	CMPQ        CX, $8
	JLE         2(PC)
	MOVQ        $8, CX
	MOVL        $1, AX
	SHLL        CX, AX
	DECL        AX
	KMOVW       AX, K1
	VMOVDQU16.Z (R12), K1, X24
	VCVTPH2PS   X24, Y24
	VMOVDQU16.Z (R13), K1, X25
	VCVTPH2PS   X25, Y25
	VMOVDQU16.Z (BX), K1, X26
	VCVTPH2PS   X26, Y26
	VMOVDQU16.Z (SI), K1, X27
	VCVTPH2PS   X27, Y27
	MOVQ        8(SP), AX
	VMOVUPS.Z   (DX), K1, Y28
	VMOVUPS.Z   (DX)(AX*1), K1, Y29
	VMOVDQA32   Z18, Z16
	MOVQ        CX, R14
	SHRQ        $1, R14

tpair:
	VPXORD      (R8), Z14, Z8
	VPXORD      (R9), Z14, Z9
	VPXORD      (R10), Z14, Z10
	VPXORD      (R11), Z14, Z11
	VPERMPS     Z24, Z16, Z20
	VPERMPS     Z25, Z16, Z21
	VPERMPS     Z26, Z16, Z22
	VPERMPS     Z27, Z16, Z23
	VMOVDQU64   (DI), Z12
	VPXORD      Z13, Z13, Z13
	VPDPBUSD    Z12, Z14, Z13
	VPSUBD      Z13, Z19, Z13
	VPERMPS     Z28, Z16, Z30
	VMOVDQA32   Z13, Z15
	VPDPBUSD    Z12, Z8, Z15
	VCVTDQ2PS   Z15, Z15
	VMULPS      Z20, Z15, Z15
	VFMADD231PS Z30, Z15, Z0
	VMOVDQA32   Z13, Z15
	VPDPBUSD    Z12, Z9, Z15
	VCVTDQ2PS   Z15, Z15
	VMULPS      Z21, Z15, Z15
	VFMADD231PS Z30, Z15, Z2
	VMOVDQA32   Z13, Z15
	VPDPBUSD    Z12, Z10, Z15
	VCVTDQ2PS   Z15, Z15
	VMULPS      Z22, Z15, Z15
	VFMADD231PS Z30, Z15, Z4
	VMOVDQA32   Z13, Z15
	VPDPBUSD    Z12, Z11, Z15
	VCVTDQ2PS   Z15, Z15
	VMULPS      Z23, Z15, Z15
	VFMADD231PS Z30, Z15, Z6
	VMOVDQU64   (DI)(R15*1), Z12
	VPXORD      Z13, Z13, Z13
	VPDPBUSD    Z12, Z14, Z13
	VPSUBD      Z13, Z19, Z13
	VPERMPS     Z29, Z16, Z30
	VMOVDQA32   Z13, Z15
	VPDPBUSD    Z12, Z8, Z15
	VCVTDQ2PS   Z15, Z15
	VMULPS      Z20, Z15, Z15
	VFMADD231PS Z30, Z15, Z1
	VMOVDQA32   Z13, Z15
	VPDPBUSD    Z12, Z9, Z15
	VCVTDQ2PS   Z15, Z15
	VMULPS      Z21, Z15, Z15
	VFMADD231PS Z30, Z15, Z3
	VMOVDQA32   Z13, Z15
	VPDPBUSD    Z12, Z10, Z15
	VCVTDQ2PS   Z15, Z15
	VMULPS      Z22, Z15, Z15
	VFMADD231PS Z30, Z15, Z5
	VMOVDQA32   Z13, Z15
	VPDPBUSD    Z12, Z11, Z15
	VCVTDQ2PS   Z15, Z15
	VMULPS      Z23, Z15, Z15
	VFMADD231PS Z30, Z15, Z7
	VPADDD      Z17, Z16, Z16
	ADDQ        $64, R8
	ADDQ        $64, R9
	ADDQ        $64, R10
	ADDQ        $64, R11
	ADDQ        $64, DI
	DECQ        R14
	JNZ         tpair

	SUBQ CX, 0(SP)
	SHLQ $1, CX
	ADDQ CX, R12
	ADDQ CX, R13
	ADDQ CX, BX
	ADDQ CX, SI
	SHLQ $1, CX
	ADDQ CX, DX
	CMPQ 0(SP), $0
	JNE  tblock

tdone:
	VEXTRACTF64X4 $1, Z0, Y8
	VADDPS        Y8, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y8
	VADDPS        Y8, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y8
	VADDPS        Y8, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y8
	VADDPS        Y8, Y3, Y3
	VEXTRACTF64X4 $1, Z4, Y8
	VADDPS        Y8, Y4, Y4
	VEXTRACTF64X4 $1, Z5, Y8
	VADDPS        Y8, Y5, Y5
	VEXTRACTF64X4 $1, Z6, Y8
	VADDPS        Y8, Y6, Y6
	VEXTRACTF64X4 $1, Z7, Y8
	VADDPS        Y8, Y7, Y7
	MOVQ 32(SP), DI
	MOVQ ldy+24(FP), BX
	SHLQ $2, BX
	MOVQ add+176(FP), DX
	VHADDPS      Y2, Y0, Y0
	VHADDPS      Y6, Y4, Y4
	VHADDPS      Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X2
	VADDPS       X2, X0, X0
	TESTQ        DX, DX
	JZ           2(PC)
	VADDPS       (DI), X0, X0
	VMOVUPS      X0, (DI)
	ADDQ         BX, DI
	VHADDPS      Y3, Y1, Y1
	VHADDPS      Y7, Y5, Y5
	VHADDPS      Y5, Y1, Y1
	VEXTRACTF128 $1, Y1, X3
	VADDPS       X3, X1, X1
	TESTQ        DX, DX
	JZ           2(PC)
	VADDPS       (DI), X1, X1
	VMOVUPS      X1, (DI)
	// Next four rows.
	MOVQ 32(SP), AX
	ADDQ $16, AX
	MOVQ AX, 32(SP)
	MOVQ stride+80(FP), AX
	SHLQ $2, AX
	ADDQ AX, 16(SP)
	MOVQ sstride+88(FP), AX
	SHLQ $3, AX
	ADDQ AX, 24(SP)
	DECQ 40(SP)
	JNZ  trowblk
	VZEROUPPER

tret:
	RET
