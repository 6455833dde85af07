package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// TestSegmentReport counts the removals of a window by connector,
// collection and scope, removals by requests apart from re-appearances;
// a removal outside the window is left out, and a bad window is 400.
func TestSegmentReport(t *testing.T) {
	t.Parallel()
	s := setupStats(t)
	at := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 12, 0, 0, 0, time.UTC) }
	removals := []dsr.Removal{
		{ID: "j1:segments:marketing", Connector: "shop", Collection: "segments", Scope: dsr.ScopeMarketing, Records: 2, RequestID: "r1", At: at(1, 5)},
		{ID: "j1:segments:profiling", Connector: "shop", Collection: "segments", Scope: dsr.ScopeProfiling, Records: 2, RequestID: "r1", At: at(1, 5)},
		{ID: "j2:segments:all", Connector: "shop", Collection: "segments", Scope: dsr.ScopeAll, Records: 1, RequestID: "r2", At: at(1, 9)},
		{ID: "reapply:x:1:shop:segments", Connector: "shop", Collection: "segments", Scope: dsr.ScopeMarketing, Records: 1, Reappeared: true, At: at(2, 1)},
		{ID: "j3:customers:marketing", Connector: "billing", Collection: "customers", Scope: dsr.ScopeMarketing, Records: 1, RequestID: "r3", At: at(2, 3)},
		{ID: "j4:customers:marketing", Connector: "billing", Collection: "customers", Scope: dsr.ScopeMarketing, Records: 1, RequestID: "r4", At: at(3, 1)},
	}
	if err := s.store.AddRemovals(t.Context(), removals); err != nil {
		t.Fatal(err)
	}
	s.at(at(3, 2))
	var got app.SegmentReport
	if resp := s.do("GET", "/v1/reports/segments?from=2026-01-01&to=2026-03-01", auditorKey, "", "", &got); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := app.SegmentReport{
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Rows: []app.SegmentRow{
			{Connector: "billing", Collection: "customers", Scope: dsr.ScopeMarketing, Removed: 1, Records: 1},
			{Connector: "shop", Collection: "segments", Scope: dsr.ScopeMarketing, Removed: 1, Reappeared: 1, Records: 3},
			{Connector: "shop", Collection: "segments", Scope: dsr.ScopeProfiling, Removed: 1, Records: 2},
			{Connector: "shop", Collection: "segments", Scope: dsr.ScopeAll, Removed: 1, Records: 1},
		},
		Total:       app.SegmentRow{Removed: 4, Reappeared: 1, Records: 7},
		GeneratedAt: at(3, 2),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	for _, key := range []string{adminKey, agentKey} {
		if resp := s.do("GET", "/v1/reports/segments?from=2026-01-01&to=2026-03-01", key, "", "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	var empty app.SegmentReport
	s.do("GET", "/v1/reports/segments?from=2025-01-01&to=2025-02-01", agentKey, "", "", &empty)
	if len(empty.Rows) != 0 || empty.Total != (app.SegmentRow{}) {
		t.Errorf("empty window: %+v", empty)
	}
	var p httpkit.Problem
	resp := s.do("GET", "/v1/reports/segments?from=2026-03-01&to=2026-02-01&scope=all", agentKey, "", "", &p)
	if resp.StatusCode != http.StatusBadRequest || len(p.Errors) != 2 || !strings.Contains(p.Errors[0].Field+p.Errors[1].Field, "scope") {
		t.Errorf("bad window: %d %+v", resp.StatusCode, p)
	}
}
