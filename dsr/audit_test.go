package dsr_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestAuditCanonicalJSON pins the bytes the hash covers: changing them
// would break every chain already stored.
func TestAuditCanonicalJSON(t *testing.T) {
	t.Parallel()
	e := dsr.AuditEvent{
		ID: "r1:00000002", RequestID: "r1", Seq: 2, Actor: "ops <admin>", Kind: "status",
		At:       time.Date(2026, 11, 24, 11, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		Data:     map[string]string{"to": "completed", "from": "in_progress", "Reason": "line\none\t\"q\" \\ & é \u2028 \x01 \x7f", "a": ""},
		PrevHash: strings.Repeat("ab", 32),
	}
	want := `{"actor":"ops <admin>","at":"2026-11-24T10:00:00.123Z",` +
		`"data":{"Reason":"line\none\t\"q\" \\ & é \u2028 \u0001 ` + "\x7f" + `","a":"","from":"in_progress","to":"completed"},` +
		`"kind":"status","prev_hash":"` + strings.Repeat("ab", 32) + `","request_id":"r1","seq":2}`
	for range 20 { // map order varies from run to run; the bytes must not
		if got := string(e.CanonicalJSON()); got != want {
			t.Fatalf("canonical JSON:\n got %s\nwant %s", got, want)
		}
	}
	if got, want := e.ComputeHash(), "0fb272c301336358ac3499393e4db2e2584ee5954dfd6b4ee68b384423b2a84a"; got != want {
		t.Errorf("hash = %s, want %s", got, want)
	}
	// No data hashes as {}, whether nil or empty.
	e.Data = nil
	nilData := e.ComputeHash()
	e.Data = map[string]string{}
	if e.ComputeHash() != nilData || !strings.Contains(string(e.CanonicalJSON()), `"data":{}`) {
		t.Errorf("empty data: %s", e.CanonicalJSON())
	}
}
