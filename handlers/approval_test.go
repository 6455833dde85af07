package handlers_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
)

// TestApprovalAtIntake: a request the approval policy holds waits for
// approval from the moment it is filed, alone or in bulk, its history and
// audit chain saying it was verified and then held; approved, it is
// verified.
func TestApprovalAtIntake(t *testing.T) {
	t.Parallel()
	a := setupWith(t, false, func(d *handlers.Deps) {
		p, err := dsr.ParseApprovalPolicy("deletion")
		if err != nil {
			t.Fatal(err)
		}
		d.Approval = p
	})
	ctx := context.Background()
	var v workflowView
	if resp := a.do("POST", "/v1/requests", agentKey, "application/json",
		`{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, &v); resp.StatusCode != 202 || v.Status != "awaiting_approval" {
		t.Fatalf("file: %d %s", resp.StatusCode, v.Status)
	}
	var bulk struct {
		Results []struct {
			Request struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"request"`
		} `json:"results"`
	}
	if resp := a.do("POST", "/v1/requests/bulk", agentKey, "application/json",
		`{"requests":[{"type":"deletion","regulation":"gdpr","subject":{"email":"grace@example.com"}},{"type":"access","regulation":"gdpr","subject":{"email":"grace@example.com"}}]}`,
		&bulk); resp.StatusCode != 200 || len(bulk.Results) != 2 || bulk.Results[0].Request.Status != "awaiting_approval" || bulk.Results[1].Request.Status != "verified" {
		t.Fatalf("bulk: %d %+v", resp.StatusCode, bulk)
	}
	for _, id := range []string{v.ID, bulk.Results[0].Request.ID} {
		r, err := a.store.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var reasons []string
		for _, h := range r.History {
			reasons = append(reasons, string(h.To)+": "+h.Reason)
		}
		if want := []string{"verified: filed", "awaiting_approval: waiting for an agent's approval"}; !slices.Equal(reasons, want) || !r.Proven() {
			t.Errorf("%s: history %q, want %q", id, reasons, want)
		}
		if got := a.kinds(id); !slices.Equal(got, []string{"filed", "status"}) || r.Audited != 2 {
			t.Errorf("%s: audit events %v, audited %d", id, got, r.Audited)
		}
	}
	if resp := a.do("POST", "/v1/requests/"+v.ID+"/approve", agentKey, "", "", &v); resp.StatusCode != http.StatusOK || v.Status != "verified" || v.ApprovedBy != "desk" {
		t.Errorf("approve: %d %s %q", resp.StatusCode, v.Status, v.ApprovedBy)
	}
}
