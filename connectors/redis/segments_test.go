package redis_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
)

// members lists a connector's segment members as "segment kind=value",
// sorted (SCAN's order is the server's).
func members(t *testing.T, c connectors.Connector) []string {
	t.Helper()
	var out []string
	err := c.(connectors.SegmentLister).EachSegmentMember(t.Context(), func(segment string, m connectors.Subject) error {
		var ids []string
		for _, id := range m.Identities {
			ids = append(ids, id.Kind+"="+id.Value)
		}
		out = append(out, segment+" "+strings.Join(ids, ","))
		return nil
	})
	if err != nil {
		t.Fatalf("EachSegmentMember: %v", err)
	}
	slices.Sort(out)
	return out
}

// TestEachSegmentMember lists the members of the cache's sets and sorted
// sets by their member templates (a string key under the segment pattern,
// and a member of another form, are not listed), then again after Ada
// opts out: she is listed no more.
func TestEachSegmentMember(t *testing.T) {
	t.Parallel()
	srv, rdb, p := server(t)
	ctx := t.Context()
	seedCache(ctx, t, rdb, p)
	if err := rdb.SAdd(ctx, p+":segment:navy", "not-a-customer").Err(); err != nil {
		t.Fatal(err)
	}
	c := load(t, cacheSpec, map[string]string{"ADDR": srv.Addr, "P": p})
	want := []string{
		"newsletter email=" + adaEmail,
		"newsletter email=" + graceEmail,
		"segments customer_id=" + adaID,   // beta
		"segments customer_id=" + adaID,   // vip
		"segments customer_id=" + graceID, // beta
		"segments customer_id=" + graceID, // navy
		"segments customer_id=" + graceID, // vip
	}
	if diff := cmp.Diff(want, members(t, c)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	ada := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}, {Kind: "customer_id", Value: adaID}}}
	if _, err := c.(connectors.OptOuter).OptOut(ctx, ada); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"newsletter email=" + graceEmail,
		"segments customer_id=" + graceID,
		"segments customer_id=" + graceID,
		"segments customer_id=" + graceID,
	}
	if diff := cmp.Diff(want, members(t, c)); diff != "" {
		t.Errorf("members after Ada's opt-out (-want +got):\n%s", diff)
	}
}
