//go:build amd64 && !noasm

#include "textflag.h"

// func siluMulAVX512(g, u []float32)
//
// g[i] = silu(g[i])·u[i] = g·u / (1 + exp(−g)) for len(g), a multiple of 16.
// exp is Cephes' expf: k = round(z·log2 e), r = z − k·ln 2 in two parts, a
// degree-7 polynomial, then ·2^k with VSCALEFPS (which also gives 0 and +Inf
// past the float32 range, so no clamping is needed beyond keeping k finite).
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-48
	MOVQ         g_base+0(FP), DI
	MOVQ         g_len+8(FP), CX
	MOVQ         u_base+24(FP), SI
	SHRQ         $4, CX
	JZ           sdone
	MOVL         $0x3fb8aa3b, AX       // log2 e
	VPBROADCASTD AX, Z31
	MOVL         $0x3f318000, AX       // C1 = 0.693359375
	VPBROADCASTD AX, Z30
	MOVL         $0xb95e8083, AX       // C2 = −2.12194440e−4
	VPBROADCASTD AX, Z29
	MOVL         $0x39506967, AX       // p0 = 1.9875691500e−4
	VPBROADCASTD AX, Z28
	MOVL         $0x3ab743ce, AX       // p1 = 1.3981999507e−3
	VPBROADCASTD AX, Z27
	MOVL         $0x3c088908, AX       // p2 = 8.3334519073e−3
	VPBROADCASTD AX, Z26
	MOVL         $0x3d2aa9c1, AX       // p3 = 4.1665795894e−2
	VPBROADCASTD AX, Z25
	MOVL         $0x3e2aaaaa, AX       // p4 = 1.6666665459e−1
	VPBROADCASTD AX, Z24
	MOVL         $0x3f000000, AX       // p5 = 5.0000001201e−1 (rounds to ½)
	VPBROADCASTD AX, Z23
	MOVL         $0x3f800000, AX       // 1
	VPBROADCASTD AX, Z22
	MOVL         $0x42b17218, AX       // 88.72284
	VPBROADCASTD AX, Z21
	MOVL         $0xc2b17218, AX       // −88.72284
	VPBROADCASTD AX, Z20

sloop:
	VMOVUPS     (DI), Z0              // x
	VXORPS      Z1, Z1, Z1
	VSUBPS      Z0, Z1, Z1            // z = −x
	VMINPS      Z21, Z1, Z1           // keep k in range; exp saturates anyway
	VMAXPS      Z20, Z1, Z1
	VMULPS      Z31, Z1, Z2
	VRNDSCALEPS $0x08, Z2, Z2         // k = round(z·log2 e)
	VMOVAPS     Z1, Z3
	VFNMADD231PS Z30, Z2, Z3          // r = z − k·C1
	VFNMADD231PS Z29, Z2, Z3          // r −= k·C2
	VMOVAPS     Z28, Z4
	VFMADD213PS Z27, Z3, Z4           // p = p0·r + p1
	VFMADD213PS Z26, Z3, Z4
	VFMADD213PS Z25, Z3, Z4
	VFMADD213PS Z24, Z3, Z4
	VFMADD213PS Z23, Z3, Z4
	VMULPS      Z3, Z3, Z5            // r²
	VFMADD213PS Z3, Z5, Z4            // p·r² + r
	VADDPS      Z22, Z4, Z4           // + 1
	VSCALEFPS   Z2, Z4, Z4            // exp(z) = p·2^k
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
