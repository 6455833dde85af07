package dsr

import (
	"errors"
	"unicode"
	"unicode/utf8"
)

// TextRule says which layout characters a free-text field may hold.
type TextRule int

const (
	// OneLine is a name, a method, a label: no line break, no tab.
	OneLine TextRule = iota
	// Lines is prose (a note, a reason, a basis): line feeds (\n) and tabs
	// are allowed, nothing else of the kind (no CR, no U+2028/2029).
	Lines
)

// CheckText reports whether s is fit to be placed in an email or a page
// that others read as this service's words: nil when it is, else an error
// that says what is wrong without quoting s.
//
// It refuses text that is not valid UTF-8 (or holds U+FFFD, which is what
// a JSON decoder makes of bytes that were not), control characters (C0,
// DEL, C1; rule Lines lets \n and \t through), line and paragraph
// separators, bidirectional controls (U+061C, U+200E/F, U+202A-202E,
// U+2066-2069) and every other invisible format character (Unicode
// category Cf: zero-width spaces, word joiners, BOM, soft hyphen, tags...),
// and the Hangul fillers, which draw nothing either. Zero-width joiners
// and non-joiners (U+200C/D) are the one exception: written between two
// visible characters they shape Persian, Indic and emoji text, and are
// kept there; anywhere else they are refused.
func CheckText(s string, rule TextRule) error {
	if !utf8.ValidString(s) {
		return errors.New("must be valid UTF-8")
	}
	prev := rune(-1)
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == utf8.RuneError:
			return errors.New("must be valid UTF-8 (holds U+FFFD, the mark of bytes that were not)")
		case (r == '\n' || r == '\t') && rule == Lines:
		case r == '\n' || r == '\r' || r == 0x2028 || r == 0x2029 || r == 0x85:
			if rule == Lines {
				return errors.New(`must break lines with \n alone (no CR, no Unicode line or paragraph separators)`)
			}
			return errors.New("must be one line: no line breaks")
		case unicode.IsControl(r):
			return errors.New("must not contain control characters")
		case isBidi(r):
			return errors.New("must not contain bidirectional controls (U+061C, U+200E/F, U+202A-202E, U+2066-2069)")
		case r == 0x200C || r == 0x200D:
			next := rune(-1)
			if i+1 < len(rs) {
				next = rs[i+1]
			}
			if !visible(prev) || !visible(next) {
				return errors.New("must not contain invisible characters (a zero-width joiner is allowed only between two visible characters)")
			}
		case unicode.Is(unicode.Cf, r) || isFiller(r):
			return errors.New("must not contain invisible characters (zero-width, format or filler characters)")
		}
		prev = r
	}
	return nil
}

// isBidi reports whether r is a bidirectional control: the marks, the
// embeddings and overrides, and the isolates.
func isBidi(r rune) bool {
	return r == 0x061C || r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// isFiller reports whether r is a Hangul filler: a letter that draws
// nothing.
func isFiller(r rune) bool {
	return r == 0x115F || r == 0x1160 || r == 0x3164 || r == 0xFFA0
}

// Hidden reports whether r is a character CheckText refuses wherever it
// stands: a control, a format character (bidi controls and zero-width ones
// among them) or a Hangul filler. Renderers of text stored before a check
// use it to drop such characters; joiners (U+200C, U+200D), which
// CheckText allows between visible characters, are for the caller to keep.
func Hidden(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || isFiller(r)
}

// visible reports whether r draws something a joiner can join to: a
// letter, mark, digit, symbol or punctuation (not a space, not a format or
// control character, not the start or end of the text).
func visible(r rune) bool {
	return r >= 0 && (unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.S, unicode.P)) && !isFiller(r)
}

// Text checks a free-text field with CheckText and records its problem
// under field; it returns whether the text is fit.
func (v *ValidationError) Text(field, s string, rule TextRule) bool {
	if err := CheckText(s, rule); err != nil {
		v.Add(field, "%s", err)
		return false
	}
	return true
}
