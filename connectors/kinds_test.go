package connectors_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// TestIdentityKinds checks that connectors match on exactly the identity
// kinds requests carry.
func TestIdentityKinds(t *testing.T) {
	t.Parallel()
	var want []string
	for _, k := range dsr.Kinds {
		want = append(want, string(k))
	}
	if diff := cmp.Diff(want, connectors.IdentityKinds); diff != "" {
		t.Errorf("connectors.IdentityKinds differ from dsr.Kinds (-dsr +connectors):\n%s", diff)
	}
	for _, k := range want {
		if !connectors.ValidKind(k) {
			t.Errorf("ValidKind(%q) = false", k)
		}
	}
	for _, k := range []string{"", "Email", "name", "customer-id", "idfa", "ios_advertising_id", "android_id"} {
		if connectors.ValidKind(k) {
			t.Errorf("ValidKind(%q) = true", k)
		}
	}
}
