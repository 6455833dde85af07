package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// seedSuppressions fills s with n suppression entries (every tenth lifted),
// a consent event per entry and a removal per entry, and returns their
// hashes.
func seedSuppressions(t *testing.T, s *Store, now time.Time, n int) []string {
	t.Helper()
	ctx := context.Background()
	key := dsr.SuppressionKey{9}
	hashes := make([]string, n)
	entries := make([]dsr.Suppression, n)
	events := make([]dsr.ConsentEvent, n)
	removals := make([]dsr.Removal, n)
	for i := range n {
		hashes[i] = key.Hash(dsr.KindEmail, fmt.Sprintf("p%d@example.com", i))
	}
	for i := range n {
		entries[i] = dsr.Suppression{Hash: hashes[i], Scope: dsr.ScopeMarketing, Source: dsr.ConsentImport, Partner: "acme", At: now}
		events[i] = dsr.ConsentEvent{ID: fmt.Sprintf("req-%d:opt_out", i), Hashes: []string{hashes[i], hashes[(i+1)%n]}, Kind: dsr.ConsentOptOut,
			Scopes: []dsr.Scope{dsr.ScopeMarketing}, Source: dsr.ConsentPortal, RequestID: fmt.Sprintf("req-%d", i), Actor: "subject",
			At: now.Add(time.Duration(i) * time.Second)}
		removals[i] = dsr.Removal{ID: fmt.Sprintf("rm-%d", i), Connector: "crm", Collection: "segments", Scope: dsr.ScopeMarketing,
			Records: int64(i), At: now.Add(time.Duration(i) * time.Second)}
	}
	if got, err := s.Suppress(ctx, entries); err != nil || got != n {
		t.Fatalf("suppress: %d, %v", got, err)
	}
	var lift []string
	for i := 0; i < n; i += 10 {
		lift = append(lift, hashes[i])
	}
	if _, err := s.LiftSuppressions(ctx, lift, dsr.ScopeMarketing, "subject", "opted in"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddConsentEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRemovals(ctx, removals); err != nil {
		t.Fatal(err)
	}
	return hashes
}

// keyset matches a query that reads a page after a key (col, id).
var keyset = regexp.MustCompile(`\((\w+), id\) > \(\?, \?\)`)

// TestSuppressionQueriesUseIndexes runs every method of the suppression
// list, the consent history and the removals, and the copy's reads and
// writes of their collections, on a populated store through the tracing
// driver, and checks the plan of every statement.
func TestSuppressionQueriesUseIndexes(t *testing.T) {
	f := newFixture(t, tracedDriver)
	ctx := context.Background()
	s := f.store
	now := f.clock.Now()
	hashes := seedSuppressions(t, s, now, 1200)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := s.Suppress(ctx, []dsr.Suppression{{Hash: hashes[0], Scope: dsr.ScopeMarketing, Source: dsr.ConsentGPC, At: now}})
	must("suppress", err)
	_, err = s.Suppressions(ctx, hashes[:300])
	must("suppressions", err)
	must("changes", s.EachSuppressionChange(ctx, time.Time{}, func(*dsr.Suppression) error { return nil }))
	must("changes since", s.EachSuppressionChange(ctx, now, func(*dsr.Suppression) error { return nil }))
	_, err = s.ConsentHistory(ctx, hashes[:3], 100)
	must("history", err)
	must("removals", s.EachRemoval(ctx, now, now.Add(time.Hour), func(*dsr.Removal) error { return nil }))

	// The copy: every new collection read and written.
	for _, coll := range []string{store.SuppressionList, store.ConsentEvents, store.Removals} {
		_, err := s.Count(ctx, coll)
		must("count", err)
		_, err = s.LastKey(ctx, coll)
		must("last key", err)
		var docs []bson.Raw
		must("each document", s.EachDocument(ctx, coll, "", func(_ string, doc bson.Raw) error {
			docs = append(docs, doc)
			return nil
		}))
		_, err = s.PutDocuments(ctx, coll, docs[:5]) // stored already: skipped
		must("put documents", err)
	}

	stmts := tracedStatements()
	checked := 0
	for _, q := range sortedKeys(stmts) {
		if !regexp.MustCompile(`(?i)\b(suppressions|consent_events|consent_hashes|segment_removals)\b`).MatchString(q) ||
			!regexp.MustCompile(`^\s*(SELECT|UPDATE|DELETE|INSERT)\b`).MatchString(q) || strings.Contains(q, "count(*)") {
			continue // a count reads the smallest index whole, as it must
		}
		checkPlan(t, s.r, q, stmts[q])
		// A page read by key seeks to the key: the row value bounds the
		// index's range (else each page walks the range from its start).
		if m := keyset.FindStringSubmatch(q); m != nil {
			plan, err := explain(ctx, s.r, q, stmts[q])
			if err != nil || !strings.Contains(strings.Join(plan, " "), "(("+m[1]+",id)>(?,?)") {
				t.Errorf("%s\n  seeks no key: plan %q, %v", oneLine(q), plan, err)
			}
		}
		checked++
	}
	if checked < 12 {
		t.Errorf("%d statements recorded, want every method's (12 or more): is the tracing driver in use?", checked)
	}
	t.Logf("%d statements explained", checked)
}

// TestCopySuppressions copies the suppression list, the consent history
// and the removals from one store to another as `dsar migrate` does, and
// reads them back the same; a second copy stores nothing.
func TestCopySuppressions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	src, dst := openWith(t, Options{Now: func() time.Time { return now }}), openTest(t)
	hashes := seedSuppressions(t, src, now, 600) // more than one batch of the copy
	for _, coll := range []string{store.SuppressionList, store.ConsentEvents, store.Removals} {
		for round, want := range []int{600, 0} {
			var docs []bson.Raw
			err := src.EachDocument(ctx, coll, "", func(_ string, doc bson.Raw) error {
				docs = append(docs, slices.Clone(doc))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			n, err := dst.PutDocuments(ctx, coll, docs)
			if err != nil || n != want {
				t.Errorf("%s, copy %d: %d stored, %v; want %d", coll, round+1, n, err, want)
			}
		}
		for _, s := range []*Store{src, dst} {
			if last, err := s.LastKey(ctx, coll); err != nil || last == "" {
				t.Errorf("%s: last key %q, %v", coll, last, err)
			}
		}
	}
	sorted := func(s *Store) []dsr.Suppression {
		got, err := s.Suppressions(ctx, hashes)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b dsr.Suppression) int { return strings.Compare(a.ID, b.ID) })
		return got
	}
	if diff := cmp.Diff(sorted(src), sorted(dst)); diff != "" {
		t.Errorf("suppressions (-source +copy):\n%s", diff)
	}
	history := func(s *Store) []dsr.ConsentEvent {
		got, err := s.ConsentHistory(ctx, hashes[5:7], 10)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if h := history(dst); len(h) != 3 {
		t.Errorf("history of two hashes on the copy: %d events, want 3", len(h))
	}
	if diff := cmp.Diff(history(src), history(dst)); diff != "" {
		t.Errorf("consent history (-source +copy):\n%s", diff)
	}
	removals := func(s *Store) []dsr.Removal {
		var got []dsr.Removal
		if err := s.EachRemoval(ctx, now, now.Add(time.Hour), func(r *dsr.Removal) error { got = append(got, *r); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if diff := cmp.Diff(removals(src), removals(dst)); diff != "" {
		t.Errorf("removals (-source +copy):\n%s", diff)
	}
}

// TestCopyFromAFileWithoutSuppressions: a file last written before the
// suppression list existed, opened read-only as a copy's source, holds
// its collections empty.
func TestCopyFromAFileWithoutSuppressions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"suppressions", "consent_events", "consent_hashes", "segment_removals"} {
		if _, err := db.Exec(`DROP TABLE ` + table); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	old, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Close() })
	for _, coll := range []string{store.SuppressionList, store.ConsentEvents, store.Removals} {
		n, err := old.Count(ctx, coll)
		if err != nil || n != 0 {
			t.Errorf("%s: count %d, %v", coll, n, err)
		}
		if last, err := old.LastKey(ctx, coll); err != nil || last != "" {
			t.Errorf("%s: last key %q, %v", coll, last, err)
		}
		if has, err := old.HasKey(ctx, coll, "x"); err != nil || has {
			t.Errorf("%s: has a key: %v, %v", coll, has, err)
		}
		err = old.EachDocument(ctx, coll, "", func(string, bson.Raw) error { return fmt.Errorf("a document") })
		if err != nil {
			t.Errorf("%s: each document: %v", coll, err)
		}
	}
}

// BenchmarkSuppress measures Suppress of new entries, 500 a call (one
// write transaction): ns/op is per entry.
func BenchmarkSuppress(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "dsar.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	key := dsr.SuppressionKey{7}
	now := time.Now()
	entries := make([]dsr.Suppression, 0, 500)
	b.ResetTimer()
	for i := range b.N {
		entries = append(entries, dsr.Suppression{Hash: key.Hash(dsr.KindEmail, fmt.Sprint(i)), Scope: dsr.ScopeMarketing, Source: dsr.ConsentImport, At: now})
		if len(entries) == cap(entries) || i == b.N-1 {
			if _, err := s.Suppress(context.Background(), entries); err != nil {
				b.Fatal(err)
			}
			entries = entries[:0]
		}
	}
}

// BenchmarkSuppressionFeed measures reading the whole change feed, as a
// checker does at start-up and at each full reload: ns/op is per entry.
func BenchmarkSuppressionFeed(b *testing.B) {
	const n = 100_000
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "dsar.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	key := dsr.SuppressionKey{7}
	entries := make([]dsr.Suppression, n)
	for i := range entries {
		entries[i] = dsr.Suppression{Hash: key.Hash(dsr.KindEmail, fmt.Sprint(i)), Scope: dsr.ScopeMarketing, Source: dsr.ConsentImport, At: time.Now()}
	}
	if _, err := s.Suppress(context.Background(), entries); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	read := 0
	for b.Loop() {
		if err := s.EachSuppressionChange(context.Background(), time.Time{}, func(*dsr.Suppression) error { read++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(read), "ns/entry")
}
