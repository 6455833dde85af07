package bench_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// Sizes of the suppression benchmark: a list of 100,000 suppressed people,
// checked 10,000 identities at a time (the most one call takes), one in
// ten of them suppressed.
const (
	listSize  = 100_000
	batchSize = app.MaxSuppressionChecks
)

// BenchmarkSuppressionCheck checks 10,000 plain identities (emails, in
// clear) under a scope through app.Service.CheckSuppressions, with 100,000
// suppressions stored, on the embedded store and on MongoDB's driver
// (FerretDB embedded, or DSAR_TEST_MONGO_URI), and in the same run
// computes the suppression hashes of the same 10,000 (normalised)
// identities alone, one dsr.SuppressionKey.Hash after another. Each
// iteration is one of each. It reports both rates and their ratio
// (checks/hashes; the goal is at least 0.25), and the store queries one
// check made:
//
//	go test ./bench -run '^$' -bench SuppressionCheck -benchtime 20x
func BenchmarkSuppressionCheck(b *testing.B) {
	for _, d := range []string{"sqlite", "mongo"} {
		b.Run("store="+d, func(b *testing.B) {
			ctx := context.Background()
			// The list was built over the past day; checks run now.
			clock := &benchClock{t: time.Now().Add(-24 * time.Hour)}
			st, fill := openSuppressions(b, d, clock.now)
			idx, err := dsr.NewBlindIndex([]byte("bench-blind-index-key-0123456789"))
			if err != nil {
				b.Fatal(err)
			}
			key := idx.SuppressionKey()
			start := time.Now()
			fill(ctx, suppressions(key, listSize, "p"))
			filled := time.Since(start)
			clock.set(time.Time{})
			feed := &countingFeed{Feed: st}
			set := suppression.NewSet(feed, key)
			svc := app.New(app.Deps{Index: idx, Suppressions: set})
			start = time.Now()
			if err := set.Refresh(ctx); err != nil { // the load at start-up
				b.Fatal(err)
			}
			b.Logf("%s: stored %d suppressions in %v, loaded the set in %v", d, listSize, filled.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			if set.Len() != listSize {
				b.Fatalf("the set holds %d identities, want %d", set.Len(), listSize)
			}
			qs, values := checkBatch(batchSize)
			// The steady state: the set was loaded more than Overlap ago,
			// so a refresh reads only what follows the latest change (the
			// list's entries all share one time here, which a refresh
			// within Overlap of the load would read again).
			time.Sleep(suppression.Overlap + 100*time.Millisecond)

			var hashing, checking time.Duration
			n, queries := 0, feed.queries
			var sink int
			for b.Loop() {
				// A trickle of new opt-outs between checks, which each
				// check's refresh brings in (not timed).
				fill(ctx, suppressions(key, 10, fmt.Sprintf("new%d-", n)))

				start := time.Now()
				for _, v := range values {
					sink += len(key.Hash(dsr.KindEmail, v))
				}
				hashing += time.Since(start)

				start = time.Now()
				res, err := svc.CheckSuppressions(ctx, dsr.ScopeMarketing, qs)
				checking += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Suppressed) != batchSize/10 || len(res.Invalid) != 0 {
					b.Fatalf("suppressed %d, invalid %d; want %d, 0", len(res.Suppressed), len(res.Invalid), batchSize/10)
				}
				n++
			}
			if sink == 0 {
				b.Fatal("no hashes")
			}
			total := float64(n * batchSize)
			b.ReportMetric(total/hashing.Seconds(), "hashes/s")
			b.ReportMetric(total/checking.Seconds(), "checks/s")
			b.ReportMetric(hashing.Seconds()/checking.Seconds(), "ratio")
			b.ReportMetric(float64(feed.queries-queries)/float64(n), "queries/check")
		})
	}
}

// TestSuppressionCheckQueries counts, with the MongoDB driver's command
// monitor, the commands a bulk check sends once the set is loaded: one
// (the change feed's find), whatever the number of identities; and at
// most one per 100 ms for single checks.
func TestSuppressionCheckQueries(t *testing.T) {
	ctx := context.Background()
	// The list was written an hour ago: the refreshes' overlap (the last
	// 2 s of changes) holds none of it, as at steady state.
	clock := &benchClock{t: time.Now().Add(-time.Hour)}
	st := teststore.Open(t, clock.now)
	st.NeedMongo(t)
	idx, err := dsr.NewBlindIndex([]byte("bench-blind-index-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	key := idx.SuppressionKey()
	if _, err := st.Suppress(ctx, suppressions(key, 3000, "p")); err != nil {
		t.Fatal(err)
	}
	set := suppression.NewSet(st, key)
	svc := app.New(app.Deps{Index: idx, Suppressions: set})
	if err := set.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	clock.set(time.Time{})
	time.Sleep(suppression.Overlap + 100*time.Millisecond) // the list's last 2 s are no longer read again: the steady state
	for _, size := range []int{1, 100, 2000, batchSize} {
		qs, _ := checkBatch(size)
		st.Commands.Reset()
		res, err := svc.CheckSuppressions(ctx, dsr.ScopeMarketing, qs)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(size, 3000) / 10; size >= 10 && len(res.Suppressed) != want {
			t.Errorf("%d identities: %d suppressed, want %d", size, len(res.Suppressed), want)
		}
		if got := st.Commands.Names(); len(got) != 1 || got[0] != "find" {
			t.Errorf("a bulk check of %d identities sent %v; want one find (the change feed)", size, got)
		}
	}
	st.Commands.Reset()
	start := time.Now()
	for range 10 {
		if _, err := svc.CheckSuppression(ctx, dsr.ScopeMarketing, app.SuppressionQuery{Kind: dsr.KindEmail, Value: "p1@example.com"}); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	if got, most := st.Commands.Names(), 1+int(took/app.SingleCheckMaxAge); len(got) > most {
		t.Errorf("10 single checks in %v sent %v; want at most %d finds (one per %v)", took, got, most, app.SingleCheckMaxAge)
	}
}

// suppressions returns n entries under marketing: the emails <prefix>0
// to <prefix>(n-1) @example.com, hashed.
func suppressions(key dsr.SuppressionKey, n int, prefix string) []dsr.Suppression {
	now := time.Now()
	out := make([]dsr.Suppression, n)
	for i := range out {
		h := key.Hash(dsr.KindEmail, fmt.Sprintf("%s%d@example.com", prefix, i))
		out[i] = dsr.Suppression{ID: dsr.SuppressionID(h, dsr.ScopeMarketing), Hash: h, Scope: dsr.ScopeMarketing,
			Source: dsr.ConsentAPI, At: now, UpdatedAt: now}
	}
	return out
}

// checkBatch returns n identities to check, in clear as a pipeline sends
// them (mixed case), one in ten among the suppressed, and their normalised
// values.
func checkBatch(n int) ([]app.SuppressionQuery, []string) {
	qs := make([]app.SuppressionQuery, n)
	values := make([]string, n)
	for i := range qs {
		v := fmt.Sprintf("q%d@example.com", i)
		if i%10 == 0 {
			v = fmt.Sprintf("p%d@example.com", i)
		}
		qs[i] = app.SuppressionQuery{Kind: dsr.KindEmail, Value: " " + strings.ToUpper(v[:1]) + v[1:]}
		values[i] = v
	}
	return qs, values
}

// countingFeed counts the change feed's queries.
type countingFeed struct {
	suppression.Feed
	queries int
}

func (f *countingFeed) EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error {
	f.queries++ // a bulk check's refresh runs alone (the benchmark checks one batch at a time)
	return f.Feed.EachSuppressionChange(ctx, since, fn)
}

// openSuppressions opens a new store of driver d and returns a way to fill
// its suppression list fast: the store's own Suppress on SQLite; on
// MongoDB, plain inserts of the entries as Suppress creates them, since
// FerretDB v1 runs Suppress's filtered read by scanning the collection
// (what the benchmark measures is the checks, not the writes).
func openSuppressions(b *testing.B, d string, now func() time.Time) (store.Store, func(context.Context, []dsr.Suppression)) {
	b.Helper()
	ctx := context.Background()
	switch d {
	case "sqlite":
		s, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "dsar.db"), sqlitestore.Options{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s, func(ctx context.Context, entries []dsr.Suppression) {
			if _, err := s.Suppress(ctx, entries); err != nil {
				b.Fatal(err)
			}
		}
	default:
		db := testenv.Mongo(b)
		s := mongostore.New(db, now)
		if err := s.Prepare(ctx); err != nil {
			b.Fatal(err)
		}
		return s, func(ctx context.Context, entries []dsr.Suppression) {
			for i := range entries {
				entries[i].UpdatedAt = now()
			}
			insertEntries(b, db, entries)
		}
	}
}

func insertEntries(b *testing.B, db *mongo.Database, entries []dsr.Suppression) {
	b.Helper()
	for from := 0; from < len(entries); from += 5000 {
		if _, err := db.Collection(mongostore.SuppressionsCollection).InsertMany(context.Background(), entries[from:min(from+5000, len(entries))]); err != nil {
			b.Fatal(err)
		}
	}
}

// benchClock is the stores' clock: a set time, or time.Now once set to
// zero.
type benchClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *benchClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *benchClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
