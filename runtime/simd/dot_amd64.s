//go:build amd64 && !noasm

#include "textflag.h"

// Kernels in this file process only whole blocks (a multiple of 8 elements
// for the float kernels, whole groups of a multiple of 32 for q8); the Go
// wrappers in dispatch_amd64.go add the remaining elements.

// HSUM_Y0 reduces the eight lanes of Y0 into the low lane of X0.
#define HSUM_Y0 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVHLPS     X0, X0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSHDUP    X0, X1; \
	VADDSS       X1, X0, X0

// HSUM4_Y0_Y3 reduces Y0..Y3 into X0 = [Σ Y0, Σ Y1, Σ Y2, Σ Y3].
#define HSUM4_Y0_Y3 \
	VHADDPS      Y1, Y0, Y0; \
	VHADDPS      Y3, Y2, Y2; \
	VHADDPS      Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0

// ROWS4 sets R8..R11 to the starts of four rows REG bytes apart from base R8.
#define ROWS4(REG) \
	LEAQ (R8)(REG*1), R9; \
	LEAQ (R9)(REG*1), R10; \
	LEAQ (R10)(REG*1), R11

// The row kernels share their frame: 0(SP) = the next y, 8(SP) = 4-row
// blocks left, R8 = the block's first row, R12 = the row stride in bytes
// (set by each kernel from stride+48(FP)), R13 = four strides.

// ROWS_ARGS loads y and w; no rows: straight to ret.
#define ROWS_ARGS \
	MOVQ   y_len+8(FP), AX; \
	SHRQ   $2, AX; \
	JZ     ret; \
	MOVQ   AX, 8(SP); \
	MOVQ   y_base+0(FP), AX; \
	MOVQ   AX, 0(SP); \
	MOVQ   w_base+24(FP), R8; \
	MOVQ   stride+48(FP), R12

// ROWS_BLOCK starts a block: rows R8..R11, prefetch pointers R14..SI into
// the next block 512 bytes ahead, x in DI, CX = len(x), AX = 0, DX = len(x)
// rounded down to 16, accumulators cleared.
#define ROWS_BLOCK \
	ROWS4(R12); \
	LEAQ   512(R8)(R13*1), R14; \
	LEAQ   512(R9)(R13*1), R15; \
	LEAQ   512(R10)(R13*1), BX; \
	LEAQ   512(R11)(R13*1), SI; \
	MOVQ   x_base+56(FP), DI; \
	MOVQ   x_len+64(FP), CX; \
	XORQ   AX, AX; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7; \
	MOVQ   CX, DX; \
	ANDQ   $-16, DX

// ROWS_STORE reduces the block's four sums, writes (or, with add, adds)
// them to y and moves to the next block; the caller loops while 8(SP) > 0.
#define ROWS_STORE \
	VADDPS  Y4, Y0, Y0; \
	VADDPS  Y5, Y1, Y1; \
	VADDPS  Y6, Y2, Y2; \
	VADDPS  Y7, Y3, Y3; \
	HSUM4_Y0_Y3; \
	MOVQ    0(SP), DX; \
	MOVQ    add+80(FP), CX; \
	TESTQ   CX, CX; \
	JZ      2(PC); \
	VADDPS  (DX), X0, X0; \
	VMOVUPS X0, (DX); \
	ADDQ    $16, DX; \
	MOVQ    DX, 0(SP); \
	ADDQ    R13, R8; \
	DECQ    8(SP)

// func dotF32AVX2(a, b []float32) float32
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	XORQ   AX, AX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   CX, DX
	ANDQ   $-32, DX
	JZ     tail

loop:
	VMOVUPS     (SI)(AX*4), Y4
	VMOVUPS     32(SI)(AX*4), Y5
	VMOVUPS     64(SI)(AX*4), Y6
	VMOVUPS     96(SI)(AX*4), Y7
	VFMADD231PS (DI)(AX*4), Y4, Y0
	VFMADD231PS 32(DI)(AX*4), Y5, Y1
	VFMADD231PS 64(DI)(AX*4), Y6, Y2
	VFMADD231PS 96(DI)(AX*4), Y7, Y3
	ADDQ        $32, AX
	CMPQ        AX, DX
	JLT         loop

tail:
	CMPQ        AX, CX
	JGE         reduce
	VMOVUPS     (SI)(AX*4), Y4
	VFMADD231PS (DI)(AX*4), Y4, Y0
	ADDQ        $8, AX
	JMP         tail

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM_Y0
	VZEROUPPER
	MOVSS  X0, ret+48(FP)
	RET

// func dotF16AVX2(w []uint16, x []float32) float32
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-52
	MOVQ   w_base+0(FP), SI
	MOVQ   w_len+8(FP), CX
	MOVQ   x_base+24(FP), DI
	XORQ   AX, AX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   CX, DX
	ANDQ   $-32, DX
	JZ     tail

loop:
	VCVTPH2PS   (SI)(AX*2), Y4
	VCVTPH2PS   16(SI)(AX*2), Y5
	VCVTPH2PS   32(SI)(AX*2), Y6
	VCVTPH2PS   48(SI)(AX*2), Y7
	VFMADD231PS (DI)(AX*4), Y4, Y0
	VFMADD231PS 32(DI)(AX*4), Y5, Y1
	VFMADD231PS 64(DI)(AX*4), Y6, Y2
	VFMADD231PS 96(DI)(AX*4), Y7, Y3
	ADDQ        $32, AX
	CMPQ        AX, DX
	JLT         loop

tail:
	CMPQ        AX, CX
	JGE         reduce
	VCVTPH2PS   (SI)(AX*2), Y4
	VFMADD231PS (DI)(AX*4), Y4, Y0
	ADDQ        $8, AX
	JMP         tail

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM_Y0
	VZEROUPPER
	MOVSS  X0, ret+48(FP)
	RET

// func dotBF16AVX2(w []uint16, x []float32) float32
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-52
	MOVQ   w_base+0(FP), SI
	MOVQ   w_len+8(FP), CX
	MOVQ   x_base+24(FP), DI
	XORQ   AX, AX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   CX, DX
	ANDQ   $-32, DX
	JZ     tail

loop:
	VPMOVZXWD   (SI)(AX*2), Y4
	VPMOVZXWD   16(SI)(AX*2), Y5
	VPMOVZXWD   32(SI)(AX*2), Y6
	VPMOVZXWD   48(SI)(AX*2), Y7
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VFMADD231PS (DI)(AX*4), Y4, Y0
	VFMADD231PS 32(DI)(AX*4), Y5, Y1
	VFMADD231PS 64(DI)(AX*4), Y6, Y2
	VFMADD231PS 96(DI)(AX*4), Y7, Y3
	ADDQ        $32, AX
	CMPQ        AX, DX
	JLT         loop

tail:
	CMPQ        AX, CX
	JGE         reduce
	VPMOVZXWD   (SI)(AX*2), Y4
	VPSLLD      $16, Y4, Y4
	VFMADD231PS (DI)(AX*4), Y4, Y0
	ADDQ        $8, AX
	JMP         tail

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM_Y0
	VZEROUPPER
	MOVSS  X0, ret+48(FP)
	RET

// The row kernels compute len(y)/4 blocks of four rows, stride elements
// apart, in one call (decode streams a whole row range; one call per four
// rows cost about an eighth of the streaming rate). They keep two
// accumulators per row (Y0..Y3 for the first
// eight elements of each 16-element step, Y4..Y7 for the second) so that the
// four FMA chains per half never wait on each other.

// func dotF32RowsAVX2(y []float32, w []float32, stride int, x []float32, add int)
TEXT ·dotF32RowsAVX2(SB), NOSPLIT, $16-88
	ROWS_ARGS
	SHLQ   $2, R12
	LEAQ   (R12*4), R13

rowblk:
	ROWS_BLOCK
	JZ     tail

loop:
	// Prefetch the next block's rows 512 bytes ahead of these columns
	// (R14..SI) so that one thread keeps enough reads in flight to
	// stream; 512 measured best (f16 +6 % over no offset).
	PREFETCHT0  (R14)(AX*4)
	PREFETCHT0  (R15)(AX*4)
	PREFETCHT0  (BX)(AX*4)
	PREFETCHT0  (SI)(AX*4)
	VMOVUPS     (DI)(AX*4), Y8
	VMOVUPS     32(DI)(AX*4), Y9
	VMOVUPS     (R8)(AX*4), Y10
	VMOVUPS     32(R8)(AX*4), Y11
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y11, Y4
	VMOVUPS     (R9)(AX*4), Y12
	VMOVUPS     32(R9)(AX*4), Y13
	VFMADD231PS Y8, Y12, Y1
	VFMADD231PS Y9, Y13, Y5
	VMOVUPS     (R10)(AX*4), Y10
	VMOVUPS     32(R10)(AX*4), Y11
	VFMADD231PS Y8, Y10, Y2
	VFMADD231PS Y9, Y11, Y6
	VMOVUPS     (R11)(AX*4), Y12
	VMOVUPS     32(R11)(AX*4), Y13
	VFMADD231PS Y8, Y12, Y3
	VFMADD231PS Y9, Y13, Y7
	ADDQ        $16, AX
	CMPQ        AX, DX
	JLT         loop

tail:
	CMPQ        AX, CX
	JGE         reduce
	VMOVUPS     (DI)(AX*4), Y8
	VFMADD231PS (R8)(AX*4), Y8, Y0
	VFMADD231PS (R9)(AX*4), Y8, Y1
	VFMADD231PS (R10)(AX*4), Y8, Y2
	VFMADD231PS (R11)(AX*4), Y8, Y3

reduce:
	ROWS_STORE
	JNZ     rowblk
	VZEROUPPER

ret:
	RET

// func dotF16RowsAVX2(y []float32, w []uint16, stride int, x []float32, add int)
TEXT ·dotF16RowsAVX2(SB), NOSPLIT, $16-88
	ROWS_ARGS
	SHLQ   $1, R12
	LEAQ   (R12*4), R13

rowblk:
	ROWS_BLOCK
	JZ     tail

loop:
	// Prefetch the next block's rows 512 bytes ahead of these columns
	// (R14..SI) so that one thread keeps enough reads in flight to
	// stream; 512 measured best (f16 +6 % over no offset).
	PREFETCHT0  (R14)(AX*2)
	PREFETCHT0  (R15)(AX*2)
	PREFETCHT0  (BX)(AX*2)
	PREFETCHT0  (SI)(AX*2)
	VMOVUPS     (DI)(AX*4), Y8
	VMOVUPS     32(DI)(AX*4), Y9
	VCVTPH2PS   (R8)(AX*2), Y10
	VCVTPH2PS   16(R8)(AX*2), Y11
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y11, Y4
	VCVTPH2PS   (R9)(AX*2), Y12
	VCVTPH2PS   16(R9)(AX*2), Y13
	VFMADD231PS Y8, Y12, Y1
	VFMADD231PS Y9, Y13, Y5
	VCVTPH2PS   (R10)(AX*2), Y10
	VCVTPH2PS   16(R10)(AX*2), Y11
	VFMADD231PS Y8, Y10, Y2
	VFMADD231PS Y9, Y11, Y6
	VCVTPH2PS   (R11)(AX*2), Y12
	VCVTPH2PS   16(R11)(AX*2), Y13
	VFMADD231PS Y8, Y12, Y3
	VFMADD231PS Y9, Y13, Y7
	ADDQ        $16, AX
	CMPQ        AX, DX
	JLT         loop

tail:
	CMPQ        AX, CX
	JGE         reduce
	VMOVUPS     (DI)(AX*4), Y8
	VCVTPH2PS   (R8)(AX*2), Y10
	VCVTPH2PS   (R9)(AX*2), Y11
	VCVTPH2PS   (R10)(AX*2), Y12
	VCVTPH2PS   (R11)(AX*2), Y13
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y8, Y11, Y1
	VFMADD231PS Y8, Y12, Y2
	VFMADD231PS Y8, Y13, Y3

reduce:
	ROWS_STORE
	JNZ     rowblk
	VZEROUPPER

ret:
	RET

// func dotBF16RowsAVX2(y []float32, w []uint16, stride int, x []float32, add int)
TEXT ·dotBF16RowsAVX2(SB), NOSPLIT, $16-88
	ROWS_ARGS
	SHLQ   $1, R12
	LEAQ   (R12*4), R13

rowblk:
	ROWS_BLOCK
	JZ     tail

loop:
	// Prefetch the next block's rows 512 bytes ahead of these columns
	// (R14..SI) so that one thread keeps enough reads in flight to
	// stream; 512 measured best (f16 +6 % over no offset).
	PREFETCHT0  (R14)(AX*2)
	PREFETCHT0  (R15)(AX*2)
	PREFETCHT0  (BX)(AX*2)
	PREFETCHT0  (SI)(AX*2)
	VMOVUPS     (DI)(AX*4), Y8
	VMOVUPS     32(DI)(AX*4), Y9
	VPMOVZXWD   (R8)(AX*2), Y10
	VPMOVZXWD   16(R8)(AX*2), Y11
	VPSLLD      $16, Y10, Y10
	VPSLLD      $16, Y11, Y11
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y11, Y4
	VPMOVZXWD   (R9)(AX*2), Y12
	VPMOVZXWD   16(R9)(AX*2), Y13
	VPSLLD      $16, Y12, Y12
	VPSLLD      $16, Y13, Y13
	VFMADD231PS Y8, Y12, Y1
	VFMADD231PS Y9, Y13, Y5
	VPMOVZXWD   (R10)(AX*2), Y10
	VPMOVZXWD   16(R10)(AX*2), Y11
	VPSLLD      $16, Y10, Y10
	VPSLLD      $16, Y11, Y11
	VFMADD231PS Y8, Y10, Y2
	VFMADD231PS Y9, Y11, Y6
	VPMOVZXWD   (R11)(AX*2), Y12
	VPMOVZXWD   16(R11)(AX*2), Y13
	VPSLLD      $16, Y12, Y12
	VPSLLD      $16, Y13, Y13
	VFMADD231PS Y8, Y12, Y3
	VFMADD231PS Y9, Y13, Y7
	ADDQ        $16, AX
	CMPQ        AX, DX
	JLT         loop

tail:
	CMPQ        AX, CX
	JGE         reduce
	VMOVUPS     (DI)(AX*4), Y8
	VPMOVZXWD   (R8)(AX*2), Y10
	VPMOVZXWD   (R9)(AX*2), Y11
	VPMOVZXWD   (R10)(AX*2), Y12
	VPMOVZXWD   (R11)(AX*2), Y13
	VPSLLD      $16, Y10, Y10
	VPSLLD      $16, Y11, Y11
	VPSLLD      $16, Y12, Y12
	VPSLLD      $16, Y13, Y13
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y8, Y11, Y1
	VFMADD231PS Y8, Y12, Y2
	VFMADD231PS Y8, Y13, Y3

reduce:
	ROWS_STORE
	JNZ     rowblk
	VZEROUPPER

ret:
	RET
