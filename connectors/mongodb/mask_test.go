package mongodb_test

import (
	"regexp"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mask"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/internal/testenv"
)

// TestMaskStrategies masks each field its own way, leaves the other person
// alone, and reports nothing the second time, while keeping a masked column
// joinable (the same hmac for the same value) and an email field a
// well-formed, undeliverable address.
func TestMaskStrategies(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Mongo(t)
	insert(ctx, t, db.Collection("customers"),
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "ada@example.com"}, {Key: "name", Value: "Ada"}, {Key: "phone", Value: "+441632960001"},
			{Key: "ref", Value: "CUST-1"}, {Key: "note", Value: "VIP"}, {Key: "age", Value: 36}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "bob@example.com"}, {Key: "name", Value: "Bob"}, {Key: "phone", Value: "+441632960002"},
			{Key: "ref", Value: "CUST-2"}, {Key: "note", Value: "new"}, {Key: "age", Value: 40}})
	insert(ctx, t, db.Collection("tickets"),
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "ada@example.com"}, {Key: "ref", Value: "CUST-1"}})
	masker, err := mask.NewMasker([]byte("a test mask key, 16+ bytes"))
	if err != nil {
		t.Fatal(err)
	}
	file := `
connectors:
  - name: crm
    type: mongodb
    database: ` + db.Name() + `
    collections:
      - name: customers
        match: {email: email}
        erase: mask
        mask: {email: email_format, name: null, phone: random, ref: hmac, note: {fixed: "[erased]"}}
      - name: tickets
        match: {email: email}
        erase: mask
        mask: {email: email_format, ref: hmac}
`
	reg, err := connectors.Parse(ctx, []byte(file), connectors.Types{"mongodb": mongodb.Factory(connectors.Deps{Mongo: db.Client(), Mask: masker})}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	c, _ := reg.Lookup("crm")
	ada := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}
	res, err := c.(connectors.Eraser).Erase(ctx, ada)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 2 {
		t.Errorf("first erase: %d records, want 2 (a customer and a ticket)", res.Records)
	}
	var got, ticket, bob bson.M
	_ = db.Collection("customers").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&got)
	_ = db.Collection("tickets").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&ticket)
	_ = db.Collection("customers").FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&bob)
	if !regexp.MustCompile(`^redacted-[0-9a-f]{16}@invalid$`).MatchString(got["email"].(string)) {
		t.Errorf("email = %v", got["email"])
	}
	if got["name"] != nil || got["note"] != "[erased]" || got["age"] != int32(36) {
		t.Errorf("name %v, note %v, age %v", got["name"], got["note"], got["age"])
	}
	if p := got["phone"].(string); len(p) != len("+441632960001") || strings.Contains(p, "1632960001") {
		t.Errorf("phone = %q, want random of the same length", p)
	}
	if ref := got["ref"].(string); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(ref) || ref != ticket["ref"] || got["email"] != ticket["email"] {
		t.Errorf("ref %v and ticket ref %v: want the same keyed hash, so the join holds", ref, ticket["ref"])
	}
	if bob["email"] != "bob@example.com" || bob["name"] != "Bob" || bob["ref"] != "CUST-2" || bob["phone"] != "+441632960002" {
		t.Errorf("the other person was changed: %v", bob)
	}
	// Again: the subject's documents no longer match by email, and even
	// matched by another field, every recognisable field is masked already.
	if res, err := c.(connectors.Eraser).Erase(ctx, ada); err != nil || res.Records != 0 {
		t.Errorf("second erase: %d records, %v; want 0", res.Records, err)
	}
}

// TestMaskConfigErrors: a keyed strategy with no key, and a text strategy on
// a number, say what is wrong.
func TestMaskConfigErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Mongo(t)
	insert(ctx, t, db.Collection("customers"), bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "ada@example.com"}, {Key: "age", Value: 36}})
	file := func(m string) string {
		return "connectors:\n  - name: crm\n    type: mongodb\n    database: " + db.Name() +
			"\n    collections:\n      - name: customers\n        match: {email: email}\n        erase: mask\n        mask: " + m + "\n"
	}
	none := func(string) (string, bool) { return "", false }
	for _, tt := range []struct{ mask, want string }{
		{"{email: hmac}", `line 9: collection "customers": mask: email: hmac needs the service's mask key`},
		{"{email: blur}", `line 9: unknown mask strategy "blur"`},
		{"email", "line 9: mask: a list of field names, or a mapping of field: strategy"},
	} {
		_, err := connectors.Parse(ctx, []byte(file(tt.mask)), connectors.Types{"mongodb": mongodb.Factory(connectors.Deps{Mongo: db.Client()})}, none)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("mask %s: %v, want %q", tt.mask, err, tt.want)
		}
	}
	masker, _ := mask.NewMasker([]byte("a test mask key, 16+ bytes"))
	reg, err := connectors.Parse(ctx, []byte(file("{age: random}")), connectors.Types{"mongodb": mongodb.Factory(connectors.Deps{Mongo: db.Client(), Mask: masker})}, none)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	c, _ := reg.Lookup("crm")
	_, err = c.(connectors.Eraser).Erase(ctx, connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}})
	if err == nil || !strings.Contains(err.Error(), "age") || !strings.Contains(err.Error(), "text only") {
		t.Errorf("random on a number: %v", err)
	}
}
