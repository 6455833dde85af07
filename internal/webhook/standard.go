package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a Standard Webhooks message.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a message's timestamp may be from the
// receiver's clock, either way, for [Verify] to accept it: the Standard
// Webhooks libraries' five minutes.
const DefaultTolerance = 5 * time.Minute

// secretPrefix marks a secret written as base64 bytes, as Standard Webhooks
// providers print them.
const secretPrefix = "whsec_"

// MinSecretBytes is the shortest secret [ParseSecret] accepts.
const MinSecretBytes = 16

// Secret is a shared HMAC-SHA256 key.
type Secret []byte

// ParseSecret reads a secret as written in settings: "whsec_" followed by
// base64 of the key bytes (the Standard Webhooks form), or any other text,
// whose bytes are the key. Either way the key has at least MinSecretBytes
// bytes.
func ParseSecret(s string) (Secret, error) {
	key := []byte(s)
	if b64, ok := strings.CutPrefix(s, secretPrefix); ok {
		var err error
		if key, err = base64.StdEncoding.DecodeString(b64); err != nil {
			return nil, fmt.Errorf("webhook secret: after %q want base64: %w", secretPrefix, err)
		}
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("webhook secret: want at least %d bytes, not %d", MinSecretBytes, len(key))
	}
	return Secret(key), nil
}

// Sign returns the signature of message id sent at ts with body:
// "v1," followed by the base64 HMAC-SHA256 of "<id>.<unix seconds>.<body>".
func (k Secret) Sign(id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(k.mac(id, strconv.FormatInt(ts.Unix(), 10), body))
}

func (k Secret) mac(id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignHeaders sets the three headers of message id sent at ts with body,
// signed by k and by each of also (space-separated signatures, while a
// secret changes).
func (k Secret) SignHeaders(h http.Header, id string, ts time.Time, body []byte, also ...Secret) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	sigs := []string{k.Sign(id, ts, body)}
	for _, o := range also {
		sigs = append(sigs, o.Sign(id, ts, body))
	}
	h.Set(HeaderSignature, strings.Join(sigs, " "))
}

// The ways [Verify] refuses a message; its error wraps one of them.
var (
	// ErrUnsigned: a header is missing or malformed.
	ErrUnsigned = errors.New("webhook: missing or malformed webhook-id, webhook-timestamp or webhook-signature")
	// ErrStale: the timestamp is outside the tolerance (a replay, or a
	// clock far off).
	ErrStale = errors.New("webhook: timestamp outside the accepted window")
	// ErrSignature: no signature matches under any of the secrets.
	ErrSignature = errors.New("webhook: no valid signature")
)

// maxIDLen bounds webhook-id.
const maxIDLen = 256

// Verify checks the Standard Webhooks headers h of body at time now: the
// timestamp within tolerance of now (0: DefaultTolerance) and one v1
// signature made with one of keys (several while a secret rotates). It
// returns the message id. Replays inside the window are the caller's to
// refuse, by the id or by the state the message changes.
func Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration, keys ...Secret) (id string, err error) {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || len(id) > maxIDLen || tsText == "" || sigs == "" {
		return "", ErrUnsigned
	}
	sec, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", ErrUnsigned
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return "", ErrStale
	}
	for _, k := range keys {
		want := k.mac(id, tsText, body)
		for _, s := range strings.Fields(sigs) {
			b64, ok := strings.CutPrefix(s, "v1,")
			if !ok {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && hmac.Equal(got, want) {
				return id, nil
			}
		}
	}
	return "", ErrSignature
}
