package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// missingID is a well-formed request id no case stores.
const missingID = "01a20d27-0000-7000-8000-00000000dead"

// testRequestNotFound: a request or job that does not exist is
// dsr.ErrNotFound wherever it is named, in a store that holds others.
func testRequestNotFound(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	if err := f.store.CreateJobs(ctx, []dsr.Job{dsr.NewJob(r.ID, "shop", dsr.ActionExport, f.clock.Now())}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
	}{
		{"Request", func() error { _, err := f.store.Request(ctx, missingID); return err }},
		{"Transition", func() error {
			_, err := f.store.Transition(ctx, missingID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"})
			return err
		}},
		{"Assign", func() error { _, err := f.store.Assign(ctx, missingID, "desk"); return err }},
		{"AddNotice", func() error { return f.store.AddNotice(ctx, missingID, dsr.NoticeMerged) }},
		{"AddStatusToken", func() error { return f.store.AddStatusToken(ctx, missingID, dsr.HashToken("x")) }},
		{"IssueVerification", func() error {
			return f.store.IssueVerification(ctx, missingID, "c", "t", f.clock.Now().Add(time.Hour))
		}},
		{"Job", func() error { _, err := f.store.Job(ctx, missingID+":shop:export"); return err }},
		{"ClaimJob", func() error { _, err := f.store.ClaimJob(ctx, missingID+":shop:export", time.Minute); return err }},
	}
	for _, tt := range tests {
		if err := tt.do(); !errors.Is(err, dsr.ErrNotFound) {
			t.Errorf("%s of a missing id: err = %v, want ErrNotFound", tt.name, err)
		}
	}
	// The stored one is untouched.
	if got, err := f.store.Request(ctx, r.ID); err != nil || got.Status != dsr.StatusVerified || got.AssignedTo != "" {
		t.Errorf("the stored request: %+v, %v", got, err)
	}
}

// testRoundTripEveryField stores a request with every field set and reads
// it back as stored: times at millisecond precision, in UTC. Storing it
// copies its whole history into the audit chain.
func testRoundTripEveryField(t *testing.T, f fixture) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return start.Add(123*time.Millisecond + d) }
	ptrAt := func(d time.Duration) *time.Time { x := at(d); return &x }
	r := &dsr.Request{
		ID: "01a20d27-0000-7000-8000-0000000000f1", Type: dsr.TypeDeletion, Regulation: dsr.RegulationCCPA, Status: dsr.StatusDenied,
		Source: "agent_api", FiledBy: "key:desk",
		Identities: []dsr.Identity{
			{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject},
			{Kind: dsr.KindPhone, Value: "+442071838750", Source: "crm/customers"},
		},
		IdentityHashes: []string{f.index.Hash(dsr.KindEmail, "ada@example.com"), f.index.Hash(dsr.KindPhone, "+442071838750")},
		ProvenHashes:   []string{f.index.Hash(dsr.KindEmail, "ada@example.com")},
		ReceivedAt:     at(0), DueAt: at(45 * 24 * time.Hour), UpdatedAt: at(3 * time.Hour),
		ResolveBoundReached: 3, FannedOutAt: ptrAt(time.Hour), FanoutFailures: 2, FanoutError: "connector shop: timeout",
		ClosedAt: ptrAt(3 * time.Hour), DenialBasis: dsr.DeniedExempt,
		History: []dsr.Transition{
			{To: dsr.StatusVerifying, At: at(0), Actor: "key:desk"},
			{From: dsr.StatusVerifying, To: dsr.StatusVerified, At: at(time.Minute), Actor: "portal", Reason: "code confirmed"},
			{From: dsr.StatusVerified, To: dsr.StatusDenied, At: at(3 * time.Hour), Actor: "agent@shop", Reason: "exempt"},
		},
		Notify: true, PendingNotices: []string{dsr.NoticeReceipt, dsr.NoticeMerged}, StatusTokens: []string{dsr.HashToken("a"), dsr.HashToken("b")},
		Verification: &dsr.Verification{Round: 2, CodeHash: "code-hash", TokenHash: "token-hash", ExpiresAt: at(2 * time.Hour), SentAt: at(time.Hour), Tries: 4},
		GPC:          true, Agent: &dsr.Agent{Name: "Agency", Email: "agent@agency.example", SignedPermission: true},
		LinkedTo: "01a20d27-0000-7000-8000-0000000000f2", PurgedAt: ptrAt(24 * time.Hour),
		Channel: "phone", Note: "called twice", VerificationMethod: "email_code",
		DuplicateOf: "01a20d27-0000-7000-8000-0000000000f3", UnlinkTo: dsr.StatusVerified,
		AssignedTo: "desk", ApprovedBy: "lead",
		Extension:    &dsr.Extension{By: "agent@shop", At: at(2 * time.Hour), Reason: "archives", From: at(30 * 24 * time.Hour)},
		Exceptions:   []dsr.Exception{{Connector: "billing", Collection: "invoices", Basis: "tax law"}, {Connector: "crm", Basis: "legal claim"}},
		ReceiptDueAt: ptrAt(10 * 24 * time.Hour), Reminded: []int{7, 2}, OverdueAt: ptrAt(46 * 24 * time.Hour),
		ExportsPurgedAt: ptrAt(50 * 24 * time.Hour), PausedAt: ptrAt(4 * time.Hour),
		Pauses: []dsr.Pause{
			{By: "agent@shop", At: at(time.Minute), Reason: "asked for a bill", ResumedAt: ptrAt(2 * time.Minute)},
			{By: "agent@shop", At: at(4 * time.Hour), Reason: "asked again"},
		},
		AppealOf: "01a20d27-0000-7000-8000-0000000000f4", AppealedBy: "01a20d27-0000-7000-8000-0000000000f5",
		HookHold:    &dsr.HookHold{At: at(time.Minute), Until: at(time.Hour), ResumedAt: ptrAt(30 * time.Minute), ResumeID: "msg_1"},
		OutcomeHook: true,
	}
	want := *r
	if err := f.store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want.Audited, want.AuditDue = len(want.History), false
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Fatalf("read back (-stored +read):\n%s", diff)
	}
	times := []time.Time{got.ReceivedAt, got.DueAt, got.UpdatedAt, got.Verification.ExpiresAt, got.Verification.SentAt,
		got.Extension.At, got.Extension.From, got.Pauses[0].At}
	for _, p := range []*time.Time{got.FannedOutAt, got.ClosedAt, got.PurgedAt, got.ReceiptDueAt, got.OverdueAt, got.ExportsPurgedAt, got.PausedAt, got.Pauses[0].ResumedAt} {
		if p != nil {
			times = append(times, *p)
		}
	}
	for _, h := range got.History {
		times = append(times, h.At)
	}
	for i, x := range times {
		if x.Location() != time.UTC || x.Nanosecond()%int(time.Millisecond) != 0 || x.Nanosecond() == 0 {
			t.Errorf("time %d read back as %s: want UTC, to the millisecond", i, x.Format(time.RFC3339Nano+" MST"))
		}
	}
	if trail := f.trail(t, r.ID); len(trail) != 3 || !dsr.VerifyChain(trail).OK {
		t.Errorf("audit chain of the stored history: %+v", trail)
	}

	// A time finer than a millisecond is kept to the millisecond.
	fine := f.requestValue(t, dsr.TypeAccess, "grace@example.com")
	fine.UpdatedAt = start.Add(123456789 * time.Nanosecond)
	if err := f.store.CreateRequest(ctx, fine); err != nil {
		t.Fatal(err)
	}
	if got, err := f.store.Request(ctx, fine.ID); err != nil || !got.UpdatedAt.Equal(start.Add(123*time.Millisecond)) {
		t.Errorf("a time in nanoseconds read back as %v (%v), want %s", got.UpdatedAt, err, start.Add(123*time.Millisecond))
	}
}

// testConcurrentTransitions races 16 actors to move one request from the
// same status, round after round: in each exactly one wins, the others get
// dsr.ErrConflict, and the audit chain holds every winning move once.
func testConcurrentTransitions(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	const actors = 16
	path := []dsr.Status{dsr.StatusVerified, dsr.StatusInProgress, dsr.StatusNeedsAttention, dsr.StatusInProgress, dsr.StatusCompleted}
	for i := 1; i < len(path); i++ {
		from, to := path[i-1], path[i]
		var wg sync.WaitGroup
		startLine := make(chan struct{})
		errs := make([]error, actors)
		for a := range actors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startLine
				_, errs[a] = f.store.Transition(ctx, r.ID, from, to, dsr.Change{Actor: fmt.Sprint("actor", a)})
			}()
		}
		close(startLine)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, dsr.ErrConflict):
				t.Errorf("%s -> %s: a loser got %v, want ErrConflict", from, to, err)
			}
		}
		if won != 1 {
			t.Fatalf("%s -> %s: %d actors moved the request, want exactly 1", from, to, won)
		}
	}
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dsr.StatusCompleted || len(got.History) != len(path) || got.Audited != len(path) || got.AuditDue {
		t.Errorf("after the races: status %s, %d history entries, audited %d (due %v); want completed, %d, %d",
			got.Status, len(got.History), got.Audited, got.AuditDue, len(path), len(path))
	}
	for i, h := range got.History[1:] {
		if h.From != path[i] || h.To != path[i+1] {
			t.Errorf("history %d: %s -> %s, want %s -> %s", i+1, h.From, h.To, path[i], path[i+1])
		}
	}
	trail := f.trail(t, r.ID)
	if c := dsr.VerifyChain(trail); !c.OK || c.Events != len(path) {
		t.Errorf("audit chain after the races: %+v, want %d events verified", c, len(path))
	}
	for i, e := range trail {
		if e.Seq != i+1 {
			t.Errorf("event %d has seq %d", i, e.Seq)
		}
	}
}

// testConcurrentClaims races 16 workers to claim one job: exactly one gets
// it, the others get dsr.ErrConflict.
func testConcurrentClaims(t *testing.T, f fixture) {
	ctx := context.Background()
	r := f.inProgress(t, dsr.TypeAccess, "ada@example.com")
	job := dsr.NewJob(r.ID, "shop", dsr.ActionExport, f.clock.Now())
	if err := f.store.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		t.Fatal(err)
	}
	const workers = 16
	var wg sync.WaitGroup
	startLine := make(chan struct{})
	claims := make([]*dsr.Job, workers)
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			claims[w], errs[w] = f.store.ClaimJob(ctx, job.ID, time.Minute)
		}()
	}
	close(startLine)
	wg.Wait()
	var won *dsr.Job
	for w, err := range errs {
		switch {
		case err == nil:
			if won != nil {
				t.Errorf("worker %d claimed the job too", w)
			}
			won = claims[w]
		case !errors.Is(err, dsr.ErrConflict):
			t.Errorf("worker %d: %v, want ErrConflict", w, err)
		}
	}
	if won == nil {
		t.Fatal("no worker claimed the job")
	}
	got, err := f.store.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dsr.JobRunning || got.Attempts != 1 || won.Attempts != 1 {
		t.Errorf("after the race: status %s, %d attempts (claim says %d); want running, 1", got.Status, got.Attempts, won.Attempts)
	}
	if err := f.store.FinishJob(ctx, won, dsr.Outcome{Status: dsr.JobSucceeded}); err != nil {
		t.Errorf("the winner finishing: %v", err)
	}
}

// testConcurrentAppends races 10 appenders (the most the store promises to
// serve without a lost race) for the next events of one chain: every append
// succeeds, once, and the chain verifies with seqs 1..n.
func testConcurrentAppends(t *testing.T, f fixture) {
	ctx := context.Background()
	req := chainID(1)
	const appenders = 10
	var wg sync.WaitGroup
	startLine := make(chan struct{})
	errs := make([]error, appenders)
	for a := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startLine
			_, errs[a] = f.store.AppendAudit(ctx, req, fmt.Sprint("w", a), "job", map[string]string{"n": fmt.Sprint(a)})
		}()
	}
	close(startLine)
	wg.Wait()
	for a, err := range errs {
		if err != nil {
			t.Errorf("appender %d: %v", a, err)
		}
	}
	events := f.trail(t, req)
	if c := dsr.VerifyChain(events); !c.OK || c.Events != appenders {
		t.Fatalf("after concurrent appends: %+v, want %d events verified", c, appenders)
	}
	var actors []string
	for i, e := range events {
		if e.Seq != i+1 {
			t.Errorf("event %d has seq %d", i, e.Seq)
		}
		actors = append(actors, e.Actor)
	}
	slices.Sort(actors)
	if got := slices.Compact(slices.Clone(actors)); len(got) != appenders {
		t.Errorf("appended by %v: want each of %d appenders once", actors, appenders)
	}
}

// testListRequestsPaging pages through 250 requests, a page of 9 at a time,
// in both orders and under filters: every request the filter selects comes
// once, none is missing, in the order of the sort. Many share a due date,
// so the pages also split runs of equal due dates.
func testListRequestsPaging(t *testing.T, f fixture) {
	ctx := context.Background()
	const n = 250
	types := []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion, dsr.TypeOptOut}
	regs := []dsr.Regulation{dsr.RegulationGDPR, dsr.RegulationCCPA, dsr.RegulationLGPD}
	var all []*dsr.Request
	var batch []*dsr.Request
	for i := range n {
		if i%50 == 0 && i > 0 {
			f.clock.Add(36 * time.Hour) // five filing days, each with many requests due at once
		}
		r := f.requestValue(t, types[i%3], fmt.Sprintf("p%d@example.com", i))
		r.Regulation = regs[(i/3)%3]
		r.DueAt = dsr.DueAt(r.Regulation, r.Type, r.ReceivedAt)
		if i%5 == 0 {
			r.Source = "portal"
		}
		batch = append(batch, r)
		all = append(all, r)
		if len(batch) == 50 {
			for j, err := range f.store.CreateRequests(ctx, batch) {
				if err != nil {
					t.Fatalf("request %d: %v", j, err)
				}
			}
			batch = nil
		}
	}
	for i, r := range all {
		if i%4 == 0 {
			if _, err := f.store.Assign(ctx, r.ID, "desk"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// splits counts the page ends inside a run of equal due dates.
	splits := 0
	collect := func(filter dsr.ListFilter) []string {
		t.Helper()
		var out []string
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatalf("%+v: more than %d pages", filter, n)
			}
			page, next, err := f.store.ListRequests(ctx, filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > filter.Limit || (next != nil && len(page) != filter.Limit) {
				t.Fatalf("page of %d (limit %d), next %v", len(page), filter.Limit, next)
			}
			if after := filter.After; filter.Sort != dsr.SortNewest && after != nil && len(page) > 0 && page[0].DueAt.Equal(after.Due) {
				splits++
			}
			for _, r := range page {
				out = append(out, r.ID)
			}
			if next == nil {
				return out
			}
			if last := page[len(page)-1]; next.ID != last.ID || !next.Due.Equal(last.DueAt) {
				t.Fatalf("cursor %+v is not the page's last request %s due %s", next, last.ID, last.DueAt)
			}
			filter.After = next
		}
	}
	byDue := func(a, b *dsr.Request) int {
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}
	newest := func(a, b *dsr.Request) int { return strings.Compare(b.ID, a.ID) }
	mid := start.AddDate(0, 0, 20)
	tests := []struct {
		name   string
		filter dsr.ListFilter
		keep   func(*dsr.Request) bool
	}{
		{"everything", dsr.ListFilter{}, func(*dsr.Request) bool { return true }},
		{"by type", dsr.ListFilter{Type: dsr.TypeDeletion}, func(r *dsr.Request) bool { return r.Type == dsr.TypeDeletion }},
		{"by regulation", dsr.ListFilter{Regulation: dsr.RegulationCCPA}, func(r *dsr.Request) bool { return r.Regulation == dsr.RegulationCCPA }},
		{"by source", dsr.ListFilter{Source: "portal"}, func(r *dsr.Request) bool { return r.Source == "portal" }},
		{"by assignee", dsr.ListFilter{AssignedTo: "desk"}, func(r *dsr.Request) bool { return r.AssignedTo == "desk" }},
		{"by status and type", dsr.ListFilter{Status: dsr.StatusVerified, Type: dsr.TypeAccess}, func(r *dsr.Request) bool { return r.Type == dsr.TypeAccess }},
		{"due after", dsr.ListFilter{DueAfter: &mid}, func(r *dsr.Request) bool { return !r.DueAt.Before(mid) }},
		{"overdue", dsr.ListFilter{Overdue: true, Now: mid}, func(r *dsr.Request) bool { return r.DueAt.Before(mid) }},
	}
	for i, r := range all {
		if i%4 == 0 {
			r.AssignedTo = "desk"
		}
	}
	for _, tt := range tests {
		for _, sort := range []dsr.ListSort{dsr.SortDue, dsr.SortNewest} {
			var want []*dsr.Request
			for _, r := range all {
				if tt.keep(r) {
					want = append(want, r)
				}
			}
			if sort == dsr.SortNewest {
				slices.SortFunc(want, newest)
			} else {
				slices.SortFunc(want, byDue)
			}
			var wantIDs []string
			for _, r := range want {
				wantIDs = append(wantIDs, r.ID)
			}
			if len(wantIDs) == 0 || (tt.name != "everything" && len(wantIDs) == n) {
				t.Fatalf("%s: the seed selects %d of %d: the case checks nothing", tt.name, len(wantIDs), n)
			}
			filter := tt.filter
			filter.Sort, filter.Limit = sort, 9
			got := collect(filter)
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Errorf("%s, %s: %s listed twice", tt.name, sort, id)
				}
				seen[id] = true
			}
			if diff := cmp.Diff(wantIDs, got); diff != "" {
				t.Errorf("%s, %s: %d listed, want %d (-want +got):\n%s", tt.name, sort, len(got), len(wantIDs), diff)
			}
		}
	}
	if splits == 0 {
		t.Error("no page ended inside a run of equal due dates: the cursor's tie-break went unchecked")
	}
}

// testCreateRequestsConflictInBatch files a batch that holds one id twice:
// the first is stored with its audit chain started, the second is refused
// with dsr.ErrConflict and leaves nothing behind; the rest are stored.
func testCreateRequestsConflictInBatch(t *testing.T, f fixture) {
	ctx := context.Background()
	first := f.requestValue(t, dsr.TypeAccess, "ada@example.com")
	other := f.requestValue(t, dsr.TypeAccess, "grace@example.com")
	again := f.requestValue(t, dsr.TypeDeletion, "alan@example.com")
	again.ID = first.ID
	errs := f.store.CreateRequests(ctx, []*dsr.Request{first, other, again})
	if len(errs) != 3 || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], dsr.ErrConflict) {
		t.Fatalf("errors: %v; want nil, nil, ErrConflict", errs)
	}
	got, err := f.store.Request(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != dsr.TypeAccess || got.IdentityHashes[0] != f.index.Hash(dsr.KindEmail, "ada@example.com") {
		t.Errorf("stored under the id: a %s request for %v; want the first of the batch", got.Type, got.IdentityHashes)
	}
	for _, r := range []*dsr.Request{first, other} {
		trail := f.trail(t, r.ID)
		if c := dsr.VerifyChain(trail); !c.OK || c.Events != 1 || trail[0].Kind != "filed" {
			t.Errorf("%s: chain %+v (%+v), want its one filed event", r.ID, c, trail)
		}
		if got, err := f.store.Request(ctx, r.ID); err != nil || got.Audited != 1 || got.AuditDue {
			t.Errorf("%s: audited %d, due %v (%v); want caught up", r.ID, got.Audited, got.AuditDue, err)
		}
	}
	page, _, err := f.store.ListRequests(ctx, dsr.ListFilter{Limit: 10})
	if err != nil || len(page) != 2 {
		t.Errorf("listed %d requests (%v), want 2", len(page), err)
	}
}
