package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/dsr"
)

type bulkOut struct {
	Accepted, Rejected int
	Results            []struct {
		Index   int `json:"index"`
		Status  int `json:"status"`
		Request *struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"request"`
		Problem *problemJSON `json:"problem"`
	} `json:"results"`
}

// TestBulkRoundTrips pins the store commands of one bulk filing: the same
// three whether it holds 10 items or 500 (one query for the duplicates of
// the whole batch, one insert of their first audit events, one of the
// requests), with the per-item semantics of
// filing one by one: an item repeating an open request, or an earlier item
// of the same call, is its duplicate; an invalid item is refused alone.
func TestBulkRoundTrips(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	ctx := context.Background()
	open := a.filed(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	insp := asynq.NewInspector(a.redis)
	defer insp.Close()
	for _, n := range []int{10, 500} {
		items := []string{
			`{"type":"access","regulation":"gdpr","subject":{"email":"ADA@example.com"},"channel":"letter"}`, // duplicates the open one
			fmt.Sprintf(`{"type":"deletion","regulation":"ccpa","subject":{"email":"first%d@example.com"}}`, n),
			fmt.Sprintf(`{"type":"deletion","regulation":"gdpr","subject":{"email":"first%d@example.com"}}`, n), // duplicates item 1
			`{"type":"access","regulation":"nowhere","subject":{"email":"bad@example.com"}}`,
		}
		for i := len(items); i < n; i++ {
			items = append(items, fmt.Sprintf(`{"type":"access","regulation":"gdpr","subject":{"email":"p%d-%d@example.com"}}`, n, i))
		}
		a.cmds.Reset()
		var out bulkOut
		resp := a.do("POST", "/v1/requests/bulk", agentKey, "application/json", `{"requests":[`+strings.Join(items, ",")+`]}`, &out)
		if resp.StatusCode != http.StatusOK || out.Accepted != n-1 || out.Rejected != 1 || len(out.Results) != n {
			t.Fatalf("%d items: %d, accepted %d, rejected %d", n, resp.StatusCode, out.Accepted, out.Rejected)
		}
		if a.store.Mongo != nil {
			if diff := cmp.Diff([]string{"find", "insert", "insert"}, a.cmds.Names()); diff != "" {
				t.Errorf("%d items: store commands (-want +got):\n%s", n, diff)
			}
		}
		res := out.Results
		if res[3].Status != http.StatusBadRequest || strings.Join(res[3].Problem.fields(), ",") != "regulation" {
			t.Errorf("%d items: the invalid item: %+v", n, res[3])
		}
		wantDup := map[int]string{0: open, 2: res[1].Request.ID}
		for i, of := range wantDup {
			r, err := a.store.Request(ctx, res[i].Request.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != dsr.StatusDuplicate || r.DuplicateOf != of {
				t.Errorf("%d items: item %d is %s of %q, want duplicate of %q", n, i, r.Status, r.DuplicateOf, of)
			}
		}
		for _, i := range []int{1, n - 1} {
			id := res[i].Request.ID
			r, err := a.store.Request(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != dsr.StatusVerified || r.DuplicateOf != "" || r.AuditDue || r.Audited != 1 {
				t.Errorf("%d items: item %d: %s, duplicate of %q, audit due %v, audited %d", n, i, r.Status, r.DuplicateOf, r.AuditDue, r.Audited)
			}
			trail, err := a.store.AuditTrail(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c := dsr.VerifyChain(trail); !c.OK || len(trail) != 1 || trail[0].Kind != "filed" || trail[0].Actor != "desk" {
				t.Errorf("%d items: item %d's audit chain: %+v %+v", n, i, c, trail)
			}
			if _, err := insp.GetTaskInfo(a.queue, "fanout:"+id); err != nil {
				t.Errorf("%d items: item %d's fan-out is not queued: %v", n, i, err)
			}
		}
	}
}
