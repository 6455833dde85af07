package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// sqlList is statuses as the SQL list the partial indexes write.
func sqlList(statuses []dsr.Status) string {
	q := make([]string, len(statuses))
	for i, s := range statuses {
		q[i] = "'" + string(s) + "'"
	}
	return "(" + strings.Join(q, ",") + ")"
}

// TestPartialIndexStatusLists: the status lists the partial indexes and
// their queries spell out are package dsr's.
func TestPartialIndexStatusLists(t *testing.T) {
	if got, want := openStatusesSQL, sqlList(dsr.OverdueStatuses); got != want {
		t.Errorf("openStatusesSQL = %s, want %s", got, want)
	}
	if got, want := closedStatusesSQL, sqlList(dsr.ClosedStatuses); got != want {
		t.Errorf("closedStatusesSQL = %s, want %s", got, want)
	}
	var finished []dsr.Status
	for _, s := range []dsr.JobStatus{dsr.JobPending, dsr.JobRunning, dsr.JobWaiting, dsr.JobSucceeded, dsr.JobFailed, dsr.JobSkipped} {
		if s.Terminal() {
			finished = append(finished, dsr.Status(s))
		}
	}
	if want := "status IN " + sqlList(finished); !strings.Contains(purgeJobIdentitiesQuery, want) {
		t.Errorf("purgeJobIdentitiesQuery does not hold %s:\n%s", want, purgeJobIdentitiesQuery)
	}
}

// storeTable matches a plan line that reads a whole table of the store, or
// a whole index of one (SCAN), or builds an index to answer (AUTOMATIC).
var storeTable = regexp.MustCompile(`^SCAN (requests|request_hashes|jobs|audit_events|export_records|idempotency_keys|` +
	`suppressions|consent_events|consent_hashes|segment_removals)\b|AUTOMATIC`)

// tempSortJustified lists the queries that may sort what they read (USE
// TEMP B-TREE), and why that is bounded.
var tempSortJustified = []struct {
	match *regexp.Regexp
	why   string
}{
	{
		regexp.MustCompile(`(?s)FROM requests .*due_at (<|>=) \?.*ORDER BY id DESC LIMIT \?$`),
		"a due window (or the overdue list) newest first: no index orders the rows of a due range by id, so " +
			"SQLite reads the range (or the filter's own range) through an index and sorts it; the rows sorted " +
			"are those the window selects, not the table",
	},
	{
		regexp.MustCompile(`(?s)FROM request_hashes h JOIN requests r .*ORDER BY r\.received_at DESC LIMIT \?$`),
		"OpenIdentical and Unverified: the requests filed under one identity hash (the blind index's primary key " +
			"finds them) are sorted newest first; one person's requests are few",
	},
	{
		regexp.MustCompile(`(?s)FROM consent_events WHERE id IN \(SELECT event_id FROM consent_hashes WHERE hash IN .*ORDER BY at, id LIMIT \?$`),
		"ConsentHistory: the events of one person's hashes (consent_hashes' primary key finds them, the events' " +
			"their rows) are sorted oldest first, each once; one person's events are few",
	},
}

// planProblems returns what is wrong with plan, the EXPLAIN QUERY PLAN of
// query: a table or index read whole (unless the query has no WHERE and
// stops at a LIMIT: an ordered walk reading LIMIT rows), a sort that is
// not justified above.
func planProblems(query string, plan []string) []string {
	var out []string
	for _, line := range plan {
		switch {
		case storeTable.MatchString(line):
			if !strings.Contains(query, " WHERE ") && regexp.MustCompile(`ORDER BY [^?]+ LIMIT \?$`).MatchString(query) {
				continue // an ordered walk that stops after LIMIT rows
			}
			out = append(out, line)
		case strings.Contains(line, "TEMP B-TREE"):
			justified := false
			for _, j := range tempSortJustified {
				justified = justified || j.match.MatchString(query)
			}
			if !justified {
				out = append(out, line)
			}
		}
	}
	return out
}

// explain returns the plan of query with args.
func explain(ctx context.Context, db *sql.DB, query string, args []any) ([]string, error) {
	rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return nil, err
		}
		plan = append(plan, detail)
	}
	return plan, rows.Err()
}

// checkPlan fails t when the plan of query is not served by indexes.
func checkPlan(t *testing.T, db *sql.DB, query string, args []any) {
	t.Helper()
	plan, err := explain(context.Background(), db, query, args)
	if err != nil {
		t.Errorf("explain %s: %v", oneLine(query), err)
		return
	}
	if bad := planProblems(oneLine(query), plan); len(bad) > 0 {
		t.Errorf("%s\n  reads %q\n  plan: %q", oneLine(query), bad, plan)
	}
}

// TestListQueriesUseIndexes: every combination of the list's filters, in
// both orders, on the first page and after a cursor, is served by an
// index.
func TestListQueriesUseIndexes(t *testing.T) {
	f := newFixture(t, "")
	now := f.clock.Now()
	later := now.Add(24 * time.Hour)
	dues := []struct {
		name string
		set  func(*dsr.ListFilter)
	}{
		{"any due", func(*dsr.ListFilter) {}},
		{"due before", func(l *dsr.ListFilter) { l.DueBefore = &later }},
		{"due after", func(l *dsr.ListFilter) { l.DueAfter = &now }},
		{"due window", func(l *dsr.ListFilter) { l.DueAfter, l.DueBefore = &now, &later }},
		{"overdue", func(l *dsr.ListFilter) { l.Overdue, l.Now = true, later }},
		{"overdue due before", func(l *dsr.ListFilter) { l.Overdue, l.Now, l.DueBefore = true, later, &now }},
	}
	n := 0
	for mask := range 1 << 5 {
		for _, due := range dues {
			for _, sort := range []dsr.ListSort{dsr.SortDue, dsr.SortNewest} {
				for _, after := range []*dsr.Cursor{nil, {Due: now.Add(time.Hour), ID: "0190"}} {
					l := dsr.ListFilter{Sort: sort, After: after, Limit: 25}
					if mask&1 != 0 {
						l.Status = dsr.StatusInProgress
					}
					if mask&2 != 0 {
						l.Type = dsr.TypeAccess
					}
					if mask&4 != 0 {
						l.Regulation = dsr.RegulationGDPR
					}
					if mask&8 != 0 {
						l.Source = "portal"
					}
					if mask&16 != 0 {
						l.AssignedTo = "desk"
					}
					due.set(&l)
					q, args, ok := listQuery(l)
					if !ok {
						t.Fatalf("%+v: no query", l)
					}
					checkPlan(t, f.store.r, q, args)
					n++
				}
			}
		}
	}
	t.Logf("%d list queries explained", n)
}

// TestRequestQueriesUseIndexes runs every request method of the store, the
// core's and this side's, on a populated store through a driver that
// records each statement, then checks the plan of every statement
// recorded with the arguments it was first sent with.
func TestRequestQueriesUseIndexes(t *testing.T) {
	f := newFixture(t, tracedDriver)
	ctx := context.Background()
	s := f.store
	tracedStatements() // forget the schema's

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// A populated store: more requests than one batch of the Each methods.
	var reqs []*dsr.Request
	for i := range 120 {
		reg := []dsr.Regulation{dsr.RegulationGDPR, dsr.RegulationCCPA, dsr.RegulationVCDPA}[i%3]
		typ := []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion}[i%2]
		reqs = append(reqs, f.value(t, reg, typ, dsr.StatusVerified, fmt.Sprintf("p%d@example.com", i)))
	}
	for i, err := range s.CreateRequests(ctx, reqs[1:]) {
		must(fmt.Sprint("create ", i), err)
	}
	must("create", s.CreateRequest(ctx, reqs[0]))
	v := f.verifying(t, "vera@example.com")
	_, err := s.Request(ctx, v.ID)
	must("request", err)
	_, err = s.Assign(ctx, reqs[0].ID, "desk")
	must("assign", err)
	must("notice", s.AddNotice(ctx, reqs[0].ID, dsr.NoticeExtended))
	must("notice sent", s.NoticeSent(ctx, reqs[0].ID, dsr.NoticeExtended))
	must("status token", s.AddStatusToken(ctx, reqs[0].ID, "tok"))
	_, err = s.OpenIdentical(ctx, reqs[0].ProvenHashes[0], reqs[0].Type, dsr.VerifiedOpenStatuses, 5)
	must("open identical", err)
	_, err = s.Unverified(ctx, v.IdentityHashes[0], v.Type, 5)
	must("unverified", err)
	_, err = s.OpenDuplicates(ctx, reqs[0].ProvenHashes, []dsr.Type{reqs[0].Type}, time.Time{})
	must("find duplicate", err)
	_, err = s.FanoutFailed(ctx, reqs[1].ID, "connector down")
	must("fanout failed", err)
	f.move(t, reqs[1].ID, dsr.StatusVerified, dsr.StatusInProgress)
	must("mark fanned out", s.MarkFannedOut(ctx, reqs[1].ID))
	f.move(t, reqs[2].ID, dsr.StatusVerified, dsr.StatusCancelled)

	// The clock, verification, appeals.
	_, err = s.PauseClock(ctx, v.ID, "agent", "asked for a bill")
	must("pause", err)
	_, err = s.ResumeClock(ctx, v.ID)
	must("resume", err)
	_, err = s.Extend(ctx, reqs[0].ID, "agent", "archives")
	must("extend", err)
	must("issue verification", s.IssueVerification(ctx, v.ID, "code", "token", f.clock.Now().Add(time.Hour)))
	must("verification sent", s.VerificationSent(ctx, v.ID))
	_, err = s.ReserveTry(ctx, v.ID, 5)
	must("reserve try", err)
	va := f.file(t, dsr.RegulationVCDPA, dsr.TypeDeletion, dsr.StatusVerified, "ada@example.com")
	f.move(t, va.ID, dsr.StatusVerified, dsr.StatusDenied)
	_, err = s.Appeal(ctx, va.ID, dsr.AppealFiling{Actor: "agent", Reason: "proof"})
	must("appeal", err)

	// The sweep and the checks, past every due date.
	f.clock.Add(400 * 24 * time.Hour)
	now := f.clock.Now()
	count := func(*dsr.Request) error { return nil }
	must("unverified past due", s.EachUnverifiedPastDue(ctx, now, count))
	must("pending notices", s.EachPendingNotice(ctx, now, count))
	must("stale", s.EachStaleRequest(ctx, now, count))
	must("audit due", s.EachAuditDue(ctx, now, count))
	must("catch up", s.CatchUpAudit(ctx, reqs[0]))
	_, err = s.AppendAudit(ctx, reqs[0].ID, "agent", "note", nil)
	must("append audit", err)
	_, err = s.AuditTrail(ctx, reqs[0].ID)
	must("audit trail", err)
	must("audit chains", s.EachAuditChain(ctx, func(string, []dsr.AuditEvent) error { return nil }))
	must("to remind", s.EachToRemind(ctx, time.Time{}, now.AddDate(1, 0, 0), 7, func(d *dsr.Due) error {
		_, err := s.Remind(ctx, d.ID, 7, time.Time{}, now.AddDate(1, 0, 0))
		return err
	}))
	must("to escalate", s.EachToEscalate(ctx, now, func(d *dsr.Due) error {
		_, err := s.Escalate(ctx, d.ID, now)
		return err
	}))
	must("exports to purge", s.EachExportsToPurge(ctx, now, func(d *dsr.Due) error {
		_, err := s.PurgeExports(ctx, d.ID)
		return err
	}))
	must("identities to purge", s.EachIdentitiesToPurge(ctx, now, func(d *dsr.Due) error {
		_, err := s.PurgeIdentities(ctx, d.ID)
		return err
	}))
	// The list, each filter, both orders, two pages.
	later := now.AddDate(1, 0, 0)
	for _, l := range []dsr.ListFilter{
		{}, {Status: dsr.StatusVerified}, {Type: dsr.TypeAccess}, {Regulation: dsr.RegulationGDPR}, {Source: "test"},
		{AssignedTo: "desk"}, {DueBefore: &later}, {DueAfter: &now}, {Overdue: true, Now: later},
		{Overdue: true, Now: later, Status: dsr.StatusVerified},
	} {
		for _, sort := range []dsr.ListSort{dsr.SortDue, dsr.SortNewest} {
			l.Sort, l.Limit = sort, 1
			_, next, err := s.ListRequests(ctx, l)
			must("list", err)
			if next != nil {
				l.After = next
				_, _, err = s.ListRequests(ctx, l)
				must("list after", err)
			}
		}
	}

	stmts := tracedStatements()
	checked := 0
	for _, q := range sortedKeys(stmts) {
		if !regexp.MustCompile(`^\s*(SELECT|UPDATE|DELETE|INSERT)\b`).MatchString(q) {
			continue
		}
		checkPlan(t, s.r, q, stmts[q])
		checked++
	}
	if checked < 40 {
		t.Errorf("%d statements recorded, want every method's (40 or more): is the tracing driver in use?", checked)
	}
	t.Logf("%d statements explained", checked)
}

// TestPlanProblems: the plan check tells a read of the whole table, or an
// unjustified sort, from an index's search.
func TestPlanProblems(t *testing.T) {
	tests := []struct {
		query string
		plan  []string
		bad   bool
	}{
		{"SELECT doc FROM requests WHERE status = ? ORDER BY due_at, id LIMIT ?", []string{"SEARCH requests USING INDEX requests_status_due_id (status=?)"}, false},
		{"SELECT doc FROM requests WHERE notes = ?", []string{"SCAN requests"}, true},
		{"SELECT doc FROM requests WHERE status = ? ORDER BY id DESC LIMIT ?", []string{"SCAN requests USING INDEX requests_due_id"}, true},
		{"SELECT doc FROM requests ORDER BY id DESC LIMIT ?", []string{"SCAN requests"}, false},
		{"SELECT doc FROM requests ORDER BY id DESC", []string{"SCAN requests"}, true},
		{"SELECT id FROM jobs WHERE request_id = ?", []string{"SEARCH jobs USING AUTOMATIC COVERING INDEX (request_id=?)"}, true},
		{"SELECT doc FROM requests WHERE type = ? ORDER BY received_at LIMIT ?", []string{"SEARCH requests USING INDEX requests_type_id (type=?)", "USE TEMP B-TREE FOR ORDER BY"}, true},
		{"SELECT doc FROM requests INDEXED BY requests_due_id WHERE due_at < ? ORDER BY id DESC LIMIT ?", []string{"SEARCH requests USING INDEX requests_due_id (due_at<?)", "USE TEMP B-TREE FOR ORDER BY"}, false},
		{"SELECT value FROM json_each(?)", []string{"SCAN json_each VIRTUAL TABLE INDEX 1:"}, false},
	}
	for _, tt := range tests {
		if got := planProblems(tt.query, tt.plan); (len(got) > 0) != tt.bad {
			t.Errorf("%s with plan %q: problems %q, want bad = %v", tt.query, tt.plan, got, tt.bad)
		}
	}
}
