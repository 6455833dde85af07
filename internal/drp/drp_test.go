package drp_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/drp"
)

// sign makes a signed message the protocol's way, independently of the
// package: base64 of the Ed25519 signature followed by the JSON.
func sign(t *testing.T, priv ed25519.PrivateKey, v any) []byte {
	t.Helper()
	msg, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(append(ed25519.Sign(priv, msg), msg...)))
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestOpenRFC8032: a combined-mode message made of RFC 8032's second test
// vector (signature, then the one-byte message) opens under its key: the
// format libsodium's crypto_sign makes.
func TestOpenRFC8032(t *testing.T) {
	pub := ed25519.PublicKey(mustHex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"))
	sig := mustHex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")
	body := base64.StdEncoding.EncodeToString(append(sig, 0x72))
	msg, err := drp.Open([]byte(body), pub)
	if err != nil || string(msg) != "r" {
		t.Fatalf("Open = %q, %v; want the message r", msg, err)
	}
}

func TestOpenAndCheck(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	envelope := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"agent-id": "AGENT_A", "business-id": "SHOP", "issued-at": now.Add(-time.Minute).Format(time.RFC3339),
			"expires-at": now.Add(9 * time.Minute).Format(time.RFC3339), "drp.version": "1.0", "exercise": "sale:opt-out", "email": "ada@example.com"}
		if mod != nil {
			mod(m)
		}
		return m
	}
	good := sign(t, priv, envelope(nil))
	tampered := []byte(base64.StdEncoding.EncodeToString(func() []byte {
		raw, _ := base64.StdEncoding.DecodeString(string(good))
		return []byte(strings.Replace(string(raw), "ada@", "eve@", 1))
	}()))
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"good", good, nil},
		{"python's isoformat with microseconds and +00:00", sign(t, priv, envelope(func(m map[string]any) {
			m["issued-at"] = now.Add(-time.Minute).Format("2006-01-02T15:04:05.000000-07:00")
		})), nil},
		{"with a trailing newline", append(append([]byte(nil), good...), '\n'), nil},
		{"not base64", []byte("{\"agent-id\":\"AGENT_A\"}"), drp.ErrEncoding},
		{"too short for a signature", []byte(base64.StdEncoding.EncodeToString(make([]byte, 64))), drp.ErrEncoding},
		{"tampered body", tampered, drp.ErrSignature},
		{"another agent's key", sign(t, otherPriv, envelope(nil)), drp.ErrSignature},
		{"another agent's id", sign(t, priv, envelope(func(m map[string]any) { m["agent-id"] = "AGENT_B" })), drp.ErrAgent},
		{"another business", sign(t, priv, envelope(func(m map[string]any) { m["business-id"] = "OTHER" })), drp.ErrBusiness},
		{"issued in the future", sign(t, priv, envelope(func(m map[string]any) { m["issued-at"] = now.Add(time.Minute).Format(time.RFC3339) })), drp.ErrNotYet},
		{"expired", sign(t, priv, envelope(func(m map[string]any) { m["expires-at"] = now.Format(time.RFC3339) })), drp.ErrExpired},
		{"standing a day", sign(t, priv, envelope(func(m map[string]any) { m["expires-at"] = now.Add(24 * time.Hour).Format(time.RFC3339) })), drp.ErrExpired},
		{"no offset", sign(t, priv, envelope(func(m map[string]any) { m["issued-at"] = "2026-11-30T11:59:00" })), drp.ErrMalformed},
		{"unknown version", sign(t, priv, envelope(func(m map[string]any) { m["drp.version"] = "0.5" })), drp.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := drp.Open(tt.body, pub)
			if err == nil {
				var e drp.Envelope
				if err = json.Unmarshal(msg, &e); err != nil {
					t.Fatal(err)
				}
				err = e.Check("AGENT_A", "SHOP", now)
			}
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("got %v; want %v", err, tt.want)
			}
		})
	}
}

func TestParseExercise(t *testing.T) {
	base := `"agent-id":"A","business-id":"B","issued-at":"2026-11-30T12:00:00Z","expires-at":"2026-11-30T12:05:00Z"`
	tests := []struct {
		name, body, right string
		err               error
	}{
		{"the table's spelling", `{` + base + `,"exercise":"sale:opt_out","email":"a@example.com"}`, drp.RightOptOut, nil},
		{"the examples' spelling", `{` + base + `,"exercise":"sale:opt-out","email":"a@example.com"}`, drp.RightOptOut, nil},
		{"opt-in", `{` + base + `,"exercise":"sale:opt-in","phone_number":"+14155550100"}`, drp.RightOptIn, nil},
		{"every claim", `{` + base + `,"exercise":"access:specific","regime":"ccpa","relationships":["customer"],"status_callback":"https://agent.example/cb","agent-request-id":"r-1",
			"name":"Ada Lovelace","email":"a@example.com","email_verified":true,"phone_number":"+14155550100","phone_number_verified":true,
			"address":{"street_address":"1 Main St","locality":"Springfield","region":"CA","postal_code":"90000","country":"US"},"address_verified":true,"power_of_attorney":"https://agent.example/poa/1"}`, drp.RightSpecific, nil},
		{"unknown right", `{` + base + `,"exercise":"rectification","email":"a@example.com"}`, "", drp.ErrMalformed},
		{"unknown regime", `{` + base + `,"exercise":"access","regime":"gdpr","email":"a@example.com"}`, "", drp.ErrMalformed},
		{"no identity", `{` + base + `,"exercise":"access","name":"Ada"}`, "", drp.ErrMalformed},
		{"two objects", `{` + base + `,"exercise":"access","email":"a@example.com"}{}`, "", drp.ErrMalformed},
		{"agent-request-id too long", `{` + base + `,"exercise":"access","email":"a@example.com","agent-request-id":"` + strings.Repeat("x", 256) + `"}`, "", drp.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := drp.ParseExercise([]byte(tt.body))
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err %v; want %v", err, tt.err)
			}
			if err == nil && x.Right() != tt.right {
				t.Errorf("right %q; want %q", x.Right(), tt.right)
			}
		})
	}
}

func TestDirectoryAndTokens(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	key := base64.StdEncoding.EncodeToString(pub)
	dir, err := drp.ParseDirectory([]byte(`[{"id":"AGENT_A","name":"Agent A","verify_key":"` + key + `","web_url":"https://a.example"}]`))
	if err != nil || !dir["AGENT_A"].Key().Equal(pub) {
		t.Fatalf("ParseDirectory = %v, %v", dir, err)
	}
	for name, doc := range map[string]string{
		"bad key":      `[{"id":"A","verify_key":"AAAA"}]`,
		"no id":        `[{"verify_key":"` + key + `"}]`,
		"id with path": `[{"id":"../x","verify_key":"` + key + `"}]`,
		"listed twice": `[{"id":"A","verify_key":"` + key + `"},{"id":"A","verify_key":"` + key + `"}]`,
		"not json":     `agents: A`,
	} {
		if _, err := drp.ParseDirectory([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	oldKey, newKey := []byte("old token key, 32 bytes long...."), []byte("new token key, 32 bytes long....")
	before := drp.NewTokens(oldKey)
	during := drp.NewTokens(newKey, oldKey)
	after := drp.NewTokens(newKey)
	tok := before.Issue("AGENT_A")
	if got := during.Agent(tok); got != "AGENT_A" {
		t.Errorf("a token issued before the key changed: agent %q during the change", got)
	}
	if got := after.Agent(tok); got != "" {
		t.Errorf("a token under the old key alone names %q after it left", got)
	}
	forged := strings.Replace(tok, "AGENT_A", "AGENT_B", 1)
	for _, bad := range []string{forged, tok + "x", "drp1.AGENT_A", "", "Bearer " + tok} {
		if got := during.Agent(bad); got != "" {
			t.Errorf("token %q names agent %q", bad, got)
		}
	}
	if a, b := after.Issue("AGENT_A"), after.Issue("AGENT_A"); a == b {
		t.Error("two tokens issued alike")
	}
}
