package drp_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/drp"
)

// fuzzKey is the fixed key pair the committed corpus of FuzzOpen was
// signed with.
func fuzzKey() (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

// exerciseSeed is an exercise as the protocol's example sends it.
const exerciseSeed = `{"agent-id":"a1","business-id":"b1","issued-at":"2026-11-20T09:00:00Z","expires-at":"2026-11-20T09:10:00Z",` +
	`"drp.version":"1.0","exercise":"sale:opt-out","regime":"ccpa","email":"ada@example.com","email_verified":true}`

// FuzzOpen: Open never panics and returns only a message whose signature,
// before it in the base64 (standard or URL-safe) body, verifies under the
// key; anything signed with the key opens as signed, and under another
// key does not.
func FuzzOpen(f *testing.F) {
	pub, priv := fuzzKey()
	signed := append(ed25519.Sign(priv, []byte(exerciseSeed)), exerciseSeed...)
	f.Add([]byte(base64.StdEncoding.EncodeToString(signed)))
	f.Add([]byte(" " + base64.URLEncoding.EncodeToString(signed) + "\n"))
	f.Add([]byte(base64.StdEncoding.EncodeToString(signed[:ed25519.SignatureSize])))
	f.Add([]byte("not base64"))
	otherPub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := drp.Open(body, pub)
		if err != nil {
			if msg != nil {
				t.Fatal("a message returned with an error")
			}
			if !errors.Is(err, drp.ErrEncoding) && !errors.Is(err, drp.ErrSignature) {
				t.Fatalf("error %v is neither ErrEncoding nor ErrSignature", err)
			}
		} else {
			raw, derr := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(body)))
			if derr != nil {
				raw, derr = base64.URLEncoding.DecodeString(string(bytes.TrimSpace(body)))
			}
			if derr != nil || len(raw) <= ed25519.SignatureSize || !bytes.Equal(raw[ed25519.SignatureSize:], msg) ||
				!ed25519.Verify(pub, msg, raw[:ed25519.SignatureSize]) {
				t.Fatalf("opened %q: not a signature under the key followed by the message", body)
			}
		}
		// The fuzz input as a message: signed, it opens as itself, under
		// the key only.
		if len(body) == 0 {
			return
		}
		sealed := []byte(base64.StdEncoding.EncodeToString(append(ed25519.Sign(priv, body), body...)))
		if len(sealed) > drp.MaxMessage {
			return
		}
		if got, err := drp.Open(sealed, pub); err != nil || !bytes.Equal(got, body) {
			t.Fatalf("a signed message of %d bytes opened as %d bytes: %v", len(body), len(got), err)
		}
		if _, err := drp.Open(sealed, otherPub); !errors.Is(err, drp.ErrSignature) {
			t.Fatalf("a message opened under another key: %v", err)
		}
	})
}

// FuzzParseExercise: ParseExercise never panics, and an exercise it
// accepts is one JSON object (nothing after it), asks for one of the
// protocol's rights under a known regime, bounds agent-request-id and
// names an email or a phone number; it reads back the same once encoded.
// Its errors wrap ErrMalformed and never quote the person's claims.
func FuzzParseExercise(f *testing.F) {
	f.Add([]byte(exerciseSeed))
	f.Add([]byte(exerciseSeed + `]`))
	f.Add([]byte(exerciseSeed + `}`))
	f.Add([]byte(`{"exercise":"deletion","phone_number":"+15550100","regime":"gdpr"}`))
	f.Add([]byte(`{"exercise":"access:specific","email":"x@example.com","agent-request-id":"` + strings.Repeat("r", 256) + `"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		x, err := drp.ParseExercise(msg)
		if err != nil {
			if x != nil {
				t.Fatal("an exercise returned with an error")
			}
			if !errors.Is(err, drp.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			checkNoClaimQuoted(t, msg, err)
			return
		}
		if !json.Valid(msg) {
			t.Fatalf("accepted %q, which is not one JSON value", msg)
		}
		if !slices.Contains(drp.Rights, x.Right()) {
			t.Fatalf("accepted exercise %q", x.Exercise)
		}
		if x.Regime != "" && x.Regime != "ccpa" && x.Regime != "voluntary" {
			t.Fatalf("accepted regime %q", x.Regime)
		}
		if len(x.AgentRequestID) > drp.MaxAgentRequestID {
			t.Fatalf("accepted an agent-request-id of %d bytes", len(x.AgentRequestID))
		}
		if x.Email == "" && x.PhoneNumber == "" {
			t.Fatal("accepted an exercise with neither email nor phone_number")
		}
		enc, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		again, err := drp.ParseExercise(enc)
		if err != nil || !reflect.DeepEqual(again, x) {
			t.Fatalf("re-encoded exercise reads as %+v, %v; not %+v", again, err, x)
		}
	})
}

// checkNoClaimQuoted fails t when err quotes a claim of msg (one of 6
// bytes or more that ParseExercise's own messages do not hold).
func checkNoClaimQuoted(t *testing.T, msg []byte, err error) {
	t.Helper()
	var claims map[string]any
	if json.Unmarshal(msg, &claims) != nil {
		return
	}
	for _, v := range claims {
		s, ok := v.(string)
		if s = strings.TrimSpace(s); ok && len(s) >= 6 && !strings.Contains(drpMessages, s) && strings.Contains(err.Error(), s) {
			t.Fatalf("the error quotes a value: %v", err)
		}
	}
}

// drpMessages is the fixed text of the package's errors.
var drpMessages = strings.Join([]string{
	drp.ErrEncoding.Error(), drp.ErrSignature.Error(), drp.ErrAgent.Error(), drp.ErrBusiness.Error(), drp.ErrNotYet.Error(),
	drp.ErrExpired.Error(), drp.ErrMalformed.Error(),
	"exercise is not one of " + strings.Join(drp.Rights, ", "),
	"regime is not ccpa or voluntary (or absent, for voluntary processing)",
	"agent-request-id longer than 255 characters", "neither email nor phone_number: no identity to act on",
	"data after the JSON object", "issued-at is not an ISO 8601 timestamp with an offset",
	"expires-at is not an ISO 8601 timestamp with an offset", "drp.version is not one of " + strings.Join(drp.Versions, ", "),
}, "\n")

// FuzzEnvelopeCheck: Check never panics; an envelope it passes names the
// agent and the business, was issued at or before now, expires after now,
// stands at most MaxLifetime and has a known version or none; CheckGiven
// passes whatever Check passes. Their errors never quote a field's value.
func FuzzEnvelopeCheck(f *testing.F) {
	now := time.Date(2026, 11, 20, 9, 5, 0, 0, time.UTC).Unix()
	f.Add("a1", "b1", "2026-11-20T09:00:00Z", "2026-11-20T09:10:00Z", "1.0", now)
	f.Add("a1", "b1", "2026-11-20T10:00:00+01:00", "2026-11-20T09:10:00.5Z", "0.9.4", now)
	f.Add("a1", "b1", "2026-11-20T09:00:00", "2026-11-20T09:10:00Z", "", now)
	f.Add("a1", "b1", "2026-11-20T08:00:00Z", "2026-11-20T09:10:00Z", "2.0", now)
	f.Add("a1", "b2", "2026-11-20T09:00:00Z", "2026-11-20T09:10:00Z", "1.0", now)
	f.Fuzz(func(t *testing.T, agent, business, issuedAt, expiresAt, version string, unix int64) {
		now := time.Unix(unix, 0)
		e := drp.Envelope{AgentID: agent, BusinessID: business, IssuedAt: issuedAt, ExpiresAt: expiresAt, Version: version}
		err := e.Check("a1", "b1", now)
		given := e.CheckGiven("a1", "b1", now)
		for _, err := range []error{err, given} {
			if err == nil {
				continue
			}
			for _, v := range []string{agent, business, issuedAt, expiresAt, version} {
				if len(v) >= 6 && !strings.Contains(drpMessages, v) && strings.Contains(err.Error(), v) {
					t.Fatalf("the error quotes a value: %v", err)
				}
			}
		}
		if err != nil {
			return
		}
		if given != nil {
			t.Fatalf("Check passed what CheckGiven refuses: %v", given)
		}
		issued, ierr := time.Parse(time.RFC3339Nano, issuedAt)
		expires, eerr := time.Parse(time.RFC3339Nano, expiresAt)
		switch {
		case agent != "a1" || business != "b1":
			t.Fatalf("passed agent %q, business %q", agent, business)
		case ierr != nil || eerr != nil:
			t.Fatalf("passed issued-at %q, expires-at %q", issuedAt, expiresAt)
		case now.Before(issued) || !now.Before(expires):
			t.Fatalf("passed at %s a message standing from %s to %s", now, issued, expires)
		case expires.Sub(issued) > drp.MaxLifetime:
			t.Fatalf("passed a message standing %s", expires.Sub(issued))
		case version != "" && !slices.Contains(drp.Versions, version):
			t.Fatalf("passed version %q", version)
		}
	})
}
