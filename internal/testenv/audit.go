package testenv

import (
	"context"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// AuditKinds lists the kinds of the audit events of request id, in order,
// as trail (a store's AuditTrail) reads them; it stops the test if trail
// fails.
func AuditKinds(t testing.TB, trail func(ctx context.Context, requestID string) ([]dsr.AuditEvent, error), id string) []string {
	t.Helper()
	events, err := trail(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range events {
		out = append(out, ev.Kind)
	}
	return out
}
