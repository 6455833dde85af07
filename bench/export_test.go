package bench_test

import (
	"archive/zip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/sqldb"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/testenv/sqlenv"
	"github.com/dsar-project/dsar/store/sealedstore"
)

// exportSizes are the numbers of records the subject of BenchmarkExport
// has: DSAR_BENCH_EXPORT (comma-separated), 10,000 and 100,000 by default;
// the figures in docs/benchmarks.md add 1,000,000.
func exportSizes(b *testing.B) []int {
	v := os.Getenv("DSAR_BENCH_EXPORT")
	if v == "" {
		return []int{10_000, 100_000}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("DSAR_BENCH_EXPORT: %q is not a count", f)
		}
		out = append(out, n)
	}
	return out
}

// exportMemoryBudget is what an export, or the zip written from it, may add
// to the process's idle RSS.
const exportMemoryBudget = 64

// exportSubject is the customer id of the subject whose orders are exported.
const exportSubject = 1

// exportConnectors is the connectors file of the benchmark's shop: one
// table, the orders, found by customer id.
const exportConnectors = `
connectors:
  - name: shop
    type: postgres
    dsn: ${DSN}
    tables:
      - name: orders
        match: {customer_id: customer_id}
        erase: delete
`

// BenchmarkExport measures an access export of one subject with 10k, 100k
// (and 1M) records, held in a PostgreSQL table (DSAR_TEST_POSTGRES_URL;
// the test server by default) between other people's rows. Each iteration
// runs the first three, alternating, exportRounds times (totals compared),
// then the fourth once:
//
//   - the baseline: a raw cursor read of the same records through the same
//     driver, the SELECT the sqldb connector issues, in the same read-only
//     transaction, each row scanned and dropped;
//   - the connector alone, its records counted and dropped (logged: what
//     the export costs before the store);
//   - the export, as a job runs it (workers' exportTo): the store's export
//     writer, the connector's Export, Flush;
//   - the download: the zip written from the stored records, as a download
//     writes it (app's WriteZip), to a file.
//
// The store is the one dsar runs: the driver (DSAR_BENCH_STORE, SQLite by
// default) inside store/sealedstore, the request created through it so
// that it has an export key, the export sealed under it into the store's
// export records and opened again for the zip.
//
// Before the export and before the zip, garbage is collected, memory
// returned to the system, the peak RSS (VmHWM) reset and the idle RSS
// read; each phase's peak is read when it ends. The PostgreSQL server is a
// process of its own: its memory is not counted. The zip is then read back:
// it must hold the subject's N records exactly, and nobody else's.
//
// Goals: export-records/s >= 0.50 x raw-records/s (ratio) and each phase's
// peak within 64 MiB of idle at every size (rss-over-idle-MiB, the larger).
//
//	DSAR_BENCH_EXPORT=10000,100000,1000000 go test ./bench -run '^$' -bench Export -benchtime 1x -timeout 60m -v
func BenchmarkExport(b *testing.B) {
	srv := sqlenv.Postgres(b)
	for _, n := range exportSizes(b) {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			ctx := context.Background()
			db := srv.NewDatabase(b)
			start := time.Now()
			seedOrders(b, db, n)
			b.Logf("seeded %d records of the subject (%d rows) in %s", n, ordersRows(n), time.Since(start).Round(time.Millisecond))

			reg, err := connectors.Parse(ctx, []byte(exportConnectors),
				connectors.Types{sqldb.TypePostgres: sqldb.PostgresFactory(connectors.Deps{})},
				func(k string) (string, bool) { return db.DSN, k == "DSN" })
			if err != nil {
				b.Fatalf("connectors file: %v", err)
			}
			b.Cleanup(func() { _ = reg.Close() })
			c, _ := reg.Lookup("shop")
			exp := c.(connectors.Exporter)
			subject := connectors.Subject{Identities: []connectors.Identity{{Kind: "customer_id", Value: strconv.Itoa(exportSubject)}}}

			raw, err := sqlenv.Postgres(b).Open(db.DSN) // the driver the connector opens
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = raw.Close() })
			if got := rawRead(b, raw, db.Name); got != int64(n) { // warms the server's cache for both
				b.Fatalf("raw read: %d records; want %d", got, n)
			}

			var m exportFigures
			for i := 0; b.Loop(); i++ {
				m.add(exportOnce(b, exp, raw, db.Name, subject, n, i))
			}
			m.report(b, n)
		})
	}
}

// ordersRows is how many rows the orders table holds for a subject with n:
// one row in ten is another customer's.
func ordersRows(n int) int { return n + (n-1)/9 }

// seedOrders creates the shop's tables in db: 1,000 customers, and orders
// of which the subject (customer 1) has n, every tenth row being another
// customer's.
func seedOrders(b *testing.B, db *sqlenv.Database, n int) {
	b.Helper()
	ctx := context.Background()
	for _, st := range []string{
		`CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE NOT NULL, name text)`,
		`INSERT INTO customers SELECT g, 'person' || g || '@example.com', 'Person ' || g FROM generate_series(1, 1000) g`,
		`CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id),
			placed_at timestamptz NOT NULL, address text, items jsonb, total numeric(10,2), note text)`,
		fmt.Sprintf(`INSERT INTO orders
			SELECT g, CASE WHEN g %% 10 = 0 THEN 2 + g %% 999 ELSE %d END,
				timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
				'12 Engine Row, London',
				jsonb_build_array(
					jsonb_build_object('sku', 'SKU-' || lpad((g %% 977)::text, 6, '0'), 'qty', 1 + g %% 3, 'price', 19.99),
					jsonb_build_object('sku', 'SKU-' || lpad((g %% 331)::text, 6, '0'), 'qty', 1, 'price', 4.5)),
				24.49 + (g %% 3) * 19.99,
				'Leave the parcel with the neighbour at number 14 if nobody answers.'
			FROM generate_series(1, %d) g`, exportSubject, ordersRows(n)),
		`CREATE INDEX orders_customer ON orders (customer_id)`,
		`ANALYZE customers`,
		`ANALYZE orders`,
	} {
		if _, err := db.DB.ExecContext(ctx, st); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	var got int
	if err := db.DB.QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE customer_id = $1`, exportSubject).Scan(&got); err != nil || got != n {
		b.Fatalf("seed: the subject has %d orders (%v); want %d", got, err, n)
	}
}

// rawRead reads the subject's orders as the connector does, the same
// statement in the same kind of transaction, scanning each row into the
// same values and dropping it, and returns how many it read.
func rawRead(b *testing.B, db *sql.DB, schema string) int64 {
	b.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	q := fmt.Sprintf(`SELECT * FROM %q.%q WHERE (%q IN ($1)) ORDER BY %q`, schema, "orders", "customer_id", "id")
	rows, err := tx.QueryContext(ctx, q, int64(exportSubject))
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		b.Fatal(err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// exportRun is what one iteration measured: times (each summed over its
// rounds), and RSS in KiB (the idle before the first export, the largest
// peak and the largest peak over the idle before it).
type exportRun struct {
	rounds                       int
	raw, connector, export, zip  time.Duration
	idle, exportPeak, exportOver int64
	idle2, zipPeak, zipBytes     int64
}

// exportRounds is how many times one iteration runs the raw read, the
// connector alone and the export, alternating, for a subject with n
// records: enough that the smaller sizes are timed over a second or so
// rather than a few milliseconds, when the machine's noise is as large as
// what is measured (at most 50; 1 from 300,000 records up).
func exportRounds(n int) int { return min(50, max(1, 300_000/n)) }

// exportOnce runs the baseline, the connector alone and the export
// (exportRounds times, alternating, each export a new request's job), then
// the zip of the last export once, and checks the zip holds the subject's
// n records and nobody else's.
func exportOnce(b *testing.B, exp connectors.Exporter, raw *sql.DB, schema string, s connectors.Subject, n, i int) exportRun {
	b.Helper()
	ctx := context.Background()
	var r exportRun
	st := sealedStore(b, openStore(b))
	var req *dsr.Request
	var job dsr.Job
	var res connectors.Result
	for range exportRounds(n) {
		start := time.Now()
		if got := rawRead(b, raw, schema); got != int64(n) {
			b.Fatalf("raw read: %d records; want %d", got, n)
		}
		r.raw += time.Since(start)

		// The connector alone, its records counted and dropped: what the
		// export costs before the store.
		start = time.Now()
		var dropped droppedRecords
		if res, err := exp.Export(ctx, s, &dropped); err != nil || res.Records != int64(n) || int(dropped) != n {
			b.Fatalf("export to nowhere: %d records, %d written (%v); want %d", res.Records, dropped, err, n)
		}
		r.connector += time.Since(start)

		now := time.Now().UTC().Truncate(time.Millisecond)
		req = &dsr.Request{ID: testenv.Name("req"), Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusCompleted,
			Source: "agent_api", ReceivedAt: now, ClosedAt: &now}
		if err := st.CreateRequest(ctx, req); err != nil { // its export key: as every request dsar stores gets one
			b.Fatalf("create request: %v", err)
		}
		job = dsr.NewJob(req.ID, "shop", dsr.ActionExport, now)

		// The job: the export into the store's export records.
		idle := testenv.SettleRSS(b)
		start = time.Now()
		w, err := st.NewExportWriter(ctx, &job)
		if err != nil {
			b.Fatal(err)
		}
		res, err = exp.Export(ctx, s, w)
		if err == nil {
			err = w.Flush(ctx)
		}
		if err != nil {
			b.Fatalf("export: %v", err)
		}
		r.export += time.Since(start)
		peak := testenv.ProcKiB(b, "self", "VmHWM")
		if r.idle == 0 {
			r.idle = idle
		}
		r.exportPeak, r.exportOver = max(r.exportPeak, peak), max(r.exportOver, peak-idle)
		if res.Records != int64(n) {
			b.Fatalf("exported %d records; want %d", res.Records, n)
		}
		r.rounds++
	}
	job.Status, job.Records = dsr.JobSucceeded, res.Records
	for _, col := range res.Collections {
		job.Collections = append(job.Collections, dsr.CollectionResult{Name: col.Name, Outcome: col.Outcome, Records: col.Records})
	}
	if err := st.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		b.Fatal(err)
	}

	// The download: the zip, streamed from the export records to a file.
	path := filepath.Join(b.TempDir(), fmt.Sprintf("export-%d.zip", i))
	f, err := os.Create(path) //nolint:gosec // the benchmark's own temporary file
	if err != nil {
		b.Fatal(err)
	}
	r.idle2 = testenv.SettleRSS(b)
	start := time.Now()
	e, err := app.New(app.Deps{Store: st}).ExportOf(ctx, req, "bench")
	if err != nil {
		b.Fatal(err)
	}
	if err := e.WriteZip(ctx, f); err != nil {
		b.Fatalf("write zip: %v", err)
	}
	r.zip, r.zipPeak = time.Since(start), testenv.ProcKiB(b, "self", "VmHWM")
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	checkZip(b, path, n)
	if fi, err := os.Stat(path); err == nil {
		r.zipBytes = fi.Size()
	}
	_ = os.Remove(path)
	return r
}

// sealedStore returns st sealed under a master key of the benchmark's own,
// as dsar runs every store (cmd/dsar: sealedstore.New around the driver,
// the exports kept in the store's export records): a request created
// through it gets an export key, under which each export is sealed.
func sealedStore(b *testing.B, st *benchStore) *sealedstore.Store {
	b.Helper()
	ring, err := envelope.ParseKeyring(envelope.GenerateMasterKey())
	if err != nil {
		b.Fatal(err)
	}
	return sealedstore.New(st, ring, sealedstore.Options{})
}

// droppedRecords is a connectors.RecordWriter that counts records and
// keeps none.
type droppedRecords int

func (d *droppedRecords) WriteRecord(context.Context, string, any) error { *d++; return nil }

// checkZip reads the zip at path back: its orders file must be a JSON
// array of n records, each the subject's, no id twice.
func checkZip(b *testing.B, path string, n int) {
	b.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		b.Fatalf("read zip: %v", err)
	}
	defer zr.Close()
	var found bool
	for _, zf := range zr.File {
		if zf.Name != "shop/orders.json" {
			continue
		}
		found = true
		rc, err := zf.Open()
		if err != nil {
			b.Fatal(err)
		}
		dec := json.NewDecoder(rc)
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			b.Fatalf("shop/orders.json: not a JSON array (%v, %v)", t, err)
		}
		seen := make(map[int64]bool, n)
		for dec.More() {
			var rec struct {
				ID         *int64 `json:"id"`
				CustomerID *int64 `json:"customer_id"`
			}
			if err := dec.Decode(&rec); err != nil {
				b.Fatalf("shop/orders.json: record %d: %v", len(seen)+1, err)
			}
			if rec.ID == nil || rec.CustomerID == nil {
				b.Fatalf("shop/orders.json: record %d has no id or customer_id", len(seen)+1)
			}
			if *rec.CustomerID != exportSubject {
				b.Fatalf("shop/orders.json: record %d (id %d) is customer %d's, not the subject's", len(seen)+1, *rec.ID, *rec.CustomerID)
			}
			if seen[*rec.ID] {
				b.Fatalf("shop/orders.json: order %d twice", *rec.ID)
			}
			seen[*rec.ID] = true
		}
		if _, err := dec.Token(); err != nil {
			b.Fatalf("shop/orders.json: %v", err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatalf("shop/orders.json: %v", err)
		}
		_ = rc.Close()
		if len(seen) != n {
			b.Fatalf("shop/orders.json: %d records; want %d", len(seen), n)
		}
	}
	if !found {
		b.Fatal("the zip has no shop/orders.json")
	}
}

// exportFigures sums the iterations of one size.
type exportFigures struct {
	runs                      int // iterations
	rounds                    int // raw reads and exports, over all iterations
	raw, connector, export    time.Duration
	zip                       time.Duration
	idle                      int64 // the first iteration's, KiB
	exportPeak, zipPeak, over int64 // the largest, KiB
	zipBytes                  int64
}

func (m *exportFigures) add(r exportRun) {
	if m.runs == 0 {
		m.idle = r.idle
	}
	m.runs++
	m.rounds += r.rounds
	m.raw += r.raw
	m.connector += r.connector
	m.export += r.export
	m.zip += r.zip
	m.exportPeak = max(m.exportPeak, r.exportPeak)
	m.zipPeak = max(m.zipPeak, r.zipPeak)
	m.over = max(m.over, r.exportOver, r.zipPeak-r.idle2)
	m.zipBytes = r.zipBytes
}

// report reports the figures and fails the benchmark when memory is over
// budget. The ratio's goal is reported, not enforced: a busy machine slows
// either side.
func (m *exportFigures) report(b *testing.B, n int) {
	b.Helper()
	if m.runs == 0 {
		return
	}
	records := float64(n) * float64(m.rounds)
	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	exportRate, rawRate := records/m.export.Seconds(), records/m.raw.Seconds()
	b.ReportMetric(float64(n), "records")
	b.ReportMetric(exportRate, "export-records/s")
	b.ReportMetric(rawRate, "raw-records/s")
	b.ReportMetric(exportRate/rawRate, "ratio")
	b.ReportMetric(mib(m.idle), "idle-MiB")
	b.ReportMetric(mib(m.exportPeak), "export-peak-MiB")
	b.ReportMetric(mib(m.zipPeak), "zip-peak-MiB")
	b.ReportMetric(mib(m.over), "rss-over-idle-MiB")
	b.Logf("%d records: the connector alone, records dropped: %.0f records/s (ratio %.2f)", n, records/m.connector.Seconds(), records/m.connector.Seconds()/rawRate)
	b.Logf("%d records, %d rounds: raw read %s, export %s (each, on average), zip %s (%d KiB, %.0f records/s); ratio %.2f (goal >= 0.50); RSS idle %.0f MiB, export peak %.0f MiB, zip peak %.0f MiB, over idle %.0f MiB (goal <= %d)",
		n, m.rounds, (m.raw / time.Duration(m.rounds)).Round(time.Millisecond), (m.export / time.Duration(m.rounds)).Round(time.Millisecond),
		(m.zip / time.Duration(m.runs)).Round(time.Millisecond), m.zipBytes>>10, float64(n)*float64(m.runs)/m.zip.Seconds(),
		exportRate/rawRate, mib(m.idle), mib(m.exportPeak), mib(m.zipPeak), mib(m.over), exportMemoryBudget)
	if m.over > exportMemoryBudget<<10 {
		b.Errorf("an export of %d records took %.0f MiB over idle; the budget is %d MiB", n, mib(m.over), exportMemoryBudget)
	}
}
