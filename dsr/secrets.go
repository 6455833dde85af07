package dsr

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"time"
)

// NewToken returns a random secret of 256 bits, URL-safe: status tokens and
// verification link tokens.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken returns the SHA-256 of a high-entropy token, as stored. (Codes,
// which are short, are hashed with a key instead: see [BlindIndex.HashCode].)
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// TokenMatches reports, in constant time, whether token hashes to one of
// hashes.
func TokenMatches(token string, hashes []string) bool {
	h := HashToken(token)
	ok := 0
	for _, want := range hashes {
		ok |= subtle.ConstantTimeCompare([]byte(h), []byte(want))
	}
	return ok == 1
}

// NewCode returns a random 6-digit verification code.
func NewCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("new code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// HashCode returns the keyed hash of a verification code for request id: a
// 6-digit code has too few values for a plain hash to hide it.
func (b *BlindIndex) HashCode(requestID, code string) string {
	return b.Hash("code", requestID+"\x00"+code)
}

// CodeMatches reports, in constant time, whether code is the one whose hash
// is want, under the current key or a previous one (a code sent before the
// key changed).
func (b *BlindIndex) CodeMatches(requestID, code, want string) bool {
	ok := 0
	for _, h := range b.Lookup("code", requestID+"\x00"+code) {
		ok |= subtle.ConstantTimeCompare([]byte(h), []byte(want))
	}
	return ok == 1
}

// LinkSigner signs and checks links: an HMAC over the request (or task) id
// and the link's expiry, so a link works for one request until it expires.
// It signs under its current key and accepts its previous keys' signatures
// too, so links sent before the blind index key changed keep working.
type LinkSigner struct {
	keys [][]byte
}

// NewLinkSigner returns the signer of download links, under keys derived
// for this purpose only from the blind index's keys (the current first:
// [BlindIndex.Keys]).
func NewLinkSigner(index ...[]byte) *LinkSigner {
	return newSigner("dsar export links v1", index)
}

// NewTaskSigner returns the signer of the links to manual task pages, under
// keys derived for this purpose only from the blind index's keys, so that
// no task link's signature is ever a download link's, nor the reverse.
func NewTaskSigner(index ...[]byte) *LinkSigner {
	return newSigner("dsar task links v1", index)
}

func newSigner(purpose string, keys [][]byte) *LinkSigner {
	if len(keys) == 0 {
		panic("dsr: a link signer without a key") // a programming error
	}
	s := &LinkSigner{}
	for _, k := range keys {
		s.keys = append(s.keys, Derive(k, purpose))
	}
	return s
}

// Keys returns b's keys, the current first, for deriving keys of other
// purposes (see [Derive]).
func (b *BlindIndex) Keys() [][]byte {
	return append([][]byte{b.key}, b.previous...)
}

// Derive returns the key for purpose derived from key:
// HMAC-SHA256(key, purpose).
func Derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Sign returns the signature of a link to request id that expires at exp.
func (s *LinkSigner) Sign(id string, exp time.Time) string {
	return signUnder(s.keys[0], id, exp)
}

func signUnder(key []byte, id string, exp time.Time) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "\x00" + strconv.FormatInt(exp.Unix(), 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// Valid reports whether sig signs request id until exp, under the current
// key or a previous one, and exp is after now.
func (s *LinkSigner) Valid(id string, exp time.Time, sig string, now time.Time) bool {
	ok := 0
	for _, k := range s.keys {
		ok |= subtle.ConstantTimeCompare([]byte(signUnder(k, id, exp)), []byte(sig))
	}
	return ok == 1 && now.Before(exp)
}
