package mongodb_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/internal/testenv"
)

// opsSpec configures four collections of ${DB}: customers and orders exist
// (orders with a misspelt match field), segments does not, tickets is empty.
const opsSpec = `
connectors:
  - name: shop
    type: mongodb
    database: ${DB}
    collections:
      - name: customers
        match: {email: email, phone: phone}
        provide: {customer_id: _id}
        erase: mask
        mask: [email, phone, name]
        opt_out: {set: {marketing: false}}
      - name: orders
        match: {customer_id: customer_id, emial: email}
        erase: delete
      - name: segments
        match: {members: email}
        erase: {pull: members}
      - name: tickets
        match: {email: email}
        erase: delete
        retain: "contract law: kept 6 years"
`

// outcome is a check's result as `dsar connectors test` shows it.
func outcome(c connectors.Check) string {
	switch {
	case c.Passed():
		return "ok"
	case c.Unknown():
		return "unknown"
	}
	return "FAIL"
}

func opsConnector(t *testing.T, db *mongo.Database, spec string) connectors.Connector {
	t.Helper()
	reg, err := parse(t, db.Client(), spec, map[string]string{"DB": db.Name()})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c, _ := reg.Lookup("shop")
	return c
}

func TestCheck(t *testing.T) {
	t.Parallel()
	db := testenv.Mongo(t)
	ctx := t.Context()
	insert(ctx, t, db.Collection("customers"), bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "phone", Value: "+15550100"}})
	insert(ctx, t, db.Collection("orders"), bson.D{{Key: "customer_id", Value: "c-1"}})
	testenv.Must(t, db.CreateCollection(ctx, "tickets"))

	checks := opsConnector(t, db, opsSpec).(connectors.Checker).Check(ctx)
	var got [][2]string
	for _, c := range checks {
		got = append(got, [2]string{c.What, outcome(c)})
		if c.Err != nil && strings.Contains(c.Err.Error(), "ada@") {
			t.Errorf("check %q quotes a value: %v", c.What, c.Err)
		}
	}
	// On FerretDB the server lists no privileges: unknown, never ok. A
	// MongoDB without access control grants them all.
	perm := "unknown"
	if testenv.RealMongo() {
		perm = "ok"
	}
	want := [][2]string{
		{"reachable", "ok"},
		{"credentials accepted", "ok"},
		{"collection customers", "ok"},
		{"field _id in customers", "ok"},
		{"field email in customers", "ok"},
		{"field phone in customers", "ok"},
		{"collection orders", "ok"},
		{"field customer_id in orders", "ok"},
		{"field emial in orders", "FAIL"},
		{"collection segments", "FAIL"},
		{"collection tickets", "ok"},
		{"field email in tickets", "unknown"}, // empty: nothing to look at
		{"permission to find in customers", perm},
		{"permission to update in customers", perm}, // mask, set
		{"permission to find in orders", perm},
		{"permission to remove in orders", perm},
		{"permission to find in segments", perm},
		{"permission to update in segments", perm}, // pull
		{"permission to find in tickets", perm},    // retained whole: only counted
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	for _, c := range checks {
		switch c.What {
		case "collection segments":
			if !strings.Contains(c.Err.Error(), `has no collection "segments"`) {
				t.Errorf("collection segments: %v", c.Err)
			}
		case "permission to find in customers":
			if !testenv.RealMongo() && !strings.Contains(c.Err.Error(), "not checked: server does not say") {
				t.Errorf("permission on FerretDB: %v", c.Err)
			}
		}
	}
}

// TestCheckUnreachable: a server that does not answer fails the first check
// and no other is made.
func TestCheckUnreachable(t *testing.T) {
	t.Parallel()
	checks := downShop(t, "erase: delete").(connectors.Checker).Check(t.Context())
	if len(checks) != 1 || checks[0].What != "reachable" || checks[0].Passed() || checks[0].Unknown() {
		t.Fatalf("checks %+v; want reachable failed, alone", checks)
	}
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	db := testenv.Mongo(t)
	ctx := t.Context()
	insert(ctx, t, db.Collection("customers"),
		bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "phone", Value: "+15550100"}, {Key: "name", Value: "Ada"},
			{Key: "alt_email", Value: "ada@mail.example"}, {Key: "address", Value: bson.D{{Key: "zip", Value: "12345"}, {Key: "tel", Value: "020 7946 0958"}}}},
		bson.D{{Key: "email", Value: "grace@example.com"}, {Key: "name", Value: "Grace"}},
	)
	insert(ctx, t, db.Collection("orders"),
		bson.D{{Key: "customer_id", Value: "c-1"}, {Key: "shipping", Value: bson.D{{Key: "email", Value: "ada@example.com"}}}, {Key: "total", Value: 10}},
		bson.D{{Key: "customer_id", Value: "c-2"}, {Key: "shipping", Value: bson.D{{Key: "email", Value: "grace@example.com"}}}, {Key: "total", Value: 20}},
		bson.D{{Key: "customer_id", Value: "c-3"}, {Key: "shipping", Value: bson.D{{Key: "email", Value: "alan@example.com"}}}, {Key: "total", Value: 30}},
	)
	insert(ctx, t, db.Collection("tickets"),
		bson.D{{Key: "requester", Value: "ada@example.com"}, {Key: "cc", Value: bson.A{"grace@example.com", "alan@example.com"}}, {Key: "user_id", Value: int64(1042)}, {Key: "body", Value: "hello"}},
	)
	insert(ctx, t, db.Collection("newsletter"),
		bson.D{{Key: "_id", Value: "weekly"}, {Key: "members", Value: bson.A{bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "mobile", Value: "07946 095800"}}}}},
	)
	insert(ctx, t, db.Collection("settings"), bson.D{{Key: "theme", Value: "dark"}})

	const spec = `
connectors:
  - name: shop
    type: mongodb
    database: ${DB}
    collections:
      - name: customers
        match: {email: email, phone: phone}
        erase: mask
        mask: [email, phone, name, address]
      - name: orders
        match: {customer_id: customer_id}
        erase: delete
`
	var progress [][2]int
	var got []connectors.Finding
	scanned, err := opsConnector(t, db, spec).(connectors.Discoverer).Discover(ctx,
		connectors.DiscoverOptions{Sample: 2, Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) }},
		func(f connectors.Finding) { got = append(got, f) })
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	want := []connectors.Finding{
		// address is masked whole, so address.tel is covered; alt_email is not.
		{Collection: "customers", Field: "alt_email", Kind: "email", Matches: 1, Sampled: 2, Covered: true},
		{Collection: "newsletter", Field: "members.email", Kind: "email", Matches: 1, Sampled: 1},
		{Collection: "newsletter", Field: "members.mobile", Kind: "phone", Matches: 1, Sampled: 1},
		// at most 2 of the 3 orders are read
		{Collection: "orders", Field: "shipping.email", Kind: "email", Matches: 2, Sampled: 2, Covered: true},
		{Collection: "tickets", Field: "cc", Kind: "email", Matches: 1, Sampled: 1},
		{Collection: "tickets", Field: "requester", Kind: "email", Matches: 1, Sampled: 1},
		{Collection: "tickets", Field: "user_id", Kind: "customer_id", Matches: 1, Sampled: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(connectors.Scanned{Collections: 5, Documents: 7}, scanned); diff != "" {
		t.Errorf("scanned (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][2]int{{0, 5}, {1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}}, progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
}

// TestDiscoverUnreachable: Discover reports the failure and no finding.
func TestDiscoverUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := downShop(t, "erase: delete").(connectors.Discoverer).Discover(ctx, connectors.DiscoverOptions{},
		func(f connectors.Finding) { t.Errorf("found %+v", f) })
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("Discover on a closed port: %v; want an error", err)
	}
}

// The connector implements both capabilities.
var (
	_ connectors.Checker    = (*mongodb.Connector)(nil)
	_ connectors.Discoverer = (*mongodb.Connector)(nil)
)
