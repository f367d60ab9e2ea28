package tokenizer

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// piece is one split of the input on its way to the model. atStart records
// whether it begins at offset 0 of the original text, which Metaspace's
// "first" prepend scheme needs.
type piece struct {
	s       string
	atStart bool
}

// preTokenizer maps each piece to its sub-pieces (appending to out); empty
// pieces are dropped, as the tokenizers library does.
type preTokenizer func(in []piece) []piece

// byteToChar is GPT-2's reversible byte-to-printable-rune table.
var byteToChar, charToByte = func() ([256]string, map[rune]byte) {
	var b2c [256]string
	c2b := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if !printable {
			r = rune(256 + n)
			n++
		}
		b2c[b] = string(r)
		c2b[r] = byte(b)
	}
	return b2c, c2b
}()

// byteLevelChars maps every byte of s to its byte-level rune.
func byteLevelChars(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteString(byteToChar[s[i]])
	}
	return b.String()
}

type hfPreTokenizer struct {
	Type             string            `json:"type"`
	PreTokenizers    []json.RawMessage `json:"pretokenizers"`
	AddPrefixSpace   *bool             `json:"add_prefix_space"`
	UseRegex         *bool             `json:"use_regex"`
	Pattern          hfPattern         `json:"pattern"`
	Behavior         string            `json:"behavior"`
	Invert           bool              `json:"invert"`
	Replacement      string            `json:"replacement"`
	PrependScheme    string            `json:"prepend_scheme"`
	Split            *bool             `json:"split"`
	IndividualDigits bool              `json:"individual_digits"`
}

func parsePreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	p, ok, err := decodeSpec[hfPreTokenizer]("pre_tokenizer", raw)
	if !ok {
		return nil, err
	}
	switch p.Type {
	case "Sequence":
		return parseSequence("pre_tokenizer", p.PreTokenizers, parsePreTokenizer)
	case "ByteLevel":
		prefix := p.AddPrefixSpace != nil && *p.AddPrefixSpace
		useRegex := p.UseRegex == nil || *p.UseRegex
		return func(in []piece) []piece {
			var out []piece
			for _, pc := range in {
				s := pc.s
				if prefix && !strings.HasPrefix(s, " ") {
					s = " " + s
				}
				if !useRegex {
					out = appendPiece(out, byteLevelChars(s), pc.atStart)
					continue
				}
				scanSplit(s, nextGPT2, func(a, b int) {
					out = appendPiece(out, byteLevelChars(s[a:b]), pc.atStart && a == 0)
				})
			}
			return out
		}, nil
	case "Split":
		behavior, err := parseBehavior(p.Behavior)
		if err != nil {
			return nil, fmt.Errorf("pre_tokenizer Split: %w", err)
		}
		m, err := compileSplitPattern(p.Pattern)
		if err != nil {
			return nil, fmt.Errorf("pre_tokenizer Split: %w", err)
		}
		return splitWith(m, behavior, p.Invert), nil
	case "Metaspace":
		return parseMetaspacePre(p)
	case "Digits":
		isNum := func(r rune) bool { return unicode.IsNumber(r) }
		if p.IndividualDigits {
			return splitWith(runeMatcher(isNum), behaviorIsolated, false), nil
		}
		return splitWith(runeMatcher(isNum), behaviorContiguous, false), nil
	case "WhitespaceSplit":
		return splitWith(runeMatcher(unicode.IsSpace), behaviorRemoved, false), nil
	case "Whitespace":
		return splitWith(wordOrPunctMatcher, behaviorRemoved, true), nil
	case "Punctuation":
		b, err := behaviorIsolated, error(nil)
		if p.Behavior != "" {
			if b, err = parseBehavior(p.Behavior); err != nil {
				return nil, fmt.Errorf("pre_tokenizer Punctuation: %w", err)
			}
		}
		return splitWith(runeMatcher(isPunctuation), b, false), nil
	case "BertPreTokenizer":
		ws := splitWith(runeMatcher(unicode.IsSpace), behaviorRemoved, false)
		punct := splitWith(runeMatcher(isPunctuation), behaviorIsolated, false)
		return func(in []piece) []piece { return punct(ws(in)) }, nil
	default:
		return nil, fmt.Errorf("unsupported pre_tokenizer type %q", p.Type)
	}
}

var errBehavior = fmt.Errorf("unknown split behavior")

func appendPiece(out []piece, s string, atStart bool) []piece {
	if s == "" {
		return out
	}
	return append(out, piece{s: s, atStart: atStart})
}

// isPunctuation is Rust's is_ascii_punctuation (which includes the ASCII
// symbols) or Unicode P*.
func isPunctuation(r rune) bool {
	return unicode.IsPunct(r) || (r < utf8.RuneSelf && strings.ContainsRune("$+<=>^`|~", r))
}

func parseMetaspacePre(p hfPreTokenizer) (preTokenizer, error) {
	rep, scheme, err := metaspaceParams(p.Replacement, p.PrependScheme, p.AddPrefixSpace)
	if err != nil {
		return nil, fmt.Errorf("pre_tokenizer Metaspace: %w", err)
	}
	split := p.Split == nil || *p.Split
	repStr := string(rep)
	return func(in []piece) []piece {
		var out []piece
		for _, pc := range in {
			s := strings.ReplaceAll(pc.s, " ", repStr)
			if !strings.HasPrefix(s, repStr) && (scheme == "always" || (scheme == "first" && pc.atStart)) {
				s = repStr + s
			}
			if !split {
				out = appendPiece(out, s, pc.atStart)
				continue
			}
			// Split on the replacement, each one starting a new piece
			// (MergedWithNext).
			start := 0
			for i := 0; i < len(s); {
				if strings.HasPrefix(s[i:], repStr) && i > start {
					out = appendPiece(out, s[start:i], pc.atStart && start == 0)
					start = i
				}
				if strings.HasPrefix(s[i:], repStr) {
					i += len(repStr)
				} else {
					_, w := utf8.DecodeRuneInString(s[i:])
					i += w
				}
			}
			out = appendPiece(out, s[start:], pc.atStart && start == 0)
		}
		return out
	}, nil
}

// metaspaceParams reads replacement and prepend scheme, accepting the older
// add_prefix_space spelling.
func metaspaceParams(replacement, scheme string, addPrefix *bool) (rune, string, error) {
	if utf8.RuneCountInString(replacement) != 1 {
		return 0, "", fmt.Errorf("replacement %q must be one character", replacement)
	}
	rep, _ := utf8.DecodeRuneInString(replacement)
	switch scheme {
	case "always", "first", "never":
	case "":
		scheme = "always"
		if addPrefix != nil && !*addPrefix {
			scheme = "never"
		}
	default:
		return 0, "", fmt.Errorf("unknown prepend_scheme %q", scheme)
	}
	return rep, scheme, nil
}

type splitBehavior int

const (
	behaviorRemoved splitBehavior = iota
	behaviorIsolated
	behaviorMergedWithPrevious
	behaviorMergedWithNext
	behaviorContiguous
)

func parseBehavior(s string) (splitBehavior, error) {
	switch s {
	case "Removed":
		return behaviorRemoved, nil
	case "Isolated":
		return behaviorIsolated, nil
	case "MergedWithPrevious":
		return behaviorMergedWithPrevious, nil
	case "MergedWithNext":
		return behaviorMergedWithNext, nil
	case "Contiguous":
		return behaviorContiguous, nil
	}
	return 0, fmt.Errorf("%w %q", errBehavior, s)
}

// span is a [start,end) range of a piece and whether the pattern matched it.
type span struct {
	start, end int
	match      bool
}

// matcher cuts s into spans that cover it completely, in order.
type matcher func(s string) []span

func compileSplitPattern(p hfPattern) (matcher, error) {
	if p.String != nil {
		lit := *p.String
		return func(s string) []span {
			if lit == "" {
				return []span{{0, len(s), false}}
			}
			var out []span
			prev := 0
			for i := 0; i <= len(s)-len(lit); {
				if s[i:i+len(lit)] == lit {
					if prev < i {
						out = append(out, span{prev, i, false})
					}
					out = append(out, span{i, i + len(lit), true})
					i += len(lit)
					prev = i
					continue
				}
				i++
			}
			if prev < len(s) {
				out = append(out, span{prev, len(s), false})
			}
			return out
		}, nil
	}
	if p.Regex == nil {
		return nil, fmt.Errorf("pattern has neither String nor Regex")
	}
	var next func(string, int) int
	switch *p.Regex {
	case gpt2Pattern:
		next = nextGPT2
	case llama3Pattern:
		next = func(s string, i int) int { return nextLlama3(s, i, 3) }
	case qwen2Pattern:
		next = func(s string, i int) int { return nextLlama3(s, i, 1) }
	}
	if next != nil {
		return func(s string) []span {
			var out []span
			scanSplit(s, next, func(a, b int) { out = append(out, span{a, b, true}) })
			return out
		}, nil
	}
	re, err := compileHFRegex(*p.Regex)
	if err != nil {
		return nil, err
	}
	return regexMatcher(re), nil
}

func regexMatcher(re *regexp.Regexp) matcher {
	return func(s string) []span {
		var out []span
		prev := 0
		for _, m := range re.FindAllStringIndex(s, -1) {
			if prev != m[0] {
				out = append(out, span{prev, m[0], false})
			}
			out = append(out, span{m[0], m[1], true})
			prev = m[1]
		}
		if prev != len(s) {
			out = append(out, span{prev, len(s), false})
		}
		return out
	}
}

// runeMatcher matches each rune satisfying f on its own.
func runeMatcher(f func(rune) bool) matcher {
	return func(s string) []span {
		var out []span
		prev := 0
		for i, r := range s {
			if f(r) {
				if prev < i {
					out = append(out, span{prev, i, false})
				}
				w := utf8.RuneLen(r)
				if w < 0 {
					w = 1
				}
				out = append(out, span{i, i + w, true})
				prev = i + w
			}
		}
		if prev < len(s) {
			out = append(out, span{prev, len(s), false})
		}
		return out
	}
}

// wordOrPunctMatcher matches `\w+|[^\w\s]+` (the Whitespace pre-tokenizer).
func wordOrPunctMatcher(s string) []span {
	isWord := func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r)
	}
	var out []span
	prev := 0
	for i := 0; i < len(s); {
		r, w := runeAt(s, i)
		if unicode.IsSpace(r) {
			i += w
			continue
		}
		kind := isWord(r)
		j := i + w
		for j < len(s) {
			r2, w2 := runeAt(s, j)
			if unicode.IsSpace(r2) || isWord(r2) != kind {
				break
			}
			j += w2
		}
		if prev < i {
			out = append(out, span{prev, i, false})
		}
		out = append(out, span{i, j, true})
		prev, i = j, j
	}
	if prev < len(s) {
		out = append(out, span{prev, len(s), false})
	}
	return out
}

// splitWith applies a matcher with the given delimiter behavior, following
// NormalizedString::split.
func splitWith(m matcher, behavior splitBehavior, invert bool) preTokenizer {
	return func(in []piece) []piece {
		var out []piece
		for _, pc := range in {
			spans := m(pc.s)
			if invert {
				for i := range spans {
					spans[i].match = !spans[i].match
				}
			}
			for _, sp := range applyBehavior(spans, behavior) {
				out = appendPiece(out, pc.s[sp.start:sp.end], pc.atStart && sp.start == 0)
			}
		}
		return out
	}
}

func applyBehavior(spans []span, behavior splitBehavior) []span {
	switch behavior {
	case behaviorIsolated:
		return spans
	case behaviorRemoved:
		out := spans[:0:0]
		for _, sp := range spans {
			if !sp.match {
				out = append(out, sp)
			}
		}
		return out
	case behaviorMergedWithPrevious:
		var out []span
		prevMatch := false
		for _, sp := range spans {
			if sp.match && !prevMatch && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, span{sp.start, sp.end, false})
			}
			prevMatch = sp.match
		}
		return out
	case behaviorMergedWithNext:
		var rev []span
		prevMatch := false
		for i := len(spans) - 1; i >= 0; i-- {
			sp := spans[i]
			if sp.match && !prevMatch && len(rev) > 0 {
				rev[len(rev)-1].start = sp.start
			} else {
				rev = append(rev, span{sp.start, sp.end, false})
			}
			prevMatch = sp.match
		}
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		return rev
	case behaviorContiguous:
		var out []span
		prevMatch := false
		for i, sp := range spans {
			if i > 0 && sp.match == prevMatch {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, span{sp.start, sp.end, false})
			}
			prevMatch = sp.match
		}
		return out
	}
	return spans
}
