package envelope

import (
	"crypto/rand"
	"fmt"
)

// SealOverhead is how many bytes Seal adds to a plaintext: version (1),
// nonce (12) and tag (16).
const SealOverhead = 1 + nonceSize + tagSize

// Seal encrypts one field with dk: version (1 byte, 0x01) | random nonce
// (12) | AES-256-GCM ciphertext and tag, with AAD = version | aad. aad is
// not stored: pass what the value belongs to (a request id and a field
// name, say) and Open must be given the same, so a ciphertext copied to
// another request or field does not open. The only error is ErrDestroyed.
//
// Random 96-bit nonces keep GCM safe for up to 2^32 values per data key,
// far beyond one request's fields.
func Seal(dk *DataKey, plaintext, aad []byte) ([]byte, error) {
	_, aead, err := dk.get()
	if err != nil {
		return nil, err
	}
	var nonce [nonceSize]byte
	rand.Read(nonce[:])
	out := make([]byte, 1+nonceSize, SealOverhead+len(plaintext))
	out[0] = fieldVersion
	copy(out[1:], nonce[:])
	return aead.Seal(out, nonce[:], plaintext, fieldAAD(aad)), nil
}

// Open decrypts what Seal returned, given the same data key and aad. It
// fails with ErrTruncated (shorter than SealOverhead), ErrVersion or
// ErrAuth (another key, another aad, or altered bytes), and ErrDestroyed.
// Errors never include the plaintext or the aad.
func Open(dk *DataKey, sealed, aad []byte) ([]byte, error) {
	_, aead, err := dk.get()
	if err != nil {
		return nil, err
	}
	if len(sealed) < SealOverhead {
		return nil, fmt.Errorf("envelope: sealed value of %d bytes, at least %d expected: %w", len(sealed), SealOverhead, ErrTruncated)
	}
	if sealed[0] != fieldVersion {
		return nil, fmt.Errorf("envelope: sealed value of version %d: %w", sealed[0], ErrVersion)
	}
	pt, err := aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], fieldAAD(aad))
	if err != nil {
		return nil, fmt.Errorf("envelope: opening a sealed value: %w", ErrAuth)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// fieldAAD is the GCM AAD of a sealed field: the version byte, then aad.
func fieldAAD(aad []byte) []byte {
	a := make([]byte, 1+len(aad))
	a[0] = fieldVersion
	copy(a[1:], aad)
	return a
}
