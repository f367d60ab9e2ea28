package tokenizer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decoder is one step of the decoder chain: token strings in, strings out
// (Decoder::decode_chain); the final result is their concatenation.
type decoder func([]string) []string

type hfDecoder struct {
	Type           string            `json:"type"`
	Decoders       []json.RawMessage `json:"decoders"`
	Pattern        hfPattern         `json:"pattern"`
	Content        string            `json:"content"`
	Start          int               `json:"start"`
	Stop           int               `json:"stop"`
	Replacement    string            `json:"replacement"`
	PrependScheme  string            `json:"prepend_scheme"`
	AddPrefixSpace *bool             `json:"add_prefix_space"`
	Suffix         *string           `json:"suffix"`
	Prefix         *string           `json:"prefix"`
	Cleanup        *bool             `json:"cleanup"`
}

func parseDecoder(raw json.RawMessage) (decoder, error) {
	d, ok, err := decodeSpec[hfDecoder]("decoder", raw)
	if !ok {
		return nil, err
	}
	switch d.Type {
	case "Sequence":
		return parseSequence("decoder", d.Decoders, parseDecoder)
	case "ByteLevel":
		return decodeByteLevel, nil
	case "ByteFallback":
		return decodeByteFallback, nil
	case "Fuse":
		return func(toks []string) []string { return []string{strings.Join(toks, "")} }, nil
	case "Replace":
		rep, err := compileReplace(d.Pattern, d.Content)
		if err != nil {
			return nil, fmt.Errorf("decoder Replace: %w", err)
		}
		return func(toks []string) []string {
			out := make([]string, len(toks))
			for i, t := range toks {
				out[i] = rep(t)
			}
			return out
		}, nil
	case "Strip":
		content, n := utf8.DecodeRuneInString(d.Content)
		if n == 0 || n != len(d.Content) {
			return nil, fmt.Errorf("decoder Strip: content %q must be one character", d.Content)
		}
		if d.Start < 0 || d.Stop < 0 {
			return nil, fmt.Errorf("decoder Strip: negative start/stop")
		}
		return stripDecoder(content, d.Start, d.Stop), nil
	case "Metaspace":
		rep, scheme, err := metaspaceParams(d.Replacement, d.PrependScheme, d.AddPrefixSpace)
		if err != nil {
			return nil, fmt.Errorf("decoder Metaspace: %w", err)
		}
		return func(toks []string) []string {
			out := make([]string, len(toks))
			for i, t := range toks {
				dropAll := i == 0 && scheme != "never"
				out[i] = strings.Map(func(r rune) rune {
					if r != rep {
						return r
					}
					if dropAll {
						return -1
					}
					return ' '
				}, t)
			}
			return out
		}, nil
	case "BPEDecoder":
		suffix := "</w>"
		if d.Suffix != nil {
			suffix = *d.Suffix
		}
		return func(toks []string) []string {
			out := make([]string, len(toks))
			for i, t := range toks {
				rep := " "
				if i == len(toks)-1 {
					rep = ""
				}
				out[i] = strings.ReplaceAll(t, suffix, rep)
			}
			return out
		}, nil
	default:
		return nil, fmt.Errorf("unsupported decoder type %q", d.Type)
	}
}

// decodeByteLevel maps byte-level runes back to bytes; a token with a rune
// outside the table (an added token, say) contributes its UTF-8 as is. The
// bytes are then read as UTF-8 with Rust's lossy replacement.
func decodeByteLevel(toks []string) []string {
	var buf []byte
	for _, t := range toks {
		start := len(buf)
		ok := true
		for _, r := range t {
			b, found := charToByte[r]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:start], t...)
		}
	}
	return []string{lossyUTF8(buf)}
}

// decodeByteFallback turns runs of <0xXX> tokens into the text their bytes
// spell, or one U+FFFD per byte when they are not valid UTF-8.
func decodeByteFallback(toks []string) []string {
	out := make([]string, 0, len(toks))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range toks {
		if b, ok := byteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// byteToken parses "<0xXX>".
func byteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(t[3:5], 16, 8)
	if err != nil {
		return 0, false
	}
	return byte(v), true
}

// stripDecoder removes up to start leading and stop trailing copies of
// content from every token.
func stripDecoder(content rune, start, stop int) decoder {
	return func(toks []string) []string {
		out := make([]string, len(toks))
		for i, t := range toks {
			rs := []rune(t)
			lo := 0
			for lo < start && lo < len(rs) && rs[lo] == content {
				lo++
			}
			hi := len(rs)
			for k := 0; k < stop && hi > lo && rs[hi-1] == content; k++ {
				hi--
			}
			out[i] = string(rs[lo:hi])
		}
		return out
	}
}

// lossyUTF8 converts bytes to a string like Rust's String::from_utf8_lossy:
// each maximal invalid subsequence (a truncated but otherwise valid prefix
// of a sequence, or a single bad byte) becomes one U+FFFD. Go's
// strings.ToValidUTF8 would merge adjacent invalid runs instead.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || w > 1 {
			sb.Write(b[i : i+w])
			i += w
			continue
		}
		sb.WriteString("\uFFFD")
		i += invalidPrefixLen(b[i:])
	}
	return sb.String()
}

// invalidPrefixLen is the length of the maximal invalid subpart at b[0].
func invalidPrefixLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 {
			if x < lo || x > hi {
				break
			}
		} else if x < 0x80 || x > 0xBF {
			break
		}
		n++
	}
	return n
}

// usesByteFallback reports whether a decoder spec contains ByteFallback,
// whose all-or-nothing treatment of a run of byte tokens means a run's text
// is only final once a non-byte token ends it.
func usesByteFallback(raw json.RawMessage) bool {
	d, ok, _ := decodeSpec[hfDecoder]("decoder", raw)
	if !ok {
		return false
	}
	if d.Type == "ByteFallback" {
		return true
	}
	for _, sub := range d.Decoders {
		if usesByteFallback(sub) {
			return true
		}
	}
	return false
}
