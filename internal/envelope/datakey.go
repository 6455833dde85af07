package envelope

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format versions: the first byte of a wrapped data key, a sealed field and
// a stream.
const (
	wrapVersion   = 0x01
	fieldVersion  = 0x01
	streamVersion = 0x02 // distinct from fieldVersion: a field is not a stream
)

const (
	nonceSize = 12
	tagSize   = 16
	// wrappedSize is the length of Wrapped.Ciphertext: version, nonce, the
	// encrypted data key and its tag.
	wrappedSize = 1 + nonceSize + KeySize + tagSize
	// wrapPurpose starts the AAD of a wrapped data key, followed by the
	// master key id: a wrapped key moved under another id, or a ciphertext
	// of another purpose under the same master key, does not unwrap.
	wrapPurpose = "dsar/envelope/v1/data-key\x00"
)

// DataKey is a data key: 32 random bytes that encrypt one request's fields
// and exports (Seal, Open, NewWriter, NewReader). It is stored only wrapped
// by a master key (Keyring.Wrap).
//
// Crypto-shredding is deleting every stored Wrapped of a data key: the
// ciphertexts it protects, in the database or in any backup, are then
// unreadable by anyone, master keys included. Destroy additionally zeroes
// the key bytes held in this process, which is best effort only: the Go
// runtime may have copied them (the AES key schedule inside the cached
// cipher is not reachable to zero), so Destroy limits exposure and does not
// replace deleting the Wrapped.
//
// Seal, Open, NewWriter and NewReader may be used concurrently; Destroy
// must not run concurrently with them. Copies of a DataKey share one key:
// destroying one destroys all. Printing a DataKey, alone or inside another
// value, with any verb, shows no key bytes: they are held in a closure,
// which reflection cannot enter.
type DataKey struct {
	s func() *keyState
}

// keyState is a data key's bytes and the AEAD made from them.
type keyState struct {
	k    [KeySize]byte
	aead cipher.AEAD // nil once destroyed
}

// NewDataKey returns a new random data key.
func NewDataKey() *DataKey {
	var k [KeySize]byte
	rand.Read(k[:])
	dk := dataKeyFrom(k[:])
	clear(k[:])
	return dk
}

// dataKeyFrom copies b (KeySize bytes) into a new DataKey.
func dataKeyFrom(b []byte) *DataKey {
	st := new(keyState)
	copy(st.k[:], b)
	st.aead = newGCM(st.k[:])
	return &DataKey{s: func() *keyState { return st }}
}

// Destroy zeroes the key bytes and makes every later use of dk fail with
// ErrDestroyed. See the type's comment for what it does not guarantee.
func (dk *DataKey) Destroy() {
	if dk == nil || dk.s == nil {
		return
	}
	st := dk.s()
	clear(st.k[:])
	st.aead = nil
}

// Destroyed reports whether Destroy was called (on dk or a copy).
func (dk *DataKey) Destroyed() bool {
	return dk == nil || dk.s == nil || dk.s().aead == nil
}

// get returns the key bytes and AEAD, or ErrDestroyed.
func (dk *DataKey) get() (*[KeySize]byte, cipher.AEAD, error) {
	if dk.Destroyed() {
		return nil, nil, ErrDestroyed
	}
	st := dk.s()
	return &st.k, st.aead, nil
}

// String never shows the key bytes.
func (dk DataKey) String() string {
	if dk.Destroyed() {
		return "envelope.DataKey{destroyed}"
	}
	return "envelope.DataKey{…}"
}

// GoString is String.
func (dk DataKey) GoString() string { return dk.String() }

// Format prints String for every verb.
func (dk DataKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, dk.String()) }

// Wrapped is a data key encrypted under a master key: the key's id and
// Ciphertext = version (1 byte, 0x01) | nonce (12) | AES-256-GCM of the 32
// key bytes with its tag (48), AAD = "dsar/envelope/v1/data-key\x00" + KeyID.
// It holds nothing secret; store it beside the data it protects, and
// delete it to crypto-shred that data.
type Wrapped struct {
	KeyID      string
	Ciphertext []byte
}

// Encode returns w as one string for storage in a text column:
// KeyID:base64url(Ciphertext) (unpadded). ParseWrapped reads it.
func (w Wrapped) Encode() string {
	return w.KeyID + ":" + base64.RawURLEncoding.EncodeToString(w.Ciphertext)
}

// ParseWrapped reads what Encode wrote. It checks the shape only; Unwrap
// checks the rest.
func ParseWrapped(s string) (Wrapped, error) {
	id, b64, ok := strings.Cut(s, ":")
	if !ok || !validID(id) {
		return Wrapped{}, fmt.Errorf("envelope: wrapped key: want id:base64url, with an id of 1 to %d of a-z, 0-9, '_' and '-'", maxIDLen)
	}
	ct, err := base64.RawURLEncoding.Strict().DecodeString(b64)
	if err != nil {
		return Wrapped{}, fmt.Errorf("envelope: wrapped key under %q: the ciphertext is not unpadded base64url", id)
	}
	return Wrapped{KeyID: id, Ciphertext: ct}, nil
}

// Wrap encrypts dk under the active master key.
func (kr *Keyring) Wrap(dk *DataKey) (Wrapped, error) {
	k, _, err := dk.get()
	if err != nil {
		return Wrapped{}, err
	}
	if len(kr.keys) == 0 {
		return Wrapped{}, errors.New("envelope: wrapping with an empty keyring")
	}
	mk := kr.keys[0]
	out := make([]byte, 1+nonceSize, wrappedSize)
	out[0] = wrapVersion
	var nonce [nonceSize]byte
	rand.Read(nonce[:])
	copy(out[1:], nonce[:])
	out = mk.aead().Seal(out, nonce[:], k[:], []byte(wrapPurpose+mk.id))
	return Wrapped{KeyID: mk.id, Ciphertext: out}, nil
}

// Unwrap decrypts w with the master key it names. A key id not in the ring
// is ErrUnknownKey; a ciphertext that does not authenticate is ErrAuth.
// Both errors name the key id.
func (kr *Keyring) Unwrap(w Wrapped) (*DataKey, error) {
	mk, ok := kr.byID[w.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w %q (the ring holds %s): was the key removed before every data key was rewrapped?", ErrUnknownKey, w.KeyID, strings.Join(kr.IDs(), ", "))
	}
	if len(w.Ciphertext) != wrappedSize {
		return nil, fmt.Errorf("envelope: wrapped key under %q: %d bytes, want %d: %w", w.KeyID, len(w.Ciphertext), wrappedSize, ErrTruncated)
	}
	if w.Ciphertext[0] != wrapVersion {
		return nil, fmt.Errorf("envelope: wrapped key under %q: version %d: %w", w.KeyID, w.Ciphertext[0], ErrVersion)
	}
	var k [KeySize]byte
	if _, err := mk.aead().Open(k[:0], w.Ciphertext[1:1+nonceSize], w.Ciphertext[1+nonceSize:], []byte(wrapPurpose+mk.id)); err != nil {
		return nil, fmt.Errorf("envelope: unwrapping a data key under %q: %w", w.KeyID, ErrAuth)
	}
	dk := dataKeyFrom(k[:])
	clear(k[:])
	return dk, nil
}

// Rewrap moves w under the active master key, for rotation: when w is
// already under it, w is returned unchanged with changed false (without
// decrypting it); otherwise it is unwrapped with its own key and wrapped
// again, and changed is true. The caller stores the result in place of w
// (the old Wrapped stays readable while its key is in the ring).
func (kr *Keyring) Rewrap(w Wrapped) (Wrapped, bool, error) {
	if w.KeyID == kr.Active() {
		return w, false, nil
	}
	dk, err := kr.Unwrap(w)
	if err != nil {
		return Wrapped{}, false, err
	}
	defer dk.Destroy()
	nw, err := kr.Wrap(dk)
	if err != nil {
		return Wrapped{}, false, err
	}
	return nw, true, nil
}
