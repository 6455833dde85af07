package workers

import (
	"errors"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	ids := []dsr.Identity{
		{Kind: dsr.KindEmail, Value: "ada@example.com"},
		{Kind: dsr.KindPhone, Value: "+442079460958"},
		{Kind: dsr.KindCustomerID, Value: "\u212a"}, // the Kelvin sign: its lower case is shorter
		{Kind: dsr.KindCustomerID, Value: "a.b*c"},
		{Kind: dsr.KindCustomerID, Value: "1"},
		{Kind: dsr.KindAdvertisingID, Value: "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
		{Kind: dsr.KindDeviceID, Value: "a1b2c3d4e5f60718"},
	}
	tests := []struct{ in, want string }{
		{"dup key: { email: \"ADA@Example.com\" }", "dup key: { email: \"[redacted]\" }"},
		{"dup key: { phone: 442079460958 } and +442079460958", "dup key: { phone: [redacted] } and [redacted]"},
		{"upstream: bad link", "upstream: bad link"},
		{"customer \u212a", "customer [redacted]"},
		{"id a.b*c and aXbbc", "id [redacted] and aXbbc"},
		// A short identity is taken out where it stands alone, not out of
		// the middle of other words and numbers (the request id, an error
		// code), which would make the reason unreadable.
		{"fanout 01a22bb2-589a: mysql: error 1146 (42S02): customer 1 not found; key (id)=(1)",
			"fanout 01a22bb2-589a: mysql: error 1146 (42S02): customer [redacted] not found; key (id)=([redacted])"},
		{"user:1:profile, 1, +1", "user:[redacted]:profile, [redacted], +[redacted]"},
		// Ids stored in lower case, written in upper by the system.
		{"duplicate idfa 6D92078A-8246-4BA4-AE5B-76104861E7DC, android_id=A1B2C3D4E5F60718",
			"duplicate idfa [redacted], android_id=[redacted]"},
	}
	for _, tt := range tests {
		if got := redact(tt.in, ids); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRedactValues: a correction's new values are taken out of an error
// where they stand alone, as identities are, so a one-character value
// leaves the rest of the message readable; what the error wraps survives.
func TestRedactValues(t *testing.T) {
	t.Parallel()
	cause := errors.New("mysql: error 1406 (22001): value 'Z' too long for column name; Zoë 'Z'")
	err := redactValues(cause, []dsr.FieldValue{{Field: "name", Value: "Z"}, {Field: "nick", Value: ""}})
	const want = "mysql: error 1406 (22001): value '[redacted]' too long for column name; Zoë '[redacted]'"
	if err.Error() != want || !errors.Is(err, cause) {
		t.Errorf("redactValues = %q (wraps the cause: %v), want %q", err, errors.Is(err, cause), want)
	}
	if redactValues(nil, nil) != nil {
		t.Error("redactValues(nil) is not nil")
	}
}
