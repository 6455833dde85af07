package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	dsarapp "github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/mongostore"
)

// TestReportSegments prints the segmentation report of a store's
// removals, as a table and as the API's JSON; a bad window is a usage
// error.
func TestReportSegments(t *testing.T) {
	t.Parallel()
	db := testenv.Mongo(t)
	s := mongostore.New(db, nil)
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	at := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 9, 0, 0, 0, time.UTC) }
	if err := s.AddRemovals(context.Background(), []dsr.Removal{
		{ID: "j1:segments:marketing", Connector: "shop", Collection: "segments", Scope: dsr.ScopeMarketing, Records: 2, RequestID: "r1", At: at(1, 5)},
		{ID: "j2:segments:all", Connector: "shop", Collection: "segments", Scope: dsr.ScopeAll, Records: 1, RequestID: "r2", At: at(1, 6)},
		{ID: "reapply:x:1:shop:segments", Connector: "shop", Collection: "segments", Scope: dsr.ScopeMarketing, Records: 1, Reappeared: true, At: at(2, 1)},
		{ID: "j3:segments:marketing", Connector: "shop", Collection: "segments", Scope: dsr.ScopeMarketing, Records: 1, RequestID: "r3", At: at(3, 1)},
	}); err != nil {
		t.Fatal(err)
	}
	env := []string{"DSAR_MONGO_URI=" + testenv.MongoURI(t), "DSAR_MONGO_DB=" + db.Name()}

	out, errOut, code := runOnce(t, env, "report", "segments", "--from", "2026-01-01", "--to", "2026-03-01")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	want := []string{
		"Removals from segments 2026-01-01 to 2026-02-28 (UTC)",
		"",
		"CONNECTOR COLLECTION SCOPE REMOVED REAPPEARED RECORDS",
		"shop segments marketing 1 1 3",
		"shop segments all 1 0 1",
		"total 2 1 4",
		"",
	}
	if got := squeeze(out); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	out, errOut, code = runOnce(t, env, "report", "segments", "--from", "2026-01-01", "--to", "2026-03-01", "--json")
	var rep dsarapp.SegmentReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v\nstdout: %s\nstderr: %s", code, err, out, errOut)
	}
	if len(rep.Rows) != 2 || rep.Total != (dsarapp.SegmentRow{Removed: 2, Reappeared: 1, Records: 4}) {
		t.Errorf("--json: %s", out)
	}

	out, _, code = runOnce(t, env, "report", "segments", "--from", "2025-01-01", "--to", "2025-02-01")
	if code != 0 || !strings.Contains(out, "None.") {
		t.Errorf("empty period: exit %d\n%s", code, out)
	}
	checkRuns(t, []cliRun{
		{[]string{"report", "segments", "--help"}, nil, 0, "re-application check", ""},
		{[]string{"report", "segments", "--from", "2026-02-01", "--to", "2026-01-01"}, env, 2, "", "report segments: --to: must be after from"},
	})
}
