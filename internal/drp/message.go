package drp

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// MaxMessage bounds a signed message as sent (base64): far above any
// exercise a person's claims make.
const MaxMessage = 64 << 10

// Versions are the drp.version values accepted: 1.0 is 0.9.4 made final,
// and agents still send either.
var Versions = []string{"1.0", "0.9.4"}

// The ways a signed message is refused, in the order they are checked; each
// error of [Open] and [Envelope.Check] wraps one.
var (
	// ErrEncoding: the body is not base64 of a signature and a message.
	ErrEncoding = errors.New("drp: message is not base64 of a 64-byte signature followed by JSON")
	// ErrSignature: the signature does not verify under the agent's key.
	ErrSignature = errors.New("drp: signature does not verify under the agent's key")
	// ErrAgent: the message names another agent than the token's (or the
	// path's).
	ErrAgent = errors.New("drp: agent-id is not the agent of the token")
	// ErrBusiness: the message is for another covered business.
	ErrBusiness = errors.New("drp: business-id is not this business")
	// ErrNotYet: issued-at is after now (a fast clock at the agent).
	ErrNotYet = errors.New("drp: issued-at is in the future")
	// ErrExpired: expires-at has passed (or the message lives too long).
	ErrExpired = errors.New("drp: message expired")
	// ErrMalformed: the JSON or one of its fields is not as the protocol
	// says.
	ErrMalformed = errors.New("drp: malformed message")
)

// Open decodes a signed message and verifies its signature under key,
// before anything of it is parsed: decode, then signature. It returns the
// JSON that was signed.
func Open(body []byte, key ed25519.PublicKey) ([]byte, error) {
	if len(body) > MaxMessage {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrEncoding, MaxMessage)
	}
	text := bytes.TrimSpace(body)
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(raw, text)
	if err != nil {
		// Some agents send URL-safe base64; nothing else is guessed.
		if n, err = base64.URLEncoding.Decode(raw, text); err != nil {
			return nil, ErrEncoding
		}
	}
	raw = raw[:n]
	if len(raw) <= ed25519.SignatureSize {
		return nil, ErrEncoding
	}
	sig, msg := raw[:ed25519.SignatureSize], raw[ed25519.SignatureSize:]
	if len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, msg, sig) {
		return nil, ErrSignature
	}
	return msg, nil
}

// Envelope is what every signed message of an agent holds: who sends it,
// to whom, and for how long it stands.
type Envelope struct {
	AgentID    string `json:"agent-id"`
	BusinessID string `json:"business-id"`
	IssuedAt   string `json:"issued-at"`
	ExpiresAt  string `json:"expires-at"`
	Version    string `json:"drp.version"`
}

// MaxLifetime is the longest a message may stand, from issued-at to
// expires-at: the protocol recommends ten minutes or less; an hour leaves
// room for a slow pipeline while bounding a replay.
const MaxLifetime = time.Hour

// Check checks the envelope of a message whose signature verified under
// agentID's key, in the protocol's order after the signature: the agent,
// the business, issued-at <= now, now < expires-at. The version, when
// given, must be one of Versions.
func (e Envelope) Check(agentID, businessID string, now time.Time) error {
	if e.AgentID != agentID {
		return ErrAgent
	}
	if e.BusinessID != businessID {
		return ErrBusiness
	}
	issued, err := parseTime("issued-at", e.IssuedAt)
	if err != nil {
		return err
	}
	expires, err := parseTime("expires-at", e.ExpiresAt)
	if err != nil {
		return err
	}
	if now.Before(issued) {
		return ErrNotYet
	}
	if !now.Before(expires) {
		return ErrExpired
	}
	if expires.Sub(issued) > MaxLifetime {
		return fmt.Errorf("%w: it stands %s from issued-at to expires-at, more than %s", ErrExpired, expires.Sub(issued).Round(time.Second), MaxLifetime)
	}
	if e.Version != "" && !slices.Contains(Versions, e.Version) {
		return fmt.Errorf("%w: drp.version is not one of %s", ErrMalformed, strings.Join(Versions, ", "))
	}
	return nil
}

// CheckGiven is [Envelope.Check] for a message whose envelope the protocol
// leaves out of its example (a revocation is {"reason": ...}): each field
// that is given is checked as Check checks it, so a revocation signed for
// another business or agent, or expired, is refused; none given passes.
func (e Envelope) CheckGiven(agentID, businessID string, now time.Time) error {
	if e.AgentID != "" && e.AgentID != agentID {
		return ErrAgent
	}
	if e.BusinessID != "" && e.BusinessID != businessID {
		return ErrBusiness
	}
	var issued, expires time.Time
	var err error
	if e.IssuedAt != "" {
		if issued, err = parseTime("issued-at", e.IssuedAt); err != nil {
			return err
		}
	}
	if e.ExpiresAt != "" {
		if expires, err = parseTime("expires-at", e.ExpiresAt); err != nil {
			return err
		}
	}
	if !issued.IsZero() && now.Before(issued) {
		return ErrNotYet
	}
	if !expires.IsZero() && !now.Before(expires) {
		return ErrExpired
	}
	if !issued.IsZero() && !expires.IsZero() && expires.Sub(issued) > MaxLifetime {
		return fmt.Errorf("%w: it stands %s from issued-at to expires-at, more than %s", ErrExpired, expires.Sub(issued).Round(time.Second), MaxLifetime)
	}
	if e.Version != "" && !slices.Contains(Versions, e.Version) {
		return fmt.Errorf("%w: drp.version is not one of %s", ErrMalformed, strings.Join(Versions, ", "))
	}
	return nil
}

// parseTime reads an ISO 8601 timestamp with its offset (RFC 3339, with or
// without fractions): a time without an offset means nothing across
// machines. Its error names the field, never the value: an agent's bug may
// put anything there, and errors are answered and logged.
func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is not an ISO 8601 timestamp with an offset", ErrMalformed, field)
	}
	return t, nil
}

// decode parses msg into v, refusing trailing data: only white space may
// follow (Decoder.More misses a stray } or ]).
func decode(msg []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(msg))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	return nil
}
