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
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dsar-project/dsar/dsr"
)

// suppressionKey is the key of the cases' suppression hashes.
var suppressionKey = dsr.SuppressionKey{1, 2, 3}

// shash is the suppression hash of person n's email address.
func shash(n int) string {
	return suppressionKey.Hash(dsr.KindEmail, fmt.Sprintf("p%d@example.com", n))
}

// entry is a suppression of hash under scope, as a writer hands it to
// Suppress.
func entry(hash string, scope dsr.Scope, src dsr.ConsentSource, requestID string, at time.Time) dsr.Suppression {
	return dsr.Suppression{Hash: hash, Scope: scope, Source: src, RequestID: requestID, At: at}
}

// suppressions reads the entries of hashes, ordered by ID.
func (f fixture) suppressions(t *testing.T, hashes ...string) []dsr.Suppression {
	t.Helper()
	got, err := f.store.Suppressions(context.Background(), hashes)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b dsr.Suppression) int { return strings.Compare(a.ID, b.ID) })
	return got
}

// suppress stores entries and checks how many it created or reactivated.
func (f fixture) suppress(t *testing.T, want int, entries ...dsr.Suppression) {
	t.Helper()
	n, err := f.store.Suppress(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("Suppress of %d entries: %d created or reactivated, want %d", len(entries), n, want)
	}
}

// byID sorts entries by ID.
var byID = cmpopts.SortSlices(func(a, b dsr.Suppression) bool { return a.ID < b.ID })

// testSuppress: Suppress creates an entry new to the store, makes a lifted
// one active again (its source, request and At replaced, its lift
// cleared), leaves an active one as it is (the first suppression stands),
// and counts what it created or reactivated; an entry given twice in one
// call is one entry.
func testSuppress(t *testing.T, f fixture) {
	ctx := context.Background()
	t0 := f.clock.Now()
	at := t0.Add(-time.Hour + 250*time.Millisecond)
	h1, h2, h3 := shash(1), shash(2), shash(3)
	f.suppress(t, 3,
		entry(h1, dsr.ScopeMarketing, dsr.ConsentPortal, "req-1", at),
		entry(h1, dsr.ScopeAll, dsr.ConsentAPI, "req-2", at),
		dsr.Suppression{Hash: h2, Scope: dsr.ScopeSaleShare, Source: dsr.ConsentImport, Partner: "acme", At: at},
	)
	want := []dsr.Suppression{
		{ID: dsr.SuppressionID(h1, dsr.ScopeAll), Hash: h1, Scope: dsr.ScopeAll, Source: dsr.ConsentAPI, RequestID: "req-2", At: at, UpdatedAt: t0},
		{ID: dsr.SuppressionID(h1, dsr.ScopeMarketing), Hash: h1, Scope: dsr.ScopeMarketing, Source: dsr.ConsentPortal, RequestID: "req-1", At: at, UpdatedAt: t0},
		{ID: dsr.SuppressionID(h2, dsr.ScopeSaleShare), Hash: h2, Scope: dsr.ScopeSaleShare, Source: dsr.ConsentImport, Partner: "acme", At: at, UpdatedAt: t0},
	}
	if diff := cmp.Diff(want, f.suppressions(t, h1, h2, h3), byID); diff != "" {
		t.Fatalf("stored entries (-want +got):\n%s", diff)
	}

	// Again, later, from elsewhere: the first suppression stands.
	f.clock.Add(time.Minute)
	f.suppress(t, 0,
		entry(h1, dsr.ScopeMarketing, dsr.ConsentAgent, "req-3", f.clock.Now()),
		entry(h2, dsr.ScopeSaleShare, dsr.ConsentGPC, "req-3", f.clock.Now()),
	)
	if diff := cmp.Diff(want, f.suppressions(t, h1, h2), byID); diff != "" {
		t.Errorf("after suppressing active entries again (-want +got):\n%s", diff)
	}

	// One entry given twice in a call is stored once, the first as given.
	f.suppress(t, 1,
		entry(h3, dsr.ScopeProfiling, dsr.ConsentPortal, "req-4", at),
		entry(h3, dsr.ScopeProfiling, dsr.ConsentAgent, "req-5", at),
	)
	if got := f.suppressions(t, h3); len(got) != 1 || got[0].Scope != dsr.ScopeProfiling || !got[0].Active() {
		t.Errorf("an entry given twice: %+v", got)
	}

	// A lifted entry is made active again, as the new suppression says.
	if n, err := f.store.LiftSuppressions(ctx, []string{h1}, dsr.ScopeMarketing, "agent@shop", "opted in"); err != nil || n != 1 {
		t.Fatalf("lift: %d, %v", n, err)
	}
	f.clock.Add(time.Minute)
	again := f.clock.Now().Add(-10 * time.Second)
	f.suppress(t, 1,
		entry(h1, dsr.ScopeMarketing, dsr.ConsentGPC, "req-6", again),
		entry(h1, dsr.ScopeAll, dsr.ConsentGPC, "req-6", again), // active: left as it is
	)
	want[1] = dsr.Suppression{ID: want[1].ID, Hash: h1, Scope: dsr.ScopeMarketing, Source: dsr.ConsentGPC, RequestID: "req-6",
		At: again, UpdatedAt: f.clock.Now()}
	if diff := cmp.Diff(want[:2], f.suppressions(t, h1), byID); diff != "" {
		t.Errorf("after re-suppressing a lifted entry (-want +got):\n%s", diff)
	}

	// Nothing to do, nothing done.
	if n, err := f.store.Suppress(ctx, nil); err != nil || n != 0 {
		t.Errorf("Suppress of no entries: %d, %v", n, err)
	}

	// A malformed entry refuses the call: nothing of it is written.
	h4 := shash(4)
	for _, bad := range []dsr.Suppression{
		entry(h4, "everything", dsr.ConsentPortal, "", at),
		entry(h4, dsr.ScopeMarketing, "fax", "", at),
		entry("", dsr.ScopeMarketing, dsr.ConsentPortal, "", at),
	} {
		if n, err := f.store.Suppress(ctx, []dsr.Suppression{entry(h4, dsr.ScopeProfiling, dsr.ConsentPortal, "", at), bad}); err == nil {
			t.Errorf("Suppress of %+v: %d stored, no error", bad, n)
		}
	}
	if got := f.suppressions(t, h4); len(got) != 0 {
		t.Errorf("a refused call stored %+v", got)
	}
}

// testSuppressMany: Suppress writes more entries than one batch, and counts
// them all; again, none.
func testSuppressMany(t *testing.T, f fixture) {
	const n = 1200
	entries := make([]dsr.Suppression, n)
	for i := range entries {
		entries[i] = entry(shash(i), dsr.ScopeMarketing, dsr.ConsentImport, "", f.clock.Now())
	}
	f.suppress(t, n, entries...)
	f.suppress(t, 0, entries...)
	hashes := make([]string, 300)
	for i := range hashes {
		hashes[i] = shash(i * 4)
	}
	if got := f.suppressions(t, hashes...); len(got) != len(hashes) {
		t.Errorf("Suppressions of %d hashes suppressed: %d entries", len(hashes), len(got))
	}
}

// testConcurrentSuppress: writers suppressing the same entries at once
// (a fan-out retried while the first attempt still runs) create each
// entry once: their counts add up to the entries, and lifting and
// suppressing again at once re-activates each once.
func testConcurrentSuppress(t *testing.T, f fixture) {
	ctx := context.Background()
	const writers, n = 8, 60
	entries := make([]dsr.Suppression, n)
	hashes := make([]string, n)
	for i := range entries {
		hashes[i] = shash(i)
		entries[i] = entry(hashes[i], dsr.ScopeAll, dsr.ConsentAPI, "req-1", f.clock.Now())
	}
	race := func() int {
		var wg sync.WaitGroup
		counts := make([]int, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if counts[w], err = f.store.Suppress(ctx, entries); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		total := 0
		for _, c := range counts {
			total += c
		}
		return total
	}
	if got := race(); got != n {
		t.Errorf("%d writers created %d entries in all, want %d", writers, got, n)
	}
	if lifted, err := f.store.LiftSuppressions(ctx, hashes, dsr.ScopeAll, "admin", "court order"); err != nil || lifted != n {
		t.Fatalf("lift: %d, %v", lifted, err)
	}
	f.clock.Add(time.Second)
	if got := race(); got != n {
		t.Errorf("%d writers re-activated %d entries in all, want %d", writers, got, n)
	}
	for _, e := range f.suppressions(t, hashes...) {
		if !e.Active() || e.LiftedBy != "" || e.LiftReason != "" {
			t.Errorf("after the race: %+v", e)
		}
	}
}

// testLiftSuppressions: LiftSuppressions lifts the active entries of the
// hashes under exactly the scope given (lifting "all" lifts no other
// scope's entry), recording who, why and when, and counts what it lifted;
// lifting a lifted entry again changes nothing.
func testLiftSuppressions(t *testing.T, f fixture) {
	ctx := context.Background()
	t0 := f.clock.Now()
	h1, h2, h3, h4 := shash(1), shash(2), shash(3), shash(4)
	f.suppress(t, 4,
		entry(h1, dsr.ScopeMarketing, dsr.ConsentPortal, "req-1", t0),
		entry(h1, dsr.ScopeAll, dsr.ConsentAPI, "req-2", t0),
		entry(h2, dsr.ScopeMarketing, dsr.ConsentPortal, "req-3", t0),
		entry(h3, dsr.ScopeProfiling, dsr.ConsentPortal, "req-4", t0),
	)
	f.clock.Add(time.Minute)
	t1 := f.clock.Now()
	lift := func(hashes []string, scope dsr.Scope, want int) {
		t.Helper()
		n, err := f.store.LiftSuppressions(ctx, hashes, scope, "agent@shop", "opted in by phone")
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("lift %s of %d hashes: %d lifted, want %d", scope, len(hashes), n, want)
		}
	}
	lift([]string{h1, h2, h4}, dsr.ScopeMarketing, 2)
	f.clock.Add(time.Minute)
	lift([]string{h1, h2}, dsr.ScopeMarketing, 0) // lifted already
	lift([]string{h3}, dsr.ScopeAll, 0)           // exactly the scope: profiling stays
	lift([]string{h3}, dsr.ScopeSaleShare, 0)
	lift(nil, dsr.ScopeMarketing, 0)

	lifted := func(e dsr.Suppression) dsr.Suppression {
		e.LiftedAt, e.LiftedBy, e.LiftReason, e.UpdatedAt = &t1, "agent@shop", "opted in by phone", t1
		return e
	}
	want := []dsr.Suppression{
		{ID: dsr.SuppressionID(h1, dsr.ScopeAll), Hash: h1, Scope: dsr.ScopeAll, Source: dsr.ConsentAPI, RequestID: "req-2", At: t0, UpdatedAt: t0},
		lifted(dsr.Suppression{ID: dsr.SuppressionID(h1, dsr.ScopeMarketing), Hash: h1, Scope: dsr.ScopeMarketing, Source: dsr.ConsentPortal, RequestID: "req-1", At: t0}),
		lifted(dsr.Suppression{ID: dsr.SuppressionID(h2, dsr.ScopeMarketing), Hash: h2, Scope: dsr.ScopeMarketing, Source: dsr.ConsentPortal, RequestID: "req-3", At: t0}),
		{ID: dsr.SuppressionID(h3, dsr.ScopeProfiling), Hash: h3, Scope: dsr.ScopeProfiling, Source: dsr.ConsentPortal, RequestID: "req-4", At: t0, UpdatedAt: t0},
	}
	if diff := cmp.Diff(want, f.suppressions(t, h1, h2, h3, h4), byID); diff != "" {
		t.Errorf("entries after lifting (-want +got):\n%s", diff)
	}
	for _, e := range f.suppressions(t, h1, h2, h3) {
		if e.Active() != (e.LiftedAt == nil) {
			t.Errorf("%s: Active() = %v with LiftedAt %v", e.ID, e.Active(), e.LiftedAt)
		}
	}

	// More hashes than a batch (the drivers lift 100 at a time).
	hashes := make([]string, 150)
	entries := make([]dsr.Suppression, len(hashes))
	for i := range hashes {
		hashes[i] = shash(100 + i)
		entries[i] = entry(hashes[i], dsr.ScopeSaleShare, dsr.ConsentImport, "", t0)
	}
	f.suppress(t, len(entries), entries...)
	lift(hashes, dsr.ScopeSaleShare, len(hashes))
	lift(hashes, dsr.ScopeSaleShare, 0)
}

// testSuppressionsOfHashes: Suppressions returns every entry of the hashes
// asked for, active or lifted, and no other.
func testSuppressionsOfHashes(t *testing.T, f fixture) {
	ctx := context.Background()
	now := f.clock.Now()
	var entries []dsr.Suppression
	for i := range 10 {
		for _, s := range []dsr.Scope{dsr.ScopeMarketing, dsr.ScopeProfiling} {
			entries = append(entries, entry(shash(i), s, dsr.ConsentPortal, "", now))
		}
	}
	f.suppress(t, len(entries), entries...)
	if _, err := f.store.LiftSuppressions(ctx, []string{shash(2)}, dsr.ScopeMarketing, "subject", ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		hashes []string
		want   []string
	}{
		{nil, nil},
		{[]string{shash(99)}, nil},
		{[]string{shash(2)}, []string{dsr.SuppressionID(shash(2), dsr.ScopeMarketing), dsr.SuppressionID(shash(2), dsr.ScopeProfiling)}},
		{[]string{shash(3), shash(99), shash(5)}, []string{
			dsr.SuppressionID(shash(3), dsr.ScopeMarketing), dsr.SuppressionID(shash(3), dsr.ScopeProfiling),
			dsr.SuppressionID(shash(5), dsr.ScopeMarketing), dsr.SuppressionID(shash(5), dsr.ScopeProfiling),
		}},
		// A hash that is a prefix of stored ones' IDs, but not theirs.
		{[]string{shash(3)[:20]}, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, e := range f.suppressions(t, tt.hashes...) {
			got = append(got, e.ID)
		}
		slices.Sort(tt.want)
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Suppressions(%d hashes) (-want +got):\n%s", len(tt.hashes), diff)
		}
	}
}

// testSuppressionChanges: the change feed gives every entry changed at or
// after since, active or lifted, in UpdatedAt order then ID, each once,
// however many batches it reads; fn's error stops it and comes back.
func testSuppressionChanges(t *testing.T, f fixture) {
	ctx := context.Background()
	t0 := f.clock.Now()
	const per, rounds = 400, 3
	for r := range rounds {
		entries := make([]dsr.Suppression, per)
		for i := range entries {
			// Not in ID order, so that the store orders them.
			entries[i] = entry(shash((i*7919)%per+r*per), dsr.ScopeMarketing, dsr.ConsentImport, "", f.clock.Now())
		}
		f.suppress(t, per, entries...)
		f.clock.Add(time.Second)
	}
	// Lifting changes an entry: it moves to the feed's end.
	tLift := f.clock.Now()
	liftedHashes := []string{shash(5), shash(405), shash(805)}
	if n, err := f.store.LiftSuppressions(ctx, liftedHashes, dsr.ScopeMarketing, "subject", "opted in"); err != nil || n != 3 {
		t.Fatalf("lift: %d, %v", n, err)
	}
	feed := func(since time.Time) []dsr.Suppression {
		t.Helper()
		var got []dsr.Suppression
		err := f.store.EachSuppressionChange(ctx, since, func(e *dsr.Suppression) error {
			got = append(got, *e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		name  string
		since time.Time
		want  int
	}{
		{"since zero", time.Time{}, per * rounds},
		{"since before every change", t0.Add(-time.Hour), per * rounds},
		{"since the second round, exactly", t0.Add(time.Second), per*(rounds-1) + 1}, // and the first round's lifted entry
		{"since the lift", tLift, 3},
		{"since after", tLift.Add(time.Millisecond), 0},
	}
	for _, tt := range tests {
		got := feed(tt.since)
		if len(got) != tt.want {
			t.Errorf("%s: %d changes, want %d", tt.name, len(got), tt.want)
		}
		seen := map[string]bool{}
		for i, e := range got {
			if e.UpdatedAt.Before(tt.since) {
				t.Errorf("%s: %s updated at %s, before since", tt.name, e.ID, e.UpdatedAt)
			}
			if seen[e.ID] {
				t.Errorf("%s: %s given twice", tt.name, e.ID)
			}
			seen[e.ID] = true
			if i > 0 {
				p := got[i-1]
				if c := p.UpdatedAt.Compare(e.UpdatedAt); c > 0 || c == 0 && p.ID >= e.ID {
					t.Fatalf("%s: change %d (%s at %s) after %s at %s: want UpdatedAt then ID order",
						tt.name, i, e.ID, e.UpdatedAt, p.ID, p.UpdatedAt)
				}
			}
		}
		if tt.since.Equal(tLift) {
			for _, e := range got {
				if e.Active() || e.LiftedBy != "subject" || !slices.Contains(liftedHashes, e.Hash) {
					t.Errorf("since the lift: %+v, want a lifted entry of %v", e, liftedHashes)
				}
			}
		}
	}

	// fn's error stops the feed and comes back.
	stop := errors.New("stop")
	calls := 0
	err := f.store.EachSuppressionChange(ctx, time.Time{}, func(*dsr.Suppression) error {
		calls++
		if calls == 150 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 150 {
		t.Errorf("feed stopped by fn: %v after %d calls, want the error after 150", err, calls)
	}
}

// consentEvent is an event of kind concerning hashes.
func consentEvent(id string, kind dsr.ConsentKind, at time.Time, hashes ...string) dsr.ConsentEvent {
	return dsr.ConsentEvent{ID: id, Hashes: hashes, Kind: kind, Scopes: []dsr.Scope{dsr.ScopeMarketing, dsr.ScopeProfiling},
		Source: dsr.ConsentPortal, RequestID: "req-1", Actor: "subject", At: at}
}

// testConsentHistory: events are stored once by ID (a retried writer's
// copy is skipped), and a history is every event of any of the hashes,
// each once, oldest first (At, then ID), cut at limit.
func testConsentHistory(t *testing.T, f fixture) {
	ctx := context.Background()
	t0 := f.clock.Now()
	h1, h2, h3 := shash(1), shash(2), shash(3)
	lift := consentEvent("req-0:lifted", dsr.ConsentLifted, t0.Add(3*time.Hour), h1)
	lift.Scopes, lift.Source, lift.Actor, lift.Reason, lift.RequestID = []dsr.Scope{dsr.ScopeAll}, dsr.ConsentAdmin, "key:admin", "court order", ""
	events := []dsr.ConsentEvent{
		consentEvent("req-1:opt_out", dsr.ConsentOptOut, t0.Add(time.Hour), h1, h2),
		consentEvent("req-1:gpc", dsr.ConsentGPCSeen, t0.Add(time.Hour), h1, h2), // same At: by ID
		consentEvent("req-2:opt_in", dsr.ConsentOptIn, t0.Add(2*time.Hour), h2),
		consentEvent("req-3:opt_out", dsr.ConsentOptOut, t0, h3),
		lift,
	}
	if err := f.store.AddConsentEvents(ctx, events[:2]); err != nil {
		t.Fatal(err)
	}
	// A retry of the first two, with the rest: the first copies stand.
	retried := slices.Clone(events)
	retried[0].Actor = "worker-retry"
	if err := f.store.AddConsentEvents(ctx, retried); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AddConsentEvents(ctx, nil); err != nil {
		t.Fatalf("no events: %v", err)
	}
	tests := []struct {
		name   string
		hashes []string
		limit  int
		want   []dsr.ConsentEvent
	}{
		{"one hash", []string{h1}, 10, []dsr.ConsentEvent{events[1], events[0], events[4]}},
		{"two hashes, events of both once", []string{h1, h2}, 10, []dsr.ConsentEvent{events[1], events[0], events[2], events[4]}},
		{"limited", []string{h2, h1}, 2, []dsr.ConsentEvent{events[1], events[0]}},
		{"another person", []string{h3}, 10, []dsr.ConsentEvent{events[3]}},
		{"nobody", []string{shash(99)}, 10, nil},
		{"no hashes", nil, 10, nil},
	}
	for _, tt := range tests {
		got, err := f.store.ConsentHistory(ctx, tt.hashes, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// testRemovals: removals are stored once by ID, and read from (inclusive)
// to (exclusive) in At order, however many batches that takes; fn's error
// stops the read and comes back.
func testRemovals(t *testing.T, f fixture) {
	ctx := context.Background()
	t0 := f.clock.Now()
	const n = 250
	removals := make([]dsr.Removal, n)
	for i := range removals {
		// Stored out of At order, one a minute.
		m := (i * 101) % n
		removals[i] = dsr.Removal{ID: fmt.Sprintf("rm-%03d", m), Connector: "crm", Collection: "segments", Scope: dsr.ScopeMarketing,
			Records: int64(m + 1), Reappeared: m%3 == 0, RequestID: fmt.Sprintf("req-%d", m), At: t0.Add(time.Duration(m) * time.Minute)}
	}
	if err := f.store.AddRemovals(ctx, removals[:10]); err != nil {
		t.Fatal(err)
	}
	retried := slices.Clone(removals)
	retried[0].Records = 999
	if err := f.store.AddRemovals(ctx, retried); err != nil {
		t.Fatal(err)
	}
	if err := f.store.AddRemovals(ctx, nil); err != nil {
		t.Fatalf("no removals: %v", err)
	}
	want := slices.Clone(removals)
	slices.SortFunc(want, func(a, b dsr.Removal) int { return a.At.Compare(b.At) })
	read := func(from, to time.Time) []dsr.Removal {
		t.Helper()
		var got []dsr.Removal
		if err := f.store.EachRemoval(ctx, from, to, func(r *dsr.Removal) error { got = append(got, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		name     string
		from, to time.Time
		want     []dsr.Removal
	}{
		{"all", t0, t0.Add(n * time.Minute), want},
		{"a window: from in, to out", t0.Add(10 * time.Minute), t0.Add(20 * time.Minute), want[10:20]},
		{"empty window", t0.Add(time.Minute), t0.Add(time.Minute), nil},
		{"before", t0.Add(-time.Hour), t0, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, read(tt.from, tt.to), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := f.store.EachRemoval(ctx, t0, t0.Add(n*time.Minute), func(*dsr.Removal) error {
		if calls++; calls == 120 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 120 {
		t.Errorf("read stopped by fn: %v after %d calls", err, calls)
	}
}
