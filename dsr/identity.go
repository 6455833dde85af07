package dsr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
)

// Kind names a kind of identifier for a person.
type Kind string

// The identity kinds a request can carry.
const (
	KindEmail      Kind = "email"
	KindCustomerID Kind = "customer_id"
	KindPhone      Kind = "phone"
)

// Kinds lists every identity kind.
var Kinds = []Kind{KindEmail, KindCustomerID, KindPhone}

// Valid reports whether k is a known identity kind.
func (k Kind) Valid() bool {
	for _, x := range Kinds {
		if k == x {
			return true
		}
	}
	return false
}

// SourceSubject marks an identity given by the subject (or on their behalf)
// at intake and vouched for (verified, or filed by an agent), as opposed to
// one found by identity resolution.
const SourceSubject = "subject"

// SourceClaimed marks an identity the subject gave but did not prove: a
// portal request proves only its email. Claimed identities are kept with the
// request (and in its blind index) but no connector acts on them.
const SourceClaimed = "claimed"

// Actionable returns the identities connectors may act on: all but the
// claimed ones.
func Actionable(ids []Identity) []Identity {
	out := make([]Identity, 0, len(ids))
	for _, id := range ids {
		if id.Source != SourceClaimed {
			out = append(out, id)
		}
	}
	return out
}

// Identity is one normalised identifier of the subject.
type Identity struct {
	Kind  Kind   `bson:"kind"`
	Value string `bson:"value"`
	// Source is SourceSubject, or "connector/collection" for an identity
	// found by identity resolution.
	Source string `bson:"source"`
}

// Normalize returns the canonical form of an identifier, or an error that
// says what is wrong without quoting the value.
//
// Emails are trimmed and lower-cased; phones are put in E.164 form
// (+ and 8 to 15 digits, spaces, dots, dashes and brackets dropped, a leading
// 00 read as +); customer ids are trimmed.
func Normalize(k Kind, raw string) (string, error) {
	v := strings.TrimSpace(raw)
	if v == "" {
		return "", errors.New("must not be empty")
	}
	switch k {
	case KindEmail:
		return normalizeEmail(v)
	case KindPhone:
		return normalizePhone(v)
	case KindCustomerID:
		if len(v) > 128 {
			return "", errors.New("must be at most 128 characters")
		}
		if strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return "", errors.New("must not contain control characters")
		}
		return v, nil
	}
	return "", fmt.Errorf("unknown identity kind %q", k)
}

func normalizeEmail(v string) (string, error) {
	if len(v) > 254 {
		return "", errors.New("must be at most 254 characters")
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v || !strings.Contains(v[strings.LastIndexByte(v, '@'):], ".") {
		return "", errors.New("must be a plain email address such as name@example.com")
	}
	return strings.ToLower(v), nil
}

func normalizePhone(v string) (string, error) {
	var b strings.Builder
	for i, r := range v {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", errors.New("must be a phone number in international form, e.g. +44 20 7946 0958")
		}
	}
	p := b.String()
	if strings.HasPrefix(p, "00") {
		p = "+" + p[2:]
	}
	digits := strings.TrimPrefix(p, "+")
	if !strings.HasPrefix(p, "+") || len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return "", errors.New("must be a phone number in international form with its country code, e.g. +44 20 7946 0958")
	}
	return p, nil
}

// BlindIndex computes keyed hashes (HMAC-SHA256) of identities, so a request
// can be found by identity without querying clear values. Later work may
// encrypt the clear values without changing any query.
type BlindIndex struct {
	key []byte
}

// NewBlindIndex returns a blind index under key, which must hold at least 32
// bytes. Changing the key makes existing hashes unfindable.
func NewBlindIndex(key []byte) (*BlindIndex, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("blind index key: need at least 32 bytes, got %d", len(key))
	}
	return &BlindIndex{key: append([]byte(nil), key...)}, nil
}

// Hash returns "kind:hex(hmac(kind, value))" for a normalised value.
func (b *BlindIndex) Hash(k Kind, value string) string {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(k))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return string(k) + ":" + hex.EncodeToString(m.Sum(nil))
}

// HashAll returns the distinct hashes of ids, in their order.
func (b *BlindIndex) HashAll(ids []Identity) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		h := b.Hash(id.Kind, id.Value)
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// MergeIdentities appends to have those of more that it lacks (same kind and
// value), keeping the first source seen.
func MergeIdentities(have, more []Identity) []Identity {
	seen := make(map[Identity]bool, len(have))
	for _, id := range have {
		seen[Identity{Kind: id.Kind, Value: id.Value}] = true
	}
	out := have
	for _, id := range more {
		k := Identity{Kind: id.Kind, Value: id.Value}
		if !seen[k] {
			seen[k] = true
			out = append(out, id)
		}
	}
	return out
}
