package discover_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/discover"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		field, value, want string
	}{
		// advertising and device ids: a value of the kind's form in a
		// field named like one
		{"idfa", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "advertising_id"},
		{"device.ios_advertising_id", "6d92078a-8246-4ba4-ae5b-76104861e7dc", "advertising_id"},
		{"gaid", "00000000-0000-0000-0000-000000000000", ""}, // limited tracking: nobody's
		{"idfa", "not a uuid", ""},
		{"order_ref", "6d92078a-8246-4ba4-ae5b-76104861e7dc", ""}, // a UUID in another field
		{"android_id", "a1b2c3d4e5f60718", "device_id"},
		{"roku_publisher_id", "e621e1f8-c36c-495a-93fc-0c247a3e6e5f", "device_id"},
		{"androidId", "9774d56d682e549c", ""}, // shared by many devices
		{"device_id", "x1", ""},               // too short
		// emails, by value, whatever the field
		{"email", "ada@example.com", "email"},
		{"contact.billing", "Ada.Lovelace+shop@mail.example.co.uk", "email"},
		{"_id", "ada@example.com", "email"},
		{"notes", "  ada@example.com  ", "email"},
		{"email", "ada@example", ""},                // no top-level domain
		{"email", "write to ada@example.com", ""},   // text that quotes one
		{"email", "@example.com", ""},               // no local part
		{"email", "ada@-example.com", ""},           // bad label
		{"email", "", ""},                           // empty
		{"email_verified", "true", ""},              // named like one, holds none
		{"customer_id", "ada@example.com", "email"}, // the value wins
		{"handle", "@ada", ""},                      // a social handle
		{"version", "1.2.3@beta", ""},               // no domain
		// phones: E.164 anywhere, written forms with + or in a phone field
		{"x", "+442079460958", "phone"},
		{"x", "+1 555 0100", "phone"},
		{"x", "+44 (20) 7946-0958", "phone"},
		{"phone", "020 7946 0958", "phone"},
		{"contact.mobileNumber", "07946.095.800", "phone"},
		{"TEL", "5550100", "phone"},
		{"total", "020 7946 0958", ""},    // a number in a field not named like a phone
		{"x", "+12", ""},                  // too few digits
		{"phone", "123456", ""},           // too few digits
		{"phone", "1234567890123456", ""}, // too many digits
		{"x", "+4420794609581234", ""},    // too long for E.164
		{"created", "2026-01-05", ""},     // a date
		{"phone", "2026-01-05 10:00", ""}, // a time is no phone even in one
		{"x", "+0442079460958", ""},       // E.164 has no leading 0
		// customer ids, by the field's name
		{"customer_id", "c-1042", "customer_id"},
		{"customerId", "665f1c2e9b1e8a3d4c5b6a79", "customer_id"},
		{"order.CUST-NO", "1042", "customer_id"},
		{"user_uuid", "0b5c7c1e-1f0c-4a63-9b7e-3c2b2f0a9d11", "customer_id"},
		{"account_number", "AC1042", "customer_id"},
		{"uid", "1042", "customer_id"},
		{"customer_id", "Ada Lovelace", ""}, // spaces: a name, not an id
		{"customer_id", "", ""},
		{"id", "1042", ""},           // any record's id
		{"order_id", "1042", ""},     // not a person's
		{"customer", "1042", ""},     // an owner without a suffix
		{"customers_id", "1042", ""}, // not an owner word
		{"user.uuid", "1042", ""},    // only the last part counts
		{"customer_id", "0123456789012345678901234567890123456789012345678901234567890123456789", ""}, // too long
	}
	for _, tt := range tests {
		if got := discover.Classify(tt.field, tt.value); got != tt.want {
			t.Errorf("Classify(%q, %q) = %q; want %q", tt.field, tt.value, got, tt.want)
		}
	}
}

func TestFieldNames(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		field     string
		id, phone bool
	}{
		{"customer_id", true, false},
		{"Customer-Ref", true, false},
		{"billing.memberNo", true, false},
		{"acct_key", true, false},
		{"userid", true, false},
		{"name", false, false},
		{"phone_number", false, true},
		{"work.Phone", false, true},
		{"mobile", false, true},
		{"msisdn", false, true},
		{"telemetry", false, false},
		{"cellar", false, false},
		{"idfa", false, false},
		{"android_id", false, false},
	} {
		if got := discover.IDField(tt.field); got != tt.id {
			t.Errorf("IDField(%q) = %v; want %v", tt.field, got, tt.id)
		}
		if got := discover.PhoneField(tt.field); got != tt.phone {
			t.Errorf("PhoneField(%q) = %v; want %v", tt.field, got, tt.phone)
		}
	}
}

// TestTally: a row counts once per field and kind, however many values it
// holds there; covered fields, and fields inside them, are left out; the
// findings are sorted and carry counts only.
func TestTally(t *testing.T) {
	t.Parallel()
	var tally discover.Tally
	rows := [][][2]string{
		{{"email", "ada@example.com"}, {"members", "ada@example.com"}, {"members", "grace@example.com"}, {"phone", "+442079460958"}, {"shipping.email", "ada@example.com"}},
		{{"email", "grace@example.com"}, {"members", "alan@example.com"}, {"note", "hello"}},
		{{"email", "not an address"}, {"customer_id", "c-1"}, {"contact", "+1 555 0100"}, {"contact", "ada@example.com"}},
	}
	for _, r := range rows {
		tally.Row()
		for _, kv := range r {
			tally.Value(kv[0], kv[1])
		}
	}
	if tally.Rows() != 3 {
		t.Errorf("Rows = %d; want 3", tally.Rows())
	}
	got := tally.Findings("carts", true, discover.CoveredBy("phone", "shipping"))
	want := []connectors.Finding{
		{Collection: "carts", Field: "contact", Kind: "email", Matches: 1, Sampled: 3, Covered: true},
		{Collection: "carts", Field: "contact", Kind: "phone", Matches: 1, Sampled: 3, Covered: true},
		{Collection: "carts", Field: "customer_id", Kind: "customer_id", Matches: 1, Sampled: 3, Covered: true},
		{Collection: "carts", Field: "email", Kind: "email", Matches: 2, Sampled: 3, Covered: true},
		{Collection: "carts", Field: "members", Kind: "email", Matches: 2, Sampled: 3, Covered: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Findings (-want +got):\n%s", diff)
	}
	if got := (&discover.Tally{}).Findings("empty", false, nil); len(got) != 0 {
		t.Errorf("an empty tally found %v", got)
	}
}

func TestCoveredBy(t *testing.T) {
	t.Parallel()
	covered := discover.CoveredBy("email", "members.email", "shipping")
	for field, want := range map[string]bool{
		"email": true, "members.email": true, "shipping": true, "shipping.email": true, "shipping.to.phone": true,
		"members": false, "emails": false, "billing.email": false, "shippingemail": false,
	} {
		if got := covered(field); got != want {
			t.Errorf("covered(%q) = %v; want %v", field, got, want)
		}
	}
}

func TestDeviceFieldNames(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		field      string
		ad, device bool
	}{
		{"idfa", true, false},
		{"profile.GAID", true, false},
		{"ios_advertising_id", true, false},
		{"AdvertisingId", true, false},
		{"android_id", false, true},
		{"IDFV", false, true},
		{"roku_publisher_id", false, true},
		{"deviceId", false, true},
		{"ad", false, false},
		{"device", false, false},
		{"advertiser", false, false},
	} {
		if got := discover.AdvertisingField(tt.field); got != tt.ad {
			t.Errorf("AdvertisingField(%q) = %v; want %v", tt.field, got, tt.ad)
		}
		if got := discover.DeviceField(tt.field); got != tt.device {
			t.Errorf("DeviceField(%q) = %v; want %v", tt.field, got, tt.device)
		}
	}
}
