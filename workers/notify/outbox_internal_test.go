package notify

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"
)

// TestOutboxCounterOnSameInstant writes messages at one instant: the names
// collide and get a counter.
func TestOutboxCounterOnSameInstant(t *testing.T) {
	dir := t.TempDir()
	o, err := NewOutbox(dir, "privacy@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 14, 9, 26, 53, 123456789, time.FixedZone("CET", 3600))
	o.now = func() time.Time { return at }
	for range 3 {
		if err := o.Send(context.Background(), Message{To: "ada@example.com", Subject: "s", Text: "t", RequestID: "r1", Kind: "verify"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Send(context.Background(), Message{To: "ada@example.com", Subject: "s", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	var names []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{
		"20260314T082653.123456789Z-none-none.eml",
		"20260314T082653.123456789Z-r1-verify-2.eml",
		"20260314T082653.123456789Z-r1-verify-3.eml",
		"20260314T082653.123456789Z-r1-verify.eml",
	}
	if !slices.Equal(names, want) {
		t.Errorf("files %q, want %q", names, want)
	}
}
