package handlers_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// TestConsentRoutes: an agent records an opt-in, which lifts the person's
// suppressions under its scopes and never a deletion's; only an admin
// lifts that, with a reason; the history shows every event oldest first
// with the entries, to auditors too. Bad input is refused with every field
// named, and writes nothing.
func TestConsentRoutes(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ctx := context.Background()
	key := a.index.SuppressionKey()
	email, customer := key.Hash(dsr.KindEmail, "ada@example.com"), key.Hash(dsr.KindCustomerID, "cus_ada")
	at := time.Now().Add(-time.Minute)
	var seed []dsr.Suppression
	for _, sc := range []dsr.Scope{dsr.ScopeMarketing, dsr.ScopeProfiling, dsr.ScopeAll} {
		for _, h := range []string{email, customer} {
			seed = append(seed, dsr.Suppression{Hash: h, Scope: sc, Source: dsr.ConsentPortal, RequestID: "01928c4e-7a1b-7cde-8f01-23456789abcd", At: at})
		}
	}
	if _, err := a.store.Suppress(ctx, seed); err != nil {
		t.Fatal(err)
	}
	history := func(key, body string) app.ConsentRecord {
		t.Helper()
		var rec app.ConsentRecord
		if resp := a.do("POST", "/v1/consent/history", key, "application/json", body, &rec); resp.StatusCode != http.StatusOK {
			t.Fatalf("history: %d", resp.StatusCode)
		}
		return rec
	}
	fields := func(p httpkit.Problem) []string {
		var out []string
		for _, f := range p.Errors {
			out = append(out, f.Field)
		}
		return out
	}

	// Refused before anything is written.
	for _, tt := range []struct {
		name, path, key, body string
		status                int
		fields                []string
	}{
		{"opt-in, all wrong", "/v1/consent/opt-in", agentKey, `{"subject":{"email":"nobody"},"hashes":["email:ABC"],"scopes":["ads","marketing","marketing"]}`,
			400, []string{"subject.email", "hashes[0]", "scopes[0]", "scopes[2]"}},
		{"opt-in, nobody", "/v1/consent/opt-in", agentKey, `{"scopes":["marketing"]}`, 400, []string{"subject"}},
		{"opt-in, no scopes", "/v1/consent/opt-in", agentKey, `{"subject":{"email":"ada@example.com"}}`, 400, []string{"scopes"}},
		{"opt-in, bad regulation", "/v1/consent/opt-in", agentKey, `{"subject":{"email":"ada@example.com"},"scopes":["marketing"],"regulation":"hipaa"}`, 400, []string{"regulation"}},
		{"opt-in filed as a request", "/v1/requests", agentKey, `{"type":"opt_in","regulation":"ccpa","subject":{"email":"ada@example.com"}}`, 400, []string{"type"}},
		{"opt-in of all", "/v1/consent/opt-in", agentKey, `{"subject":{"email":"ada@example.com"},"scopes":["marketing","all"]}`, 409, nil},
		{"opt-in by an auditor", "/v1/consent/opt-in", auditorKey, `{"subject":{"email":"ada@example.com"},"scopes":["marketing"]}`, 403, nil},
		{"lift by an agent", "/v1/suppressions/lift", agentKey, `{"subject":{"email":"ada@example.com"},"scope":"all","reason":"asked"}`, 403, nil},
		{"lift without a reason", "/v1/suppressions/lift", adminKey, `{"subject":{"email":"ada@example.com"},"scope":"all","reason":" "}`, 400, []string{"reason"}},
		{"lift of no scope", "/v1/suppressions/lift", adminKey, `{"hashes":["` + email + `"],"reason":"asked"}`, 400, []string{"scope"}},
		{"history, bad hash", "/v1/consent/history", auditorKey, `{"hashes":["` + email + `x"]}`, 400, []string{"hashes[0]"}},
		{"unknown field", "/v1/consent/history", auditorKey, `{"email":"ada@example.com"}`, 400, []string{"email"}},
	} {
		var p httpkit.Problem
		resp := a.do("POST", tt.path, tt.key, "application/json", tt.body, &p)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d; want %d", tt.name, resp.StatusCode, tt.status)
			continue
		}
		if diff := cmp.Diff(tt.fields, fields(p)); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", tt.name, diff)
		}
	}
	if rec := history(auditorKey, `{"hashes":["`+email+`","`+customer+`"]}`); len(rec.Events) != 0 || len(rec.Suppressions) != 6 {
		t.Fatalf("after refused calls: %d events, %d entries; want none, and the 6 seeded", len(rec.Events), len(rec.Suppressions))
	}

	// The opt-in lifts marketing for both identities; the deletion's all
	// stays.
	var change app.ConsentChange
	if resp := a.do("POST", "/v1/consent/opt-in", agentKey, "application/json",
		`{"subject":{"email":" Ada@Example.com "},"hashes":["`+customer+`"],"scopes":["marketing"]}`, &change); resp.StatusCode != http.StatusOK {
		t.Fatalf("opt-in: %d", resp.StatusCode)
	}
	if diff := cmp.Diff(app.ConsentChange{EventID: change.EventID, Identities: 2, Lifted: map[dsr.Scope]int{dsr.ScopeMarketing: 2},
		StillSuppressed: []dsr.Scope{dsr.ScopeAll, dsr.ScopeProfiling}, OptInRequest: change.OptInRequest}, change); diff != "" {
		t.Errorf("opt-in (-want +got):\n%s", diff)
	}
	// It filed the opt-in request that carries the lift to the connectors:
	// with the identity given in clear (not the one given as a hash), its
	// scopes, no notices, under ccpa (the seeded entries' request is not
	// stored).
	optInRequest := func(id string, scopes []dsr.Scope, reg dsr.Regulation, source, by string) {
		t.Helper()
		r, err := a.store.Request(ctx, id)
		if err != nil {
			t.Fatalf("opt-in request %q: %v", id, err)
		}
		var ids []string
		for _, i := range r.Identities {
			ids = append(ids, string(i.Kind)+"="+i.Value)
		}
		if r.Type != dsr.TypeOptIn || r.Regulation != reg || r.Source != source || r.FiledBy != by || r.Notify ||
			!slices.Equal(r.Scopes, scopes) || !slices.Equal(ids, []string{"email=ada@example.com"}) || r.Status == dsr.StatusAwaitingApproval {
			t.Errorf("opt-in request: %s %s %s by %s, scopes %v, identities %v, notify %v, %s", r.Type, r.Regulation, r.Source, r.FiledBy, r.Scopes, ids, r.Notify, r.Status)
		}
	}
	optInRequest(change.OptInRequest, []dsr.Scope{dsr.ScopeMarketing}, dsr.RegulationCCPA, "agent_api", "desk")
	// Hashes alone reach no connector: no request.
	var byHash app.ConsentChange
	if resp := a.do("POST", "/v1/consent/opt-in", agentKey, "application/json", `{"hashes":["`+customer+`"],"scopes":["marketing"]}`, &byHash); resp.StatusCode != http.StatusOK || byHash.OptInRequest != "" {
		t.Fatalf("opt-in by hash: %d, %+v; want 200 and no opt-in request", resp.StatusCode, byHash)
	}
	// The admin lifts the deletion's, for the email only.
	if resp := a.do("POST", "/v1/suppressions/lift", adminKey, "application/json",
		`{"subject":{"email":"ada@example.com"},"scope":"all","reason":"new account, asked to be contacted (ticket 4711)"}`, &change); resp.StatusCode != http.StatusOK {
		t.Fatalf("lift: %d", resp.StatusCode)
	}
	if change.Lifted[dsr.ScopeAll] != 1 || !slices.Equal(change.StillSuppressed, []dsr.Scope{dsr.ScopeProfiling}) {
		t.Errorf("lift: %+v; want all lifted once, profiling still suppressed", change)
	}
	optInRequest(change.OptInRequest, []dsr.Scope{dsr.ScopeAll}, dsr.RegulationCCPA, "consent_admin", "ops")

	rec := history(agentKey, `{"subject":{"email":"ada@example.com","customer_id":"cus_ada"}}`)
	var kinds []dsr.ConsentKind
	for _, ev := range rec.Events {
		kinds = append(kinds, ev.Kind)
	}
	if diff := cmp.Diff([]dsr.ConsentKind{dsr.ConsentOptIn, dsr.ConsentOptIn, dsr.ConsentLifted}, kinds); diff != "" {
		t.Errorf("events, oldest first (-want +got):\n%s", diff)
	}
	if ev := rec.Events[0]; ev.Source != dsr.ConsentAgent || ev.Actor != "desk" || !slices.Equal(ev.Scopes, []dsr.Scope{dsr.ScopeMarketing}) {
		t.Errorf("opt-in event %+v", ev)
	}
	if ev := rec.Events[2]; ev.Source != dsr.ConsentAdmin || ev.Actor != "ops" || ev.Reason == "" || !slices.Equal(ev.Hashes, []string{email}) {
		t.Errorf("lifted event %+v", ev)
	}
	active := map[string]bool{}
	for _, s := range rec.Suppressions {
		active[s.Hash[:5]+"|"+string(s.Scope)] = s.Active
		if !s.Active && (s.LiftedAt == nil || s.LiftedBy == "") {
			t.Errorf("lifted entry without its lift: %+v", s)
		}
	}
	want := map[string]bool{"email|marketing": false, "email|profiling": true, "email|all": false,
		"custo|marketing": false, "custo|profiling": true, "custo|all": true}
	if diff := cmp.Diff(want, active); diff != "" {
		t.Errorf("entries active (-want +got):\n%s", diff)
	}
}

// TestLiftWhileSuppressionInFlight: an agent's opt-in, and an admin's lift,
// of a person whose opt-out (or deletion) is filed but not yet fanned out
// is refused (409) and lifts nothing: that fan-out would suppress the
// scope again right after the lift, undoing it without a word, as the
// preference centre already refuses. A scope the pending request does not
// suppress is lifted, and hashes alone cannot be matched to requests.
func TestLiftWhileSuppressionInFlight(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ctx := context.Background()
	key := a.index.SuppressionKey()
	email := key.Hash(dsr.KindEmail, "ada@example.com")
	at := time.Now().Add(-time.Hour)
	var seed []dsr.Suppression
	for _, sc := range []dsr.Scope{dsr.ScopeMarketing, dsr.ScopeProfiling, dsr.ScopeAll} {
		seed = append(seed, dsr.Suppression{Hash: email, Scope: sc, Source: dsr.ConsentAgent, At: at})
	}
	if _, err := a.store.Suppress(ctx, seed); err != nil {
		t.Fatal(err)
	}
	// The opt-out of marketing, and a deletion, filed: no worker runs here,
	// so neither is fanned out.
	for _, body := range []string{
		`{"type":"opt_out","regulation":"ccpa","subject":{"email":"ada@example.com"},"scopes":["marketing"]}`,
		`{"type":"deletion","regulation":"ccpa","subject":{"email":"ada@example.com"}}`,
	} {
		if resp := a.do("POST", "/v1/requests", agentKey, "application/json", body, nil); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("file %s: %d", body, resp.StatusCode)
		}
	}
	for _, tt := range []struct {
		name, path, key, body string
		status                int
	}{
		{"opt-in of marketing", "/v1/consent/opt-in", agentKey, `{"subject":{"email":"ada@example.com"},"scopes":["marketing"]}`, http.StatusConflict},
		{"lift of all", "/v1/suppressions/lift", adminKey, `{"subject":{"email":"ada@example.com"},"scope":"all","reason":"asked"}`, http.StatusConflict},
		{"opt-in of profiling", "/v1/consent/opt-in", agentKey, `{"subject":{"email":"ada@example.com"},"scopes":["profiling"]}`, http.StatusOK},
		{"opt-in of marketing by hash", "/v1/consent/opt-in", agentKey, `{"hashes":["` + email + `"],"scopes":["marketing"]}`, http.StatusOK},
	} {
		if resp := a.do("POST", tt.path, tt.key, "application/json", tt.body, nil); resp.StatusCode != tt.status {
			t.Errorf("%s: %d; want %d", tt.name, resp.StatusCode, tt.status)
		}
	}
	entries, err := a.store.Suppressions(ctx, []string{email})
	if err != nil {
		t.Fatal(err)
	}
	var active []dsr.Scope
	for _, e := range entries {
		if e.Active() {
			active = append(active, e.Scope)
		}
	}
	slices.Sort(active)
	if diff := cmp.Diff([]dsr.Scope{dsr.ScopeAll}, active); diff != "" {
		t.Errorf("active scopes (-want +got):\n%s", diff)
	}
}
