package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/embedded"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// seeded is what seedStore stored.
type seeded struct {
	requests []string
	job      dsr.Job  // the job with the export
	hashes   []string // the suppression hashes of the consent event
}

// seedStore fills a MongoDB store as dsar would: three requests (one fanned
// out to two jobs, one finished, its export of records records), their
// audit chains, two idempotency keys, suppressions, a consent event and
// removals.
func seedStore(t *testing.T, s *mongostore.Store, records int) seeded {
	t.Helper()
	ctx := context.Background()
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var out seeded
	for i := range 3 {
		r, err := dsr.NewRequest(dsr.Intake{
			Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester", Status: dsr.StatusVerified,
			Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: fmt.Sprintf("p%d@example.com", i), Source: dsr.SourceSubject}},
			ReceivedAt: now.Add(time.Duration(i) * time.Minute),
		}, idx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		out.requests = append(out.requests, r.ID)
	}
	r0 := out.requests[0]
	if _, err := s.Transition(ctx, r0, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "worker"}); err != nil {
		t.Fatal(err)
	}
	jobs := []dsr.Job{dsr.NewJob(r0, "shop", dsr.ActionExport, now), dsr.NewJob(r0, "crm", dsr.ActionExport, now)}
	if err := s.CreateJobs(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FannedOut(ctx, r0, len(jobs), "worker"); err != nil {
		t.Fatal(err)
	}
	j, err := s.ClaimJob(ctx, jobs[0].ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.NewExportWriter(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	for i := range records {
		coll := "customers"
		if i >= records-3 {
			coll = "orders"
		}
		if err := w.WriteRecord(ctx, coll, map[string]any{"n": i, "email": fmt.Sprintf("p0+%d@example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishJob(ctx, j, dsr.Outcome{Status: dsr.JobSucceeded, Records: int64(records)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JobFinished(ctx, r0, false, "worker"); err != nil {
		t.Fatal(err)
	}
	for i, id := range out.requests[1:] {
		if _, err := s.ClaimIdempotencyKey(ctx, fmt.Sprintf("key-%d", i), id, fmt.Sprintf("fp-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendAudit(ctx, out.requests[2], "ops", "note", map[string]string{"reason": "checked"}); err != nil {
		t.Fatal(err)
	}
	// The suppression list (one entry lifted), a consent event, removals.
	key := idx.SuppressionKey()
	h0, h1 := key.Hash(dsr.KindEmail, "p0@example.com"), key.Hash(dsr.KindEmail, "p1@example.com")
	if _, err := s.Suppress(ctx, []dsr.Suppression{
		{Hash: h0, Scope: dsr.ScopeAll, Source: dsr.ConsentAPI, RequestID: r0, At: now},
		{Hash: h1, Scope: dsr.ScopeMarketing, Source: dsr.ConsentImport, Partner: "acme", At: now},
		{Hash: h1, Scope: dsr.ScopeProfiling, Source: dsr.ConsentPortal, At: now},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LiftSuppressions(ctx, []string{h1}, dsr.ScopeProfiling, "subject", "opted in"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddConsentEvents(ctx, []dsr.ConsentEvent{{ID: r0 + ":deletion", Hashes: []string{h0, h1}, Kind: dsr.ConsentDeletion,
		Scopes: []dsr.Scope{dsr.ScopeAll}, Source: dsr.ConsentAPI, RequestID: r0, Actor: "worker", At: now}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRemovals(ctx, []dsr.Removal{
		{ID: "rm-1", Connector: "crm", Collection: "segments", Scope: dsr.ScopeAll, Records: 2, RequestID: r0, At: now},
		{ID: "rm-2", Connector: "crm", Collection: "segments", Scope: dsr.ScopeAll, Records: 1, Reappeared: true, At: now.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	out.job, out.hashes = *j, []string{h0, h1}
	return out
}

// mongoStore returns a prepared store on database name of the test store.
func mongoStore(t *testing.T, client *mongo.Client, name string) *mongostore.Store {
	t.Helper()
	s := mongostore.New(client.Database(name), nil)
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// openSQLite opens the SQLite store in path, closed when the test ends.
func openSQLite(t *testing.T, path string) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// dumpCollection reads every document of coll in key order, as relaxed
// Extended JSON decoded into maps (so an int32 and an int64 compare
// equal), an export record's _id left out (MongoDB's own, absent on
// SQLite), and fields false, null or "" left out.
func dumpCollection(t *testing.T, s store.Copier, coll string) (keys []string, docs []map[string]any) {
	t.Helper()
	err := s.EachDocument(context.Background(), coll, "", func(key string, doc bson.Raw) error {
		js, err := bson.MarshalExtJSON(doc, false, false)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(js, &m); err != nil {
			return err
		}
		if coll == store.ExportRecords {
			delete(m, "_id")
		}
		for k, v := range m {
			// MongoDB's $set writes audit_due: false or error: "",
			// which the typed copy leaves out (omitempty): both read as
			// the zero value.
			if v == false || v == nil || v == "" {
				delete(m, k)
			}
		}
		keys = append(keys, key)
		docs = append(docs, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, docs
}

// sameDocuments fails the test unless a and b hold the same documents.
func sameDocuments(t *testing.T, what string, a, b store.Copier) {
	t.Helper()
	for _, coll := range store.Collections {
		ka, da := dumpCollection(t, a, coll)
		kb, db := dumpCollection(t, b, coll)
		if len(ka) == 0 {
			t.Fatalf("%s: %s: the source is empty", what, coll)
		}
		if diff := cmp.Diff(ka, kb); diff != "" {
			t.Fatalf("%s: %s: keys (-source +copy):\n%s", what, coll, diff)
		}
		if diff := cmp.Diff(da, db); diff != "" {
			t.Fatalf("%s: %s: documents (-source +copy):\n%s", what, coll, diff)
		}
	}
}

// chainsOK fails the test unless every audit chain of trails verifies, and
// returns how many events they hold.
func chainsOK(t *testing.T, what string, each func(context.Context, func(string, []dsr.AuditEvent) error) error) int {
	t.Helper()
	events := 0
	err := each(context.Background(), func(id string, chain []dsr.AuditEvent) error {
		if c := dsr.VerifyChain(chain); !c.OK {
			return fmt.Errorf("chain %s: %+v", id, c)
		}
		events += len(chain)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return events
}

// TestMigrateRoundTrip copies a MongoDB-protocol store (the test FerretDB)
// into a SQLite file with `dsar migrate`, then that file into a fresh
// database, and checks that every document made the trip unchanged and
// that the copies work as stores.
func TestMigrateRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := testenv.Client(t)
	a := testenv.Database(t, client)
	src := mongoStore(t, client, a.Name())
	seed := seedStore(t, src, 1103)
	file := filepath.Join(t.TempDir(), "dsar.db")
	uri := testenv.MongoURI(t)

	out, errOut, code := runOnce(t, nil, "migrate", "--from", uri, "--from-db", a.Name(), "--to", "sqlite:"+file)
	if code != 0 || !strings.Contains(out, "the target holds as many documents as the source") {
		t.Fatalf("into sqlite: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "export_records    1,103/1,103  100%") || !strings.Contains(out, "1,103") {
		t.Errorf("into sqlite: progress and summary:\nstdout: %s\nstderr: %s", out, errOut)
	}
	t.Logf("dsar migrate into sqlite:\n%s%s", errOut, out)
	lite := openSQLite(t, file)
	sameDocuments(t, "mongodb to sqlite", src, lite)
	if n := chainsOK(t, "sqlite", lite.EachAuditChain); n != chainsOK(t, "source", src.EachAuditChain) {
		t.Errorf("sqlite holds %d audit events", n)
	}
	// The consent history is found by hash on the copy too (SQLite keeps
	// a row per hash beside the event).
	for _, h := range seed.hashes {
		if events, err := lite.ConsentHistory(ctx, []string{h}, 10); err != nil || len(events) != 1 {
			t.Errorf("consent history of a hash on sqlite: %+v, %v", events, err)
		}
	}
	for _, id := range seed.requests {
		want, err := src.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := lite.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("request %s on sqlite (-mongodb +sqlite):\n%s", id, diff)
		}
	}

	// Back into a fresh database, while the SQLite store is open here.
	b := testenv.Database(t, client)
	out, errOut, code = runOnce(t, nil, "migrate", "--from", "sqlite:"+file, "--to", uri, "--to-db", b.Name())
	if code != 0 {
		t.Fatalf("into mongodb: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	back := mongoStore(t, client, b.Name())
	sameDocuments(t, "sqlite to mongodb", src, back)
	chainsOK(t, "back", back.EachAuditChain)
	var exported []string
	err := back.EachExportRecord(ctx, seed.job.ID, func(coll string, data json.RawMessage) error {
		exported = append(exported, coll+" "+string(data))
		return nil
	})
	if err != nil || len(exported) != 1103 || !strings.HasPrefix(exported[1102], `orders {"email":"p0+1102@example.com","n":1102}`) {
		t.Fatalf("export read back: %d records, %v", len(exported), err)
	}
	if id, err := back.ClaimIdempotencyKey(ctx, "key-0", "other", "fp-0"); err != nil || id != seed.requests[1] {
		t.Errorf("idempotency key after the trip: %q, %v; want %s", id, err, seed.requests[1])
	}
	if jobs, err := back.Jobs(ctx, seed.requests[0]); err != nil || len(jobs) != 2 {
		t.Errorf("jobs after the trip: %d, %v", len(jobs), err)
	}

	// Again: nothing to copy, nothing duplicated.
	out, errOut, code = runOnce(t, nil, "migrate", "--from", "sqlite:"+file, "--to", uri, "--to-db", b.Name())
	if code != 0 || !strings.Contains(out, "\n0 documents copied") {
		t.Fatalf("copied again: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	sameDocuments(t, "copied twice", src, back)
}

// TestMigrateResume interrupts copies after their first batch of export
// records, in both directions, and checks that running them again ends
// with every document copied once.
func TestMigrateResume(t *testing.T) {
	t.Parallel()
	client := testenv.Client(t)
	src := mongoStore(t, client, testenv.Database(t, client).Name())
	seedStore(t, src, 1203)
	lite := openSQLite(t, filepath.Join(t.TempDir(), "dsar.db"))
	back := mongoStore(t, client, testenv.Database(t, client).Name())

	for _, tc := range []struct {
		name     string
		from, to store.Copier
	}{
		{"mongodb to sqlite", src, lite},
		{"sqlite to mongodb", lite, back},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		var progress strings.Builder
		m := migration{src: tc.from, dst: tc.to, progress: &progress, afterBatch: func(coll string) {
			if coll == store.ExportRecords {
				cancel()
			}
		}}
		if _, err := m.run(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: interrupted copy: %v", tc.name, err)
		}
		if n, err := tc.to.Count(context.Background(), store.ExportRecords); err != nil || n != migrateBatch {
			t.Fatalf("%s: after the interruption the target holds %d export records (%v), want %d", tc.name, n, err, migrateBatch)
		}
		if n, err := tc.to.Count(context.Background(), store.Idempotency); err != nil || n != 0 {
			t.Fatalf("%s: after the interruption the target holds %d idempotency keys (%v)", tc.name, n, err)
		}

		progress.Reset()
		m.afterBatch = nil
		results, err := m.run(context.Background())
		if err != nil {
			t.Fatalf("%s: resumed: %v", tc.name, err)
		}
		for _, r := range results {
			want := r.source
			switch r.collection {
			case store.ExportRecords:
				want = r.source - migrateBatch
			case store.Requests, store.Jobs, store.Audit:
				want = 0
			}
			if r.target != r.source || r.copied != want {
				t.Errorf("%s: resumed: %+v, want %d copied", tc.name, r, want)
			}
		}
		// Not a terminal: a line at each further tenth, the resumed copy
		// starting at 500 (41%): 1,000 (83%) and 1,203.
		lines := strings.Count(progress.String(), "export_records ")
		if lines != 2 || !strings.Contains(progress.String(), "export_records    1,000/1,203   83%") ||
			!strings.Contains(progress.String(), "export_records    1,203/1,203  100%") {
			t.Errorf("%s: progress:\n%s", tc.name, progress.String())
		}
		cancel()
	}
	sameDocuments(t, "resumed twice", src, back)

	// A document missing before the last one the target holds (a gap) is
	// found by the counts and copied by a second pass.
	gone, err := back.DB().Collection(store.ExportRecords).DeleteOne(context.Background(), bson.D{{Key: "seq", Value: 7}})
	if err != nil || gone.DeletedCount != 1 {
		t.Fatalf("delete a record: %v", err)
	}
	results, err := migration{src: lite, dst: back, progress: &strings.Builder{}}.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := results[3]; r.collection != store.ExportRecords || r.copied != 1 || r.target != r.source {
		t.Errorf("gap filled: %+v", r)
	}
	sameDocuments(t, "gap filled", src, back)
}

// TestMigrateFerretDBDir copies the data directory of an older `dsar dev`
// (the embedded FerretDB) into a SQLite file.
func TestMigrateFerretDBDir(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dataDir := t.TempDir()
	dev, err := embedded.StartMongo(ctx, filepath.Join(dataDir, "ferretdb"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(dev.URI()))
	if err != nil {
		t.Fatal(err)
	}
	seed := seedStore(t, mongoStore(t, client, "dsar"), 5) // dev's default DSAR_MONGO_DB
	_ = client.Disconnect(ctx)
	dev.Stop()

	file := filepath.Join(t.TempDir(), "dsar.db")
	out, errOut, code := runOnce(t, nil, "migrate", "--from", "ferretdb:"+dataDir, "--to", "sqlite:"+file)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	lite := openSQLite(t, file)
	for coll, want := range map[string]int64{store.Requests: 3, store.Jobs: 2, store.ExportRecords: 5, store.Idempotency: 2} {
		if n, err := lite.Count(ctx, coll); err != nil || n != want {
			t.Errorf("%s: %d, %v; want %d", coll, n, err, want)
		}
	}
	if chainsOK(t, "sqlite", lite.EachAuditChain) == 0 {
		t.Error("no audit events copied")
	}
	if r, err := lite.Request(ctx, seed.requests[0]); err != nil || r.Status != dsr.StatusInProgress {
		t.Errorf("request: %+v, %v", r, err)
	}
}

func TestMigrateUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "new.db")
	existing := filepath.Join(dir, "old.db")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	uri := testenv.MongoURI(t)
	checkRuns(t, []cliRun{
		{[]string{"--help"}, nil, 0, "migrate    copy a store into another", ""},
		{[]string{"migrate", "--help"}, nil, 0, "Usage: dsar migrate --from SOURCE --to TARGET", ""},
		{[]string{"migrate"}, nil, 2, "", "give --from"},
		{[]string{"migrate", "--from", "sqlite:" + existing}, nil, 2, "", "give --to"},
		{[]string{"migrate", "--from", "old.db", "--to", "sqlite:" + target}, nil, 2, "", `--from "old.db": not sqlite:FILE, ferretdb:DIR or mongodb://...`},
		{[]string{"migrate", "--from", "sqlite:", "--to", "sqlite:" + target}, nil, 2, "", "give a path after"},
		{[]string{"migrate", "--from", "sqlite:" + existing, "--to", "sqlite:" + existing}, nil, 2, "", "name the same store"},
		{[]string{"migrate", "--from", "sqlite:" + existing, "--to", "ferretdb:" + dir}, nil, 2, "", "a source only"},
		{[]string{"migrate", "--from", "sqlite:" + filepath.Join(dir, "none.db"), "--to", "sqlite:" + target}, nil, 2, "", "no SQLite store there"},
		{[]string{"migrate", "--from", "ferretdb:" + dir, "--to", "sqlite:" + target}, nil, 2, "", `no embedded FerretDB database "dsar"`},
		{[]string{"migrate", "--from", uri, "--from-db", testenv.Name("none"), "--to", "sqlite:" + target}, nil, 2, "", "has no requests collection"},
		{[]string{"migrate", "--from", "sqlite:" + existing, "--to", "sqlite:" + target, "extra"}, nil, 2, "", `unexpected argument "extra"`},
		{[]string{"migrate", "--nope"}, nil, 2, "", "flag provided but not defined"},
	})
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused migration left the target %s: %v", target, err)
	}
	if got := redactURI("mongodb://dsar:secret@mongo-1,mongo-2/?replicaSet=rs0"); got != "mongodb://dsar:xxxxx@mongo-1,mongo-2/?replicaSet=rs0" {
		t.Errorf("redactURI: %s", got)
	}
}

func TestCopyProgress(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 50000: "50,000", 1234567: "1,234,567", -1200: "-1,200"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	// On a terminal: one line, rewritten after each batch, ended at the end.
	var b strings.Builder
	p := &copyProgress{w: &b, tty: true, coll: "requests", total: 1200, began: time.Now()}
	p.add(500)
	p.add(500)
	p.add(200)
	p.finish()
	out := b.String()
	if strings.Count(out, "\r") != 4 || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") ||
		!strings.Contains(out, "\rrequests          500/1,200   41%") || !strings.Contains(out, "\rrequests          1,200/1,200  100%") {
		t.Errorf("terminal progress: %q", out)
	}
	// Elsewhere: a line at each further tenth; an empty collection, one.
	b.Reset()
	p = &copyProgress{w: &b, coll: "jobs", total: 0, began: time.Now()}
	p.finish()
	if out := b.String(); strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "jobs              0/0  100%") {
		t.Errorf("empty collection: %q", out)
	}
}
