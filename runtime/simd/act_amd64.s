//go:build amd64 && !noasm

#include "textflag.h"

// exp in float32 is Cephes' expf: k = round(z·log2 e), r = z − k·ln 2 in two
// parts (C1 + C2), p(r) of degree 7, then p·2^k with VSCALEFPS (which also
// gives 0 and +Inf past the float32 range). z is clamped to ±88.72 so that k
// stays finite. Constants: log2 e, C1, C2, the polynomial p0..p5, 1, ±88.72
// in Z31..Z20.

#define EXP_CONSTS \
	MOVL         $0x3fb8aa3b, AX; \
	VPBROADCASTD AX, Z31; \
	MOVL         $0x3f318000, AX; \
	VPBROADCASTD AX, Z30; \
	MOVL         $0xb95e8083, AX; \
	VPBROADCASTD AX, Z29; \
	MOVL         $0x39506967, AX; \
	VPBROADCASTD AX, Z28; \
	MOVL         $0x3ab743ce, AX; \
	VPBROADCASTD AX, Z27; \
	MOVL         $0x3c088908, AX; \
	VPBROADCASTD AX, Z26; \
	MOVL         $0x3d2aa9c1, AX; \
	VPBROADCASTD AX, Z25; \
	MOVL         $0x3e2aaaaa, AX; \
	VPBROADCASTD AX, Z24; \
	MOVL         $0x3f000000, AX; \
	VPBROADCASTD AX, Z23; \
	MOVL         $0x3f800000, AX; \
	VPBROADCASTD AX, Z22; \
	MOVL         $0x42b17218, AX; \
	VPBROADCASTD AX, Z21; \
	MOVL         $0xc2b17218, AX; \
	VPBROADCASTD AX, Z20

// EXP_Z1 sets Z4 = exp(Z1), using Z2, Z3, Z5 (and clamping Z1).
#define EXP_Z1 \
	VMINPS      Z21, Z1, Z1; \
	VMAXPS      Z20, Z1, Z1; \
	VMULPS      Z31, Z1, Z2; \
	VRNDSCALEPS $0x08, Z2, Z2; \
	VMOVAPS     Z1, Z3; \
	VFNMADD231PS Z30, Z2, Z3; \
	VFNMADD231PS Z29, Z2, Z3; \
	VMOVAPS     Z28, Z4; \
	VFMADD213PS Z27, Z3, Z4; \
	VFMADD213PS Z26, Z3, Z4; \
	VFMADD213PS Z25, Z3, Z4; \
	VFMADD213PS Z24, Z3, Z4; \
	VFMADD213PS Z23, Z3, Z4; \
	VMULPS      Z3, Z3, Z5; \
	VFMADD213PS Z3, Z5, Z4; \
	VADDPS      Z22, Z4, Z4; \
	VSCALEFPS   Z2, Z4, Z4

// func siluMulAVX512(g, u []float32)
//
// g[i] = silu(g[i])·u[i] = g·u / (1 + exp(−g)) for len(g), a multiple of 16.
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-48
	MOVQ         g_base+0(FP), DI
	MOVQ         g_len+8(FP), CX
	MOVQ         u_base+24(FP), SI
	SHRQ         $4, CX
	JZ           sdone
	EXP_CONSTS

sloop:
	VMOVUPS     (DI), Z0              // x
	VXORPS      Z1, Z1, Z1
	VSUBPS      Z0, Z1, Z1            // z = −x
	EXP_Z1
	VADDPS      Z22, Z4, Z4           // 1 + exp(−x)
	VMULPS      (SI), Z0, Z0          // x·u
	VDIVPS      Z4, Z0, Z0
	VMOVUPS     Z0, (DI)
	ADDQ        $64, DI
	ADDQ        $64, SI
	DECQ        CX
	JNZ         sloop
	VZEROUPPER

sdone:
	RET

// func softmaxAVX512(w []float32, scale float32)
//
// w[i] = exp(scale·(w[i] − max w)) / Σ, for len(w) ≥ 1, scale > 0. Three
// passes: max, exp and sum (16 float32 lanes), scale by 1/Σ. The last
// (partial or full) vector of each pass is masked.
TEXT ·softmaxAVX512(SB), NOSPLIT, $0-28
	MOVQ          w_base+0(FP), DI
	MOVQ          w_len+8(FP), CX
	// K1 = mask of the last (partial or full) vector, BX = whole vectors
	// before it.
	LEAQ          -1(CX), BX
	SHRQ          $4, BX
	MOVQ          CX, AX
	SUBQ          $1, AX
	ANDQ          $15, AX
	INCQ          AX
	MOVQ          AX, CX
	MOVL          $1, DX
	SHLL          CX, DX
	DECL          DX
	KMOVW         DX, K1
	MOVL          $0xff800000, AX       // −Inf
	VPBROADCASTD  AX, Z6
	MOVQ          DI, SI
	MOVQ          BX, R8
	TESTQ         R8, R8
	JZ            smaxlast

smax:
	VMAXPS        (SI), Z6, Z6
	ADDQ          $64, SI
	DECQ          R8
	JNZ           smax

smaxlast:
	VMOVUPS.Z     (SI), K1, Z7
	VMAXPS        Z7, Z6, K1, Z6
	VEXTRACTF64X4 $1, Z6, Y7
	VMAXPS        Y7, Y6, Y6
	VEXTRACTF128  $1, Y6, X7
	VMAXPS        X7, X6, X6
	VMOVHLPS      X6, X6, X7
	VMAXPS        X7, X6, X6
	VMOVSHDUP     X6, X7
	VMAXSS        X7, X6, X6
	VBROADCASTSS  X6, Z6                // max
	VBROADCASTSS  scale+24(FP), Z7      // scale
	EXP_CONSTS
	VXORPS        Z8, Z8, Z8            // Σ lanes
	MOVQ          DI, SI
	MOVQ          BX, R8
	TESTQ         R8, R8
	JZ            sexplast

sexp:
	VMOVUPS       (SI), Z1
	VSUBPS        Z6, Z1, Z1
	VMULPS        Z7, Z1, Z1
	EXP_Z1
	VMOVUPS       Z4, (SI)
	VADDPS        Z4, Z8, Z8
	ADDQ          $64, SI
	DECQ          R8
	JNZ           sexp

sexplast:
	VMOVUPS.Z     (SI), K1, Z1
	VSUBPS        Z6, Z1, Z1
	VMULPS        Z7, Z1, Z1
	EXP_Z1
	VMOVUPS       Z4, K1, (SI)
	VADDPS        Z4, Z8, K1, Z8
	VEXTRACTF64X4 $1, Z8, Y9
	VADDPS        Y9, Y8, Y8
	VEXTRACTF128  $1, Y8, X9
	VADDPS        X9, X8, X8
	VMOVHLPS      X8, X8, X9
	VADDPS        X9, X8, X8
	VMOVSHDUP     X8, X9
	VADDSS        X9, X8, X8            // Σ
	VDIVSS        X8, X22, X9           // 1/Σ (Z22 = 1)
	VBROADCASTSS  X9, Z9
	MOVQ          DI, SI
	MOVQ          BX, R8
	TESTQ         R8, R8
	JZ            snormlast

snorm:
	VMULPS        (SI), Z9, Z10
	VMOVUPS       Z10, (SI)
	ADDQ          $64, SI
	DECQ          R8
	JNZ           snorm

snormlast:
	VMOVUPS.Z     (SI), K1, Z10
	VMULPS        Z9, Z10, Z10
	VMOVUPS       Z10, K1, (SI)
	VZEROUPPER
	RET
