package handlers_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// TestRequestScopes: an opt-out filed through the agent API keeps the
// scopes it names, or takes every purpose; a request of another type that
// names scopes, or an opt-out naming an unknown one, all or one twice, is
// refused with every field named and nothing stored.
func TestRequestScopes(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	type view struct {
		ID     string      `json:"id"`
		Scopes []dsr.Scope `json:"scopes"`
	}
	for _, tt := range []struct {
		name, body string
		want       []dsr.Scope
	}{
		{"named", `{"type":"opt_out","regulation":"gdpr","subject":{"customer_id":"cus_1"},"scopes":["profiling","marketing"]}`,
			[]dsr.Scope{dsr.ScopeProfiling, dsr.ScopeMarketing}},
		{"default", `{"type":"opt_out","regulation":"ccpa","subject":{"customer_id":"cus_2"}}`, dsr.Purposes},
		{"empty", `{"type":"opt_out","regulation":"ccpa","subject":{"customer_id":"cus_3"},"scopes":[]}`, dsr.Purposes},
		{"deletion", `{"type":"deletion","regulation":"ccpa","subject":{"customer_id":"cus_4"}}`, nil},
	} {
		var v view
		if resp := a.do("POST", "/v1/requests", agentKey, "application/json", tt.body, &v); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: file: %d", tt.name, resp.StatusCode)
		}
		if diff := cmp.Diff(tt.want, v.Scopes); diff != "" {
			t.Errorf("%s: scopes of the answer (-want +got):\n%s", tt.name, diff)
		}
		var got view
		a.do("GET", "/v1/requests/"+v.ID, auditorKey, "", "", &got)
		if diff := cmp.Diff(tt.want, got.Scopes); diff != "" {
			t.Errorf("%s: scopes read back (-want +got):\n%s", tt.name, diff)
		}
		r, err := a.store.Request(context.Background(), v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, r.SuppressedScopes()); tt.want != nil && diff != "" {
			t.Errorf("%s: stored scopes (-want +got):\n%s", tt.name, diff)
		}
	}

	before := a.countRequests()
	for _, tt := range []struct {
		name, body string
		fields     []string
	}{
		{"on a deletion", `{"type":"deletion","regulation":"gdpr","subject":{"customer_id":"cus_5"},"scopes":["marketing"]}`, []string{"scopes"}},
		{"all, twice, unknown", `{"type":"opt_out","regulation":"gdpr","subject":{"customer_id":"cus_6"},"scopes":["all","marketing","marketing","ads"]}`,
			[]string{"scopes[0]", "scopes[2]", "scopes[3]"}},
	} {
		var p httpkit.Problem
		if resp := a.do("POST", "/v1/requests", agentKey, "application/json", tt.body, &p); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d; want 400", tt.name, resp.StatusCode)
		}
		var fields []string
		for _, f := range p.Errors {
			fields = append(fields, f.Field)
		}
		if diff := cmp.Diff(tt.fields, fields); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", tt.name, diff)
		}
	}
	if n := a.countRequests(); n != before {
		t.Errorf("%d requests stored by refused filings", n-before)
	}
}

// TestPortalScopes: the portal files an opt-out with the scopes it names
// and shows them in the answer and the status; with a GPC signal and none
// named, sale and sharing alone. An opt-out refusing more than the open
// one with the same identities is not merged into it.
func TestPortalScopes(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{})
	type view struct {
		ID          string      `json:"id"`
		StatusToken string      `json:"status_token"`
		Merged      bool        `json:"merged"`
		Scopes      []dsr.Scope `json:"scopes"`
	}
	submit := func(body string, header ...string) view {
		t.Helper()
		var v view
		if resp := p.call("POST", "/v1/portal/requests", "", body, &v, header...); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("submit: %d", resp.StatusCode)
		}
		return v
	}
	status := func(v view) []dsr.Scope {
		t.Helper()
		var s view
		if resp := p.call("GET", "/v1/portal/requests/"+v.ID, v.StatusToken, "", &s); resp.StatusCode != http.StatusOK {
			t.Fatalf("status: %d", resp.StatusCode)
		}
		return s.Scopes
	}
	marketing := submit(`{"type":"opt_out","regulation":"gdpr","subject":{"email":"ada@example.com"},"scopes":["marketing"]}`)
	if !slices.Equal(marketing.Scopes, []dsr.Scope{dsr.ScopeMarketing}) || !slices.Equal(status(marketing), marketing.Scopes) {
		t.Errorf("scopes %v, status %v; want [marketing]", marketing.Scopes, status(marketing))
	}
	// Refusing profiling too is not what the open one does: filed anew.
	p.clock.Add(time.Second)
	more := submit(`{"type":"opt_out","regulation":"gdpr","subject":{"email":"ada@example.com"},"scopes":["marketing","profiling"]}`)
	if more.Merged || more.ID == "" {
		t.Errorf("an opt-out refusing more was merged: %+v", more)
	}
	// Refusing less than an open one is: it joins it (the newest).
	p.clock.Add(time.Second)
	if less := submit(`{"type":"opt_out","regulation":"gdpr","subject":{"email":"ada@example.com"},"scopes":["profiling"]}`); !less.Merged {
		t.Errorf("an opt-out refusing what an open one does was filed anew: %+v", less)
	}
	gpc := submit(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"grace@example.com"}}`, "Sec-GPC", "1")
	if !slices.Equal(gpc.Scopes, []dsr.Scope{dsr.ScopeSaleShare}) || !slices.Equal(status(gpc), gpc.Scopes) {
		t.Errorf("GPC opt-out: scopes %v, status %v; want [sale_share]", gpc.Scopes, status(gpc))
	}
	var prob httpkit.Problem
	if resp := p.call("POST", "/v1/portal/requests", "", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"scopes":["marketing"]}`, &prob); resp.StatusCode != http.StatusBadRequest ||
		len(prob.Errors) != 1 || prob.Errors[0].Field != "scopes" {
		t.Errorf("scopes on an access: %d %+v; want 400 naming scopes", resp.StatusCode, prob)
	}
}
