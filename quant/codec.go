package quant

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
)

// Encode writes the [rows, cols] row-major matrix src into dst in encoding
// e. len(src) must be rows·cols and len(dst) exactly e.Size(rows, cols);
// padding bytes are written as zero, so dst need not be cleared. q8 fails on
// NaN or ±Inf (wrapping ErrNonFinite) and on magnitudes beyond the float16
// scale range (ErrQ8Range), naming the row and column; dst is then partly
// written.
func Encode(e Encoding, dst []byte, src []float32, rows, cols int) error {
	if err := checkShape("encode", e, len(dst), len(src), rows, cols); err != nil {
		return err
	}
	writeQ8Padding(e, dst, rows, cols)
	return encodeRows(e, dst, src, rows, cols, 0, rows)
}

// EncodeParallel is Encode with the rows split across up to workers
// goroutines. The bytes written are identical to Encode's, and so is the
// error: on failure it reports the first bad row, as Encode would. It stops
// early when ctx is cancelled and then returns ctx's error.
func EncodeParallel(ctx context.Context, e Encoding, dst []byte, src []float32, rows, cols, workers int) error {
	_, err := encodeParallel(ctx, e, dst, src, rows, cols, workers, false, nil)
	return err
}

// EncodeMeasured is EncodeParallel that also measures the reconstruction
// error of what it wrote against src. Each chunk is decoded right after it
// is encoded, while both are still in cache, so measuring costs a fraction
// of a separate decode-and-compare pass over the tensor.
func EncodeMeasured(ctx context.Context, e Encoding, dst []byte, src []float32, rows, cols, workers int) (Metrics, error) {
	return EncodeWeighted(ctx, e, dst, src, rows, cols, workers, nil)
}

// EncodeWeighted is EncodeMeasured for the packed encodings with a
// per-column importance (typically the mean squared calibration activation
// of each input): their scale search then minimizes Σ imp[c]·err² instead of
// the plain squared error. imp is nil (plain error) or holds cols
// non-negative finite values; the other encodings ignore it.
func EncodeWeighted(ctx context.Context, e Encoding, dst []byte, src []float32, rows, cols, workers int, imp []float32) (Metrics, error) {
	if imp != nil && len(imp) != cols {
		return Metrics{}, fmt.Errorf("encode [%d, %d] %v: %d column importances, want %d", rows, cols, e, len(imp), cols)
	}
	for c, v := range imp {
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return Metrics{}, fmt.Errorf("encode [%d, %d] %v: column %d importance %v is not a finite non-negative number", rows, cols, e, c, v)
		}
	}
	acc, err := encodeParallel(ctx, e, dst, src, rows, cols, workers, true, imp)
	if err != nil {
		return Metrics{}, err
	}
	return acc.Metrics(), nil
}

func encodeParallel(ctx context.Context, e Encoding, dst []byte, src []float32, rows, cols, workers int, measure bool, imp []float32) (ErrorAccumulator, error) {
	var total ErrorAccumulator
	if err := checkShape("encode", e, len(dst), len(src), rows, cols); err != nil {
		return total, err
	}
	if err := ctx.Err(); err != nil {
		return total, err
	}
	writeQ8Padding(e, dst, rows, cols)

	// Chunks of about parallelChunk weights keep cancellation prompt and the
	// workers evenly loaded; each chunk is whole rows, so chunks never share
	// an output byte.
	const parallelChunk = 1 << 18
	rowsPer := max(1, parallelChunk/max(cols, 1))
	nchunks := (rows + rowsPer - 1) / rowsPer
	workers = max(1, min(workers, nchunks))
	// q8 measures while it quantizes; the float encodings are cheap to
	// decode, so they are measured by decoding the chunk just written.
	fused := measure && e.Kind == KindQ8
	encodeChunk := func(acc *ErrorAccumulator, buf []float32, r0, r1 int) error {
		if fused {
			var sums errSums
			if err := encodeRowsMeasured(e, dst, src, rows, cols, r0, r1, &sums, nil); err != nil {
				return err
			}
			acc.addSums(sums)
			return nil
		}
		if err := encodeRowsMeasured(e, dst, src, rows, cols, r0, r1, nil, imp); err != nil {
			return err
		}
		if measure {
			decodeRowsInto(e, buf[:(r1-r0)*cols], dst, rows, cols, r0, r1)
			acc.Add(src[r0*cols:r1*cols], buf[:(r1-r0)*cols])
		}
		return nil
	}
	if workers == 1 {
		var buf []float32
		if measure && !fused {
			buf = make([]float32, min(rowsPer, rows)*cols)
		}
		for r0 := 0; r0 < rows; r0 += rowsPer {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			if err := encodeChunk(&total, buf, r0, min(r0+rowsPer, rows)); err != nil {
				return total, err
			}
		}
		return total, nil
	}

	var (
		mu       sync.Mutex
		next     int // next chunk to hand out
		firstBad = rows
		firstErr error
		wg       sync.WaitGroup
	)
	// take hands out the next chunk, or none once ctx is done or the chunk
	// lies past a row already known bad (earlier chunks still run, so the
	// error reported is the first bad row, as in Encode).
	take := func() (r0, r1 int, ok bool) {
		mu.Lock()
		defer mu.Unlock()
		r0 = next * rowsPer
		if r0 >= rows || r0 >= firstBad || ctx.Err() != nil {
			return 0, 0, false
		}
		next++
		return r0, min(r0+rowsPer, rows), true
	}
	// One accumulator per chunk, merged in chunk order below: which worker
	// takes which chunk varies from run to run, and float sums depend on
	// their order, so per-worker sums made the stored metrics differ in
	// the last bit between runs (1 vs 0.9999999999999999). Per-chunk sums
	// merged in order give the same bits whatever the thread count, and the
	// same as the single-threaded loop, which adds one chunk at a time.
	accs := make([]ErrorAccumulator, nchunks)
	for range workers {
		wg.Go(func() {
			var buf []float32
			if measure && !fused {
				buf = make([]float32, min(rowsPer, rows)*cols)
			}
			for {
				r0, r1, ok := take()
				if !ok {
					return
				}
				if err := encodeChunk(&accs[r0/rowsPer], buf, r0, r1); err != nil {
					bad := r0
					if re := (*rowError)(nil); errors.As(err, &re) {
						bad = re.row
					}
					mu.Lock()
					if bad < firstBad {
						firstBad, firstErr = bad, err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return total, firstErr
	}
	for i := range accs {
		total.Merge(&accs[i])
	}
	return total, ctx.Err()
}

// Decode reads the encoded [rows, cols] matrix src into dst (rows·cols
// float32). Decoding cannot fail once the sizes match: every bit pattern of
// every encoding is a value.
func Decode(e Encoding, dst []float32, src []byte, rows, cols int) error {
	if err := checkShape("decode", e, len(src), len(dst), rows, cols); err != nil {
		return err
	}
	decodeRows(e, dst, src, rows, cols, 0, rows)
	return nil
}

// DecodeRow decodes row r of the encoded [rows, cols] matrix src into dst
// (cols float32), touching only that row's bytes; the runtime uses it for
// embedding lookups.
func DecodeRow(e Encoding, dst []float32, src []byte, rows, cols, r int) error {
	if err := checkShape("decode row", e, len(src), rows*cols, rows, cols); err != nil {
		return err
	}
	if r < 0 || r >= rows {
		return fmt.Errorf("decode row %d of [%d, %d] %v: row out of range", r, rows, cols, e)
	}
	if len(dst) != cols {
		return fmt.Errorf("decode row %d of [%d, %d] %v: destination holds %d values, want %d", r, rows, cols, e, len(dst), cols)
	}
	decodeRowsInto(e, dst, src, rows, cols, r, r+1)
	return nil
}

// rowError names the row (and column) an encoding failure came from, so
// EncodeParallel can report the earliest one.
type rowError struct {
	enc        Encoding
	row, col   int
	rows, cols int
	err        error
}

func (e *rowError) Error() string {
	return fmt.Sprintf("%v encode of [%d, %d]: row %d, col %d: %v", e.enc, e.rows, e.cols, e.row, e.col, e.err)
}

func (e *rowError) Unwrap() error { return e.err }

func checkShape(op string, e Encoding, nbytes, nvals, rows, cols int) error {
	size, err := e.Size(rows, cols)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if int64(nbytes) != size {
		return fmt.Errorf("%s [%d, %d] %v: have %d encoded bytes, want %d", op, rows, cols, e, nbytes, size)
	}
	if nvals != rows*cols {
		return fmt.Errorf("%s [%d, %d] %v: have %d float32 values, want %d", op, rows, cols, e, nvals, rows*cols)
	}
	return nil
}

func writeQ8Padding(e Encoding, dst []byte, rows, cols int) {
	if e.Kind == KindQ8 {
		clear(dst[rows*cols : QuantsPlaneSize(rows, cols)])
	}
	if e.IsPacked() {
		// The rows fill each plane from its start; clear the gaps that
		// align the next plane.
		l := e.Layout(rows, cols)
		r := int64(rows)
		clear(dst[r*int64(l.LoRow) : l.HiAt])
		clear(dst[l.HiAt+r*int64(l.HiRow) : l.SubAt])
		clear(dst[l.SubAt+r*int64(l.SubRow) : l.SupAt])
	}
}

// encodeRows encodes rows [r0, r1) of src into their places in dst.
func encodeRows(e Encoding, dst []byte, src []float32, rows, cols, r0, r1 int) error {
	return encodeRowsMeasured(e, dst, src, rows, cols, r0, r1, nil, nil)
}

// encodeRowsMeasured is encodeRows that, for q8 and a non-nil sums, also
// gathers the reconstruction error while quantizing; imp is the packed
// encodings' column importance (nil: plain squared error).
func encodeRowsMeasured(e Encoding, dst []byte, src []float32, rows, cols, r0, r1 int, sums *errSums, imp []float32) error {
	lo, hi := r0*cols, r1*cols
	s := src[lo:hi]
	switch e.Kind {
	case KindF32:
		encodeF32(dst[4*lo:4*hi], s)
	case KindF16:
		encodeU16(dst[2*lo:2*hi], s, F32ToF16)
	case KindBF16:
		encodeU16(dst[2*lo:2*hi], s, F32ToBF16)
	case KindQ8:
		ng := e.Groups(cols)
		scalesAt := int(QuantsPlaneSize(rows, cols))
		scales := make([]uint16, ng)
		for r := r0; r < r1; r++ {
			col, err := quantizeQ8RowMeasured(dst[r*cols:(r+1)*cols], scales, src[r*cols:(r+1)*cols], e.Group, sums)
			if err != nil {
				return &rowError{enc: e, row: r, col: col, rows: rows, cols: cols, err: err}
			}
			sb := dst[scalesAt+2*r*ng : scalesAt+2*(r+1)*ng]
			for g, v := range scales {
				binary.LittleEndian.PutUint16(sb[2*g:], v)
			}
		}
	case KindQK, KindQ4S, KindQ4NL:
		return encodePackedRows(e, dst, src, rows, cols, r0, r1, imp)
	}
	return nil
}

// decodeRows decodes rows [r0, r1) into dst[r0·cols : r1·cols].
func decodeRows(e Encoding, dst []float32, src []byte, rows, cols, r0, r1 int) {
	decodeRowsInto(e, dst[r0*cols:r1*cols], src, rows, cols, r0, r1)
}

// decodeRowsInto decodes rows [r0, r1) into dst, which holds just those rows.
func decodeRowsInto(e Encoding, dst []float32, src []byte, rows, cols, r0, r1 int) {
	lo, hi := r0*cols, r1*cols
	switch e.Kind {
	case KindF32:
		decodeF32(dst, src[4*lo:4*hi])
	case KindF16:
		decodeU16(dst, src[2*lo:2*hi], F16ToF32)
	case KindBF16:
		decodeU16(dst, src[2*lo:2*hi], BF16ToF32)
	case KindQ8:
		ng := e.Groups(cols)
		scalesAt := int(QuantsPlaneSize(rows, cols))
		for r := r0; r < r1; r++ {
			sb := src[scalesAt+2*r*ng : scalesAt+2*(r+1)*ng]
			dequantizeQ8Row(dst[(r-r0)*cols:(r-r0+1)*cols], src[r*cols:(r+1)*cols], sb, e.Group)
		}
	case KindQK, KindQ4S, KindQ4NL:
		decodePackedRows(e, dst, src, rows, cols, r0, r1)
	}
}

func encodeF32(dst []byte, src []float32) {
	if HostLittleEndian {
		copy(dst, f32Bytes(src))
		return
	}
	encodeF32Portable(dst, src)
}

func encodeF32Portable(dst []byte, src []float32) {
	for i, f := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
}

func decodeF32(dst []float32, src []byte) {
	if HostLittleEndian {
		copy(f32Bytes(dst), src)
		return
	}
	decodeF32Portable(dst, src)
}

// stageLen is the size of the stack buffer the copying paths convert
// through: big enough to amortize the per-chunk call, small enough to stay
// in L1.
const stageLen = 1024

// encodeU16 narrows src straight into dst when dst can alias []uint16, and
// otherwise through a small staging buffer.
func encodeU16(dst []byte, src []float32, narrow func([]uint16, []float32)) {
	if v, ok := alias[uint16](dst); ok {
		narrow(v, src)
		return
	}
	encodeU16Portable(dst, src, narrow)
}

func encodeU16Portable(dst []byte, src []float32, narrow func([]uint16, []float32)) {
	var buf [stageLen]uint16
	for len(src) > 0 {
		n := min(len(src), stageLen)
		narrow(buf[:n], src[:n])
		for i, h := range buf[:n] {
			binary.LittleEndian.PutUint16(dst[2*i:], h)
		}
		src, dst = src[n:], dst[2*n:]
	}
}

func decodeU16(dst []float32, src []byte, widen func([]float32, []uint16)) {
	if v, ok := alias[uint16](src); ok {
		widen(dst, v)
		return
	}
	decodeU16Portable(dst, src, widen)
}

func decodeU16Portable(dst []float32, src []byte, widen func([]float32, []uint16)) {
	var buf [stageLen]uint16
	for len(dst) > 0 {
		n := min(len(dst), stageLen)
		decodeU16sPortable(buf[:n], src)
		widen(dst[:n], buf[:n])
		dst, src = dst[n:], src[2*n:]
	}
}
