package handlers_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/handlers"
)

// TestCorrectionOverHTTP: an agent files a correction through the API; it
// waits for approval with no approval policy, and shows its changes with
// their hashes. A bad change is a problem naming it, on the portal too
// (TestPortalCorrection files one there).
func TestCorrectionOverHTTP(t *testing.T) {
	t.Parallel()
	a := setupWith(t, false, func(d *handlers.Deps) {
		d.CorrectFields = func() []string { return []string{"email", "name"} }
	})
	var v struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		Corrections []struct {
			Field string `json:"field"`
			Value string `json:"value"`
			Hash  string `json:"hash"`
		} `json:"corrections"`
	}
	resp := a.do("POST", "/v1/requests", agentKey, "application/json",
		`{"type":"correction","regulation":"gdpr","subject":{"email":"ada@example.com"},"corrections":[{"field":"name","value":"Ada King"}]}`, &v)
	if resp.StatusCode != http.StatusAccepted || v.Status != "awaiting_approval" || len(v.Corrections) != 1 ||
		v.Corrections[0].Value != "Ada King" || !strings.HasPrefix(v.Corrections[0].Hash, "correction:name:") {
		t.Fatalf("file: %d %+v", resp.StatusCode, v)
	}

	var p problemJSON
	resp = a.do("POST", "/v1/requests", agentKey, "application/json",
		`{"type":"correction","regulation":"gdpr","subject":{"email":"ada@example.com"},"corrections":[{"field":"phone","value":"+44 20 7946 0958"},{"field":"name","value":""}]}`, &p)
	if resp.StatusCode != http.StatusBadRequest || !slices.Equal(p.fields(), []string{"corrections[0].field", "corrections[1].value"}) ||
		!strings.Contains(p.Errors[0].Message, `"phone": no configured connector can correct it`) {
		t.Errorf("bad changes: %d %+v", resp.StatusCode, p)
	}
	p = problemJSON{}
	resp = a.do("POST", "/v1/portal/requests", "", "application/json",
		`{"type":"correction","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, &p)
	if resp.StatusCode != http.StatusBadRequest || !slices.Equal(p.fields(), []string{"corrections"}) {
		t.Errorf("portal correction without changes: %d %+v", resp.StatusCode, p)
	}
}
