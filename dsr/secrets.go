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
// is want.
func (b *BlindIndex) CodeMatches(requestID, code, want string) bool {
	return subtle.ConstantTimeCompare([]byte(b.HashCode(requestID, code)), []byte(want)) == 1
}

// LinkSigner signs and checks download links: an HMAC over the request id
// and the link's expiry, so a link works for one request until it expires.
type LinkSigner struct {
	key []byte
}

// NewLinkSigner returns a signer under a key derived from master (the blind
// index key) for this purpose only.
func NewLinkSigner(master []byte) *LinkSigner {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("dsar export links v1"))
	return &LinkSigner{key: m.Sum(nil)}
}

// Sign returns the signature of a link to request id that expires at exp.
func (s *LinkSigner) Sign(id string, exp time.Time) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id + "\x00" + strconv.FormatInt(exp.Unix(), 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// Valid reports whether sig signs request id until exp and exp is after now.
func (s *LinkSigner) Valid(id string, exp time.Time, sig string, now time.Time) bool {
	want := s.Sign(id, exp)
	return subtle.ConstantTimeCompare([]byte(want), []byte(sig)) == 1 && now.Before(exp)
}

// NewTaskSigner returns a signer of the links to manual task pages, under a
// key derived from master (the blind index key) for this purpose only, so
// that no task link's signature is ever a download link's, nor the reverse.
func NewTaskSigner(master []byte) *LinkSigner {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("dsar task links v1"))
	return &LinkSigner{key: m.Sum(nil)}
}
