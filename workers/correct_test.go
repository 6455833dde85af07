package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
)

// correctSetup is setup with a crm connector whose profiles can be
// corrected (name and email), on a database of its own, seeded with Ada's
// and Grace's profiles; and the application over the same store and queue,
// under the four-eyes rule for corrections and no approval policy at all.
func correctSetup(t *testing.T) (*env, *app.Service, string) {
	t.Helper()
	client := testenv.Client(t)
	crmDB := testenv.Database(t, client)
	if _, err := crmDB.Collection("profiles").InsertMany(context.Background(), []any{
		bson.D{{Key: "_id", Value: "p1"}, {Key: "email", Value: "ada@example.com"}, {Key: "name", Value: "Ada Lovelace"}},
		bson.D{{Key: "_id", Value: "p2"}, {Key: "email", Value: "grace@example.com"}, {Key: "name", Value: "Grace Hopper"}},
	}); err != nil {
		t.Fatal(err)
	}
	crm, err := mongodb.New(context.Background(), "crm", mongodb.Spec{Database: crmDB.Name(), Collections: []mongodb.CollectionSpec{
		{Name: "profiles", Match: map[string]string{"email": "email"}, Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete},
			Correct: map[string]string{"name": "name", "email": "email"}},
	}}, client)
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, 1, crm)
	fourEyes, err := dsr.ParseApprovalPolicy("correction")
	if err != nil {
		t.Fatal(err)
	}
	svc := app.New(app.Deps{Store: e.store, Queue: e.queue, Index: e.index, FourEyes: fourEyes, Now: e.clock.Now})
	return e, svc, crmDB.Name()
}

// profile reads profile id of the crm database db.
func profile(t *testing.T, db, id string) (email, name string) {
	t.Helper()
	var doc struct {
		Email string `bson:"email"`
		Name  string `bson:"name"`
	}
	testenv.Must(t, testenv.Client(t).Database(db).Collection("profiles").FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&doc))
	return doc.Email, doc.Name
}

// TestCorrectionEndToEnd: an agent files a correction; it waits for
// approval whatever the policy says, changes nothing until another agent
// approves it (four eyes), then the workers apply it through the one
// connector that owns the fields, literally; the report and the audit
// trail show fields and hashes, never the old or new values; the purge
// takes the new values and keeps the hashes.
func TestCorrectionEndToEnd(t *testing.T) {
	e, svc, db := correctSetup(t)
	e.startWorkers()
	ctx := context.Background()
	const injected = `Ada"}); db.profiles.drop(); ({"$set": {"admin": true}}`
	filed, err := svc.Create(ctx, app.Filing{By: "desk", Request: app.AgentRequest{Type: "correction", Regulation: "gdpr",
		Subject:     app.Subject{Email: ptr("ada@example.com")},
		Corrections: []app.CorrectionInput{{Field: "name", Value: injected}, {Field: "email", Value: "Ada.King@example.com"}}}})
	if err != nil {
		t.Fatal(err)
	}
	id := filed.Request.ID
	if filed.Request.Status != dsr.StatusAwaitingApproval {
		t.Fatalf("filed %s; want awaiting_approval with no approval policy", filed.Request.Status)
	}
	// A fan-out asked for anyway (a replayed task) does nothing.
	if err := e.proc.Fanout(ctx, id); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := e.store.Jobs(ctx, id); len(jobs) != 0 {
		t.Fatalf("jobs before approval: %+v", jobs)
	}
	if email, name := profile(t, db, "p1"); email != "ada@example.com" || name != "Ada Lovelace" {
		t.Fatalf("profile changed before approval: %s %s", email, name)
	}
	if _, err := svc.Approve(ctx, id, "desk"); !errors.Is(err, app.ErrFourEyes) {
		t.Fatalf("the filing agent approved: %v; want ErrFourEyes", err)
	}
	if _, err := svc.Approve(ctx, id, "lead"); err != nil {
		t.Fatal(err)
	}
	done := e.waitStatus(id, dsr.StatusCompleted)

	email, name := profile(t, db, "p1")
	if email != "ada.king@example.com" || name != injected {
		t.Errorf("profile p1 = %q %q; want the new email and the name stored literally", email, name)
	}
	if email, name := profile(t, db, "p2"); email != "grace@example.com" || name != "Grace Hopper" {
		t.Errorf("Grace's profile changed: %s %s", email, name)
	}
	jobs, err := e.store.Jobs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Connector != "crm" || jobs[0].Action != dsr.ActionCorrect || jobs[0].Records != 1 {
		t.Fatalf("jobs %+v; want crm's correct alone (shop owns no field)", jobs)
	}
	changes := jobs[0].Collections[0].Changes
	wantOld := map[string]string{"name": e.index.HashValue("name", "Ada Lovelace"), "email": e.index.HashValue("email", "ada@example.com")}
	wantNew := map[string]string{"name": e.index.HashValue("name", injected), "email": e.index.HashValue("email", "ada.king@example.com")}
	for _, ch := range changes {
		if len(ch.Old) != 1 || ch.Old[0] != wantOld[ch.Field] || ch.New != wantNew[ch.Field] {
			t.Errorf("%s: old %v new %s; want the keyed hashes of the values", ch.Field, ch.Old, ch.New)
		}
	}
	if len(changes) != 2 {
		t.Errorf("changes %+v; want name and email", changes)
	}

	rep, err := svc.Report(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := svc.Audit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	evidence, _ := json.Marshal([]any{rep, trail})
	for _, clear := range []string{"Lovelace", "ada@example.com", "ada.king", "profiles.drop"} {
		if strings.Contains(string(evidence), clear) {
			t.Errorf("report or audit trail holds %q in clear", clear)
		}
	}
	for _, h := range []string{wantOld["name"], wantNew["email"], done.Corrections[0].Hash} {
		if !strings.Contains(string(evidence), h) {
			t.Errorf("evidence lacks hash %s", h)
		}
	}
	if !trail.Verified {
		t.Errorf("audit chain does not verify: %s", trail.Problem)
	}

	if ok, err := e.store.PurgeIdentities(ctx, id); err != nil || !ok {
		t.Fatalf("PurgeIdentities = %v, %v", ok, err)
	}
	purged, err := e.store.Request(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if purged.NewValues != nil || len(purged.Corrections) != 2 || purged.Corrections[0].Hash != wantNew["name"] {
		t.Errorf("after the purge: values %v, evidence %+v; want no values, the hashes kept", purged.NewValues, purged.Corrections)
	}
}

// TestCorrectionCannotSkipApproval: however a correction reaches the
// workers verified (verified by the portal's code, or stored so by any
// path), the fan-out holds it for an agent and runs nothing; one filed
// pending the person's verification waits for it first.
func TestCorrectionCannotSkipApproval(t *testing.T) {
	e, svc, db := correctSetup(t)
	ctx := context.Background()
	r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeCorrection, Regulation: dsr.RegulationCCPA, Source: "portal", FiledBy: "portal",
		Status: dsr.StatusVerified, ReceivedAt: e.clock.Now(),
		Identities:  []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}},
		Corrections: []dsr.FieldValue{{Field: "name", Value: "Mallory"}}}, e.index)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Must(t, e.store.CreateRequest(ctx, r))
	testenv.Must(t, e.proc.Fanout(ctx, r.ID))
	got, err := e.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if jobs, _ := e.store.Jobs(ctx, r.ID); got.Status != dsr.StatusAwaitingApproval || len(jobs) != 0 {
		t.Errorf("verified correction after its fan-out: %s with %d jobs; want awaiting_approval, none", got.Status, len(jobs))
	}

	// Filed by an agent for the person to prove by the portal's code.
	filed, err := svc.Create(ctx, app.Filing{By: "desk", Request: app.AgentRequest{Type: "correction", Regulation: "gdpr",
		Subject: app.Subject{Email: ptr("ada@example.com")}, Identity: &app.Proof{},
		Corrections: []app.CorrectionInput{{Field: "name", Value: "Mallory"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if filed.Request.Status != dsr.StatusVerifying {
		t.Fatalf("filed %s; want verifying", filed.Request.Status)
	}
	testenv.Must(t, e.proc.Fanout(ctx, filed.Request.ID))
	if _, err := svc.Approve(ctx, filed.Request.ID, "lead"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("approving an unverified correction: %v; want a conflict", err)
	}
	if _, name := profile(t, db, "p1"); name != "Ada Lovelace" {
		t.Errorf("profile changed: %s", name)
	}
}

// TestCorrectionOfUnownedField: when the fields are not known at intake
// (the API does not load the connectors), a correction of a field no
// connector owns needs attention after its approval, with nothing changed
// anywhere and the field named.
func TestCorrectionOfUnownedField(t *testing.T) {
	e, svc, db := correctSetup(t)
	e.startWorkers()
	ctx := context.Background()
	filed, err := svc.Create(ctx, app.Filing{By: "desk", Request: app.AgentRequest{Type: "correction", Regulation: "gdpr",
		Subject:     app.Subject{Email: ptr("ada@example.com")},
		Corrections: []app.CorrectionInput{{Field: "name", Value: "Ada King"}, {Field: "phone", Value: "+44 20 7946 0958"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, filed.Request.ID, "lead"); err != nil {
		t.Fatal(err)
	}
	r := e.waitStatus(filed.Request.ID, dsr.StatusNeedsAttention)
	if reason := r.History[len(r.History)-1].Reason; !strings.Contains(reason, "correct phone") || !strings.Contains(reason, "nothing was changed") {
		t.Errorf("reason %q; want it to name phone", reason)
	}
	if jobs, _ := e.store.Jobs(ctx, r.ID); len(jobs) != 0 {
		t.Errorf("jobs %+v; want none", jobs)
	}
	if _, name := profile(t, db, "p1"); name != "Ada Lovelace" {
		t.Errorf("profile changed: %s", name)
	}
}

func ptr(s string) *string { return &s }
