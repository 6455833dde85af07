package mongostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/mongostore"
)

// TestRoundTrips pins how many store commands each operation sends: on
// FerretDB every filtered command scans a collection and on MongoDB every
// command is a network round trip, so these numbers decide throughput. A
// change of status costs two more than the change itself: the audit event is
// inserted after the chain's head this process knows (a first append to a
// chain reads the head first), and the request marked caught up.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	job := dsr.NewJob(r.ID, "shop", dsr.ActionExport, f.clock.Now())
	var claimed *dsr.Job

	steps := []commandStep{
		{"create request", func() error {
			return f.store.CreateRequest(ctx, f.requestValue(t, dsr.TypeAccess, "grace@example.com"))
		}, []string{"insert", "insert", "update"}},
		{"create three requests", func() error {
			var batch []*dsr.Request
			for _, email := range []string{"b1@example.com", "b2@example.com", "b3@example.com"} {
				batch = append(batch, f.requestValue(t, dsr.TypeAccess, email))
			}
			return errors.Join(f.store.CreateRequests(ctx, batch)...)
		}, []string{"insert", "insert"}},
		{"duplicates of a batch", func() error {
			_, err := f.store.OpenDuplicates(ctx, r.IdentityHashes, []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion}, f.clock.Now().Add(-time.Hour))
			return err
		}, []string{"find"}},
		{"read request", func() error { _, err := f.store.Request(ctx, r.ID); return err }, []string{"find"}},
		{"transition", func() error {
			_, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"})
			return err
		}, []string{"findAndModify", "insert", "update"}},
		{"lost transition", func() error {
			_, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"})
			if err == nil {
				return fmt.Errorf("second transition won")
			}
			return nil
		}, []string{"findAndModify", "findAndModify", "aggregate"}}, // the second: the update of a DRP request with a callback, tried when the first matched nothing
		{"create jobs", func() error { return f.store.CreateJobs(ctx, []dsr.Job{job}) }, []string{"insert"}},
		{"mark fanned out", func() error { return f.store.MarkFannedOut(ctx, r.ID) }, []string{"update"}},
		{"claim job", func() error { var err error; claimed, err = f.store.ClaimJob(ctx, job.ID, time.Minute); return err }, []string{"findAndModify"}},
		{"finish job", func() error { return f.store.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobSucceeded}) }, []string{"update"}},
		{"settle", func() error {
			to, err := f.store.Settle(ctx, r.ID, "t")
			if to != dsr.StatusCompleted {
				return fmt.Errorf("settled to %q", to)
			}
			return err
		}, []string{"find", "findAndModify", "insert", "update"}},
		{"request with its jobs", func() error {
			if _, err := f.store.Request(ctx, r.ID); err != nil {
				return err
			}
			_, err := f.store.Jobs(ctx, r.ID)
			return err
		}, []string{"find", "find"}},
		{"list a page", func() error { _, _, err := f.store.ListRequests(ctx, dsr.ListFilter{Limit: 20}); return err }, []string{"find"}},
	}
	f.checkCommands(t, steps)
}

// TestEveryQueryHasAnIndex runs every store operation, records each command
// the store sends, and checks that a declared index serves its filter and
// sort on MongoDB: equality fields first, then sort and range fields, as the
// leading keys of one index (or _id equality).
func TestEveryQueryHasAnIndex(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	exerciseStore(t, f)

	cmds := f.cmds.All()
	if len(cmds) < 20 {
		t.Fatalf("only %d commands recorded; the exercise did not run", len(cmds))
	}
	checked := map[string]bool{}
	for _, c := range cmds {
		for _, q := range queriesOf(c) {
			shape := q.shape()
			if checked[c.Collection+" "+shape] {
				continue
			}
			checked[c.Collection+" "+shape] = true
			if err := servedByIndex(c.Collection, q); err != nil {
				t.Errorf("%s on %s, filter %s sort %s: %v", c.Name, c.Collection, q.filter, q.sort, err)
			}
		}
	}
	t.Logf("query shapes checked: %d", len(checked))

	// The indexes exist on the server too.
	for coll, indexes := range mongostore.Indexes {
		specs, err := f.store.DB().Collection(coll).Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, s := range specs {
			have[s.Name] = true
		}
		for _, ix := range indexes {
			if !have[ix.Name] {
				t.Errorf("index %s.%s not created", coll, ix.Name)
			}
		}
	}
}

// exerciseStore calls every store method that queries.
func exerciseStore(t *testing.T, f fixture) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	r := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	_, err := f.store.Request(ctx, r.ID)
	must(err)
	for range 2 { // a claim, then a replay that reads the claim back
		_, err = f.store.ClaimIdempotencyKey(ctx, dsr.IdempotencyID("t", "k"), r.ID, "fp")
		must(err)
	}
	now := f.clock.Now()
	after := &dsr.Cursor{Due: now, ID: r.ID}
	for _, lf := range []dsr.ListFilter{
		{Limit: 5}, {Limit: 5, After: after}, {Sort: dsr.SortNewest, Limit: 5}, {Sort: dsr.SortNewest, Limit: 5, After: after},
		{Status: dsr.StatusVerified, Limit: 5}, {Type: dsr.TypeAccess, Limit: 5, After: after},
		{Status: dsr.StatusVerified, Type: dsr.TypeAccess, Sort: dsr.SortNewest, Limit: 5, After: after},
		{Regulation: dsr.RegulationGDPR, Limit: 5}, {Source: "portal", Limit: 5}, {AssignedTo: "desk", Limit: 5},
		{DueBefore: &now, DueAfter: &now, Limit: 5}, {Overdue: true, Now: now, Limit: 5}, {Overdue: true, Now: now, Type: dsr.TypeAccess, Limit: 5},
	} {
		_, _, err := f.store.ListRequests(ctx, lf)
		must(err)
	}
	_, err = f.store.Assign(ctx, r.ID, "desk")
	must(err)
	_, _ = f.store.Transition(ctx, "01a20d27-0000-7000-8000-000000000000", dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{})
	_, err = f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{})
	must(err)
	job := dsr.NewJob(r.ID, "shop", dsr.ActionExport, f.clock.Now())
	must(f.store.CreateJobs(ctx, []dsr.Job{job}))
	must(f.store.MarkFannedOut(ctx, r.ID))
	_, _ = f.store.ClaimJob(ctx, "missing", time.Minute)
	j, err := f.store.ClaimJob(ctx, job.ID, time.Minute)
	must(err)
	w, err := f.store.NewExportWriter(ctx, j)
	must(err)
	must(w.WriteRecord(ctx, "c", bson.D{{Key: "a", Value: 1}}))
	must(w.Flush(ctx))
	must(f.store.EachExportRecord(ctx, j.ID, func(string, json.RawMessage) error { return nil }))
	must(f.store.FinishJob(ctx, j, dsr.Outcome{Status: dsr.JobSucceeded}))
	_, err = f.store.Job(ctx, j.ID)
	must(err)
	_, err = f.store.Settle(ctx, r.ID, "t")
	must(err)
	later := f.clock.Now().Add(time.Hour)
	must(f.store.EachStaleRequest(ctx, later, func(*dsr.Request) error { return nil }))
	must(f.store.EachStaleJob(ctx, later, later, func(*dsr.Job) error { return nil }))

	// The portal's queries.
	v := f.requestValue(t, dsr.TypeAccess, "grace@example.com")
	v.Status = dsr.StatusVerifying
	must(f.store.CreateRequest(ctx, v))
	_, err = f.store.OpenIdentical(ctx, v.IdentityHashes[0], dsr.TypeAccess, dsr.ActiveStatuses, 2)
	must(err)
	_, err = f.store.Unverified(ctx, v.IdentityHashes[0], dsr.TypeAccess, 2)
	must(err)
	_, err = f.store.OpenDuplicates(ctx, v.IdentityHashes, []dsr.Type{dsr.TypeAccess}, now)
	must(err)
	// A batch whose first request is refused (its id is taken) and whose
	// second duplicates it: the second is removed again.
	taken, orphan := f.requestValue(t, dsr.TypeAccess, "grace@example.com"), f.requestValue(t, dsr.TypeAccess, "grace@example.com")
	taken.ID, orphan.DuplicateOf = v.ID, v.ID
	if errs := f.store.CreateRequests(ctx, []*dsr.Request{taken, orphan}); errs[0] == nil || errs[1] == nil {
		t.Fatalf("create requests: %v", errs)
	}
	_, err = f.store.ReserveTry(ctx, v.ID, 5) // no code yet: reads the request back
	if !errors.Is(err, dsr.ErrNoCode) {
		t.Fatalf("reserve before a code: %v", err)
	}
	must(f.store.IssueVerification(ctx, v.ID, "c", "t", later))
	must(f.store.VerificationSent(ctx, v.ID))
	_, err = f.store.ReserveTry(ctx, v.ID, 5)
	must(err)
	must(f.store.AddNotice(ctx, v.ID, dsr.NoticeMerged))
	must(f.store.NoticeSent(ctx, v.ID, dsr.NoticeMerged))
	must(f.store.AddStatusToken(ctx, v.ID, dsr.HashToken("x")))
	must(f.store.EachUnverifiedPastDue(ctx, later, func(*dsr.Request) error { return nil }))
	must(f.store.EachPendingNotice(ctx, later, func(*dsr.Request) error { return nil }))

	// The audit trail's queries.
	for range 2 { // the first append finds an empty chain, the second one event
		_, err = f.store.AppendAudit(ctx, r.ID, "t", "status", map[string]string{"to": "completed"})
		must(err)
	}
	_, err = f.store.AuditTrail(ctx, r.ID)
	must(err)
	must(f.store.EachAuditChain(ctx, func(string, []dsr.AuditEvent) error { return nil }))

	// The statistics' queries (metrics and the compliance report).
	_, err = f.store.CountRequests(ctx)
	must(err)
	_, err = f.store.CountOverdue(ctx, later)
	must(err)
	_, err = f.store.CountWaitingJobs(ctx)
	must(err)
	must(f.store.EachCompletion(ctx, time.Time{}, func(*dsr.Completion) error { return nil }))
	must(f.store.EachJobOutcome(ctx, now, func(*dsr.JobOutcome) error { return nil }))
	_, err = f.store.Summary(ctx, now.Add(-time.Hour), later)
	must(err)

	// The deadline checks' queries and updates.
	noop := func(*dsr.Due) error { return nil }
	r = f.newRequest(t, dsr.TypeAccess, "grace@example.com")
	must(f.store.EachToRemind(ctx, now, later, 7, noop))
	must(f.store.EachToEscalate(ctx, later, noop))
	must(f.store.EachExportsToPurge(ctx, later, noop))
	must(f.store.EachIdentitiesToPurge(ctx, later, noop))
	_, err = f.store.Remind(ctx, r.ID, 7, now, later)
	must(err)
	_, err = f.store.Escalate(ctx, r.ID, later)
	must(err)
	paused := f.verifying(t, "alan@example.com")
	_, err = f.store.PauseClock(ctx, paused.ID, "agent", "id check")
	must(err)
	_, err = f.store.ResumeClock(ctx, paused.ID)
	must(err)
	_, err = f.store.PurgeExports(ctx, r.ID)
	must(err)
	_, err = f.store.PurgeIdentities(ctx, r.ID)
	must(err)
	_, _ = f.store.Appeal(ctx, r.ID, dsr.AppealFiling{Actor: "agent", Reason: "appeal"}) // refused (not denied) after one read

	// The suppression list, the consent history, the removals.
	key := f.index.SuppressionKey()
	h1, h2 := key.Hash(dsr.KindEmail, "ada@example.com"), key.Hash(dsr.KindEmail, "grace@example.com")
	entries := []dsr.Suppression{{Hash: h1, Scope: dsr.ScopeAll, Source: dsr.ConsentAPI, At: now}, {Hash: h2, Scope: dsr.ScopeMarketing, Source: dsr.ConsentGPC, At: now}}
	_, err = f.store.Suppress(ctx, entries)
	must(err)
	_, err = f.store.LiftSuppressions(ctx, []string{h2}, dsr.ScopeMarketing, "subject", "opted in")
	must(err)
	_, err = f.store.Suppress(ctx, entries) // one active, one lifted: the find, the re-activation
	must(err)
	_, err = f.store.Suppressions(ctx, []string{h1, h2})
	must(err)
	must(f.store.EachSuppressionChange(ctx, now, func(*dsr.Suppression) error { return nil }))
	must(f.store.AddConsentEvents(ctx, []dsr.ConsentEvent{{ID: "e1", Hashes: []string{h1, h2}, Kind: dsr.ConsentOptOut, Source: dsr.ConsentPortal, Actor: "subject", At: now}}))
	_, err = f.store.ConsentHistory(ctx, []string{h1, h2}, 10)
	must(err)
	must(f.store.AddRemovals(ctx, []dsr.Removal{{ID: "rm1", Connector: "crm", Collection: "segments", Scope: dsr.ScopeAll, Records: 1, At: now}}))
	must(f.store.EachRemoval(ctx, now, later, func(*dsr.Removal) error { return nil }))
}

type query struct {
	filter bson.Raw
	sort   bson.Raw
}

// queriesOf returns the filters (and sorts) a command runs.
func queriesOf(c testenv.Command) []query {
	doc := func(key string) bson.Raw {
		d, _ := c.Body.Lookup(key).DocumentOK()
		return d
	}
	switch c.Name {
	case "find":
		return []query{{filter: doc("filter"), sort: doc("sort")}}
	case "findAndModify", "count":
		return []query{{filter: doc("query"), sort: doc("sort")}}
	case "update", "delete":
		key, inner := "updates", "q"
		if c.Name == "delete" {
			key = "deletes"
		}
		arr, _ := c.Body.Lookup(key).ArrayOK()
		vals, _ := arr.Values()
		var out []query
		for _, v := range vals {
			d, _ := v.DocumentOK()
			q, _ := d.Lookup(inner).DocumentOK()
			out = append(out, query{filter: q})
		}
		return out
	case "aggregate":
		arr, _ := c.Body.Lookup("pipeline").ArrayOK()
		vals, _ := arr.Values()
		if len(vals) > 0 {
			st, _ := vals[0].DocumentOK()
			if m, ok := st.Lookup("$match").DocumentOK(); ok {
				return []query{{filter: m}}
			}
		}
		return []query{{}}
	}
	return nil // insert, createIndexes, listIndexes, ping, buildInfo, getMore, drop...
}

// fields splits a filter's top-level fields into equality and range ones.
func (q query) fields() (eq, rng []string) {
	elems, _ := q.filter.Elements()
	for _, e := range elems {
		k := e.Key()
		if strings.HasPrefix(k, "$") {
			continue // $or / $and branches ride on the fields beside them
		}
		if d, ok := e.Value().DocumentOK(); ok {
			if first, err := d.IndexErr(0); err == nil && strings.HasPrefix(first.Key(), "$") && first.Key() != "$in" && first.Key() != "$eq" {
				rng = append(rng, k)
				continue
			}
		}
		eq = append(eq, k)
	}
	return eq, rng
}

func (q query) sortKeys() []string {
	elems, _ := q.sort.Elements()
	var out []string
	for _, e := range elems {
		out = append(out, e.Key())
	}
	return out
}

func (q query) shape() string {
	eq, rng := q.fields()
	sort.Strings(eq)
	sort.Strings(rng)
	return fmt.Sprintf("eq=%v range=%v sort=%v", eq, rng, q.sortKeys())
}

func servedByIndex(coll string, q query) error {
	eq, rng := q.fields()
	srt := q.sortKeys()
	for _, k := range eq {
		if k == "_id" {
			return nil // the _id index
		}
	}
	if len(eq) == 0 {
		// A scan in _id order, or a range on _id, walks the _id index.
		if len(rng) == 0 && len(srt) <= 1 && (len(srt) == 0 || srt[0] == "_id") {
			if len(srt) == 0 && q.filter != nil && len(rng) == 0 {
				if elems, _ := q.filter.Elements(); len(elems) > 0 {
					return fmt.Errorf("no index for an unkeyed filter")
				}
			}
			return nil
		}
		if len(rng) == 1 && rng[0] == "_id" && (len(srt) == 0 || (len(srt) == 1 && srt[0] == "_id")) {
			return nil
		}
	}
	for _, ix := range mongostore.Indexes[coll] {
		if prefixServes(ix.Keys, eq, rng, srt) || sortServes(ix.Keys, eq, rng, srt) {
			return nil
		}
	}
	return fmt.Errorf("no declared index has %v as equality prefix followed by %v", eq, append(srt, rng...))
}

// sortServes reports whether index keys serve a sorted list with several
// filters: they start with one or more of its equality fields, continue with
// the sort keys in order, and every range is on a sort key. MongoDB walks
// such an index in order and filters the other fields as it reads; one
// index per filter then serves every combination of them.
func sortServes(keys bson.D, eq, rng, srt []string) bool {
	if len(srt) == 0 {
		return false
	}
	isEq := map[string]bool{}
	for _, k := range eq {
		isEq[k] = true
	}
	i := 0
	for i < len(keys) && isEq[keys[i].Key] {
		i++
	}
	if i == 0 && len(eq) > 0 && keys[0].Key != srt[0] {
		return false
	}
	for _, s := range srt {
		if i >= len(keys) || keys[i].Key != s {
			return false
		}
		i++
	}
	for _, r := range rng {
		if !slices.Contains(srt, r) {
			return false
		}
	}
	return true
}

// prefixServes reports whether index keys start with the equality fields (in
// any order), then the sort fields in order, then the range fields.
func prefixServes(keys bson.D, eq, rng, srt []string) bool {
	i := 0
	want := map[string]bool{}
	for _, k := range eq {
		want[k] = true
	}
	for ; i < len(eq); i++ {
		if i >= len(keys) || !want[keys[i].Key] {
			return false
		}
	}
	for _, s := range srt {
		if want[s] {
			continue // sorting on an equality field is free
		}
		if i >= len(keys) || keys[i].Key != s {
			return false
		}
		i++
	}
	rest := map[string]bool{}
	for ; i < len(keys); i++ {
		rest[keys[i].Key] = true
	}
	for _, s := range srt {
		rest[s] = true // a range on a sort field rides on the sort
	}
	for _, r := range rng {
		if !rest[r] {
			return false
		}
	}
	return true
}

// TestQueriesUseIndexesOnMongoDB asks a real MongoDB (DSAR_TEST_MONGO_URI)
// to explain every find the store sends, and fails on a collection scan. It
// is skipped on the embedded FerretDB, which scans for every filter.
func TestQueriesUseIndexesOnMongoDB(t *testing.T) {
	if !testenv.RealMongo() {
		t.Skip("needs a real MongoDB: set DSAR_TEST_MONGO_URI")
	}
	t.Parallel()
	f := setup(t)
	exerciseStore(t, f)
	ctx := context.Background()
	for _, c := range f.cmds.All() {
		if c.Name != "find" {
			continue
		}
		elems, _ := c.Body.Elements()
		cmd := bson.D{}
		for _, e := range elems {
			switch e.Key() {
			case "find", "filter", "sort", "limit", "projection":
				cmd = append(cmd, bson.E{Key: e.Key(), Value: e.Value()})
			}
		}
		var plan bson.Raw
		if err := f.store.DB().RunCommand(ctx, bson.D{{Key: "explain", Value: cmd}, {Key: "verbosity", Value: "queryPlanner"}}).Decode(&plan); err != nil {
			t.Fatalf("explain %s: %v", cmd, err)
		}
		if strings.Contains(plan.Lookup("queryPlanner", "winningPlan").String(), "COLLSCAN") {
			t.Errorf("a collection scan for %s", cmd)
		}
	}
}

// TestCreateRequestsCommands pins the commands of a batch in which one
// request is refused (its id is taken) and another duplicates it: the two
// inserts, then one delete of the orphan and one of the events of the
// requests not stored. (What the batch stores is a case of the
// conformance suite, storetest.)
func TestCreateRequestsCommands(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	existing := f.newRequest(t, dsr.TypeAccess, "ada@example.com")
	taken := f.requestValue(t, dsr.TypeAccess, "grace@example.com")
	taken.ID = existing.ID
	orphan := f.requestValue(t, dsr.TypeAccess, "grace@example.com")
	orphan.DuplicateOf, orphan.Status = taken.ID, dsr.StatusDuplicate
	fine := []*dsr.Request{f.requestValue(t, dsr.TypeAccess, "alan@example.com"), f.requestValue(t, dsr.TypeDeletion, "alan@example.com")}
	f.checkCommands(t, []commandStep{{"create the batch", func() error {
		errs := f.store.CreateRequests(ctx, []*dsr.Request{fine[0], taken, orphan, fine[1]})
		if len(errs) != 4 || errs[1] == nil || errs[2] == nil || errs[0] != nil || errs[3] != nil {
			return fmt.Errorf("errors: %v", errs)
		}
		return nil
	}, []string{"insert", "insert", "delete", "delete"}}})
}

// TestSummaryCommands: the compliance summary reads the requests of its
// window in one find.
func TestSummaryCommands(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for _, email := range []string{"ada@example.com", "grace@example.com", "alan@example.com"} {
		r := f.newRequest(t, dsr.TypeAccess, email)
		if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusDenied, dsr.Change{Actor: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	now := f.clock.Now()
	f.checkCommands(t, []commandStep{{"summary", func() error {
		s, err := f.store.Summary(ctx, now.Add(-time.Hour), now.Add(time.Hour))
		if err == nil && s.Total.Received != 3 {
			return fmt.Errorf("summary of %d requests, want 3", s.Total.Received)
		}
		return err
	}, []string{"find"}}})
}

// TestSuppressCommands pins the commands of Suppress, per batch: one insert
// when every entry is new; a find of the lifted among those held already;
// an update only when some were lifted. Lifting is one update.
func TestSuppressCommands(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	key := f.index.SuppressionKey()
	var entries []dsr.Suppression
	for i := range 3 {
		entries = append(entries, dsr.Suppression{Hash: key.Hash(dsr.KindEmail, fmt.Sprintf("p%d@example.com", i)),
			Scope: dsr.ScopeMarketing, Source: dsr.ConsentPortal, At: f.clock.Now()})
	}
	suppress := func(want int) func() error {
		return func() error {
			n, err := f.store.Suppress(ctx, entries)
			if err == nil && n != want {
				err = fmt.Errorf("%d created or re-activated, want %d", n, want)
			}
			return err
		}
	}
	f.checkCommands(t, []commandStep{
		{"new entries", suppress(3), []string{"insert"}},
		{"active entries", suppress(0), []string{"insert", "find"}},
		{"lift one", func() error {
			n, err := f.store.LiftSuppressions(ctx, []string{entries[1].Hash}, dsr.ScopeMarketing, "subject", "")
			if err == nil && n != 1 {
				err = fmt.Errorf("%d lifted", n)
			}
			return err
		}, []string{"update"}},
		{"one lifted entry", suppress(1), []string{"insert", "find", "update"}},
	})
}
