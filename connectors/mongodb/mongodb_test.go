package mongodb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/internal/testenv"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(serverEnv); dir != "" {
		os.Exit(serveFerretDB(dir)) // a child of TestExportMemory
	}
	testenv.Main(m)
}

// shopSpec is a connectors file for a shop database; ${DB} is the test's
// database and ORDERS_ERASE stands for how orders are erased.
const shopSpec = `
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
        match: {customer_id: customer_id}
        ORDERS_ERASE
      - name: segments
        match: {members: email}
        erase: {pull: members}
        opt_out: {pull: members}
`

// parse builds the connectors of spec against client, expanding env, and
// closes them when the test ends.
func parse(t *testing.T, client *mongo.Client, spec string, env map[string]string) (*connectors.Registry, error) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	reg, err := connectors.Parse(t.Context(), []byte(spec), connectors.Types{mongodb.Type: mongodb.Factory(connectors.Deps{Mongo: client})}, lookup)
	if reg != nil {
		t.Cleanup(func() { _ = reg.Close() })
	}
	return reg, err
}

// shop builds the shop connector on db.
func shop(t *testing.T, db *mongo.Database, ordersErase string) connectors.Connector {
	t.Helper()
	spec := strings.Replace(shopSpec, "ORDERS_ERASE", ordersErase, 1)
	reg, err := parse(t, db.Client(), spec, map[string]string{"DB": db.Name()})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c, ok := reg.Lookup("shop")
	if !ok {
		t.Fatalf("no connector shop; have %v", reg.Names())
	}
	return c
}

// The people of the shop. Ada is the subject; Grace shares the newsletter
// segment with her.
var (
	adaID   = bson.NewObjectID()
	graceID = bson.NewObjectID()
)

const (
	adaEmail   = "ada@example.com"
	adaPhone   = "+1 555 0100"
	graceEmail = "grace@example.com"
	gracePhone = "+1 555 0199"
)

// shopFixture seeds and inspects the shop database db.
func shopFixture(t *testing.T, db *mongo.Database) *connectortest.Fixture {
	count := func(ctx context.Context, coll string, filter bson.D) int {
		t.Helper()
		n, err := db.Collection(coll).CountDocuments(ctx, filter)
		if err != nil {
			t.Fatalf("count %s: %v", coll, err)
		}
		return int(n)
	}
	adaOrders := bson.D{{Key: "customer_id", Value: adaID}}
	return &connectortest.Fixture{
		Subject: connectors.Subject{Identities: []connectors.Identity{
			{Kind: "email", Value: adaEmail},
			{Kind: "phone", Value: adaPhone},
		}},
		Resolved:    []connectors.Identity{{Kind: "customer_id", Value: adaID.Hex()}},
		OtherValues: []string{graceEmail, gracePhone, graceID.Hex(), "Grace Hopper", "1 Navy Way"},
		Seed: func(ctx context.Context) {
			t.Helper()
			insert(ctx, t, db.Collection("customers"),
				bson.D{{Key: "_id", Value: adaID}, {Key: "email", Value: adaEmail}, {Key: "phone", Value: adaPhone}, {Key: "name", Value: "Ada Lovelace"}, {Key: "marketing", Value: true}},
				bson.D{{Key: "_id", Value: graceID}, {Key: "email", Value: graceEmail}, {Key: "phone", Value: gracePhone}, {Key: "name", Value: "Grace Hopper"}, {Key: "marketing", Value: true}},
			)
			insert(ctx, t, db.Collection("orders"),
				bson.D{{Key: "_id", Value: 1}, {Key: "customer_id", Value: adaID}, {Key: "address", Value: "12 Engine Row"}, {Key: "total", Value: 10}},
				bson.D{{Key: "_id", Value: 2}, {Key: "customer_id", Value: graceID}, {Key: "address", Value: "1 Navy Way"}, {Key: "total", Value: 20}},
				bson.D{{Key: "_id", Value: 3}, {Key: "customer_id", Value: adaID}, {Key: "address", Value: "12 Engine Row"}, {Key: "total", Value: 30}},
			)
			insert(ctx, t, db.Collection("segments"),
				bson.D{{Key: "_id", Value: "newsletter"}, {Key: "members", Value: bson.A{graceEmail, adaEmail}}},
				bson.D{{Key: "_id", Value: "vip"}, {Key: "members", Value: bson.A{adaEmail}}},
				bson.D{{Key: "_id", Value: "beta"}, {Key: "members", Value: bson.A{graceEmail}}},
			)
		},
		SubjectRecords: func(ctx context.Context) int {
			return count(ctx, "customers", bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "email", Value: adaEmail}},
				bson.D{{Key: "phone", Value: adaPhone}},
				bson.D{{Key: "name", Value: "Ada Lovelace"}},
			}}}) +
				count(ctx, "orders", bson.D{{Key: "$or", Value: bson.A{adaOrders, bson.D{{Key: "address", Value: "12 Engine Row"}}}}}) +
				count(ctx, "segments", bson.D{{Key: "members", Value: adaEmail}})
		},
		OtherRecords: func(ctx context.Context) int {
			return count(ctx, "customers", bson.D{{Key: "_id", Value: graceID}, {Key: "email", Value: graceEmail}, {Key: "phone", Value: gracePhone}, {Key: "name", Value: "Grace Hopper"}, {Key: "marketing", Value: true}}) +
				count(ctx, "orders", bson.D{{Key: "_id", Value: 2}, {Key: "customer_id", Value: graceID}, {Key: "address", Value: "1 Navy Way"}}) +
				count(ctx, "segments", bson.D{{Key: "members", Value: graceEmail}})
		},
		InSegment: func(ctx context.Context) bool {
			return count(ctx, "segments", bson.D{{Key: "members", Value: adaEmail}}) > 0
		},
		OptedOut: func(ctx context.Context) bool {
			return count(ctx, "customers", bson.D{{Key: "_id", Value: adaID}, {Key: "marketing", Value: false}}) == 1
		},
		Export: map[string]int64{"customers": 1, "orders": 2, "segments": 2},
		Erase:  map[string]int64{"customers": 1, "orders": 2, "segments": 2},
		OptOut: map[string]int64{"customers": 1, "segments": 2},
	}
}

func insert(ctx context.Context, t *testing.T, coll *mongo.Collection, docs ...any) {
	t.Helper()
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("seed %s: %v", coll.Name(), err)
	}
}

func TestConformance(t *testing.T) {
	client := testenv.Client(t)
	for name, ordersErase := range map[string]string{
		"orders_deleted": "erase: delete",
		"orders_masked":  "erase: mask\n        mask: [customer_id, address]",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			connectortest.Run(t, connectortest.Harness{
				New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
					db := testenv.Database(t, client)
					return shop(t, db, ordersErase), shopFixture(t, db)
				},
				Fault: func(t *testing.T, f connectortest.Fault) connectors.Connector {
					// A database has no rate limit, and credentials are
					// not checked against the embedded store.
					if f != connectortest.Unreachable {
						return nil
					}
					return downShop(t, ordersErase)
				},
			})
		})
	}
}

// downShop builds the shop connector against a server that does not exist.
func downShop(t *testing.T, ordersErase string) connectors.Connector {
	t.Helper()
	spec := strings.Replace(strings.Replace(shopSpec, "ORDERS_ERASE", ordersErase, 1), "type: mongodb", "type: mongodb\n    uri: ${URI}", 1)
	reg, err := parse(t, nil, spec, map[string]string{"DB": "shop",
		"URI": "mongodb://" + testenv.ClosedAddr(t) + "/?serverSelectionTimeoutMS=1000&connectTimeoutMS=300"})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c, _ := reg.Lookup("shop")
	return c
}

// TestCustomerIDTypes checks that a customer_id given as a string matches
// documents that store it as a string, an ObjectID or an integer.
func TestCustomerIDTypes(t *testing.T) {
	t.Parallel()
	oid := bson.NewObjectID()
	tests := []struct {
		name   string
		stored any    // customer_id as the documents hold it
		given  string // customer_id as the subject carries it
	}{
		{name: "string", stored: oid.Hex(), given: oid.Hex()},
		{name: "objectid", stored: oid, given: oid.Hex()},
		{name: "int64", stored: int64(4242), given: "4242"},
		{name: "int32", stored: int32(4242), given: "4242"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := testenv.Mongo(t)
			ctx := t.Context()
			insert(ctx, t, db.Collection("orders"),
				bson.D{{Key: "_id", Value: 1}, {Key: "customer_id", Value: tt.stored}},
				bson.D{{Key: "_id", Value: 2}, {Key: "customer_id", Value: "someone-else"}},
			)
			c := shop(t, db, "erase: delete")
			s := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: tt.given}}}

			w := &writer{}
			res, err := c.(connectors.Exporter).Export(ctx, s, w)
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			if diff := cmp.Diff([]string{"orders"}, w.collections); diff != "" {
				t.Errorf("Export wrote records of (-want +got):\n%s", diff)
			}
			if res.Records != 1 {
				t.Errorf("Export reported %d records; want 1", res.Records)
			}

			res, err = c.(connectors.Eraser).Erase(ctx, s)
			if err != nil {
				t.Fatalf("Erase: %v", err)
			}
			if res.Records != 1 {
				t.Errorf("Erase reported %d records; want 1", res.Records)
			}
			left, err := db.Collection("orders").CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatalf("count: %v", err)
			}
			if left != 1 {
				t.Errorf("%d orders left after Erase; want 1 (someone else's)", left)
			}
		})
	}
}

// TestNonCanonicalIDsMatchOnlyThemselves checks that an id that merely reads
// as a number or an ObjectID ("007", "+7", an upper-case hex) matches only
// documents holding that exact string, never another person's 7.
func TestNonCanonicalIDsMatchOnlyThemselves(t *testing.T) {
	t.Parallel()
	oid := bson.NewObjectID()
	for _, given := range []string{"007", "+7", "-0", strings.ToUpper(oid.Hex())} {
		t.Run(given, func(t *testing.T) {
			t.Parallel()
			db := testenv.Mongo(t)
			ctx := t.Context()
			insert(ctx, t, db.Collection("orders"),
				bson.D{{Key: "_id", Value: 1}, {Key: "customer_id", Value: int64(7)}},
				bson.D{{Key: "_id", Value: 2}, {Key: "customer_id", Value: int32(0)}},
				bson.D{{Key: "_id", Value: 3}, {Key: "customer_id", Value: oid}},
				bson.D{{Key: "_id", Value: 4}, {Key: "customer_id", Value: given}},
			)
			c := shop(t, db, "erase: delete")
			s := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: given}}}
			res, err := c.(connectors.Exporter).Export(ctx, s, &writer{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != 1 {
				t.Errorf("customer_id %q exported %d records; want only the one holding that string", given, res.Records)
			}
		})
	}
}

// TestResolveIDTypes checks that an id provided as an ObjectID or an integer
// is resolved to its string form.
func TestResolveIDTypes(t *testing.T) {
	t.Parallel()
	oid := bson.NewObjectID()
	tests := []struct {
		name   string
		stored any
		want   string
	}{
		{name: "objectid", stored: oid, want: oid.Hex()},
		{name: "string", stored: "c-17", want: "c-17"},
		{name: "int32", stored: int32(17), want: "17"},
		{name: "int64", stored: int64(1) << 40, want: "1099511627776"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := testenv.Mongo(t)
			ctx := t.Context()
			insert(ctx, t, db.Collection("customers"),
				bson.D{{Key: "_id", Value: tt.stored}, {Key: "email", Value: adaEmail}},
				bson.D{{Key: "_id", Value: "grace"}, {Key: "email", Value: graceEmail}},
			)
			c := shop(t, db, "erase: delete")
			got, err := c.(connectors.Resolver).Resolve(ctx, connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}})
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			want := []connectors.Identity{{Kind: "customer_id", Value: tt.want, Source: "shop/customers"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Resolve (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExportTrimsArrays checks that arrays matched by a dotted path are
// exported with the subject's entries only, whatever their nesting.
func TestExportTrimsArrays(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		field string // the match field
		doc   bson.D
		want  string // the exported record, relaxed extended JSON
	}{
		{
			name:  "strings",
			field: "members",
			doc:   bson.D{{Key: "_id", Value: 1}, {Key: "members", Value: bson.A{graceEmail, adaEmail}}},
			want:  `{"_id":1,"members":["ada@example.com"]}`,
		},
		{
			name:  "in a subdocument",
			field: "list.members",
			doc: bson.D{{Key: "_id", Value: 1}, {Key: "list", Value: bson.D{
				{Key: "title", Value: "news"}, {Key: "members", Value: bson.A{adaEmail, graceEmail}},
			}}},
			want: `{"_id":1,"list":{"title":"news","members":["ada@example.com"]}}`,
		},
		{
			name:  "subdocuments",
			field: "members.email",
			doc: bson.D{{Key: "_id", Value: 1}, {Key: "members", Value: bson.A{
				bson.D{{Key: "email", Value: graceEmail}, {Key: "since", Value: 2019}},
				bson.D{{Key: "email", Value: adaEmail}, {Key: "since", Value: 2021}},
			}}},
			want: `{"_id":1,"members":[{"email":"ada@example.com","since":2021}]}`,
		},
		{
			name:  "arrays in subdocuments",
			field: "households.emails",
			doc: bson.D{{Key: "_id", Value: 1}, {Key: "households", Value: bson.A{
				bson.D{{Key: "city", Value: "London"}, {Key: "emails", Value: bson.A{graceEmail, adaEmail}}},
				bson.D{{Key: "city", Value: "New York"}, {Key: "emails", Value: bson.A{graceEmail}}},
			}}},
			want: `{"_id":1,"households":[{"city":"London","emails":["ada@example.com"]}]}`,
		},
		{
			// Records are relaxed Extended JSON, in the document's field
			// order, with characters as stored: the export's format.
			name:  "kinds of values",
			field: "members",
			doc: bson.D{{Key: "_id", Value: bson.ObjectID{0x65, 0x9f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, {Key: "zeta", Value: "<b>&</b>\u2028"},
				{Key: "members", Value: bson.A{adaEmail, graceEmail}}, {Key: "at", Value: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
				{Key: "big", Value: int64(1) << 60}, {Key: "price", Value: 42.5}, {Key: "none", Value: nil}, {Key: "ok", Value: true}},
			want: "{\"_id\":{\"$oid\":\"659f00000000000000000001\"},\"zeta\":\"<b>&</b>\\u2028\",\"members\":[\"ada@example.com\"]," +
				`"at":{"$date":"2026-01-02T03:04:05Z"},"big":1152921504606846976,"price":42.5,"none":null,"ok":true}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := testenv.Mongo(t)
			ctx := t.Context()
			insert(ctx, t, db.Collection("lists"), tt.doc)
			spec := `
connectors:
  - name: crm
    type: mongodb
    database: ${DB}
    collections:
      - name: lists
        match: {"${FIELD}": email}
        erase: delete
`
			reg, err := parse(t, db.Client(), spec, map[string]string{"DB": db.Name(), "FIELD": tt.field})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			c, _ := reg.Lookup("crm")
			w := &writer{}
			if _, err := c.(connectors.Exporter).Export(ctx, connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}}, w); err != nil {
				t.Fatalf("Export: %v", err)
			}
			if diff := cmp.Diff([]string{tt.want}, w.json); diff != "" {
				t.Errorf("exported (-want +got):\n%s", diff)
			}
		})
	}
}

// TestScoped checks that a connector handles opt-outs only when a collection
// says what an opt-out does.
func TestScoped(t *testing.T) {
	t.Parallel()
	client := testenv.Client(t)
	spec := `
connectors:
  - name: optouts
    type: mongodb
    database: shop
    collections:
      - {name: customers, match: {email: email}, erase: delete, opt_out: delete}
  - name: plain
    type: mongodb
    database: shop
    collections:
      - {name: customers, match: {email: email}, erase: delete}
`
	reg, err := parse(t, client, spec, nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	got := map[connectors.Action][]string{}
	for _, a := range []connectors.Action{connectors.ActionExport, connectors.ActionErase, connectors.ActionOptOut} {
		for _, c := range reg.For(a) {
			got[a] = append(got[a], c.Name())
		}
	}
	want := map[connectors.Action][]string{
		connectors.ActionExport: {"optouts", "plain"},
		connectors.ActionErase:  {"optouts", "plain"},
		connectors.ActionOptOut: {"optouts"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("For (-want +got):\n%s", diff)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	client := testenv.Client(t)
	tests := []struct {
		name string
		spec string // the connector's settings, after name and type
		want []string
	}{
		{
			name: "missing database",
			spec: `
    collections:
      - {name: customers, match: {email: email}, erase: delete}`,
			want: []string{"line 2: database: required"},
		},
		{
			name: "no collections",
			spec: `
    database: shop`,
			want: []string{"line 2: collections: list at least one collection"},
		},
		{
			name: "unknown identity kind",
			spec: `
    database: shop
    collections:
      - {name: customers, match: {email: mail}, erase: delete}`,
			want: []string{`line 6: collection "customers": match: field "email" has unknown identity kind "mail" (known: advertising_id, customer_id, device_id, email, phone)`},
		},
		{
			name: "unknown provided kind",
			spec: `
    database: shop
    collections:
      - {name: customers, match: {email: email}, provide: {account: _id}, erase: delete}`,
			want: []string{`line 6: collection "customers": provide: unknown identity kind "account"`},
		},
		{
			name: "mask without fields",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        erase: mask`,
			want: []string{`line 8: collection "customers": erase: mask needs the fields to null in mask: [...]`},
		},
		{
			name: "mask fields without mask",
			spec: `
    database: shop
    collections:
      - {name: customers, match: {email: email}, erase: delete, mask: [name]}`,
			want: []string{`line 6: collection "customers": mask is only used with erase: mask`},
		},
		{
			name: "pull of a non-match field",
			spec: `
    database: shop
    collections:
      - name: segments
        match: {members: email}
        erase: {pull: owners}`,
			want: []string{`line 8: collection "segments": erase: pull field "owners" must be one of the match fields`},
		},
		{
			name: "opt_out pull of a non-match field",
			spec: `
    database: shop
    collections:
      - name: segments
        match: {members: email}
        erase: {pull: members}
        opt_out: {pull: owners}`,
			want: []string{`line 9: collection "segments": opt_out: pull field "owners" must be one of the match fields`},
		},
		{
			name: "pull of a field inside sub-documents",
			spec: `
    database: shop
    collections:
      - name: segments
        match: {members.email: email}
        erase: {pull: members.email}`,
			want: []string{`line 8: collection "segments": erase: pull takes a top-level array of plain values, not "members.email"; erase documents of sub-documents with delete or mask`},
		},
		{
			name: "set used for erase",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        erase: {set: {marketing: false}}`,
			want: []string{`line 8: collection "customers": erase: set is for opt_out`},
		},
		{
			name: "mask used for opt_out",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        erase: delete
        opt_out: mask`,
			want: []string{`line 9: collection "customers": opt_out: mask is for erase`},
		},
		{
			name: "unknown strategy word",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        erase: remove`,
			want: []string{`line 8: unknown strategy "remove": want delete, mask, {pull: FIELD} or {set: {FIELD: VALUE}}`},
		},
		{
			name: "unknown strategy key",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        erase: {unset: email}`,
			want: []string{`line 8: unknown strategy "unset": want pull or set`},
		},
		{
			name: "missing erase",
			spec: `
    database: shop
    collections:
      - {name: customers, match: {email: email}}`,
			want: []string{`line 6: collection "customers": erase: required`},
		},
		{
			name: "collection listed twice",
			spec: `
    database: shop
    collections:
      - {name: customers, match: {email: email}, erase: delete}
      - {name: customers, match: {phone: phone}, erase: delete}`,
			want: []string{`line 7: collection "customers": listed twice`},
		},
		{
			name: "unknown setting",
			spec: `
    database: shop
    colections:
      - {name: customers, match: {email: email}, erase: delete}`,
			want: []string{`line 5: unknown setting "colections" (known: uri, database, collections)`},
		},
		{
			name: "unknown collection setting",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        erase: delete
        optout: delete`,
			want: []string{`line 9: unknown setting "optout" (known: name, match, provide, erase, mask, opt_out, retain, correct)`},
		},
		{
			name: "missing match",
			spec: `
    database: shop
    collections:
      - name: customers
        erase: delete`,
			want: []string{`line 6: collection "customers": match: map at least one field to an identity kind (advertising_id, customer_id, device_id, email, phone)`},
		},
		{
			name: "empty match",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {}
        erase: delete`,
			want: []string{`line 7: collection "customers": match: map at least one field`},
		},
		{
			name: "misspelled identity kind, block style",
			spec: `
    database: shop
    collections:
      - name: customers
        match:
          email: email
          phone: phnoe
        erase: delete`,
			want: []string{`line 9: collection "customers": match: field "phone" has unknown identity kind "phnoe" (known: advertising_id, customer_id, device_id, email, phone)`},
		},
		{
			name: "misspelled provided kind, block style",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        provide:
          customer_id: _id
          cutomer: _id
        erase: delete`,
			want: []string{`line 10: collection "customers": provide: unknown identity kind "cutomer"`},
		},
		{
			name: "provided kind without a field",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        provide:
          customer_id: ""
        erase: delete`,
			want: []string{`line 9: collection "customers": provide: customer_id needs a field`},
		},
		{
			name: "collection without a name",
			spec: `
    database: shop
    collections:
      - {name: customers, match: {email: email}, erase: delete}
      - match: {email: email}
        erase: delete`,
			want: []string{`line 7: collections[1]: name: required`},
		},
		{
			name: "listed twice, block style",
			spec: `
    database: shop
    collections:
      - {name: customers, match: {email: email}, erase: delete}
      - erase: delete
        name: customers
        match: {phone: phone}`,
			want: []string{`line 8: collection "customers": listed twice`},
		},
		{
			name: "mask fields without mask, block style",
			spec: `
    database: shop
    collections:
      - name: customers
        match: {email: email}
        erase: delete
        mask: [name]`,
			want: []string{`line 9: collection "customers": mask is only used with erase: mask`},
		},
		{
			name: "every problem at once",
			spec: `
    collections:
      - {name: customers, match: {email: mail}, erase: mask}`,
			want: []string{"line 2: database: required", `line 5: collection "customers": match: field "email" has unknown identity kind "mail"`, "line 5: collection \"customers\": erase: mask needs the fields"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := "connectors:\n  - name: shop\n    type: mongodb" + tt.spec + "\n"
			reg, err := parse(t, client, spec, nil)
			if err == nil {
				t.Fatalf("Parse succeeded (connectors %v); want an error containing %q", reg.Names(), tt.want)
			}
			if reg != nil {
				t.Errorf("Parse returned a registry with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), `connector "shop": `) {
				t.Errorf("error %q does not name the connector", err)
			}
			for _, msg := range strings.Split(strings.TrimPrefix(err.Error(), `connector "shop": `), "\n") {
				if !regexp.MustCompile(`^line [1-9][0-9]*: `).MatchString(msg) {
					t.Errorf("error %q names no line", msg)
				}
			}
		})
	}
}

// TestConfigValid checks that every strategy form is accepted.
func TestConfigValid(t *testing.T) {
	t.Parallel()
	spec := strings.Replace(shopSpec, "ORDERS_ERASE", "erase: delete", 1)
	reg, err := parse(t, testenv.Client(t), spec, map[string]string{"DB": "shop"})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff([]string{"shop"}, reg.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
}

// writer is a RecordWriter that keeps the collection and JSON of each
// record, encoded as the export encodes them (encoding/json, no HTML
// escaping).
type writer struct {
	collections []string
	json        []string
}

func (w *writer) WriteRecord(_ context.Context, collection string, doc any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	w.collections = append(w.collections, collection)
	w.json = append(w.json, strings.TrimSuffix(buf.String(), "\n"))
	return nil
}

// TestLegalHold: a collection kept on a legal basis is masked (erase: mask)
// or kept whole (erase: delete), and the result names the basis.
func TestLegalHold(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Mongo(t)
	insert(ctx, t, db.Collection("invoices"),
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "ada@example.com"}, {Key: "name", Value: "Ada"}, {Key: "total", Value: 10}})
	insert(ctx, t, db.Collection("ledger"),
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "ada@example.com"}, {Key: "amount", Value: 10}})
	reg, err := connectors.Parse(ctx, []byte(`
connectors:
  - name: books
    type: mongodb
    database: `+db.Name()+`
    collections:
      - name: invoices
        match: {email: email}
        erase: mask
        mask: [email, name]
        retain: "tax law: invoices kept 10 years"
      - name: ledger
        match: {email: email}
        erase: delete
        retain: "accounting law: ledger kept 10 years"
`), connectors.Types{"mongodb": mongodb.Factory(connectors.Deps{Mongo: db.Client()})}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	c, _ := reg.Lookup("books")
	res, err := c.(connectors.Eraser).Erase(ctx, connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	email := []string{"email"}
	want := []connectors.CollectionResult{
		{Name: "invoices", Outcome: "masked", Records: 1, Basis: "tax law: invoices kept 10 years", MatchKinds: email, KindsKnown: email},
		{Name: "ledger", Outcome: "retained", Records: 1, Basis: "accounting law: ledger kept 10 years", MatchKinds: email, KindsKnown: email},
	}
	if diff := cmp.Diff(want, res.Collections); diff != "" {
		t.Errorf("erase under legal hold (-want +got):\n%s", diff)
	}
	if n, _ := db.Collection("ledger").CountDocuments(ctx, bson.D{}); n != 1 {
		t.Errorf("the retained ledger lost its record")
	}
	if n, _ := db.Collection("invoices").CountDocuments(ctx, bson.D{{Key: "name", Value: nil}, {Key: "total", Value: 10}}); n != 1 {
		t.Errorf("the invoice was not masked and kept")
	}
}

// TestUnreachableServerCallsDoNotQueue: calls to a connector whose server is
// down each wait out their own server selection, side by side; none waits
// for another's (a lock held across the round trip made n calls take n
// timeouts).
func TestUnreachableServerCallsDoNotQueue(t *testing.T) {
	t.Parallel()
	const selection = 1500 * time.Millisecond
	spec := mongodb.Spec{
		URI:      "mongodb://" + testenv.ClosedAddr(t) + "/?serverSelectionTimeoutMS=" + fmt.Sprint(selection.Milliseconds()) + "&connectTimeoutMS=300",
		Database: "shop",
		Collections: []mongodb.CollectionSpec{{Name: "customers", Match: map[string]string{"email": "email"},
			Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete}}},
	}
	c, err := mongodb.New(t.Context(), "down", spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}}}
	const calls = 4
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() { _, errs[i] = c.Erase(t.Context(), s) })
	}
	wg.Wait()
	took := time.Since(start)
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d: Erase succeeded against a closed port", i)
		}
	}
	t.Logf("%d calls against an unreachable server took %v (server selection %v)", calls, took, selection)
	if took > 2*selection {
		t.Errorf("%d concurrent calls took %v; want about one server selection (%v), not one per call", calls, took, selection)
	}
}

// TestNotSearched: each collection's result says which identity kinds it is
// matched by and which of them the subject had; a collection matched only by
// kinds the subject lacks is listed as not searched, naming what is missing,
// never as 0 records found.
func TestNotSearched(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Mongo(t)
	c := shop(t, db, "erase: delete")
	shopFixture(t, db).Seed(ctx)
	byPhone := connectors.Subject{Identities: []connectors.Identity{{Kind: "phone", Value: adaPhone}}}
	emailAndPhone, none := []string{"email", "phone"}, []string{}
	tests := []struct {
		name string
		run  func() (connectors.Result, error)
		want []connectors.CollectionResult
	}{
		{"export", func() (connectors.Result, error) { return c.(connectors.Exporter).Export(ctx, byPhone, &writer{}) }, []connectors.CollectionResult{
			{Name: "customers", Outcome: "exported", Records: 1, MatchKinds: emailAndPhone, KindsKnown: []string{"phone"}},
			{Name: "orders", Outcome: "not_searched", MatchKinds: []string{"customer_id"}, KindsKnown: none, Note: "no customer_id known"},
			{Name: "segments", Outcome: "not_searched", MatchKinds: []string{"email"}, KindsKnown: none, Note: "no email known"},
		}},
		{"opt-out", func() (connectors.Result, error) { return c.(connectors.OptOuter).OptOut(ctx, byPhone) }, []connectors.CollectionResult{
			{Name: "customers", Outcome: "set", Records: 1, MatchKinds: emailAndPhone, KindsKnown: []string{"phone"}},
			{Name: "segments", Outcome: "not_searched", MatchKinds: []string{"email"}, KindsKnown: none, Note: "no email known"},
		}},
		{"erase", func() (connectors.Result, error) { return c.(connectors.Eraser).Erase(ctx, byPhone) }, []connectors.CollectionResult{
			{Name: "customers", Outcome: "masked", Records: 1, MatchKinds: emailAndPhone, KindsKnown: []string{"phone"}},
			{Name: "orders", Outcome: "not_searched", MatchKinds: []string{"customer_id"}, KindsKnown: none, Note: "no customer_id known"},
			{Name: "segments", Outcome: "not_searched", MatchKinds: []string{"email"}, KindsKnown: none, Note: "no email known"},
		}},
	}
	for _, tt := range tests {
		res, err := tt.run()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, res.Collections); diff != "" {
			t.Errorf("%s: collections (-want +got):\n%s", tt.name, diff)
		}
	}
	if got := connectors.NotSearchedNote([]string{"email", "phone"}); got != "no email or phone known" {
		t.Errorf("NotSearchedNote(email, phone) = %q", got)
	}
}

// TestExportStreams: an export asks the server for no sort (one no index
// serves would hold every matching document in the server's memory) and
// reads the subject's documents a bounded batch at a time, writing each
// collection's records together, each once.
func TestExportStreams(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var cmds testenv.Commands
	db := testenv.Mongo(t, cmds.ClientOptions())
	const adas = 250 // three batches
	var orders []any
	for i := range adas + 20 {
		who := adaID
		if i%14 == 13 {
			who = graceID // someone else's orders in between
		}
		orders = append(orders, bson.D{{Key: "_id", Value: i}, {Key: "customer_id", Value: who}, {Key: "total", Value: i}})
	}
	var n int
	for _, o := range orders {
		if o.(bson.D)[1].Value == adaID {
			n++
		}
	}
	insert(ctx, t, db.Collection("orders"), orders...)
	insert(ctx, t, db.Collection("customers"), bson.D{{Key: "_id", Value: adaID}, {Key: "email", Value: adaEmail}})
	c := shop(t, db, "erase: delete")
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}, {Kind: "customer_id", Value: adaID.Hex()}}}

	cmds.Reset()
	w := &writer{}
	res, err := c.(connectors.Exporter).Export(ctx, s, w)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if res.Records != int64(n+1) || len(w.json) != n+1 {
		t.Errorf("Export reported %d records and wrote %d; want %d", res.Records, len(w.json), n+1)
	}
	seen := map[string]bool{}
	left := map[string]bool{}
	for i, coll := range w.collections {
		if i > 0 && coll != w.collections[i-1] {
			left[w.collections[i-1]] = true
		}
		if left[coll] {
			t.Fatalf("records of %s were not written together: %v", coll, w.collections)
		}
		if seen[coll+w.json[i]] {
			t.Errorf("record written twice: %s %s", coll, w.json[i])
		}
		seen[coll+w.json[i]] = true
		if strings.Contains(w.json[i], graceID.Hex()) {
			t.Errorf("someone else's record exported: %s", w.json[i])
		}
	}
	var finds, getMores int
	for _, cmd := range cmds.All() {
		switch cmd.Name {
		case "find":
			finds++
			if _, err := cmd.Body.LookupErr("sort"); err == nil {
				t.Errorf("export of %s asked the server to sort: %s", cmd.Collection, cmd.Body)
			}
			if b, ok := cmd.Body.Lookup("batchSize").AsInt64OK(); !ok || b > 100 {
				t.Errorf("export of %s asked for batches of %v; want at most 100", cmd.Collection, cmd.Body.Lookup("batchSize"))
			}
		case "getMore":
			getMores++
			if b, ok := cmd.Body.Lookup("batchSize").AsInt64OK(); !ok || b > 100 {
				t.Errorf("getMore asked for batches of %v; want at most 100", cmd.Body.Lookup("batchSize"))
			}
		}
	}
	if finds != 3 || getMores < (n-1)/100 {
		t.Errorf("export sent %d finds and %d getMores; want 3 finds (one a collection) and at least %d getMores (batches of 100)", finds, getMores, (n-1)/100)
	}
}
