package dsr

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

	"github.com/dsar-project/dsar/connectors"
)

// Kind names a kind of identifier for a person.
type Kind string

// The identity kinds a request can carry.
//
// KindAdvertisingID is a resettable advertising id: Apple's IDFA, Google's
// AAID, Amazon Fire's, Microsoft's and Roku's RIDA (OpenDSR's
// ios_advertising_id, android_advertising_id, fire_advertising_id,
// microsoft_advertising_id, roku_advertising_id). KindDeviceID is an id a
// device gives one vendor or publisher: Android's ANDROID_ID, Apple's IDFV,
// Microsoft's and Roku's publisher ids (android_id, ios_vendor_id,
// microsoft_publisher_id, roku_publisher_id). One kind each, not one per
// platform: each value is random and names one device whatever made it (a
// UUID cannot be two platforms' ids), so a platform would add nothing to a
// match and would make a system that keeps every platform's ids in one
// column name the same column once per platform.
const (
	KindEmail         Kind = "email"
	KindCustomerID    Kind = "customer_id"
	KindPhone         Kind = "phone"
	KindAdvertisingID Kind = "advertising_id"
	KindDeviceID      Kind = "device_id"
)

// Kinds lists every identity kind. Its order is kept, new kinds added at
// its end: the suppression set stores a kind as its place in it.
var Kinds = []Kind{KindEmail, KindCustomerID, KindPhone, KindAdvertisingID, KindDeviceID}

// kindList lists Kinds, comma-separated, for a message.
func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Valid reports whether k is a known identity kind.
func (k Kind) Valid() bool {
	return slices.Contains(Kinds, k)
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

// Given returns the identities given at intake and vouched for (Source
// SourceSubject): neither claimed nor resolved.
func Given(ids []Identity) []Identity {
	out := make([]Identity, 0, len(ids))
	for _, id := range ids {
		if id.Source == SourceSubject {
			out = append(out, id)
		}
	}
	return out
}

// Identity is one normalised identifier of the subject, as a request
// stores it. It stays apart from [connectors.Identity], the plain value a
// connector is handed: its Kind is one of [Kinds], its Value normalised
// ([Normalize]) and hashed into the request's blind index, and it has
// stored names; a connector's kind is any string, checked when dsr takes
// its resolved identities in. [SubjectOf] converts.
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
//
// An advertising id must be a UUID (8-4-4-4-12 hex digits, either case),
// and is lower-cased. A device id is 8 to 64 of letters, digits, - and _
// (Android's is 16 hex digits, Apple's IDFV a UUID), lower-cased when it is
// hex digits and dashes only, kept as given otherwise (a value of other
// letters may be case-sensitive). Neither may be a placeholder
// (placeholderID): the all-zero id a phone gives when tracking is limited
// names nobody, yet would match every person whose system recorded it.
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
	case KindAdvertisingID:
		return normalizeAdvertisingID(v)
	case KindDeviceID:
		return normalizeDeviceID(v)
	}
	return "", fmt.Errorf("unknown identity kind %q", k)
}

// normalizeAdvertisingID checks that v is a UUID and not a placeholder,
// and lower-cases it.
func normalizeAdvertisingID(v string) (string, error) {
	if len(v) != 36 {
		return "", errors.New("must be a UUID of 32 hex digits in groups of 8-4-4-4-12, e.g. 6d92078a-8246-4ba4-ae5b-76104861e7dc")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return "", errors.New("must be a UUID of 32 hex digits in groups of 8-4-4-4-12, e.g. 6d92078a-8246-4ba4-ae5b-76104861e7dc")
			}
		} else if !isHex(c) {
			return "", errors.New("must be a UUID of 32 hex digits in groups of 8-4-4-4-12, e.g. 6d92078a-8246-4ba4-ae5b-76104861e7dc")
		}
	}
	v = strings.ToLower(v)
	if placeholderID(v) {
		return "", errors.New("is a placeholder (such as the all-zero id a device gives when ad tracking is limited), not one device's id: it would match every person whose device gave it")
	}
	return v, nil
}

// normalizeDeviceID checks that v is 8 to 64 of letters, digits, - and _,
// and not a placeholder; it lower-cases a value of hex digits and dashes.
func normalizeDeviceID(v string) (string, error) {
	if len(v) < 8 || len(v) > 64 {
		// Android's, the shortest, has 16 hex digits: a shorter value
		// is no device's id, and would match too many.
		return "", errors.New("must be 8 to 64 characters")
	}
	hex := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isHex(c) || c == '-':
		case c == '_' || (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z'):
			hex = false
		default:
			return "", errors.New("must be letters, digits, - and _ only")
		}
	}
	if hex {
		v = strings.ToLower(v)
	}
	if placeholderID(v) {
		return "", errors.New("is a placeholder (such as an all-zero id, or one that many devices share), not one device's id: it would match every person whose device gave it")
	}
	return v, nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// sharedDeviceIDs are device ids that many devices give, lower-case:
// 9774d56d682e549c is the ANDROID_ID of a run of Android 2.2 devices.
var sharedDeviceIDs = []string{"9774d56d682e549c"}

// placeholderID reports whether v, an advertising or device id as
// normalised, stands for no one device: its letters and digits all one
// character (the all-zero id iOS and Android give when tracking is
// limited, 0000000000000000, ffffffff-ffff-...), a word for none
// (undefined, not_available, ...: shorter ones, such as unknown or null,
// are refused for their length), or an id known to be shared by many
// devices.
func placeholderID(v string) bool {
	var first rune
	same := true
	for _, r := range v {
		if r == '-' || r == '_' {
			continue
		}
		if first == 0 {
			first = r
		} else if unicode.ToLower(r) != unicode.ToLower(first) {
			same = false
			break
		}
	}
	if same {
		return true
	}
	l := strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(v))
	switch l {
	case "undefined", "unavailable", "notavailable", "notset", "deviceid", "advertisingid":
		return true
	}
	return slices.Contains(sharedDeviceIDs, l)
}

// NormalizeGiven is Normalize for an identity given at intake, by the person
// or an agent, which the service may write to: it also refuses what could
// pass for another identity or hide from the people who read it. An email
// must be valid UTF-8 without control or invisible characters (zero-width
// joiners and variation selectors included) or private-use and unassigned
// ones, be in NFKC form (no fullwidth or styled letters, no decomposed
// accents), have a domain name (not an IP address literal, and a last
// label of letters, so no resolver reads it as an address), and mix no
// scripts within its local part or any domain label (see mixedScripts); a
// customer id must be one line of visible text (CheckText). Advertising and
// device ids are ASCII letters, digits and dashes by Normalize already.
//
// Identities found in connected systems go through Normalize alone: they
// are matched as the systems hold them, and never written to. Neither
// changes the canonical form, so the blind index keeps its meaning.
func NormalizeGiven(k Kind, raw string) (string, error) {
	switch k {
	case KindEmail, KindCustomerID:
		if err := CheckText(strings.TrimSpace(raw), OneLine); err != nil {
			return "", err
		}
	}
	v, err := Normalize(k, raw)
	if err != nil || k != KindEmail {
		return v, err
	}
	if strings.ContainsAny(v, "\u200c\u200d") {
		// Prose may join letters with them; an address has no need to.
		return "", errors.New("must not contain invisible characters (zero-width joiners)")
	}
	for _, r := range v {
		switch {
		case isVariationSelector(r):
			return "", errors.New("must not contain invisible characters (variation selectors)")
		case !unicode.IsPrint(r):
			return "", errors.New("must not contain private-use or unassigned characters: they draw as any letter")
		}
	}
	if !norm.NFKC.IsNormalString(v) {
		// Fullwidth and styled letters (ａ, 𝐚) and decomposed accents
		// draw as the plain letters, yet mail systems take them for others.
		return "", errors.New("must be written with plain letters: no compatibility forms (fullwidth or styled letters) or decomposed accents, which pass for others")
	}
	at := strings.LastIndexByte(v, '@')
	local, domain := v[:at], v[at+1:]
	if strings.HasPrefix(domain, "[") || net.ParseIP(domain) != nil || !topLevelLabel(domain[strings.LastIndexByte(domain, '.')+1:]) {
		// A last label that is not letters makes a name that C's
		// inet_aton, and so many resolvers, read as an IP address:
		// 127.1, 0x7f.0.0.1.
		return "", errors.New("must have a domain name, not an IP address (its last label must be letters)")
	}
	if mixedScripts(local) {
		return "", errors.New("must not mix scripts (such as Latin and Cyrillic letters) in the part before @: such an address passes for another")
	}
	for _, label := range strings.Split(domain, ".") {
		if strings.HasPrefix(label, "xn--") {
			u, err := idna.Punycode.ToUnicode(label)
			if err != nil {
				return "", errors.New("must have a domain name whose xn-- labels are valid punycode")
			}
			label = u
		}
		if mixedScripts(label) {
			return "", errors.New("must not mix scripts (such as Latin and Cyrillic letters) in one label of the domain: such an address passes for another")
		}
	}
	return v, nil
}

// isVariationSelector reports whether r is a variation selector, which
// changes the glyph of the character before it and draws nothing itself.
func isVariationSelector(r rune) bool {
	return (r >= 0xFE00 && r <= 0xFE0F) || (r >= 0xE0100 && r <= 0xE01EF) || (r >= 0x180B && r <= 0x180D) || r == 0x180F
}

// topLevelLabel reports whether label can end a domain name: letters (and
// the marks some scripts write them with), or a valid xn-- label of them.
func topLevelLabel(label string) bool {
	if strings.HasPrefix(label, "xn--") {
		u, err := idna.Punycode.ToUnicode(label)
		if err != nil {
			return false
		}
		label = u
	}
	if label == "" {
		return false
	}
	for _, r := range label {
		if !unicode.In(r, unicode.L, unicode.M) {
			return false
		}
	}
	return true
}

// mixedScripts reports whether s mixes scripts beyond what Unicode's
// "highly restrictive" level (UTS #39, 5.2) allows: one script, or Latin
// with Han and Hiragana and Katakana (Japanese), with Han and Bopomofo
// (Chinese), or with Han and Hangul (Korean). Characters common to all
// scripts (digits, punctuation) and combining marks count for none.
func mixedScripts(s string) bool {
	seen := map[string]bool{}
	for _, r := range s {
		if name := scriptOf(r); name != "" {
			seen[name] = true
		}
	}
	if len(seen) <= 1 {
		return false
	}
	for _, allowed := range [][]string{
		{"Latin", "Han", "Hiragana", "Katakana"},
		{"Latin", "Han", "Bopomofo"},
		{"Latin", "Han", "Hangul"},
	} {
		n := 0
		for _, name := range allowed {
			if seen[name] {
				n++
			}
		}
		if n == len(seen) {
			return false
		}
	}
	return true
}

// scriptOf names the Unicode script of r, or "" for Common and Inherited.
func scriptOf(r rune) string {
	if r < 0x80 {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return name
		}
	}
	return ""
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
// can be found by identity without querying clear values; the store can
// seal the clear values (store/sealedstore) without changing any query.
//
// While its key changes, a blind index holds the previous keys too: what it
// writes is under the current key ([BlindIndex.Hash]), what it looks up or
// checks is under every key ([BlindIndex.Lookup], [BlindIndex.CodeMatches]),
// until `dsar keys rotate --blind-index` has re-hashed what is stored.
type BlindIndex struct {
	key []byte
	// previous are the keys it replaced, newest first.
	previous [][]byte
	// suppression is the pinned suppression key; nil: derived.
	suppression *SuppressionKey
}

// NewBlindIndex returns a blind index under key, which must hold at least 32
// bytes, accepting hashes under previous (newest first) in lookups and
// checks. Changing the key without giving the old one as previous makes
// existing hashes unfindable.
func NewBlindIndex(key []byte, previous ...[]byte) (*BlindIndex, error) {
	b := &BlindIndex{}
	for i, k := range append([][]byte{key}, previous...) {
		if len(k) < 32 {
			if i == 0 {
				return nil, fmt.Errorf("blind index key: need at least 32 bytes, got %d", len(k))
			}
			return nil, fmt.Errorf("previous blind index key %d: need at least 32 bytes, got %d", i, len(k))
		}
		k = append([]byte(nil), k...)
		if i == 0 {
			b.key = k
		} else {
			b.previous = append(b.previous, k)
		}
	}
	return b, nil
}

// Rotating reports whether b holds previous keys: hashes stored under them
// may still be about.
func (b *BlindIndex) Rotating() bool { return len(b.previous) > 0 }

// Hash returns "kind:hex(hmac(kind, value))" for a normalised value, under
// the current key.
func (b *BlindIndex) Hash(k Kind, value string) string {
	return hashUnder(b.key, k, value)
}

func hashUnder(key []byte, k Kind, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(k))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return string(k) + ":" + hex.EncodeToString(m.Sum(nil))
}

// Lookup returns the hashes to look a normalised value up by: under the
// current key, then under each previous one.
func (b *BlindIndex) Lookup(k Kind, value string) []string {
	out := []string{b.Hash(k, value)}
	for _, key := range b.previous {
		out = append(out, hashUnder(key, k, value))
	}
	return out
}

// LookupAll returns the distinct hashes of ids under every key: those of
// [BlindIndex.HashAll], then those under the previous keys.
func (b *BlindIndex) LookupAll(ids []Identity) []string {
	out := b.HashAll(ids)
	for _, key := range b.previous {
		for _, id := range ids {
			if h := hashUnder(key, id.Kind, id.Value); !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

// HashAllByKey returns [BlindIndex.HashAll] of ids under each key, the
// current first: to compare a stored set of hashes with ids whatever key
// it was stored under.
func (b *BlindIndex) HashAllByKey(ids []Identity) [][]string {
	out := [][]string{b.HashAll(ids)}
	for _, key := range b.previous {
		hs := make([]string, 0, len(ids))
		for _, id := range ids {
			if h := hashUnder(key, id.Kind, id.Value); !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
		out = append(out, hs)
	}
	return out
}

// Rehash returns, for each hash of ids under a previous key, the hash of
// the same identity under the current key: what `dsar keys rotate
// --blind-index` replaces in a stored request.
func (b *BlindIndex) Rehash(ids []Identity) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		cur := b.Hash(id.Kind, id.Value)
		for _, key := range b.previous {
			if old := hashUnder(key, id.Kind, id.Value); old != cur {
				out[old] = cur
			}
		}
	}
	return out
}

// HashValue returns the keyed hash that stands for value of field in a
// correction's evidence: "correction:FIELD:" and the hex HMAC-SHA256 of
// them, in a domain of its own, so it never equals a blind-index hash.
// Whoever holds the key can check a claimed value against it; nobody else
// can guess it.
func (b *BlindIndex) HashValue(field, value string) string {
	return b.Hash(Kind("correction:"+field), value)
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

// SubjectOf is the subject a connector acts on, by the identities ids.
func SubjectOf(ids []Identity) connectors.Subject {
	s := connectors.Subject{Identities: make([]connectors.Identity, len(ids))}
	for i, id := range ids {
		s.Identities[i] = connectors.Identity{Kind: string(id.Kind), Value: id.Value, Source: id.Source}
	}
	return s
}
