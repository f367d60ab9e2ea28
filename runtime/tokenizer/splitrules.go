package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The exact pattern strings of the well-known split rules. tokenizer.json
// carries the regular expression; these are recognised by string equality
// and executed by scanners that follow the backtracking semantics of the
// Oniguruma engine the tokenizers library uses.
const (
	// gpt2Pattern is the ByteLevel pre-tokenizer's built-in rule.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// llama3Pattern is Llama 3's (and cl100k's) rule: digits in groups of up to three.
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// qwen2Pattern is Qwen2's variant of the Llama 3 rule with single digits.
	qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// runeClass partitions runes the way the split rules see them: \s (Unicode
// White_Space), \p{L}, \p{N}, and everything else. The four are disjoint
// and cover all runes, so the rules never leave gaps.
type runeClass uint8

const (
	classOther runeClass = iota
	classSpace
	classLetter
	classNumber
)

var asciiClass = func() (t [utf8.RuneSelf]runeClass) {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		t[r] = classifySlow(r)
	}
	return t
}()

func classifySlow(r rune) runeClass {
	switch {
	case unicode.IsSpace(r): // White_Space, as \s in Oniguruma and Rust's regex
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

func classify(r rune) runeClass {
	if r < utf8.RuneSelf && r >= 0 {
		return asciiClass[r]
	}
	return classifySlow(r)
}

// runeAt decodes the rune at byte offset i; invalid bytes decode as
// utf8.RuneError of width 1 (class "other").
func runeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// classAt returns the class of the rune at i, or false at the end.
func classAt(s string, i int) (runeClass, int, bool) {
	if i >= len(s) {
		return 0, 0, false
	}
	r, w := runeAt(s, i)
	return classify(r), w, true
}

// runOf returns the end of the maximal run of runes of class c starting at i.
func runOf(s string, i int, c runeClass) int {
	for i < len(s) {
		r, w := runeAt(s, i)
		if classify(r) != c {
			break
		}
		i += w
	}
	return i
}

// whitespaceTail handles the shared tail `\s+(?!\S)|\s+` at a whitespace
// rune: the maximal run, except that a run of two or more runes followed by
// a non-space gives its last rune back (so " word" can take it).
func whitespaceTail(s string, i int) int {
	end := runOf(s, i, classSpace)
	if end == len(s) {
		return end
	}
	_, lastW := utf8.DecodeLastRuneInString(s[i:end])
	if end-lastW > i {
		return end - lastW
	}
	return end
}

// nextGPT2 returns the end of the GPT-2 rule's match starting at i < len(s).
func nextGPT2(s string, i int) int {
	r, _ := runeAt(s, i)
	if r == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	c := classify(r)
	if r == ' ' {
		if c2, _, ok := classAt(s, i+1); ok && c2 != classSpace {
			return runOf(s, i+1, c2)
		}
	}
	if c != classSpace {
		return runOf(s, i, c)
	}
	return whitespaceTail(s, i)
}

// foldEq reports whether the rune at i equals the ASCII letter lower under
// Unicode simple case folding (which also maps U+017F LONG S to s).
func foldEq(s string, i int, lower byte) (int, bool) {
	if i >= len(s) {
		return 0, false
	}
	r, w := runeAt(s, i)
	if r == rune(lower) || r == rune(lower-'a'+'A') || (lower == 's' && r == 'ſ') || (lower == 'k' && r == 'K') {
		return w, true
	}
	return 0, false
}

// llama3Contraction matches (?i:'s|'t|'re|'ve|'m|'ll|'d) at i.
func llama3Contraction(s string, i int) (int, bool) {
	if s[i] != '\'' {
		return 0, false
	}
	j := i + 1
	for _, one := range []byte{'s', 't'} {
		if w, ok := foldEq(s, j, one); ok {
			return j + w, true
		}
	}
	for _, two := range [][2]byte{{'r', 'e'}, {'v', 'e'}} {
		if w, ok := foldEq(s, j, two[0]); ok {
			if w2, ok := foldEq(s, j+w, two[1]); ok {
				return j + w + w2, true
			}
		}
	}
	if w, ok := foldEq(s, j, 'm'); ok {
		return j + w, true
	}
	if w, ok := foldEq(s, j, 'l'); ok {
		if w2, ok := foldEq(s, j+w, 'l'); ok {
			return j + w + w2, true
		}
	}
	if w, ok := foldEq(s, j, 'd'); ok {
		return j + w, true
	}
	return 0, false
}

// nextLlama3 returns the end of the Llama-3 rule's match starting at
// i < len(s); maxDigits bounds \p{N}{1,maxDigits}.
func nextLlama3(s string, i int, maxDigits int) int {
	if end, ok := llama3Contraction(s, i); ok {
		return end
	}
	r, w := runeAt(s, i)
	c := classify(r)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c == classLetter {
		return runOf(s, i, classLetter)
	}
	if r != '\r' && r != '\n' && c != classNumber {
		if c2, _, ok := classAt(s, i+w); ok && c2 == classLetter {
			return runOf(s, i+w, classLetter)
		}
	}
	// \p{N}{1,n}
	if c == classNumber {
		j := i
		for n := 0; n < maxDigits && j < len(s); n++ {
			r2, w2 := runeAt(s, j)
			if classify(r2) != classNumber {
				break
			}
			j += w2
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if c == classOther {
		start = i
	} else if r == ' ' {
		if c2, _, ok := classAt(s, i+1); ok && c2 == classOther {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runOf(s, start, classOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// \s*[\r\n]+ : backtracking gives the whitespace run up to and including
	// its last line break.
	end := runOf(s, i, classSpace)
	for k := end - 1; k >= i; k-- {
		if s[k] == '\r' || s[k] == '\n' {
			return k + 1
		}
	}
	return whitespaceTail(s, i)
}

// scanSplit cuts s into consecutive matches of a scanner rule.
func scanSplit(s string, next func(string, int) int, emit func(start, end int)) {
	for i := 0; i < len(s); {
		j := next(s, i)
		if j <= i { // cannot happen for a total rule; guards against a stall
			_, w := runeAt(s, i)
			j = i + w
		}
		emit(i, j)
		i = j
	}
}
