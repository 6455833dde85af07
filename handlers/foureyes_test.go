package handlers_test

import (
	"net/http"
	"testing"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
)

// TestFourEyes: under DSAR_APPROVAL_FOUR_EYES the agent who filed a request
// cannot approve it, nor an appeal of it, nor an appeal it filed; another
// agent can. (An appeal filed by a second agent does not let the first
// approve its own filing: the appeal acts on the same person and proof.)
func TestFourEyes(t *testing.T) {
	t.Parallel()
	policy, err := dsr.ParseApprovalPolicy("deletion")
	if err != nil {
		t.Fatal(err)
	}
	a := setupWith(t, false, func(d *handlers.Deps) { d.FourEyes = policy })
	file := func(key, body string) string {
		t.Helper()
		var r requestJSON
		if resp := a.do("POST", "/v1/requests", key, "application/json", body, &r); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("file: %d", resp.StatusCode)
		}
		return r.ID
	}
	approve := func(id, key string) (int, string, string) {
		t.Helper()
		var out struct {
			Type       string `json:"type"`
			Status     any    `json:"status"`
			ApprovedBy string `json:"approved_by"`
		}
		resp := a.do("POST", "/v1/requests/"+id+"/approve", key, "", "", &out)
		return resp.StatusCode, out.Type, out.ApprovedBy
	}

	deletion := file(agentKey, `{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	access := file(agentKey, `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	appealed := file(adminKey, `{"type":"deletion","regulation":"vcdpa","subject":{"email":"grace@example.com"}}`)
	for _, id := range []string{deletion, access, appealed} {
		a.move(id, dsr.StatusVerified, dsr.StatusAwaitingApproval)
	}
	a.move(appealed, dsr.StatusAwaitingApproval, dsr.StatusDenied)
	var appeal requestJSON
	if resp := a.do("POST", "/v1/requests/"+appealed+"/appeal", agentKey, "application/json", `{"reason":"the person disagrees"}`, &appeal); resp.StatusCode != 202 {
		t.Fatalf("appeal: %d", resp.StatusCode)
	}

	tests := []struct {
		name, id, key string
		code          int
		typ, by       string
	}{
		{"the filer approves a deletion", deletion, agentKey, 403, "urn:dsar:problem:four-eyes", ""},
		{"another agent approves it", deletion, agent2Key, 200, "deletion", "desk2"},
		{"the filer approves an access request (not under four eyes)", access, agentKey, 200, "access", "desk"},
		{"the appeal's filer approves it", appeal.ID, agentKey, 403, "urn:dsar:problem:four-eyes", ""},
		{"the admin who filed the denied request approves the appeal", appeal.ID, adminKey, 403, "urn:dsar:problem:four-eyes", ""},
		{"an agent who filed neither approves the appeal", appeal.ID, agent2Key, 200, "deletion", "desk2"},
	}
	for _, tt := range tests {
		code, typ, by := approve(tt.id, tt.key)
		if code != tt.code || typ != tt.typ || by != tt.by {
			t.Errorf("%s: %d %s by %q, want %d %s by %q", tt.name, code, typ, by, tt.code, tt.typ, tt.by)
		}
	}
	r, err := a.store.Request(t.Context(), deletion)
	if err != nil {
		t.Fatal(err)
	}
	if r.ApprovedBy != "desk2" || len(r.History) != 3 {
		t.Errorf("the deletion after a refused and an allowed approval: approved by %q, %d history entries", r.ApprovedBy, len(r.History))
	}
}
