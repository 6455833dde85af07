package workers_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/workers"
)

// benchSizes are the numbers of open requests the checks are measured at:
// DSAR_BENCH_OPEN (comma-separated), 10,000 by default so that `make bench`
// stays short on the embedded store. The figures in docs/architecture.md
// were taken with DSAR_BENCH_OPEN=100000,1000000.
func benchSizes(b *testing.B) []int {
	v := os.Getenv("DSAR_BENCH_OPEN")
	if v == "" {
		return []int{10_000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1000 {
			b.Fatalf("DSAR_BENCH_OPEN: %q is not a count of at least 1000", f)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkDeadlineChecks measures the reminders and escalation checks in
// their steady state (every request due within the reminder windows already
// reminded, every overdue one escalated: a run has nothing to do) against
// the indexed query they are built on, in the same run: the range read of
// the open requests due within the longest reminder window. The ratio says
// what the check costs beyond reading its candidates; it must not grow with
// the number of open requests. It runs on the test store (see
// internal/teststore): the query is MongoDB's find, or SQLite's SELECT on
// the store's file.
func BenchmarkDeadlineChecks(b *testing.B) {
	for _, n := range benchSizes(b) {
		b.Run(fmt.Sprintf("open=%d", n), func(b *testing.B) {
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Millisecond)
			// FerretDB scans the whole collection for each query: at a
			// million requests one getMore can outlast the tests' 30 s.
			store := teststore.Open(b, func() time.Time { return now }, options.Client().SetTimeout(30*time.Minute))
			inWindow := seedOpen(b, store, n, now)
			var lite *sql.DB
			if store.Mongo == nil {
				lite = store.LiteDB(b)
			}
			r := testenv.RedisServer(b)
			queue := workers.NewQueue(asynq.RedisClientOpt{Addr: r.Addr}, workers.QueueOptions{Name: testenv.Queue(b, r), JobTimeout: time.Minute})
			b.Cleanup(func() { _ = queue.Close() })
			p := workers.NewProcessor(workers.Deps{Store: store, Connectors: connectors.NewRegistry(), Queue: queue,
				Log: slog.New(slog.DiscardHandler)}, workers.Options{Now: func() time.Time { return now },
				Checks: workers.ChecksOptions{ReminderDays: []int{7, 2}}})

			query := func() int {
				if store.Mongo == nil {
					return queryLite(b, lite, now.AddDate(0, 0, 7))
				}
				cur, err := store.Mongo.DB().Collection(mongostore.RequestsCollection).Find(ctx, bson.D{
					{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.OverdueStatuses}}},
					{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now.AddDate(0, 0, 7)}}},
				}, options.Find().SetProjection(bson.D{{Key: "due_at", Value: 1}}).SetBatchSize(500))
				if err != nil {
					b.Fatal(err)
				}
				var got int
				for cur.Next(ctx) {
					got++
				}
				if err := cur.Err(); err != nil {
					b.Fatalf("the query, after %d requests: %v", got, err)
				}
				_ = cur.Close(ctx)
				return got
			}
			if got := query(); got != inWindow {
				b.Fatalf("the query read %d requests, want the %d seeded within 7 days", got, inWindow)
			}
			var base, remind, escalate time.Duration
			for b.Loop() {
				start := time.Now()
				query()
				base += time.Since(start)

				start = time.Now()
				if c, err := p.Reminders(ctx); err != nil || c.Reminded != 0 {
					b.Fatalf("reminders: %+v, %v; want nothing to do", c, err)
				}
				remind += time.Since(start)

				start = time.Now()
				if c, err := p.Escalation(ctx); err != nil || c.Escalated != 0 {
					b.Fatalf("escalation: %+v, %v; want nothing to do", c, err)
				}
				escalate += time.Since(start)
			}
			b.ReportMetric(float64(base)/float64(time.Millisecond)/float64(b.N), "query-ms")
			b.ReportMetric(float64(remind)/float64(base), "reminders/query")
			b.ReportMetric(float64(escalate)/float64(base), "escalation/query")
			b.ReportMetric(float64(inWindow), "due-within-7d")
		})
	}
}

// queryLite is the query of the checks on SQLite: the due dates of the
// open requests due before end, read from the store's file through db.
func queryLite(b *testing.B, db *sql.DB, end time.Time) int {
	b.Helper()
	args := []any{}
	for _, st := range dsr.OverdueStatuses {
		args = append(args, string(st))
	}
	args = append(args, end.UnixMilli())
	rows, err := db.QueryContext(context.Background(), `SELECT due_at FROM requests WHERE status IN (?`+
		strings.Repeat(", ?", len(dsr.OverdueStatuses)-1)+`) AND due_at < ?`, args...)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var got int
	for rows.Next() {
		var due int64
		if err := rows.Scan(&due); err != nil {
			b.Fatal(err)
		}
		got++
	}
	if err := rows.Err(); err != nil {
		b.Fatalf("the query, after %d requests: %v", got, err)
	}
	return got
}

// seedOpen inserts n open requests due between one day ago and 90 days
// ahead, in the steady state of the checks: those due within 7 days have
// had their reminders, those past due are escalated. It returns how many
// are due within 7 days (the overdue ones included). On MongoDB it inserts
// the documents, on SQLite it stores the requests through the store.
func seedOpen(b *testing.B, s *teststore.Store, n int, now time.Time) int {
	b.Helper()
	if s.Mongo == nil {
		return seedOpenLite(b, s, n, now)
	}
	ctx := context.Background()
	coll := s.Mongo.DB().Collection(mongostore.RequestsCollection)
	span := 91 * 24 * time.Hour
	inWindow := 0
	batch := make([]any, 0, 1000)
	for i := range n {
		due := now.Add(-24*time.Hour + time.Duration(i)*(span/time.Duration(n)))
		doc := bson.D{
			{Key: "_id", Value: uuid.Must(uuid.NewV7()).String()},
			{Key: "type", Value: dsr.TypeAccess}, {Key: "regulation", Value: dsr.RegulationGDPR},
			{Key: "status", Value: dsr.StatusInProgress}, {Key: "source", Value: "bench"}, {Key: "filed_by", Value: "bench"},
			{Key: "received_at", Value: due.AddDate(0, -1, 0)}, {Key: "due_at", Value: due}, {Key: "updated_at", Value: now},
		}
		if due.Before(now.AddDate(0, 0, 7)) {
			inWindow++
			doc = append(doc, bson.E{Key: "reminded", Value: bson.A{7, 2}})
		}
		if due.Before(now) {
			doc = append(doc, bson.E{Key: "overdue_at", Value: due})
		}
		batch = append(batch, doc)
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return inWindow
}

// seedOpenLite is seedOpen on SQLite, through CreateRequests.
func seedOpenLite(b *testing.B, s *teststore.Store, n int, now time.Time) int {
	b.Helper()
	ctx := context.Background()
	span := 91 * 24 * time.Hour
	inWindow := 0
	batch := make([]*dsr.Request, 0, 1000)
	for i := range n {
		due := now.Add(-24*time.Hour + time.Duration(i)*(span/time.Duration(n)))
		r := &dsr.Request{ID: uuid.Must(uuid.NewV7()).String(), Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR,
			Status: dsr.StatusInProgress, Source: "bench", FiledBy: "bench", ReceivedAt: due.AddDate(0, -1, 0), DueAt: due, UpdatedAt: now}
		if due.Before(now.AddDate(0, 0, 7)) {
			inWindow++
			r.Reminded = []int{7, 2}
		}
		if due.Before(now) {
			r.OverdueAt = &due
		}
		batch = append(batch, r)
		if len(batch) == cap(batch) || i == n-1 {
			if err := errors.Join(s.CreateRequests(ctx, batch)...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return inWindow
}
