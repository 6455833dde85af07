package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// KeySize is the size in bytes of master keys and data keys (AES-256).
const KeySize = 32

// maxIDLen is the longest master key id.
const maxIDLen = 32

// The errors callers can test with errors.Is. The messages that wrap them
// name key ids, entry numbers and segment numbers, never key material or
// plaintext.
var (
	// ErrUnknownKey: a wrapped data key names a master key id that is not in
	// the keyring (a key removed after rotation, or another deployment's).
	ErrUnknownKey = errors.New("envelope: unknown master key id")
	// ErrAuth: a ciphertext did not authenticate: another key, another aad,
	// or bytes altered, reordered or cut.
	ErrAuth = errors.New("envelope: authentication failed (wrong key, wrong aad, or altered data)")
	// ErrTruncated: the data ends before its end: a sealed value shorter than
	// its overhead, or a stream without its final segment.
	ErrTruncated = errors.New("envelope: data truncated")
	// ErrVersion: the first byte is not a format version this package reads.
	ErrVersion = errors.New("envelope: unsupported format version")
	// ErrDestroyed: the data key was destroyed with DataKey.Destroy.
	ErrDestroyed = errors.New("envelope: data key destroyed")
)

// masterKey is one master key: its id and the AEAD made from it. The key
// bytes themselves are not kept, and the AEAD (whose key schedule starts
// with the key) is hidden in a closure, so even a reflective print of a
// Keyring inside another value, with any verb, shows an address.
type masterKey struct {
	id   string
	aead hiddenAEAD
}

// hiddenAEAD holds an AEAD where reflection cannot reach it: fmt prints a
// func as an address whatever the verb and depth, while it walks into
// pointers, interfaces and unexported fields (%s of a struct holding a
// cipher.AEAD prints the AES round keys).
type hiddenAEAD func() cipher.AEAD

func hide(a cipher.AEAD) hiddenAEAD { return func() cipher.AEAD { return a } }

// Keyring is the set of master keys, the first one active: Wrap uses the
// active key only; Unwrap accepts any key in the ring, so data keys wrapped
// under an older key stay readable until Rewrap moves them. A Keyring is
// immutable and safe for concurrent use. Printing it with any verb shows
// the key ids and never key bytes.
type Keyring struct {
	keys []*masterKey // keys[0] is active
	byID map[string]*masterKey
}

// ParseKeyring parses master keys in the DSAR_MASTER_KEYS format:
// id:base64key[,id:base64key...], the first active. Ids are 1 to 32 of
// a-z, 0-9, '_' and '-', unique; keys are exactly 32 bytes, in standard or
// URL base64, padded or not. Spaces around entries are ignored. An error
// names the entry by its position (1 for the first) and, when the id is
// valid, by its id; it never includes key material.
func ParseKeyring(s string) (*Keyring, error) {
	kr, err := parseEntries(strings.Split(s, ","))
	if err != nil {
		return nil, fmt.Errorf("envelope: master keys: %w", err)
	}
	return kr, nil
}

// parseEntries builds a keyring from id:base64key entries.
func parseEntries(entries []string) (*Keyring, error) {
	if len(entries) == 1 && strings.TrimSpace(entries[0]) == "" {
		return nil, errors.New("none given: want id:base64key[,id:base64key...], the first active")
	}
	kr := &Keyring{byID: make(map[string]*masterKey, len(entries))}
	seen := make(map[string]int, len(entries))
	for i, e := range entries {
		n := i + 1
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("entry %d: empty (a stray comma?)", n)
		}
		id, b64, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("entry %d: no ':' between id and key: want id:base64key", n)
		}
		// An invalid id is not echoed: an entry written key:id would put the
		// key there.
		if !validID(id) {
			return nil, fmt.Errorf("entry %d: the id (%d characters) must be 1 to %d of a-z, 0-9, '_' and '-'", n, len(id), maxIDLen)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("entry %d: id %q already names entry %d: ids must be unique", n, id, prev)
		}
		seen[id] = n
		key, ok := decodeKey(b64)
		if !ok {
			return nil, fmt.Errorf("entry %d (id %q): the key is not base64 (standard or URL alphabet, padded or not)", n, id)
		}
		if len(key) != KeySize {
			clear(key)
			return nil, fmt.Errorf("entry %d (id %q): the key is %d bytes, want %d (AES-256)", n, id, len(key), KeySize)
		}
		aead := newGCM(key)
		clear(key)
		mk := &masterKey{id: id, aead: hide(aead)}
		kr.keys = append(kr.keys, mk)
		kr.byID[id] = mk
	}
	return kr, nil
}

// validID reports whether id is 1 to 32 of [a-z0-9_-].
func validID(id string) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// decodeKey decodes standard or URL base64, padded or not.
func decodeKey(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// newGCM makes AES-256-GCM with the standard 12-byte nonce and 16-byte tag.
func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("envelope: " + err.Error()) // callers pass KeySize bytes only
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("envelope: " + err.Error())
	}
	return aead
}

// GenerateMasterKey returns a new master key entry, id:base64key, for
// DSAR_MASTER_KEYS or a key file: 32 random bytes in standard base64 under
// an id made of the date and random hex (k20261130-3f9a1c), so that entries
// generated on different days sort by age and never collide in practice.
func GenerateMasterKey() string {
	var key [KeySize]byte
	rand.Read(key[:])
	var tag [3]byte
	rand.Read(tag[:])
	entry := "k" + time.Now().UTC().Format("20060102") + "-" + hex.EncodeToString(tag[:]) + ":" + base64.StdEncoding.EncodeToString(key[:])
	clear(key[:])
	return entry
}

// Active returns the id of the active key, the one Wrap uses ("" for a
// Keyring not made by ParseKeyring or LoadOrCreateKeyFile).
func (kr *Keyring) Active() string {
	if len(kr.keys) == 0 {
		return ""
	}
	return kr.keys[0].id
}

// IDs returns the ids of the keys, the active one first.
func (kr *Keyring) IDs() []string {
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.id
	}
	return ids
}

// Has reports whether the ring holds a key with this id.
func (kr *Keyring) Has(id string) bool {
	_, ok := kr.byID[id]
	return ok
}

// String describes the ring by its ids: envelope.Keyring{active: k2, keys: [k2 k1]}.
func (kr Keyring) String() string {
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.id
	}
	active := ""
	if len(ids) > 0 {
		active = ids[0]
	}
	return "envelope.Keyring{active: " + active + ", keys: [" + strings.Join(ids, " ") + "]}"
}

// GoString is String, so %#v prints no key material either.
func (kr Keyring) GoString() string { return kr.String() }

// Format prints String for every verb (%d or %x included), so no verb
// reaches the fields.
func (kr Keyring) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, kr.String()) }

// Format prints the id only.
func (mk masterKey) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "envelope.masterKey{id: "+mk.id+"}")
}
