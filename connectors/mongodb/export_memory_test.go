package mongodb_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/embedded"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// memoryEnv names the sizes TestExportMemory measures, e.g.
// DSAR_EXPORT_RSS=100000,1000000; unset, the test is skipped.
const memoryEnv = "DSAR_EXPORT_RSS"

// serverEnv, set in a child run of this test binary, makes it serve an
// embedded FerretDB from the directory it names (see TestMain).
const serverEnv = "DSAR_EXPORT_RSS_SERVER_DIR"

// memoryBudget is what an export may add to the process's idle RSS.
const memoryBudget = 64 << 20

// serveFerretDB runs an embedded FerretDB storing its files in dir, prints
// its URI on stdout and serves until stdin closes: the customer's server,
// in a process of its own, for TestExportMemory.
func serveFerretDB(dir string) int {
	m, err := embedded.StartMongo(context.Background(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		return 1
	}
	fmt.Println(m.URI())
	_, _ = io.Copy(io.Discard, os.Stdin)
	m.Stop()
	return 0
}

// TestExportMemory measures the memory an export takes in the dsar process:
// one customer with N orders is exported through the mongodb connector into
// the store's export writer, as a job does (workers' exportTo:
// NewExportWriter, Export, Flush), and the zip is then written as a download
// is (app's WriteZip). Each phase's peak RSS (VmHWM, reset before it) must
// stay within 64 MiB of the idle RSS measured just before. The dsar store is
// the embedded SQLite one (with DSAR_TEST_STORE=mongodb: mongostore, in
// another database of the customer's server). The customer's server is
// DSAR_TEST_MONGO_URI when set; otherwise an embedded FerretDB started in a
// child process, so that what FerretDB holds is not counted as dsar's (its
// own peak in each phase is logged beside).
//
//	DSAR_EXPORT_RSS=100000,1000000 go test -run TestExportMemory -v -timeout 3h ./connectors/mongodb/
func TestExportMemory(t *testing.T) {
	sizes := os.Getenv(memoryEnv)
	if sizes == "" {
		t.Skip("set " + memoryEnv + "=100000,1000000 to measure an export's memory")
	}
	uri, server := customerServer(t)
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(2 * time.Hour))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	for _, size := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(size))
		if err != nil || n < 1 {
			t.Fatalf("%s: %q is not a number of records", memoryEnv, size)
		}
		t.Run(strconv.Itoa(n), func(t *testing.T) { measureExport(t, client, server, n) })
	}
}

// customerServer returns the URI of the server to export from and the pid
// of its process, 0 when it is not ours (DSAR_TEST_MONGO_URI).
func customerServer(t *testing.T) (string, int) {
	if uri := os.Getenv("DSAR_TEST_MONGO_URI"); uri != "" {
		return uri, 0
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$") //nolint:gosec // this test binary
	cmd.Env = append(os.Environ(), serverEnv+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start FerretDB process: %v", err)
	}
	t.Cleanup(func() {
		_ = stdin.Close() // the child stops when its stdin closes
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("FerretDB process: no URI: %v", err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid
}

func measureExport(t *testing.T, client *mongo.Client, server, n int) {
	ctx := t.Context()
	shopDB := client.Database(testenv.Name("rss_shop"))
	dsarDB := client.Database(testenv.Name("rss_dsar"))
	t.Cleanup(func() {
		_ = shopDB.Drop(context.Background())
		_ = dsarDB.Drop(context.Background())
	})

	// The customer: one person with n orders, another's between them.
	start := time.Now()
	if _, err := shopDB.Collection("customers").InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: adaID}, {Key: "email", Value: adaEmail}, {Key: "name", Value: "Ada Lovelace"}},
		bson.D{{Key: "_id", Value: graceID}, {Key: "email", Value: graceEmail}, {Key: "name", Value: "Grace Hopper"}},
	}); err != nil {
		t.Fatalf("seed customers: %v", err)
	}
	others := 0
	batch := make([]any, 0, 1000)
	for i := 0; i < n+others; i++ {
		who := adaID
		if i%100 == 99 {
			who, others = graceID, others+1
		}
		batch = append(batch, bson.D{
			{Key: "_id", Value: i},
			{Key: "customer_id", Value: who},
			{Key: "placed_at", Value: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)},
			{Key: "address", Value: "12 Engine Row, London"},
			{Key: "items", Value: bson.A{
				bson.D{{Key: "sku", Value: fmt.Sprintf("SKU-%06d", i%977)}, {Key: "qty", Value: 1 + i%3}, {Key: "price", Value: 19.99}},
				bson.D{{Key: "sku", Value: fmt.Sprintf("SKU-%06d", i%331)}, {Key: "qty", Value: 1}, {Key: "price", Value: 4.5}},
			}},
			{Key: "total", Value: 24.49 + float64(i%3)*19.99},
			{Key: "note", Value: "Leave the parcel with the neighbour at number 14 if nobody answers."},
		})
		if len(batch) == cap(batch) || i == n+others-1 {
			if _, err := shopDB.Collection("orders").InsertMany(ctx, batch); err != nil {
				t.Fatalf("seed orders: %v", err)
			}
			batch = batch[:0]
		}
	}
	seeded := time.Since(start)

	c := shop(t, shopDB, "erase: delete")
	st := rssStore(t, dsarDB)
	now := time.Now().UTC().Truncate(time.Millisecond)
	req := &dsr.Request{ID: testenv.Name("req"), Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusCompleted,
		Source: "agent_api", ReceivedAt: now, ClosedAt: &now}
	if err := st.CreateRequest(ctx, req); err != nil {
		t.Fatalf("create request: %v", err)
	}
	job := dsr.NewJob(req.ID, "shop", dsr.ActionExport, now)
	s := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: adaEmail}, {Kind: "customer_id", Value: adaID.Hex()}}}

	// The job: the export into the store's export records.
	idle := settle(t, server)
	start = time.Now()
	w, err := st.NewExportWriter(ctx, &job)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.(connectors.Exporter).Export(ctx, s, w)
	if err == nil {
		err = w.Flush(ctx)
	}
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	exported, exportPeak, serverExport := time.Since(start), testenv.ProcKiB(t, "self", "VmHWM"), serverPeak(t, server)
	if res.Records != int64(n)+1 { // the customer and their orders
		t.Fatalf("exported %d records; want %d", res.Records, n+1)
	}
	job.Status, job.Records = dsr.JobSucceeded, res.Records
	for _, col := range res.Collections {
		job.Collections = append(job.Collections, dsr.CollectionResult{Name: col.Name, Outcome: col.Outcome, Records: col.Records})
	}
	if err := st.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		t.Fatal(err)
	}

	// The download: the zip, streamed from the export records.
	idle2 := settle(t, server)
	start = time.Now()
	e, err := app.New(app.Deps{Store: st}).ExportOf(ctx, req, "rss")
	if err != nil {
		t.Fatal(err)
	}
	var zipped countingWriter
	if err := e.WriteZip(ctx, &zipped); err != nil {
		t.Fatalf("write zip: %v", err)
	}
	written, zipPeak, serverZip := time.Since(start), testenv.ProcKiB(t, "self", "VmHWM"), serverPeak(t, server)

	t.Logf("%d records: seeded in %s (%.0f/s); export %s, zip %s (%d KiB)", n, seeded.Round(time.Second), float64(n+others)/seeded.Seconds(),
		exported.Round(time.Second), written.Round(time.Second), zipped>>10)
	t.Logf("%d records: dsar RSS idle %d MiB, export peak %d MiB (+%d), idle %d MiB, zip peak %d MiB (+%d); server peak: export %s, zip %s",
		n, idle>>10, exportPeak>>10, (exportPeak-idle)>>10, idle2>>10, zipPeak>>10, (zipPeak-idle2)>>10, serverExport, serverZip)
	if (exportPeak-idle)<<10 > memoryBudget || (zipPeak-idle2)<<10 > memoryBudget {
		t.Errorf("an export of %d records took more than %d MiB over idle", n, memoryBudget>>20)
	}
}

// rssStore is the dsar store the measurement writes the export to: the
// embedded SQLite store (the default), or with DSAR_TEST_STORE=mongodb
// mongostore on db.
func rssStore(t *testing.T, db *mongo.Database) store.Store {
	t.Helper()
	var st store.Store = mongostore.New(db, nil)
	if os.Getenv("DSAR_TEST_STORE") != "mongodb" {
		lite, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "dsar.db"), sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lite.Close() })
		st = lite
	}
	if err := st.Prepare(t.Context()); err != nil {
		t.Fatalf("prepare store: %v", err)
	}
	return st
}

// settle collects garbage, resets the peak RSS of this process and of the
// server's (pid server, when not 0) and returns this process's RSS, in KiB.
func settle(t *testing.T, server int) int64 {
	if server != 0 {
		return testenv.SettleRSS(t, server)
	}
	return testenv.SettleRSS(t)
}

// serverPeak returns the peak RSS of the server's process since settle, in
// MiB, or "not measured" when it is not ours.
func serverPeak(t *testing.T, server int) string {
	if server == 0 {
		return "not measured"
	}
	return fmt.Sprintf("%d MiB", testenv.ProcKiB(t, strconv.Itoa(server), "VmHWM")>>10)
}

type countingWriter int64

func (w *countingWriter) Write(b []byte) (int, error) {
	*w += countingWriter(len(b))
	return len(b), nil
}
