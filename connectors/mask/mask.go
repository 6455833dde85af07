// Package mask holds the ways a connector masks a field instead of deleting
// the record that holds it: the strategies a connectors file names per
// field, and how each turns a value into its masked form.
//
//	mask: {name: null, email: email_format, phone: random, ref: hmac, note: {fixed: "[erased]"}}
//
// Every strategy but random is deterministic under one key: masking the
// same value twice gives the same result, so a unique column stays unique
// and a join on a keyed hash still joins. None can be reversed without the
// key, and hmac and email_format not even with it.
package mask

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Kind names a strategy.
type Kind string

// The strategies.
const (
	// Null sets the field to null (nil).
	Null Kind = "null"
	// Fixed sets the field to one value given in the file ({fixed: VALUE}).
	Fixed Kind = "fixed"
	// HMAC sets a text field to the hex HMAC-SHA256 of its value under the
	// service's mask key (64 characters): joins on it still work.
	HMAC Kind = "hmac"
	// Random sets a text field to random letters and digits, as many as
	// the value had characters.
	Random Kind = "random"
	// EmailFormat sets a text field to redacted-<16 hex of the HMAC>@invalid:
	// still a well-formed address (a CHECK or a validator keeps passing),
	// unique per original address, and undeliverable (.invalid, RFC 2606).
	EmailFormat Kind = "email_format"
)

// Kinds lists every strategy, as the file writes them.
var Kinds = []Kind{Null, Fixed, HMAC, Random, EmailFormat}

// Strategy is how one field is masked. The zero Strategy is Null: YAML's
// null (name: ~) decodes to it.
type Strategy struct {
	Kind Kind
	// Value is what Fixed sets.
	Value any
}

// Keyed reports whether s needs the mask key.
func (s Strategy) Keyed() bool { return s.Kind == HMAC || s.Kind == EmailFormat }

// Text reports whether s can only mask text (a string).
func (s Strategy) Text() bool { return s.Kind == HMAC || s.Kind == Random || s.Kind == EmailFormat }

// norm returns s with the zero Kind read as Null.
func (s Strategy) norm() Strategy {
	if s.Kind == "" {
		s.Kind = Null
	}
	return s
}

// String writes s as the file does.
func (s Strategy) String() string {
	s = s.norm()
	if s.Kind == Fixed {
		return fmt.Sprintf("{fixed: %v}", s.Value)
	}
	return string(s.Kind)
}

// UnmarshalYAML reads a strategy: one of the words null, hmac, random,
// email_format, or a one-key mapping {fixed: VALUE}. YAML's own null (a
// field written "name: ~" or "name: null") is the null strategy.
func (s *Strategy) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			*s = Strategy{Kind: Null}
			return nil
		}
		for _, k := range Kinds {
			if k != Fixed && n.Value == string(k) {
				*s = Strategy{Kind: k}
				return nil
			}
		}
	case yaml.MappingNode:
		if len(n.Content) == 2 && n.Content[0].Value == string(Fixed) {
			v := n.Content[1]
			if v.Kind != yaml.ScalarNode {
				return lineError(v, "fixed takes one plain value (text, a number, true or false)")
			}
			var val any
			if err := v.Decode(&val); err != nil {
				return lineError(v, "fixed: %v", err)
			}
			*s = Strategy{Kind: Fixed, Value: val}
			return nil
		}
	}
	return lineError(n, "unknown mask strategy %q: want null, hmac, random, email_format or {fixed: VALUE}", n.Value)
}

func lineError(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...))
}

// ErrNotText is returned when a text-only strategy meets another value.
var ErrNotText = errors.New("mask: strategy masks text only")

// Masker applies strategies under one key. The zero Masker has no key and
// refuses the keyed strategies.
type Masker struct {
	key []byte
}

// NewMasker returns a Masker keyed by key (at least 16 bytes).
func NewMasker(key []byte) (*Masker, error) {
	if len(key) < 16 {
		return nil, fmt.Errorf("mask key: want at least 16 bytes, not %d", len(key))
	}
	return &Masker{key: append([]byte(nil), key...)}, nil
}

// Apply returns v masked by s. nil stays nil whatever the strategy (there is
// nothing to mask). A text-only strategy (see Strategy.Text) given anything
// but a string returns ErrNotText; a keyed one on a Masker without a key
// an error.
func (m *Masker) Apply(s Strategy, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	s = s.norm()
	switch s.Kind {
	case Null:
		return nil, nil
	case Fixed:
		return s.Value, nil
	}
	text, ok := v.(string)
	if !ok {
		if b, isBytes := v.([]byte); isBytes {
			text, ok = string(b), true
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w (%s), not %T", ErrNotText, s.Kind, v)
	}
	switch s.Kind {
	case Random:
		return randomText(utf8.RuneCountInString(text))
	case HMAC:
		sum, err := m.sum(text)
		if err != nil {
			return nil, err
		}
		return hex.EncodeToString(sum), nil
	case EmailFormat:
		sum, err := m.sum(strings.ToLower(strings.TrimSpace(text)))
		if err != nil {
			return nil, err
		}
		return "redacted-" + hex.EncodeToString(sum[:8]) + "@invalid", nil
	}
	return nil, fmt.Errorf("mask: unknown strategy %q", s.Kind)
}

func (m *Masker) sum(text string) ([]byte, error) {
	if m == nil || len(m.key) == 0 {
		return nil, errors.New("mask: hmac and email_format need the service's mask key")
	}
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte(text))
	return h.Sum(nil), nil
}

var (
	hexSum   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	redacted = regexp.MustCompile(`^redacted-[0-9a-f]{16}@invalid$`)
)

// Masked reports whether v already has the form s gives, so that erasing
// twice finds nothing left to mask: known is false for Random, whose
// output cannot be told from a value.
func Masked(s Strategy, v any) (masked, known bool) {
	switch s.norm().Kind {
	case Null:
		return v == nil, true
	case Fixed:
		return v == nil || fmt.Sprint(v) == fmt.Sprint(s.Value), true
	case HMAC:
		t, _ := v.(string)
		return v == nil || hexSum.MatchString(t), true
	case EmailFormat:
		t, _ := v.(string)
		return v == nil || redacted.MatchString(t), true
	}
	return v == nil, false
}

const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomText(n int) (string, error) {
	b := make([]byte, n)
	limit := big.NewInt(int64(len(alphabet)))
	for i := range b {
		x, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return "", fmt.Errorf("mask: random: %w", err)
		}
		b[i] = alphabet[x.Int64()]
	}
	return string(b), nil
}

// KeyFrom derives the mask key from the service's blind-index key, so that
// masking needs no setting of its own: HMAC-SHA256(indexKey, "dsar mask key
// v1"). Rotating the blind-index key changes every mask made after.
func KeyFrom(indexKey []byte) []byte {
	h := hmac.New(sha256.New, indexKey)
	h.Write([]byte("dsar mask key v1"))
	return h.Sum(nil)
}
