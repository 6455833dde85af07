package redis

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dsar-project/dsar/connectors"
)

// template is a key pattern, a segment key or a member template as written in
// the file: literal text around at most one placeholder {kind}, which stands
// for one of the subject's identities of that kind. A literal brace is
// written twice ({{, }}), as hash tags of Redis Cluster need.
type template struct {
	text   string // as written
	before string // literal text before the placeholder, braces undoubled
	after  string // literal text after it
	kind   string // the placeholder's identity kind; "" when there is none
}

// parseTemplate reads s. It checks the braces and that every placeholder
// names an identity kind, and refuses more than one placeholder.
func parseTemplate(s string) (template, error) {
	t := template{text: s}
	var lit strings.Builder
	placeholders := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '{':
			if i+1 < len(s) && s[i+1] == '{' {
				lit.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return t, errors.New("a '{' is not closed: write {KIND} for an identity, or {{ for a literal brace")
			}
			kind := s[i+1 : i+1+end]
			if !connectors.ValidKind(kind) {
				return t, fmt.Errorf("unknown identity kind {%s} (known: %s)", kind, connectors.KindList())
			}
			placeholders++
			if placeholders > 1 {
				return t, errors.New("more than one placeholder: a template holds exactly one {KIND}")
			}
			t.before, t.kind = lit.String(), kind
			lit.Reset()
			i += end + 1
		case '}':
			if i+1 < len(s) && s[i+1] == '}' {
				lit.WriteByte('}')
				i++
				continue
			}
			return t, errors.New("a '}' without its '{': write }} for a literal brace")
		default:
			lit.WriteByte(c)
		}
	}
	if placeholders == 0 {
		t.before = lit.String()
	} else {
		t.after = lit.String()
	}
	return t, nil
}

// globMeta are the characters special in the patterns of SCAN MATCH.
const globMeta = `*?[]\`

// checkKeyPattern checks that t, a key pattern, finds one person's keys: it
// has a placeholder, the placeholder sits outside any character class and
// no wildcard touches it (so "12" never reaches the keys of "123"), and the
// literal text has no backslash (which could escape the first character of
// the escaped identity and so unescape the next).
func checkKeyPattern(t template) error {
	switch {
	case t.kind == "":
		return fmt.Errorf("no {KIND} placeholder: the pattern would match every person's keys (write e.g. user:{customer_id}:*)")
	case strings.Contains(t.before+t.after, `\`):
		return errors.New(`a backslash is not allowed in a key pattern: match a character with ? instead`)
	case t.before != "" && strings.ContainsRune("*?]", rune(t.before[len(t.before)-1])),
		t.after != "" && strings.ContainsRune("*?[", rune(t.after[0])):
		return fmt.Errorf("a wildcard right next to {%s} would also match other people's keys (12 would find 123's): put a separator between them, e.g. user:{%s}:*", t.kind, t.kind)
	}
	for _, part := range []string{t.before, t.after} {
		if err := checkClasses(part); err != nil {
			return err
		}
	}
	return nil
}

// checkClasses checks that every '[' of a literal part is closed in that part,
// so that no character class spans the placeholder.
func checkClasses(part string) error {
	open := false
	for i := 0; i < len(part); i++ {
		switch part[i] {
		case '[':
			if !open {
				open = true
			}
		case ']':
			open = false
		}
	}
	if open {
		return errors.New("a '[' is not closed before the placeholder: a character class cannot hold the identity")
	}
	return nil
}

// exact reports whether t, a key pattern, names one key per identity rather
// than a glob: its literal text has no wildcard or class.
func (t template) exact() bool {
	return !strings.ContainsAny(t.before+t.after, "*?[")
}

// fill returns t with v in place of the placeholder, as is: a key (for an
// exact pattern) or a segment member.
func (t template) fill(v string) string {
	return t.before + v + t.after
}

// match returns t as a SCAN MATCH pattern with v in place of the
// placeholder, v's glob characters escaped so that v matches only itself.
func (t template) match(v string) string {
	return t.before + escapeGlob(v) + t.after
}

// escapeGlob escapes the characters of s that SCAN MATCH reads as a glob.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, globMeta) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(globMeta, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// values returns the subject's values of t's kind, without empty ones (an
// empty identity would make user:{customer_id}:* match user::*, keys of no
// one in particular) and without duplicates.
func (t template) values(s connectors.Subject) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range s.Values(t.kind) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
