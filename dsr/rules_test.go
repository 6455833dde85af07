package dsr_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind    dsr.Kind
		in      string
		want    string
		wantErr bool
	}{
		{dsr.KindEmail, "  Ada@Example.COM ", "ada@example.com", false},
		{dsr.KindEmail, "ada@example", "", true},
		{dsr.KindEmail, "Ada <ada@example.com>", "", true},
		{dsr.KindEmail, "not an email", "", true},
		{dsr.KindEmail, "   ", "", true},
		{dsr.KindPhone, "+44 20 7946 0958", "+442079460958", false},
		{dsr.KindPhone, "0044 (20) 7946-0958", "+442079460958", false},
		{dsr.KindPhone, "+1.202.555.0102", "+12025550102", false},
		{dsr.KindPhone, "020 7946 0958", "", true},   // no country code
		{dsr.KindPhone, "+44 20 7946 abc", "", true}, // letters
		{dsr.KindPhone, "+1234567", "", true},        // too short
		{dsr.KindPhone, "+1234567890123456", "", true},
		{dsr.KindCustomerID, "  cus_42 ", "cus_42", false},
		{dsr.KindCustomerID, "a\x00b", "", true},
		{dsr.Kind("ssn"), "123", "", true},
		// Advertising ids: a UUID, stored in lower case, whatever the
		// platform wrote (iOS writes upper case).
		{dsr.KindAdvertisingID, " 6D92078A-8246-4BA4-AE5B-76104861E7DC\n", "6d92078a-8246-4ba4-ae5b-76104861e7dc", false},
		{dsr.KindAdvertisingID, "38400000-8cf0-11bd-b23e-10b96e40000d", "38400000-8cf0-11bd-b23e-10b96e40000d", false},
		{dsr.KindAdvertisingID, "6d92078a82464ba4ae5b76104861e7dc", "", true},          // no dashes
		{dsr.KindAdvertisingID, "{6d92078a-8246-4ba4-ae5b-76104861e7dc}", "", true},    // braces
		{dsr.KindAdvertisingID, "6d92078a-8246-4ba4-ae5b-76104861e7dg", "", true},      // not hex
		{dsr.KindAdvertisingID, "6d92078a-8246-4ba4-ae5b76104861-e7dc", "", true},      // dashes misplaced
		{dsr.KindAdvertisingID, "6d92078a-8246-4ba4-ae5b-76104861e7dcd", "", true},     // too long
		{dsr.KindAdvertisingID, "6d92078a-8246-4ba4-ae5b-76104861e7d\u00e9", "", true}, // not ASCII
		// Placeholders: what a device gives when tracking is limited,
		// and values alike, name no one device.
		{dsr.KindAdvertisingID, "00000000-0000-0000-0000-000000000000", "", true},
		{dsr.KindAdvertisingID, "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "", true},
		{dsr.KindAdvertisingID, "11111111-1111-1111-1111-111111111111", "", true},
		// Device ids: 8 to 64 of letters, digits, - and _; lower case when
		// hex, kept as given otherwise.
		{dsr.KindDeviceID, " A1B2C3D4E5F60718 ", "a1b2c3d4e5f60718", false},                                       // Android ID
		{dsr.KindDeviceID, "E621E1F8-C36C-495A-93FC-0C247A3E6E5F", "e621e1f8-c36c-495a-93fc-0c247a3e6e5f", false}, // IDFV
		{dsr.KindDeviceID, "Roku_Pub-XyZ123", "Roku_Pub-XyZ123", false},
		{dsr.KindDeviceID, "a1b2c3d", "", true}, // too short
		{dsr.KindDeviceID, strings.Repeat("a1", 32), strings.Repeat("a1", 32), false},
		{dsr.KindDeviceID, strings.Repeat("a1", 32) + "b", "", true}, // too long
		{dsr.KindDeviceID, "a1b2 c3d4e5f6", "", true},                // a space
		{dsr.KindDeviceID, "a1b2c3d4:e5f6", "", true},                // a colon
		{dsr.KindDeviceID, "0000000000000000", "", true},             // all zero
		{dsr.KindDeviceID, "00000000-0000-0000-0000-000000000000", "", true},
		{dsr.KindDeviceID, "ffff_ffff_ffff", "", true},
		{dsr.KindDeviceID, "9774D56D682E549C", "", true}, // shared by many Android 2.2 devices
		{dsr.KindDeviceID, "undefined", "", true},
		{dsr.KindDeviceID, "Not_Available", "", true},
		{dsr.KindDeviceID, "--------", "", true},
	}
	for _, tt := range tests {
		got, err := dsr.Normalize(tt.kind, tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("Normalize(%s, %q) = %q, %v; want %q, error %v", tt.kind, tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && len(tt.in) > 3 && contains(err.Error(), tt.in) {
			t.Errorf("Normalize(%s): error %q quotes the input", tt.kind, err)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestBlindIndex(t *testing.T) {
	t.Parallel()
	if _, err := dsr.NewBlindIndex(make([]byte, 31)); err == nil {
		t.Error("NewBlindIndex accepted a 31-byte key")
	}
	k1 := make([]byte, 32)
	k2 := make([]byte, 32)
	k2[0] = 1
	a, _ := dsr.NewBlindIndex(k1)
	b, _ := dsr.NewBlindIndex(k2)
	h := a.Hash(dsr.KindEmail, "ada@example.com")
	if h != a.Hash(dsr.KindEmail, "ada@example.com") {
		t.Error("hash is not deterministic")
	}
	if h == b.Hash(dsr.KindEmail, "ada@example.com") {
		t.Error("hash does not depend on the key")
	}
	if h == a.Hash(dsr.KindCustomerID, "ada@example.com") {
		t.Error("hash does not depend on the kind")
	}
	if contains(h, "ada") || len(h) != len("email:")+64 {
		t.Errorf("hash %q: want email: and 64 hex digits, without the value", h)
	}
	ids := []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com"}, {Kind: dsr.KindEmail, Value: "ada@example.com"}}
	if got := a.HashAll(ids); len(got) != 1 {
		t.Errorf("HashAll of a repeated identity = %d hashes, want 1", len(got))
	}
}

func TestDueAt(t *testing.T) {
	t.Parallel()
	day := func(s string) time.Time {
		d, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name string
		reg  dsr.Regulation
		typ  dsr.Type
		at   string
		want string
	}{
		{"gdpr one month", dsr.RegulationGDPR, dsr.TypeAccess, "2026-03-15T09:00:00Z", "2026-04-15T09:00:00Z"},
		{"gdpr month end", dsr.RegulationGDPR, dsr.TypeDeletion, "2026-01-31T09:00:00Z", "2026-02-28T09:00:00Z"},
		{"gdpr leap year", dsr.RegulationGDPR, dsr.TypeDeletion, "2028-01-31T09:00:00Z", "2028-02-29T09:00:00Z"},
		{"gdpr year end", dsr.RegulationGDPR, dsr.TypeAccess, "2026-12-31T23:00:00Z", "2027-01-31T23:00:00Z"},
		{"gdpr counts in UTC", dsr.RegulationGDPR, dsr.TypeAccess, "2026-01-31T23:30:00-05:00", "2026-03-01T04:30:00Z"},
		{"ccpa 45 days", dsr.RegulationCCPA, dsr.TypeAccess, "2026-11-24T10:00:00Z", "2027-01-08T10:00:00Z"},
		{"ccpa opt-out 15 business days", dsr.RegulationCCPA, dsr.TypeOptOut, "2026-11-24T10:00:00Z", "2026-12-15T10:00:00Z"},
		{"ccpa opt-out filed on a Saturday", dsr.RegulationCCPA, dsr.TypeOptOut, "2026-11-28T10:00:00Z", "2026-12-18T10:00:00Z"},
		{"lgpd 15 days", dsr.RegulationLGPD, dsr.TypeAccess, "2026-11-24T10:00:00Z", "2026-12-09T10:00:00Z"},
		{"pipeda 30 days", dsr.RegulationPIPEDA, dsr.TypeAccess, "2026-11-24T10:00:00Z", "2026-12-24T10:00:00Z"},
		{"vcdpa 45 days", dsr.RegulationVCDPA, dsr.TypeDeletion, "2026-11-24T10:00:00Z", "2027-01-08T10:00:00Z"},
	}
	for _, tt := range tests {
		if got := dsr.DueAt(tt.reg, tt.typ, day(tt.at)); !got.Equal(day(tt.want)) || got.Location() != time.UTC {
			t.Errorf("%s: DueAt = %s, want %s UTC", tt.name, got, tt.want)
		}
	}
}

func TestStateMachine(t *testing.T) {
	t.Parallel()
	allowed := map[[2]dsr.Status]bool{
		{dsr.StatusVerified, dsr.StatusInProgress}:       true,
		{dsr.StatusInProgress, dsr.StatusCompleted}:      true,
		{dsr.StatusInProgress, dsr.StatusNeedsAttention}: true,
		{dsr.StatusNeedsAttention, dsr.StatusInProgress}: true,
		{dsr.StatusVerifying, dsr.StatusExpired}:         true,
	}
	forbidden := [][2]dsr.Status{
		{dsr.StatusCompleted, dsr.StatusInProgress},
		{dsr.StatusInProgress, dsr.StatusVerified},
		{dsr.StatusReceived, dsr.StatusCompleted},
		{dsr.StatusExpired, dsr.StatusVerified},
		{dsr.StatusDenied, dsr.StatusInProgress},
	}
	for pair := range allowed {
		if !dsr.CanMove(pair[0], pair[1]) {
			t.Errorf("CanMove(%s, %s) = false, want true", pair[0], pair[1])
		}
	}
	for _, pair := range forbidden {
		if dsr.CanMove(pair[0], pair[1]) {
			t.Errorf("CanMove(%s, %s) = true, want false", pair[0], pair[1])
		}
	}
	for _, s := range []dsr.Status{dsr.StatusCompleted, dsr.StatusDenied, dsr.StatusCancelled, dsr.StatusExpired} {
		if !s.Closed() {
			t.Errorf("%s.Closed() = false", s)
		}
	}
	for _, s := range []dsr.Status{dsr.StatusVerified, dsr.StatusInProgress, dsr.StatusNeedsAttention} {
		if s.Closed() {
			t.Errorf("%s.Closed() = true", s)
		}
	}
}
