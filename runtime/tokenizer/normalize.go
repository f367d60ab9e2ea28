package tokenizer

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites a piece of input text before pre-tokenization.
type normalizer func(string) string

// hfPattern is tokenizer.json's {"String": "..."} or {"Regex": "..."}.
type hfPattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type hfNormalizer struct {
	Type        string            `json:"type"`
	Normalizers []json.RawMessage `json:"normalizers"`
	Prepend     string            `json:"prepend"`
	Pattern     hfPattern         `json:"pattern"`
	Content     string            `json:"content"`
	Left        *bool             `json:"left"`
	Right       *bool             `json:"right"`
}

func parseNormalizer(raw json.RawMessage) (normalizer, error) {
	n, ok, err := decodeSpec[hfNormalizer]("normalizer", raw)
	if !ok {
		return nil, err
	}
	switch n.Type {
	case "Sequence":
		return parseSequence("normalizer", n.Normalizers, parseNormalizer)
	case "Prepend":
		p := n.Prepend
		return func(s string) string {
			if s == "" {
				return s
			}
			return p + s
		}, nil
	case "Replace":
		rep, err := compileReplace(n.Pattern, n.Content)
		if err != nil {
			return nil, fmt.Errorf("normalizer Replace: %w", err)
		}
		return rep, nil
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Lowercase":
		return lowercase, nil
	case "Strip":
		left, right := n.Left == nil || *n.Left, n.Right == nil || *n.Right
		return func(s string) string {
			if left {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if right {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
			return s
		}, nil
	case "StripAccents":
		return func(s string) string {
			return strings.Map(func(r rune) rune {
				if unicode.Is(unicode.Mn, r) {
					return -1
				}
				return r
			}, s)
		}, nil
	case "ByteLevel":
		return byteLevelChars, nil
	default:
		return nil, fmt.Errorf("unsupported normalizer type %q", n.Type)
	}
}

// compileReplace builds a replace-all of a literal string or a regular
// expression (translated to Go's syntax) by content.
func compileReplace(p hfPattern, content string) (func(string) string, error) {
	switch {
	case p.String != nil:
		old := *p.String
		if old == "" {
			return func(s string) string { return s }, nil
		}
		return func(s string) string { return strings.ReplaceAll(s, old, content) }, nil
	case p.Regex != nil:
		re, err := compileHFRegex(*p.Regex)
		if err != nil {
			return nil, err
		}
		return func(s string) string { return re.ReplaceAllLiteralString(s, content) }, nil
	}
	return nil, fmt.Errorf("pattern has neither String nor Regex")
}

// lowercase follows Rust's str::to_lowercase, which uses full case mapping:
// Go's simple mapping differs for U+0130 and for a final capital sigma.
func lowercase(s string) string {
	if !strings.ContainsAny(s, "İΣ") {
		return strings.ToLower(s)
	}
	var b strings.Builder
	for i, r := range s {
		switch r {
		case 'İ':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(s, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma implements Unicode's Final_Sigma condition: preceded by a cased
// letter (skipping case-ignorable runes) and not followed by one.
func finalSigma(s string, i int) bool {
	cased := func(r rune) bool { return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) }
	ignorable := func(r rune) bool {
		return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || r == '\'' || r == '.' || r == ':' || r == '\u00AD' || r == '\u2019'
	}
	before := false
	for j := i; j > 0; {
		r, w := utf8.DecodeLastRuneInString(s[:j])
		j -= w
		if ignorable(r) {
			continue
		}
		before = cased(r)
		break
	}
	if !before {
		return false
	}
	for j := i + len("Σ"); j < len(s); {
		r, w := utf8.DecodeRuneInString(s[j:])
		j += w
		if ignorable(r) {
			continue
		}
		return !cased(r)
	}
	return true
}

// compileHFRegex compiles an Oniguruma-style pattern from tokenizer.json
// with Go's regexp. Lookaround has no Go equivalent and is rejected; \s, \S,
// \d, \D, \w and \W are widened to the Unicode meaning Oniguruma gives them
// (Go's are ASCII-only).
func compileHFRegex(pattern string) (*regexp.Regexp, error) {
	for _, look := range []string{"(?=", "(?!", "(?<=", "(?<!"} {
		if strings.Contains(pattern, look) {
			return nil, fmt.Errorf("regex %q uses lookaround, which is not supported (only the GPT-2, Llama-3 and Qwen2 split rules are built in)", pattern)
		}
	}
	const (
		space = `\t\n\v\f\r\x{85}\p{Z}`
		digit = `\p{Nd}`
		word  = `\p{L}\p{M}\p{Nd}\p{Pc}`
	)
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c == '\\' && i+1 < len(pattern) {
			e := pattern[i+1]
			i++
			var set string
			neg := false
			switch e {
			case 's', 'S':
				set, neg = space, e == 'S'
			case 'd', 'D':
				set, neg = digit, e == 'D'
			case 'w', 'W':
				set, neg = word, e == 'W'
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
				continue
			}
			switch {
			case !inClass && neg:
				b.WriteString("[^" + set + "]")
			case !inClass:
				b.WriteString("[" + set + "]")
			case neg:
				return nil, fmt.Errorf("regex %q: negated class escape \\%c inside [...] is not supported", pattern, e)
			default:
				b.WriteString(set)
			}
			continue
		}
		switch c {
		case '[':
			if !inClass {
				inClass = true
				b.WriteByte(c)
				// A ']' right after '[' or '[^' is a literal.
				if i+1 < len(pattern) && pattern[i+1] == '^' {
					b.WriteByte('^')
					i++
				}
				if i+1 < len(pattern) && pattern[i+1] == ']' {
					b.WriteString(`\]`)
					i++
				}
				continue
			}
			b.WriteString(`\[`)
			continue
		case ']':
			inClass = false
		}
		b.WriteByte(c)
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", pattern, err)
	}
	return re, nil
}

// parseSequence parses the steps of a Sequence (of normalizers,
// pre-tokenizers or decoders: kind) with parse and chains them, each step's
// output feeding the next; null steps are dropped.
func parseSequence[F ~func(T) T, T any](kind string, steps []json.RawMessage, parse func(json.RawMessage) (F, error)) (F, error) {
	var seq []F
	for i, raw := range steps {
		f, err := parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s Sequence[%d]: %w", kind, i, err)
		}
		if f != nil {
			seq = append(seq, f)
		}
	}
	return func(x T) T {
		for _, f := range seq {
			x = f(x)
		}
		return x
	}, nil
}

// decodeSpec decodes one component of tokenizer.json (kind names it in the
// error); ok is false when it is absent (null) or does not decode.
func decodeSpec[S any](kind string, raw json.RawMessage) (spec S, ok bool, err error) {
	if isNull(raw) {
		return spec, false, nil
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		return spec, false, fmt.Errorf("%s: %w", kind, err)
	}
	return spec, true, nil
}

func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}
