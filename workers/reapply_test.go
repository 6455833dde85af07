package workers_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/workers"
)

// setupReapply is setup with a second connector, lists, on the shop's
// database: segment documents with member arrays (segments) and a
// subscriber document per person (subscribers), each opted out of, and
// serving marketing only (its data_map scopes). Ada and Grace are in the
// newsletter segment and subscribed. It returns a processor that
// re-applies (with the suppression set over the store) and the set.
func setupReapply(t *testing.T, every time.Duration, extra ...connectors.Connector) (*env, *workers.Processor) {
	t.Helper()
	e := setup(t, 3)
	ctx := t.Context()
	lists, err := mongodb.New(ctx, "lists", mongodb.Spec{Database: e.shop.Name(), Collections: []mongodb.CollectionSpec{
		{Name: "segments", Match: map[string]string{"members": "email"},
			Erase: &mongodb.Strategy{Kind: mongodb.StrategyPull, Field: "members"}, OptOut: &mongodb.Strategy{Kind: mongodb.StrategyPull, Field: "members"}},
		{Name: "subscribers", Match: map[string]string{"email": "email"},
			Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete}, OptOut: &mongodb.Strategy{Kind: mongodb.StrategySet, Set: map[string]any{"subscribed": false}}},
	}}, e.shop.Client())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append([]connectors.Connector{lists}, extra...) {
		if err := e.reg.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.reg.SetDataMap("lists", connectors.DataMap{Scopes: []connectors.Scope{connectors.ScopeMarketing}}); err != nil {
		t.Fatal(err)
	}
	insertDocs(t, e, "segments", bson.D{{Key: "_id", Value: "newsletter"}, {Key: "members", Value: bson.A{"ada@example.com", "grace@example.com"}}})
	insertDocs(t, e, "subscribers",
		bson.D{{Key: "email", Value: "ada@example.com"}, {Key: "subscribed", Value: true}},
		bson.D{{Key: "email", Value: "grace@example.com"}, {Key: "subscribed", Value: true}})
	set := suppression.NewSet(e.store, e.index.SuppressionKey())
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	proc := workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index, Suppressions: set, Log: log},
		workers.Options{MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, ReapplyEvery: every, Now: e.clock.Now})
	e.proc = proc
	return e, proc
}

func insertDocs(t *testing.T, e *env, coll string, docs ...any) {
	t.Helper()
	if _, err := e.shop.Collection(coll).InsertMany(t.Context(), docs); err != nil {
		t.Fatal(err)
	}
}

// suppress stores active entries of emails under scope.
func suppress(t *testing.T, e *env, scope dsr.Scope, emails ...string) {
	t.Helper()
	key := e.index.SuppressionKey()
	var entries []dsr.Suppression
	for _, m := range emails {
		entries = append(entries, dsr.Suppression{Hash: key.Hash(dsr.KindEmail, m), Scope: scope, Source: dsr.ConsentAPI, At: e.clock.Now()})
	}
	if _, err := e.store.Suppress(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
}

// report is the segmentation report of the last day.
func report(t *testing.T, e *env) *app.SegmentReport {
	t.Helper()
	now := e.clock.Now()
	rep, err := app.BuildSegmentReport(t.Context(), e.store, now.Add(-24*time.Hour), now.Add(time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestReapplyEndToEnd: Ada opts out (her opt-out job removes her from the
// segment and the subscribers, two removals under marketing, the one
// scope the connector serves); a sync puts her back in the newsletter
// segment; the re-application removes her again, and the report counts
// one re-appearance. Grace, never suppressed, stays; a second run finds
// nothing to do.
func TestReapplyEndToEnd(t *testing.T) {
	t.Parallel()
	e, proc := setupReapply(t, 0)
	ctx := t.Context()
	e.startWorkers()
	r := e.file(dsr.TypeOptOut, "ada@example.com")
	if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.ID, dsr.StatusCompleted)
	if n := e.count("segments", bson.D{{Key: "members", Value: "ada@example.com"}}); n != 0 {
		t.Fatalf("Ada still in %d segments after her opt-out", n)
	}
	rep := report(t, e)
	want := []app.SegmentRow{
		{Connector: "lists", Collection: "segments", Scope: dsr.ScopeMarketing, Removed: 1, Records: 1},
		{Connector: "lists", Collection: "subscribers", Scope: dsr.ScopeMarketing, Removed: 1, Records: 1},
	}
	if diff := cmp.Diff(want, rep.Rows); diff != "" {
		t.Errorf("removals of the opt-out (-want +got):\n%s", diff)
	}
	// A sync puts her back, in another case.
	if _, err := e.shop.Collection("segments").UpdateByID(ctx, "newsletter", bson.D{{Key: "$push", Value: bson.D{{Key: "members", Value: "Ada@Example.com"}}}}); err != nil {
		t.Fatal(err)
	}
	n, err := proc.Reapply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Removed != 1 || n.Records != 1 || n.Failed != 0 || n.Connectors != 1 || n.Members != 3 {
		t.Errorf("re-application: %+v; want 1 removed (1 record) of 3 members listed, 1 connector", n)
	}
	if got := e.count("segments", bson.D{{Key: "members", Value: "Ada@Example.com"}}); got != 0 {
		t.Errorf("Ada back in the segment after the re-application")
	}
	if got := e.count("segments", bson.D{{Key: "members", Value: "grace@example.com"}}); got != 1 {
		t.Errorf("Grace taken out of the segment")
	}
	rep = report(t, e)
	want[0].Reappeared, want[0].Records = 1, 2
	if diff := cmp.Diff(want, rep.Rows); diff != "" {
		t.Errorf("report after the re-application (-want +got):\n%s", diff)
	}
	if rep.Total.Reappeared != 1 {
		t.Errorf("re-appearances: %d, want 1", rep.Total.Reappeared)
	}

	n, err = proc.Reapply(ctx)
	if err != nil || n.Removed != 0 || n.Suppressed != 0 {
		t.Errorf("second run: %+v, %v; want nothing removed", n, err)
	}
	if strings.Contains(e.logs.String(), "Example.com") {
		t.Errorf("logs name Ada:\n%s", e.logs)
	}
}

// TestReapplyScopes: a member suppressed under all (a deletion) is
// removed and the removal put down to all; one suppressed under a scope
// the connector does not serve (profiling) stays. A connector that fails
// is reported, and the others are re-applied all the same. Runs queued
// within half an interval of the last do nothing.
func TestReapplyScopes(t *testing.T) {
	t.Parallel()
	down, err := mongodb.New(t.Context(), "down", mongodb.Spec{URI: "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
		Database: "x", Collections: []mongodb.CollectionSpec{{Name: "segments", Match: map[string]string{"members": "email"},
			Erase: &mongodb.Strategy{Kind: mongodb.StrategyPull, Field: "members"}, OptOut: &mongodb.Strategy{Kind: mongodb.StrategyPull, Field: "members"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = down.Close() })
	e, proc := setupReapply(t, time.Hour, down)
	ctx := t.Context()
	insertDocs(t, e, "segments", bson.D{{Key: "_id", Value: "vip"}, {Key: "members", Value: bson.A{"joan@example.com", "alan@example.com"}}})
	suppress(t, e, dsr.ScopeAll, "joan@example.com")
	suppress(t, e, dsr.ScopeProfiling, "alan@example.com")

	n, err := proc.Reapply(ctx)
	if err == nil || !strings.Contains(err.Error(), "connector down") {
		t.Errorf("error %v, want one naming connector down", err)
	}
	if n.Failed != 1 || n.Connectors != 1 || n.Removed != 1 || n.Suppressed != 1 {
		t.Errorf("re-application: %+v; want 1 removed, 1 connector failed, 1 done", n)
	}
	if got := e.count("segments", bson.D{{Key: "members", Value: "alan@example.com"}}); got != 1 {
		t.Errorf("Alan, suppressed for profiling only, taken out of a marketing segment")
	}
	want := []app.SegmentRow{{Connector: "lists", Collection: "segments", Scope: dsr.ScopeAll, Reappeared: 1, Records: 1}}
	if diff := cmp.Diff(want, report(t, e).Rows); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if !strings.Contains(e.logs.String(), "re-application of a connector failed") {
		t.Errorf("the failing connector is not logged:\n%s", e.logs)
	}

	again, err := proc.Reapply(ctx)
	if err != nil || !again.Skipped {
		t.Errorf("a run right after: %+v, %v; want skipped", again, err)
	}
}

// TestRemovalsOfDeletion: a deletion's erase jobs record a removal under
// all per segment collection they changed (those their connector's
// SegmentLister names: not the shop's customers and orders, which hold no
// segment), and only those; a job recorded twice (its removals written
// again) counts once.
func TestRemovalsOfDeletion(t *testing.T) {
	t.Parallel()
	e, _ := setupReapply(t, 0)
	e.startWorkers()
	r := e.file(dsr.TypeDeletion, "grace@example.com")
	if err := e.queue.EnqueueFanout(t.Context(), r.ID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.ID, dsr.StatusCompleted)
	want := []app.SegmentRow{
		{Connector: "lists", Collection: "segments", Scope: dsr.ScopeAll, Removed: 1, Records: 1},
		{Connector: "lists", Collection: "subscribers", Scope: dsr.ScopeAll, Removed: 1, Records: 1},
	}
	if diff := cmp.Diff(want, report(t, e).Rows); diff != "" {
		t.Errorf("removals of the deletion (-want +got):\n%s", diff)
	}
	jobs, err := e.store.Jobs(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(jobs, func(j dsr.Job) bool { return j.Connector == "lists" })
	if i < 0 {
		t.Fatalf("no job of the lists connector in %+v", jobs)
	}
	j := jobs[i]
	segment := slices.IndexFunc(j.Collections, func(c dsr.CollectionResult) bool { return c.Name == "segments" })
	if segment < 0 {
		t.Fatalf("the lists job changed no segments: %+v", j.Collections)
	}
	again := []dsr.Removal{{ID: j.ID + ":segments:all", Connector: j.Connector,
		Collection: "segments", Scope: dsr.ScopeAll, Records: 1, At: e.clock.Now()}}
	if err := e.store.AddRemovals(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	if got := report(t, e).Total.Removed; got != 2 {
		t.Errorf("after a removal written twice: %d removed, want 2", got)
	}
}
