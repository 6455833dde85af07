package handlers_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
)

// preferencesJSON is the answer of the preference centre.
type preferencesJSON struct {
	RequestID      string `json:"request_id"`
	OptInRequestID string `json:"opt_in_request_id"`
	Purposes       []struct {
		Purpose string     `json:"purpose"`
		Title   string     `json:"title"`
		Allowed bool       `json:"allowed"`
		Since   *time.Time `json:"since"`
		Source  string     `json:"source"`
		Locked  bool       `json:"locked"`
	} `json:"purposes"`
	All *struct {
		Since  time.Time `json:"since"`
		Source string    `json:"source"`
	} `json:"all"`
	OptOutRequestID string `json:"opt_out_request_id"`
}

// choices is p as "purpose=allowed|refused(source)[locked]" in order.
func (p preferencesJSON) choices() string {
	var out []string
	for _, c := range p.Purposes {
		s := c.Purpose + "=allowed"
		if !c.Allowed {
			s = c.Purpose + "=refused(" + c.Source + ")"
		}
		if c.Locked {
			s += "locked"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

type consentJSON struct {
	Events []struct {
		Kind      string   `json:"kind"`
		Scopes    []string `json:"scopes"`
		Source    string   `json:"source"`
		RequestID string   `json:"request_id"`
	} `json:"events"`
}

// kinds lists the history as "kind:scope,scope(source)".
func (h consentJSON) kinds() []string {
	var out []string
	for _, e := range h.Events {
		out = append(out, e.Kind+":"+strings.Join(e.Scopes, ",")+"("+e.Source+")")
	}
	return out
}

// verified files an access (or deletion) request for email on the portal,
// verifies it with the emailed code and returns its id and status token.
func (p *portal) verified(typ, email string) (id, token string) {
	p.t.Helper()
	c := p.submit(`{"type":"` + typ + `","regulation":"gdpr","subject":{"email":"` + email + `"}}`)
	_, text := p.mail(email, c.ID, "verify")
	code := codeIn.FindStringSubmatch(text)
	if code == nil {
		p.t.Fatalf("no code in:\n%s", text)
	}
	if resp := p.call("POST", "/v1/portal/requests/"+c.ID+"/verify", c.StatusToken, `{"code":"`+code[1]+`"}`, nil); resp.StatusCode != 200 {
		p.t.Fatalf("verify: %d", resp.StatusCode)
	}
	return c.ID, c.StatusToken
}

// prefs reads the preferences of request id with token, wanting status.
func (p *portal) prefs(method, id, token, body string, status int, header ...string) preferencesJSON {
	p.t.Helper()
	var out preferencesJSON
	if resp := p.call(method, "/v1/portal/requests/"+id+"/preferences", token, body, &out, header...); resp.StatusCode != status {
		p.t.Fatalf("%s preferences: %d, want %d", method, resp.StatusCode, status)
	}
	return out
}

// history waits until the consent history of request id holds want (as
// consentJSON.kinds gives it, in any order: events of one moment have no
// set order) and returns it.
func (p *portal) history(id, token string, want ...string) consentJSON {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var h consentJSON
		if resp := p.call("GET", "/v1/portal/requests/"+id+"/consent-history", token, "", &h); resp.StatusCode != 200 {
			p.t.Fatalf("consent history: %d", resp.StatusCode)
		}
		got := h.kinds()
		slices.Sort(got)
		slices.Sort(want)
		if slices.Equal(got, want) {
			return h
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("consent history %v, want %v", h.kinds(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// suppressionHash is the suppression hash of an email under the portal
// tests' key.
func suppressionHash(t *testing.T, email string) string {
	t.Helper()
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return idx.SuppressionKey().Hash(dsr.KindEmail, email)
}

// active lists the active scopes of email's entries, from the store.
func (p *portal) active(email string) []string {
	p.t.Helper()
	entries, err := p.store.Suppressions(context.Background(), []string{suppressionHash(p.t, email)})
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Active() {
			out = append(out, string(e.Scope))
		}
	}
	slices.Sort(out)
	return out
}

// TestPortalPreferences is the preference centre end to end: a verified
// person refuses marketing (one scoped opt-out, fanned out to the
// connectors, suppressed), allows it again (lifted, an opt-in event), and
// another person's token reaches none of it.
func TestPortalPreferences(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{workers: true})
	ctx := context.Background()
	ada, adaToken := p.verified("access", "ada@example.com")
	grace, graceToken := p.verified("access", "grace@example.com")

	if got := p.prefs("GET", ada, adaToken, "", 200); got.choices() != "marketing=allowed profiling=allowed sale_share=allowed" || got.All != nil || got.RequestID != ada {
		t.Fatalf("fresh preferences: %+v", got)
	}

	// Refusing marketing files one opt-out, scoped to it, followed by the
	// same token, and holds at once.
	before := p.store.Count(t, mongostore.RequestsCollection)
	got := p.prefs("PUT", ada, adaToken, `{"purposes":{"marketing":false}}`, 200)
	if got.choices() != "marketing=refused(portal) profiling=allowed sale_share=allowed" || got.OptOutRequestID == "" || got.Purposes[0].Since == nil {
		t.Fatalf("after refusing marketing: %s %+v", got.choices(), got)
	}
	if n := p.store.Count(t, mongostore.RequestsCollection); n != before+1 {
		t.Errorf("%d requests filed, want 1", n-before)
	}
	oo, err := p.store.Request(ctx, got.OptOutRequestID)
	if err != nil {
		t.Fatal(err)
	}
	if oo.Type != dsr.TypeOptOut || !slices.Equal(oo.Scopes, []dsr.Scope{dsr.ScopeMarketing}) || oo.Source != "portal" || oo.GPC ||
		len(oo.Identities) != 1 || oo.Identities[0].Value != "ada@example.com" {
		t.Errorf("the opt-out filed: type %s, scopes %v, source %s, gpc %v, %d identities", oo.Type, oo.Scopes, oo.Source, oo.GPC, len(oo.Identities))
	}
	if a := p.active("ada@example.com"); !slices.Equal(a, []string{"marketing"}) {
		t.Errorf("Ada's active scopes %v, want [marketing]", a)
	}
	p.waitStatus(got.OptOutRequestID, adaToken, "completed")
	jobs, err := p.store.Jobs(ctx, got.OptOutRequestID)
	if err != nil || len(jobs) != 1 || jobs[0].Action != dsr.ActionOptOut || jobs[0].Status != dsr.JobSucceeded || jobs[0].Records != 1 {
		t.Errorf("the opt-out's jobs: %+v %v; want the shop's opt-out of Ada's record", jobs, err)
	}
	p.history(ada, adaToken, "opt_out:marketing(portal)")
	// The opt-out stands on Ada's proven email too: the token opens her
	// preferences through it as well.
	if via := p.prefs("GET", got.OptOutRequestID, adaToken, "", 200); via.choices() != got.choices() {
		t.Errorf("through the opt-out: %s, want %s", via.choices(), got.choices())
	}

	// Refusing it again files nothing.
	// A call with the signal files its opt-out as a GPC one: what it
	// refuses is recorded with source gpc, and the signal again.
	if again := p.prefs("PUT", ada, adaToken, `{"purposes":{"marketing":false}}`, 200); again.OptOutRequestID != "" {
		t.Errorf("refusing marketing again filed %s", again.OptOutRequestID)
	}

	// Grace's token neither reads nor changes Ada's; hers are her own.
	for _, m := range []string{"GET", "PUT"} {
		body := ""
		if m == "PUT" {
			body = `{"purposes":{"marketing":true}}`
		}
		if resp := p.call(m, "/v1/portal/requests/"+ada+"/preferences", graceToken, body, nil); resp.StatusCode != 404 {
			t.Errorf("%s Ada's preferences with Grace's token: %d, want 404", m, resp.StatusCode)
		}
	}
	if resp := p.call("GET", "/v1/portal/requests/"+ada+"/consent-history", graceToken, "", nil); resp.StatusCode != 404 {
		t.Errorf("Ada's history with Grace's token: %d, want 404", resp.StatusCode)
	}
	if g := p.prefs("GET", grace, graceToken, "", 200); g.choices() != "marketing=allowed profiling=allowed sale_share=allowed" {
		t.Errorf("Grace's preferences: %s", g.choices())
	}
	p.history(grace, graceToken)
	if a := p.active("ada@example.com"); !slices.Equal(a, []string{"marketing"}) {
		t.Errorf("Ada's active scopes after Grace's calls %v, want [marketing]", a)
	}

	// Allowing it again lifts it, with an opt-in event.
	got = p.prefs("PUT", ada, adaToken, `{"purposes":{"marketing":true}}`, 200)
	if got.choices() != "marketing=allowed profiling=allowed sale_share=allowed" || got.Purposes[0].Since == nil || got.Purposes[0].Source != "portal" || got.OptOutRequestID != "" {
		t.Errorf("after allowing marketing: %s %+v", got.choices(), got.Purposes[0])
	}
	if a := p.active("ada@example.com"); len(a) != 0 {
		t.Errorf("Ada's active scopes %v, want none", a)
	}
	// The opt-in request carries the lift to the connectors: with Ada's
	// proven email, under her request's regulation, no notice; the shop
	// keeps no suppression of its own, so it completes with no job.
	oi, err := p.store.Request(ctx, got.OptInRequestID)
	if err != nil {
		t.Fatalf("opt-in request %q: %v", got.OptInRequestID, err)
	}
	if oi.Type != dsr.TypeOptIn || !slices.Equal(oi.Scopes, []dsr.Scope{dsr.ScopeMarketing}) || oi.Source != "portal" || oi.Notify ||
		oi.LinkedTo != ada || len(oi.Identities) != 1 || oi.Identities[0].Value != "ada@example.com" || oi.Regulation != oo.Regulation {
		t.Errorf("the opt-in filed: type %s, scopes %v, source %s, notify %v, linked to %s, %d identities, %s",
			oi.Type, oi.Scopes, oi.Source, oi.Notify, oi.LinkedTo, len(oi.Identities), oi.Regulation)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := p.store.Request(ctx, oi.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == dsr.StatusCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the opt-in request is %s, want completed", r.Status)
		}
	}
	if a := p.active("ada@example.com"); len(a) != 0 {
		t.Errorf("Ada's active scopes after the opt-in's fan-out %v, want none", a)
	}
	p.history(ada, adaToken, "opt_out:marketing(portal)", "opt_in:marketing(portal)")
	for _, secret := range []string{"ada@example.com", "grace@example.com", adaToken, graceToken} {
		if strings.Contains(p.logs.String(), secret) {
			t.Errorf("the logs hold %q", secret)
		}
	}
}

// TestPortalPreferencesGPC: Sec-GPC: 1 on a preferences call refuses sale
// and sharing once, recorded as a GPC signal; it cannot be allowed in the
// same call.
func TestPortalPreferencesGPC(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{workers: true})
	ada, token := p.verified("access", "ada@example.com")
	got := p.prefs("GET", ada, token, "", 200, "Sec-GPC", "1")
	if got.choices() != "marketing=allowed profiling=allowed sale_share=refused(gpc)" || got.OptOutRequestID == "" {
		t.Fatalf("GET with Sec-GPC: %s %+v", got.choices(), got)
	}
	oo, err := p.store.Request(context.Background(), got.OptOutRequestID)
	if err != nil || !oo.GPC || !slices.Equal(oo.Scopes, []dsr.Scope{dsr.ScopeSaleShare}) {
		t.Fatalf("the GPC opt-out: %+v %v", oo, err)
	}
	// A call with the signal files its opt-out as a GPC one: what it
	// refuses is recorded with source gpc, and the signal again.
	if again := p.prefs("PUT", ada, token, `{"purposes":{"profiling":false}}`, 200, "Sec-GPC", "1"); again.choices() != "marketing=allowed profiling=refused(gpc) sale_share=refused(gpc)" {
		t.Errorf("PUT with Sec-GPC: %s", again.choices())
	} else if o2, err := p.store.Request(context.Background(), again.OptOutRequestID); err != nil || !slices.Equal(o2.Scopes, []dsr.Scope{dsr.ScopeProfiling}) {
		t.Errorf("the second opt-out: %v %v, want scopes [profiling] only (sale_share is refused already)", o2, err)
	}
	var pr problemJSON
	if resp := p.call("PUT", "/v1/portal/requests/"+ada+"/preferences", token, `{"purposes":{"sale_share":true}}`, &pr, "Sec-GPC", "1"); resp.StatusCode != 400 || strings.Join(pr.fields(), ",") != "purposes.sale_share" {
		t.Errorf("allowing sale_share with Sec-GPC: %d %v", resp.StatusCode, pr.fields())
	}
	p.waitStatus(got.OptOutRequestID, token, "completed")
	p.history(ada, token, "gpc:sale_share(gpc)", "opt_out:sale_share(gpc)", "gpc:sale_share(gpc)", "opt_out:profiling(gpc)")
}

// TestPortalPreferencesRefusals: which tokens open the preference centre,
// a deletion's "all" that the portal cannot lift, and bad bodies that
// change nothing.
func TestPortalPreferencesRefusals(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{workers: true})
	ctx := context.Background()

	// An opt-out needs no proof: its token opens nobody's preferences.
	// (Eve files one with her email and Grace's customer id.)
	oo := p.submit(`{"type":"opt_out","jurisdiction":"US-CA","subject":{"email":"eve@example.com","customer_id":"cus_grace"}}`)
	unverified := p.submit(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	for name, c := range map[string]created{"opt-out": oo, "unverified": unverified} {
		for _, path := range []string{"/preferences", "/consent-history"} {
			var pr problemJSON
			if resp := p.call("GET", "/v1/portal/requests/"+c.ID+path, c.StatusToken, "", &pr); resp.StatusCode != 403 || pr.Detail == "" {
				t.Errorf("%s token, GET %s: %d %q, want 403", name, path, resp.StatusCode, pr.Detail)
			}
		}
		if resp := p.call("PUT", "/v1/portal/requests/"+c.ID+"/preferences", c.StatusToken, `{"purposes":{"marketing":true}}`, nil); resp.StatusCode != 403 {
			t.Errorf("%s token, PUT: %d, want 403", name, resp.StatusCode)
		}
	}
	if resp := p.call("GET", "/v1/portal/requests/"+oo.ID+"/preferences", "", "", nil); resp.StatusCode != 401 {
		t.Errorf("no token: %d, want 401", resp.StatusCode)
	}

	// A deletion refuses every use; the portal cannot lift it.
	del, token := p.verified("deletion", "grace@example.com")
	p.waitStatus(del, token, "completed")
	got := p.prefs("GET", del, token, "", 200)
	if got.All == nil || got.All.Source != "portal" || got.choices() != "marketing=refused(portal)locked profiling=refused(portal)locked sale_share=refused(portal)locked" {
		t.Fatalf("after a deletion: %s all=%+v", got.choices(), got.All)
	}
	var pr problemJSON
	if resp := p.call("PUT", "/v1/portal/requests/"+del+"/preferences", token, `{"purposes":{"marketing":true}}`, &pr); resp.StatusCode != 409 || !strings.Contains(pr.Detail, "deletion") {
		t.Errorf("allowing marketing after a deletion: %d %q, want 409", resp.StatusCode, pr.Detail)
	}
	if a := p.active("grace@example.com"); !slices.Contains(a, "all") {
		t.Errorf("Grace's active scopes %v, want all kept", a)
	}

	// Bad bodies: precise problems, nothing changed.
	ada, adaToken := p.verified("access", "ada@example.com")
	requests := p.store.Count(t, mongostore.RequestsCollection)
	tests := []struct {
		name, body string
		header     []string
		status     int
		fields     []string
	}{
		{"all", `{"purposes":{"all":true}}`, nil, 400, []string{"purposes.all"}},
		{"unknown purpose", `{"purposes":{"marketing":false,"ads":false}}`, nil, 400, []string{"purposes.ads"}},
		{"null", `{"purposes":{"marketing":null}}`, nil, 400, []string{"purposes.marketing"}},
		{"none", `{"purposes":{}}`, nil, 400, []string{"purposes"}},
		{"no purposes", `{}`, nil, 400, []string{"purposes"}},
		{"not a boolean", `{"purposes":{"marketing":"no"}}`, nil, 400, []string{"purposes.marketing"}},
		{"unknown field", `{"purposes":{"marketing":false},"all":false}`, nil, 400, []string{"all"}},
		{"sale_share with GPC", `{"purposes":{"marketing":false,"sale_share":true}}`, []string{"Sec-GPC", "1"}, 400, []string{"purposes.sale_share"}},
		{"not JSON", `purposes=marketing`, nil, 400, nil},
	}
	for _, tt := range tests {
		var pr problemJSON
		resp := p.call("PUT", "/v1/portal/requests/"+ada+"/preferences", adaToken, tt.body, &pr, tt.header...)
		if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem+json", tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), tt.status)
		}
		if tt.fields != nil && strings.Join(pr.fields(), ",") != strings.Join(tt.fields, ",") {
			t.Errorf("%s: fields %v, want %v", tt.name, pr.fields(), tt.fields)
		}
	}
	if n := p.store.Count(t, mongostore.RequestsCollection); n != requests {
		t.Errorf("%d requests filed by bad bodies", n-requests)
	}
	if a := p.active("ada@example.com"); len(a) != 0 {
		t.Errorf("bad bodies suppressed Ada for %v", a)
	}

	// Once its identities are purged, a request's token opens nothing.
	p.waitStatus(ada, adaToken, "completed")
	if done, err := p.store.PurgeIdentities(ctx, ada); err != nil || !done {
		t.Fatalf("purge: %v %v", done, err)
	}
	if resp := p.call("GET", "/v1/portal/requests/"+ada+"/preferences", adaToken, "", &pr); resp.StatusCode != http.StatusGone {
		t.Errorf("purged: %d, want 410", resp.StatusCode)
	}
}
