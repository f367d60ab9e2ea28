package convert

import (
	"fmt"
	"math"

	"github.com/shrink-llm/shrink/internal/safeio"
	"github.com/shrink-llm/shrink/internal/textdata"
)

// calibBytesPerToken bounds the text a calibration of N tokens can need:
// no tokenizer of a supported family makes tokens longer than this, so the
// documents past N·calibBytesPerToken bytes would never be framed.
const calibBytesPerToken = 64

// ReadCalibDocs streams the documents of rng from the calibration text,
// stopping once they hold enough text for tokens tokens, so a huge (or
// endless) file costs only what calibration reads. Only a regular file is
// read. The result is CalibOptions.Documents.
func ReadCalibDocs(path string, rng textdata.DocRange, tokens int) ([]string, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	first := max(rng.First, 1)
	budget := int64(math.MaxInt64) // saturated: the file ends first
	if int64(tokens) < math.MaxInt64/calibBytesPerToken {
		budget = int64(tokens) * calibBytesPerToken
	}
	var docs []string
	var held int64
	n := 0
	err = textdata.ScanDocuments(f, textdata.DefaultDocSep, func(d string) error {
		n++
		if n < first {
			return nil
		}
		if (rng.Last > 0 && n > rng.Last) || held >= budget {
			return textdata.ErrStop
		}
		docs = append(docs, d)
		held += int64(len(d))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: document range %s starts past the %d documents of the text", path, rng, n)
	}
	return docs, nil
}
