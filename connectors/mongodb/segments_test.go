package mongodb_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/testenv"
)

// members lists a connector's segment members as "segment kind=value,...",
// sorted (the order a server returns documents in is its own).
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

// TestEachSegmentMember lists the members of the shop's opt-out
// collections (a flag set per customer document, member arrays in segment
// documents) before and after Ada opts out: she is listed no more.
func TestEachSegmentMember(t *testing.T) {
	t.Parallel()
	db := testenv.Mongo(t)
	c := shop(t, db, "erase: delete")
	fx := shopFixture(t, db)
	fx.Seed(t.Context())

	want := []string{
		"customers email=" + adaEmail + ",phone=" + adaPhone,
		"customers email=" + graceEmail + ",phone=" + gracePhone,
		"segments email=" + adaEmail, // newsletter
		"segments email=" + adaEmail, // vip
		"segments email=" + graceEmail,
		"segments email=" + graceEmail,
	}
	if diff := cmp.Diff(want, members(t, c)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	if _, err := c.(connectors.OptOuter).OptOut(t.Context(), fx.Subject); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"customers email=" + graceEmail + ",phone=" + gracePhone,
		"segments email=" + graceEmail,
		"segments email=" + graceEmail,
	}
	if diff := cmp.Diff(want, members(t, c)); diff != "" {
		t.Errorf("members after Ada's opt-out (-want +got):\n%s", diff)
	}
}

// TestEachSegmentMemberDocuments lists per-member documents by dotted
// paths into arrays and by integer ids; documents with none of the match
// fields, and collections without opt_out, are not listed. An error from
// fn ends the listing and comes back.
func TestEachSegmentMemberDocuments(t *testing.T) {
	t.Parallel()
	db := testenv.Mongo(t)
	const spec = `
connectors:
  - name: shop
    type: mongodb
    database: ${DB}
    collections:
      - name: audience
        match: {profile.emails: email, cid: customer_id}
        erase: delete
        opt_out: delete
      - name: orders
        match: {customer_id: customer_id}
        erase: delete
`
	c := opsConnector(t, db, spec)
	insert(t.Context(), t, db.Collection("audience"),
		bson.D{{Key: "cid", Value: 7}, {Key: "profile", Value: bson.D{{Key: "emails", Value: bson.A{"a@example.com", "b@example.com"}}}}},
		bson.D{{Key: "cid", Value: "c-8"}},
		bson.D{{Key: "other", Value: "no identity here"}},
	)
	insert(t.Context(), t, db.Collection("orders"), bson.D{{Key: "customer_id", Value: "c-9"}})
	want := []string{
		"audience customer_id=7,email=a@example.com,email=b@example.com",
		"audience customer_id=c-8",
	}
	if diff := cmp.Diff(want, members(t, c)); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}

	stop := errors.New("stop")
	calls := 0
	err := c.(connectors.SegmentLister).EachSegmentMember(t.Context(), func(string, connectors.Subject) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("EachSegmentMember with fn failing: %v after %d calls; want stop after 1", err, calls)
	}
}
