package mongodb_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/testenv"
)

// correctSpec is a connectors file whose customers collection can be
// corrected: name and email; orders cannot.
const correctSpec = `
connectors:
  - name: shop
    type: mongodb
    database: ${DB}
    collections:
      - name: customers
        match: {email: email, phone: phone}
        erase: delete
        correct: {name: profile.full_name, email: email}
      - name: orders
        match: {email: email}
        erase: delete
`

// TestCorrect: a correction sets the fields the collection names in the
// subject's documents only, literally, reports the old and new values as
// hashes only, and a second run changes nothing.
func TestCorrect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.Database(t, testenv.Client(t))
	reg, err := parse(t, db.Client(), correctSpec, map[string]string{"DB": db.Name()})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	c, _ := reg.Lookup("shop")
	if !connectors.Supports(c, connectors.ActionCorrect) {
		t.Fatal("shop does not support correct")
	}
	if diff := cmp.Diff([]string{"email", "name"}, reg.CorrectFields()); diff != "" {
		t.Errorf("CorrectFields (-want +got):\n%s", diff)
	}
	if !connectors.Owns(c, "name") || connectors.Owns(c, "phone") {
		t.Errorf("Owns(name), Owns(phone) = %v, %v; want true, false", connectors.Owns(c, "name"), connectors.Owns(c, "phone"))
	}
	insert(ctx, t, db.Collection("customers"),
		bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: adaEmail}, {Key: "phone", Value: adaPhone}, {Key: "profile", Value: bson.D{{Key: "full_name", Value: "Ada Lovelace"}}}},
		bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: graceEmail}, {Key: "phone", Value: gracePhone}, {Key: "profile", Value: bson.D{{Key: "full_name", Value: "Grace Hopper"}}}},
	)
	insert(ctx, t, db.Collection("orders"), bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: adaEmail}})

	const injected = `{"$ne": null}; db.dropDatabase() $where`
	s := connectors.Subject{
		Identities:  []connectors.Identity{{Kind: "email", Value: adaEmail}, {Kind: "phone", Value: adaPhone}},
		Corrections: []connectors.Correction{{Field: "name", Value: injected}, {Field: "email", Value: "ada.king@example.com"}, {Field: "address", Value: "not ours"}},
	}
	res, err := connectors.Run(ctx, c, connectors.ActionCorrect, s, nil)
	if err != nil {
		t.Fatalf("Correct: %v", err)
	}
	want := connectors.Result{Records: 1, Collections: []connectors.CollectionResult{{
		Name: "customers", Outcome: "corrected", Records: 1, MatchKinds: []string{"email", "phone"}, KindsKnown: []string{"email", "phone"},
		Changes: []connectors.FieldChange{
			{Field: "name", Old: []string{s.HashValue("name", "Ada Lovelace")}, New: s.HashValue("name", injected)},
			{Field: "email", Old: []string{s.HashValue("email", adaEmail)}, New: s.HashValue("email", "ada.king@example.com")},
		},
	}}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Correct (-want +got):\n%s", diff)
	}
	js, _ := json.Marshal(res)
	for _, clear := range []string{"Lovelace", adaEmail, "ada.king", "dropDatabase"} {
		if strings.Contains(string(js), clear) {
			t.Errorf("result %s holds %q in clear", js, clear)
		}
	}

	type customer struct {
		Email   string `bson:"email"`
		Address any    `bson:"address"`
		Profile struct {
			FullName any `bson:"full_name"`
		} `bson:"profile"`
	}
	var ada, grace customer
	testenv.Must(t, db.Collection("customers").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&ada))
	testenv.Must(t, db.Collection("customers").FindOne(ctx, bson.D{{Key: "_id", Value: 2}}).Decode(&grace))
	if got := ada.Profile.FullName; got != injected {
		t.Errorf("name = %v; want the value stored literally", got)
	}
	if ada.Email != "ada.king@example.com" || ada.Address != nil {
		t.Errorf("ada = %v; want the new email and no address (no collection owns it)", ada)
	}
	if grace.Email != graceEmail || grace.Profile.FullName != "Grace Hopper" {
		t.Errorf("grace = %v; want her untouched", grace)
	}
	if n, _ := db.Collection("orders").CountDocuments(ctx, bson.D{{Key: "email", Value: adaEmail}}); n != 1 {
		t.Errorf("orders: %d with the old email; want 1 (orders do not correct)", n)
	}

	// Again: found by phone, every field holds its value already.
	again, err := connectors.Run(ctx, c, connectors.ActionCorrect, s, nil)
	if err != nil {
		t.Fatalf("second Correct: %v", err)
	}
	if again.Records != 0 || len(again.Collections) != 1 || len(again.Collections[0].Changes[0].Old) != 0 {
		t.Errorf("second Correct = %+v; want 0 records and nothing overwritten", again)
	}

	// A subject with none of the kinds the collection is matched by.
	none, err := connectors.Run(ctx, c, connectors.ActionCorrect, connectors.Subject{
		Identities:  []connectors.Identity{{Kind: "customer_id", Value: "1"}},
		Corrections: s.Corrections,
	}, nil)
	if err != nil || len(none.Collections) != 1 || none.Collections[0].Outcome != connectors.OutcomeNotSearched {
		t.Errorf("Correct by customer_id = %+v, %v; want customers not searched", none, err)
	}
}

// TestCorrectScoped: a connector none of whose collections has correct
// does not correct.
func TestCorrectScoped(t *testing.T) {
	t.Parallel()
	c := shop(t, testenv.Database(t, testenv.Client(t)), "erase: delete")
	if connectors.Supports(c, connectors.ActionCorrect) || connectors.Owns(c, "email") {
		t.Error("shop without correct: supports correct")
	}
}

// TestCorrectConfigErrors: a correct mapping must name a field and a
// document field that can hold it.
func TestCorrectConfigErrors(t *testing.T) {
	t.Parallel()
	client := testenv.Client(t)
	for name, tt := range map[string]struct{ correct, want string }{
		"bad field name": {"{Name: name}", `line 7: collection "customers": correct: "Name" is not a field name`},
		"_id":            {"{customer_id: _id}", `line 7: collection "customers": correct: customer_id: want the document field`},
		"operator":       {"{name: $name}", `correct: name: want the document field`},
		"empty segment":  {"{name: profile..name}", `correct: name: want the document field`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := "connectors:\n  - name: shop\n    type: mongodb\n    database: shop\n    collections:\n      - name: customers\n        correct: " + tt.correct +
				"\n        match: {email: email}\n        erase: delete\n"
			_, err := parse(t, client, spec, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v; want an error containing %q", err, tt.want)
			}
		})
	}
}
