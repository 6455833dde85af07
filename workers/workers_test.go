package workers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/mongodb"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/workers"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type env struct {
	t     *testing.T
	store *teststore.Store
	cmds  *testenv.Commands
	shop  *mongo.Database
	reg   *connectors.Registry
	queue *workers.Queue
	proc  *workers.Processor
	redis asynq.RedisClientOpt
	qname string
	clock *testenv.Clock
	index *dsr.BlindIndex
	logs  *testenv.Buffer
}

// setup gives a test a store, a seeded shop with a mongodb connector, a
// queue of its own on the test Redis and a processor. extra connectors are
// registered beside the shop.
func setup(t *testing.T, maxRetry int, extra ...connectors.Connector) *env {
	t.Helper()
	return setupOn(t, testenv.RedisServer(t), maxRetry, extra...)
}

// setupOn is setup on the Redis r.
func setupOn(t *testing.T, r testenv.Redis, maxRetry int, extra ...connectors.Connector) *env {
	t.Helper()
	ctx := context.Background()
	clk := testenv.NewClock(time.Now().UTC())
	store := teststore.Open(t, clk.Now)
	cmds := store.Commands
	shopClient := testenv.Client(t)
	shop := testenv.Database(t, shopClient)
	seedShop(t, shop)
	reg := connectors.NewRegistry()
	conn, err := mongodb.New(ctx, "shop", mongodb.Spec{Database: shop.Name(), Collections: []mongodb.CollectionSpec{
		{Name: "customers", Match: map[string]string{"email": "email"}, Provide: map[string]string{"customer_id": "_id"},
			Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete}},
		{Name: "orders", Match: map[string]string{"customer_id": "customer_id"}, Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete}},
	}}, shopClient)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append([]connectors.Connector{conn}, extra...) {
		if err := reg.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	qname := testenv.Queue(t, r)
	redis := asynq.RedisClientOpt{Addr: r.Addr}
	queue := workers.NewQueue(redis, workers.QueueOptions{Name: qname, MaxRetry: maxRetry, JobTimeout: 10 * time.Second})
	t.Cleanup(func() { _ = queue.Close() })
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	proc := workers.NewProcessor(workers.Deps{Store: store, Connectors: reg, Queue: queue, Index: idx, Log: log}, workers.Options{
		MaxRetry: maxRetry, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: clk.Now,
	})
	e := &env{t: t, store: store, cmds: cmds, shop: shop, reg: reg, queue: queue, proc: proc, redis: redis, qname: qname, clock: clk, index: idx, logs: logs}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "@example.com") {
			t.Errorf("logs contain an email address:\n%s", logs.String())
		}
	})
	return e
}

func seedShop(t *testing.T, db *mongo.Database) {
	t.Helper()
	ctx := context.Background()
	docs := map[string][]any{
		"customers": {
			bson.D{{Key: "_id", Value: "cus_ada"}, {Key: "email", Value: "ada@example.com"}},
			bson.D{{Key: "_id", Value: "cus_grace"}, {Key: "email", Value: "grace@example.com"}},
		},
		"orders": {
			bson.D{{Key: "_id", Value: "o1"}, {Key: "customer_id", Value: "cus_ada"}},
			bson.D{{Key: "_id", Value: "o2"}, {Key: "customer_id", Value: "cus_ada"}},
			bson.D{{Key: "_id", Value: "o3"}, {Key: "customer_id", Value: "cus_grace"}},
		},
	}
	for coll, d := range docs {
		if _, err := db.Collection(coll).InsertMany(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
}

// startWorkers runs an asynq server on the test queue until the test ends.
func (e *env) startWorkers() {
	e.t.Helper()
	e.startWorkersRetrying(20 * time.Millisecond)
}

// startWorkersRetrying is startWorkers with a first retry after retryBase.
func (e *env) startWorkersRetrying(retryBase time.Duration) {
	e.t.Helper()
	srv := workers.NewServer(e.redis, workers.ServerOptions{
		Queue: e.qname, Concurrency: 4, RetryBase: retryBase, ShutdownTimeout: 5 * time.Second,
		Log: slog.New(slog.NewTextHandler(e.logs, nil)), PollInterval: 100 * time.Millisecond,
	})
	if err := srv.Start(e.proc.Mux()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(srv.Shutdown)
}

func (e *env) file(typ dsr.Type, email string) *dsr.Request {
	e.t.Helper()
	return e.fileAs(typ, email, dsr.StatusVerified)
}

// fileAs stores a GDPR request of typ for email in status.
func (e *env) fileAs(typ dsr.Type, email string, status dsr.Status) *dsr.Request {
	e.t.Helper()
	r, err := dsr.NewRequest(dsr.Intake{Type: typ, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester",
		Status: status, ReceivedAt: e.clock.Now(),
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}}}, e.index)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateRequest(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// waitStatus polls the store until the request reaches want.
func (e *env) waitStatus(id string, want dsr.Status) *dsr.Request {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.store.Request(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if r.Status == want {
			return r
		}
		if time.Now().After(deadline) {
			jobs, _ := e.store.Jobs(context.Background(), id)
			e.t.Fatalf("request stuck in %s, want %s; jobs: %+v\nlogs:\n%s", r.Status, want, jobs, e.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) count(coll string, filter bson.D) int64 {
	e.t.Helper()
	n, err := e.shop.Collection(coll).CountDocuments(context.Background(), filter)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) tasks() int {
	e.t.Helper()
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	queues, err := insp.Queues()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, q := range queues {
		if q == e.qname {
			info, err := insp.GetQueueInfo(e.qname)
			if err != nil {
				e.t.Fatal(err)
			}
			return info.Size
		}
	}
	return 0
}

func TestDeletionRunsEndToEnd(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	e.startWorkers()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := e.queue.EnqueueFanout(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	done := e.waitStatus(r.ID, dsr.StatusCompleted)

	wantIDs := []dsr.Identity{
		{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject},
		{Kind: dsr.KindCustomerID, Value: "cus_ada", Source: "shop/customers"},
	}
	if diff := cmp.Diff(wantIDs, done.Identities); diff != "" {
		t.Errorf("resolved identities (-want +got):\n%s", diff)
	}
	if len(done.IdentityHashes) != 2 {
		t.Errorf("blind index of resolved identities: %v", done.IdentityHashes)
	}
	jobs, err := e.store.Jobs(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Status != dsr.JobSucceeded || jobs[0].Records != 3 {
		t.Errorf("jobs = %+v, want one succeeded with 3 records", jobs)
	}
	if n := e.count("orders", bson.D{{Key: "customer_id", Value: "cus_ada"}}); n != 0 {
		t.Errorf("%d of Ada's orders left", n)
	}
	if n := e.count("orders", bson.D{}); n != 1 {
		t.Errorf("%d orders left, want Grace's one", n)
	}
}

func TestFanoutIsIdempotent(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	ctx := context.Background()
	r := e.file(dsr.TypeAccess, "ada@example.com")
	for range 3 {
		if err := e.proc.Fanout(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := e.store.Jobs(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Errorf("%d jobs after three fan-outs, want 1", len(jobs))
	}
	// One job task and one fan-out task, each queued once.
	if n := e.tasks(); n != 2 {
		t.Errorf("%d tasks queued, want 2", n)
	}
}

// broken is a connector whose erase fails: the first fails calls with a
// transient error, or always with err when permanent is set.
type broken struct {
	name      string
	fails     int32
	permanent bool
	// retryAfter makes the failures "call again in a second" answers
	// (connectors.RetryAfter), as a rate-limited API gives.
	retryAfter bool
	calls      atomic.Int32
}

func (b *broken) Name() string { return b.name }

func (b *broken) Erase(context.Context, connectors.Subject) (connectors.Result, error) {
	n := b.calls.Add(1)
	// The message quotes the subject, as driver errors sometimes do.
	err := fmt.Errorf("upstream rejected ada@example.com (call %d)", n)
	if b.permanent {
		return connectors.Result{}, connectors.Permanent(err)
	}
	if n <= b.fails && b.retryAfter {
		return connectors.Result{}, connectors.RetryAfter(time.Second, err)
	}
	if n <= b.fails {
		return connectors.Result{}, err
	}
	var res connectors.Result
	res.Add("contacts", "deleted", 1)
	return res, nil
}

func TestFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		conn         *broken
		maxRetry     int
		wantRequest  dsr.Status
		wantJob      dsr.JobStatus
		wantAttempts int
	}{
		{"transient failures are retried", &broken{name: "crm", fails: 2}, 5, dsr.StatusCompleted, dsr.JobSucceeded, 3},
		{"retries run out", &broken{name: "crm", fails: 100}, 2, dsr.StatusNeedsAttention, dsr.JobFailed, 3},
		{"permanent failure is not retried", &broken{name: "crm", permanent: true}, 5, dsr.StatusNeedsAttention, dsr.JobFailed, 1},
		{"a system's retry-after does not use up retries", &broken{name: "crm", fails: 2, retryAfter: true}, 1, dsr.StatusCompleted, dsr.JobSucceeded, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, tt.maxRetry, tt.conn)
			e.startWorkers()
			r := e.file(dsr.TypeDeletion, "ada@example.com")
			if err := e.queue.EnqueueFanout(context.Background(), r.ID); err != nil {
				t.Fatal(err)
			}
			e.waitStatus(r.ID, tt.wantRequest)
			job, err := e.store.Job(context.Background(), dsr.JobID(r.ID, "crm", dsr.ActionErase))
			if err != nil {
				t.Fatal(err)
			}
			if job.Status != tt.wantJob || job.Attempts != tt.wantAttempts {
				t.Errorf("job: status %s after %d attempts, want %s after %d", job.Status, job.Attempts, tt.wantJob, tt.wantAttempts)
			}
			if got := int(tt.conn.calls.Load()); got != tt.wantAttempts {
				t.Errorf("connector called %d times, want %d", got, tt.wantAttempts)
			}
			if tt.conn.retryAfter && job.Waits != int(tt.conn.fails) {
				t.Errorf("job: %d waits, want the %d deferred attempts", job.Waits, tt.conn.fails)
			}
			if tt.wantJob == dsr.JobFailed && (!strings.Contains(job.Error, "[redacted]") || strings.Contains(job.Error, "ada@")) {
				t.Errorf("job error %q: want the subject's email redacted", job.Error)
			}
			shop, err := e.store.Job(context.Background(), dsr.JobID(r.ID, "shop", dsr.ActionErase))
			if err != nil || shop.Status != dsr.JobSucceeded {
				t.Errorf("the healthy connector's job: %+v, %v", shop, err)
			}
		})
	}
}

// TestSweepRecoversLostWork loses the queue's content at each stage (Redis
// flushed, a worker killed mid-job) and shows the sweep re-drives the work
// from the store.
func TestSweepRecoversLostWork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		lose func(e *env, r *dsr.Request)
	}{
		{"fan-out task lost", func(e *env, r *dsr.Request) {
			if err := e.queue.EnqueueFanout(context.Background(), r.ID); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"job tasks lost", func(e *env, r *dsr.Request) {
			if err := e.proc.Fanout(context.Background(), r.ID); err != nil {
				e.t.Fatal(err)
			}
		}},
		{"worker killed mid-job", func(e *env, r *dsr.Request) {
			if err := e.proc.Fanout(context.Background(), r.ID); err != nil {
				e.t.Fatal(err)
			}
			// A worker claims the job, then dies without finishing it.
			if _, err := e.store.ClaimJob(context.Background(), dsr.JobID(r.ID, "shop", dsr.ActionErase), time.Minute); err != nil {
				e.t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, 3)
			r := e.file(dsr.TypeDeletion, "ada@example.com")
			tt.lose(e, r)
			// Redis loses everything queued.
			insp := asynq.NewInspector(e.redis)
			if err := insp.DeleteQueue(e.qname, true); err != nil {
				t.Fatal(err)
			}
			_ = insp.Close()
			if n := e.tasks(); n != 0 {
				t.Fatalf("%d tasks left after the loss", n)
			}
			counts, err := e.proc.Sweep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if counts != (workers.SweepCounts{}) {
				t.Errorf("sweep within the grace period re-drove %+v, want nothing", counts)
			}
			e.clock.Add(2 * time.Minute) // past the grace period and the lease
			counts, err = e.proc.Sweep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if counts.Fanouts+counts.Jobs == 0 {
				t.Fatalf("sweep re-drove nothing")
			}
			e.startWorkers()
			done := e.waitStatus(r.ID, dsr.StatusCompleted)
			if n := e.count("customers", bson.D{{Key: "email", Value: "ada@example.com"}}); n != 0 {
				t.Errorf("Ada still in customers after %s", tt.name)
			}
			if done.FannedOutAt == nil {
				t.Error("completed request not marked fanned out")
			}
		})
	}
}

// TestNoConnectorForActionNeedsAttention: a request whose action no
// connector performs is never completed (the person would be told it was
// done when nothing was asked to do it): it needs attention, saying why.
func TestNoConnectorForActionNeedsAttention(t *testing.T) {
	t.Parallel()
	e := setup(t, 3) // the shop connector has no opt_out settings
	ctx := context.Background()
	empty := workers.NewProcessor(workers.Deps{Store: e.store, Connectors: connectors.NewRegistry(), Queue: e.queue, Index: e.index,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, Now: e.clock.Now})
	tests := []struct {
		name string
		proc *workers.Processor
		typ  dsr.Type
		want string
	}{
		{"opt-out, no connector opts out", e.proc, dsr.TypeOptOut, "no connector is configured to opt a person out: nothing was done"},
		{"deletion, no connector at all", empty, dsr.TypeDeletion, "no connector is configured to erase data: nothing was done"},
		{"access, no connector at all", empty, dsr.TypeAccess, "no connector is configured to export data: nothing was done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := dsr.NewRequest(dsr.Intake{Type: tt.typ, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester",
				Status: dsr.StatusVerified, ReceivedAt: e.clock.Now(), Notify: true,
				Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}}, e.index)
			testenv.Must(t, err)
			testenv.Must(t, e.store.CreateRequest(ctx, r))
			testenv.Must(t, tt.proc.Fanout(ctx, r.ID))
			testenv.Must(t, tt.proc.Fanout(ctx, r.ID)) // a second run (a retried task) changes nothing
			got, err := e.store.Request(ctx, r.ID)
			testenv.Must(t, err)
			if got.Status != dsr.StatusNeedsAttention {
				t.Errorf("status %s, want needs_attention", got.Status)
			}
			if last := got.History[len(got.History)-1].Reason; !strings.Contains(last, tt.want) {
				t.Errorf("last history reason %q; want it to contain %q", last, tt.want)
			}
			for _, n := range got.PendingNotices {
				if n == dsr.NoticeCompleted {
					t.Errorf("a completion notice is due for a request nothing was done for")
				}
			}
			jobs, err := e.store.Jobs(ctx, r.ID)
			testenv.Must(t, err)
			if len(jobs) != 0 {
				t.Errorf("%d jobs; want none", len(jobs))
			}
		})
	}
}

// TestCheckConnectors: a worker refuses a registry with no connector for a
// request type, naming each type left without one.
func TestCheckConnectors(t *testing.T) {
	t.Parallel()
	e := setup(t, 3) // shop: export and erase, no opt_out
	optOut, err := mongodb.New(context.Background(), "crm", mongodb.Spec{Database: e.shop.Name(), Collections: []mongodb.CollectionSpec{
		{Name: "contacts", Match: map[string]string{"email": "email"}, Erase: &mongodb.Strategy{Kind: mongodb.StrategyDelete},
			OptOut: &mongodb.Strategy{Kind: mongodb.StrategyDelete}}}}, e.shop.Client())
	testenv.Must(t, err)
	full := connectors.NewRegistry()
	testenv.Must(t, full.Add(optOut))
	tests := []struct {
		name string
		reg  *connectors.Registry
		want string // "" for no error
	}{
		{"empty", connectors.NewRegistry(), "no connector can export data (access requests) or erase data (deletion requests) or opt a person out (opt_out requests):"},
		{"no opt-out", e.reg, "no connector can opt a person out (opt_out requests):"},
		{"every type", full, ""},
	}
	for _, tt := range tests {
		err := workers.CheckConnectors(tt.reg)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: CheckConnectors = %v; want nil", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: CheckConnectors = %v; want an error starting %q", tt.name, err, tt.want)
		}
	}
}

// TestJobRoundTrips pins the store commands of one job run: claim, record
// the outcome, and settle (count the job on the request, close it). A job
// carries the identities it acts on and the request counts its open jobs,
// so a run reads neither the request nor the jobs: 8 commands (and one
// more when it removed the person from a segment, for the segmentation
// report), where it was 9 (a
// read of the request and one of every job of the request); a fan-out 6,
// where it was 7 (its mark returns the counts: no read of the jobs), and
// three more for a deletion or opt-out, which suppresses the person first.
func TestJobRoundTrips(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	e.store.NeedMongo(t)
	ctx := context.Background()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := e.proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	e.cmds.Reset()
	if err := e.proc.RunJob(ctx, dsr.JobID(r.ID, "shop", dsr.ActionErase)); err != nil {
		t.Fatal(err)
	}
	// claim, audit "started", record the outcome, audit "succeeded", count
	// it finished (the last: none open), settle, audit the settlement, mark
	// it audited (no removal: the shop's collections hold no segment)
	want := []string{"findAndModify", "insert", "update", "insert", "findAndModify", "findAndModify", "insert", "update"}
	if diff := cmp.Diff(want, e.cmds.Names()); diff != "" {
		t.Errorf("store commands of a job (-want +got):\n%s", diff)
	}
	e.cmds.Reset()
	r2 := e.file(dsr.TypeDeletion, "grace@example.com")
	e.cmds.Reset()
	if err := e.proc.Fanout(ctx, r2.ID); err != nil {
		t.Fatal(err)
	}
	// read, suppress the person (the entries, the consent event, the
	// audit event "suppressed"), move to in_progress (with resolved
	// identities) and audit it, create jobs, mark fanned out with its jobs
	// counted (still open)
	want = []string{"find", "insert", "insert", "insert", "findAndModify", "insert", "update", "insert", "findAndModify"}
	if diff := cmp.Diff(want, e.cmds.Names()); diff != "" {
		t.Errorf("store commands of a fan-out (-want +got):\n%s", diff)
	}

	// An opt-in that no connector lifts, for a person with nothing left
	// to lift: read, read the person's entries (nothing still suppressed
	// under its scope: no event, no lift), move to in_progress and audit
	// it, then the mark settles it completed at once (no job, no second
	// read of the suppression list: nobody to ask), audited.
	r3 := e.fileWith(dsr.TypeOptIn, func(in *dsr.Intake) { in.Scopes = []dsr.Scope{dsr.ScopeMarketing} })
	e.cmds.Reset()
	if err := e.proc.Fanout(ctx, r3.ID); err != nil {
		t.Fatal(err)
	}
	want = []string{"find", "find", "findAndModify", "insert", "update", "findAndModify", "findAndModify", "insert", "update"}
	if diff := cmp.Diff(want, e.cmds.Names()); diff != "" {
		t.Errorf("store commands of an opt-in's fan-out (-want +got):\n%s", diff)
	}
}

// TestJobsReadNoJobs: with three connectors, no job run reads a job or the
// request (before, each read the request and all three jobs); each counts
// itself finished on the request, and the last settles it, once.
func TestJobsReadNoJobs(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, &outage{name: "crm"}, &outage{name: "mailer"})
	ctx := context.Background()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := e.proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	// claim, audit "started", record, audit "succeeded", count it finished
	open := []string{"findAndModify", "insert", "update", "insert", "findAndModify"}
	for i, conn := range []string{"crm", "mailer", "shop"} {
		e.cmds.Reset()
		if err := e.proc.RunJob(ctx, dsr.JobID(r.ID, conn, dsr.ActionErase)); err != nil {
			t.Fatal(err)
		}
		want := open
		if i == 2 { // the last: settle, audit the settlement, mark it audited
			want = append(slices.Clone(open), "findAndModify", "insert", "update")
		}
		if e.store.Mongo != nil {
			if diff := cmp.Diff(want, e.cmds.Names()); diff != "" {
				t.Errorf("store commands of job %d of 3 (-want +got):\n%s", i+1, diff)
			}
			for _, c := range e.cmds.All() {
				if c.Name == "find" {
					t.Errorf("job %d of 3 read %s: %s", i+1, c.Collection, c.Body)
				}
			}
		}
	}
	got, err := e.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dsr.StatusCompleted {
		t.Errorf("status %s after its three jobs; want completed", got.Status)
	}
}

// flakyResolver is a connector whose identity resolution fails while down
// is set, with an error that quotes the subject.
type flakyResolver struct {
	down atomic.Bool
}

func (f *flakyResolver) Name() string { return "lookup" }

func (f *flakyResolver) Resolve(_ context.Context, s connectors.Subject) ([]connectors.Identity, error) {
	if f.down.Load() {
		return nil, fmt.Errorf("lookup failed for %s", s.Values("email")[0])
	}
	return nil, nil
}

// panicky is a connector whose erase panics with a value that quotes the
// subject.
type panicky struct{}

func (panicky) Name() string { return "crm" }

func (panicky) Erase(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	panic("bad row for " + s.Values("email")[0])
}

// TestSweepReplacesDeadTasks: a fan-out whose retries ran out while a
// resolver was down is archived by asynq, which then refuses its task id;
// the sweep must replace it, or the request would stay verified for ever.
func TestSweepReplacesDeadTasks(t *testing.T) {
	t.Parallel()
	res := &flakyResolver{}
	res.down.Store(true)
	e := setup(t, 0, res)
	// asynq gives up after one attempt; the request's own fan-out budget
	// (MaxRetry+1 failures) is larger.
	e.proc = workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{
		MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: e.clock.Now,
	})
	e.startWorkers()
	r := e.file(dsr.TypeAccess, "ada@example.com")
	if err := e.queue.EnqueueFanout(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	waitArchived(t, insp, e.qname, "fanout:"+r.ID)
	if info, _ := insp.GetTaskInfo(e.qname, "fanout:"+r.ID); strings.Contains(info.LastErr, "ada@") {
		t.Errorf("the queue keeps the subject's email in the task's error: %q", info.LastErr)
	}

	res.down.Store(false) // the resolver is back
	e.clock.Add(2 * time.Minute)
	counts, err := e.proc.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts.Fanouts != 1 {
		t.Errorf("sweep enqueued %d fan-outs, want 1 replacing the dead task", counts.Fanouts)
	}
	e.waitStatus(r.ID, dsr.StatusCompleted)
}

func waitArchived(t *testing.T, insp *asynq.Inspector, queue, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := insp.GetTaskInfo(queue, id)
		if err == nil && info.State == asynq.TaskStateArchived {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s not archived: %+v, %v", id, info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAttemptsAreCountedInTheJob: the last attempt is decided by the job
// document, not by the retry count of the task at hand, so tasks the sweep
// re-creates cannot retry a job for ever.
func TestAttemptsAreCountedInTheJob(t *testing.T) {
	t.Parallel()
	crm := &broken{name: "crm", fails: 100}
	e := setup(t, 1, crm) // two attempts in all
	ctx := context.Background()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := e.proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	id := dsr.JobID(r.ID, "crm", dsr.ActionErase)
	// Each call stands for a fresh task, as the sweep would make.
	if err := e.proc.RunJob(ctx, id); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("first attempt: %v; want a retryable error", err)
	}
	if err := e.proc.RunJob(ctx, id); !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("second attempt: %v; want the job failed for good", err)
	}
	job, err := e.store.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != dsr.JobFailed || job.Attempts != 2 {
		t.Errorf("job: %s after %d attempts, want failed after 2", job.Status, job.Attempts)
	}
	if err := e.proc.RunJob(ctx, id); err != nil {
		t.Errorf("a third task for a failed job: %v; want a no-op", err)
	}
}

// TestNoIdentityLeaks runs a failing resolver and a panicking connector whose
// messages quote the subject, and checks the subject's email reaches neither
// the logs (checked by setup), nor the queue's task errors, nor the job.
func TestNoIdentityLeaks(t *testing.T) {
	t.Parallel()
	res := &flakyResolver{}
	e := setup(t, 0, res, panicky{})
	e.startWorkers()
	ctx := context.Background()

	res.down.Store(true)
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	waitArchived(t, insp, e.qname, "fanout:"+r.ID)
	failed := e.waitStatus(r.ID, dsr.StatusNeedsAttention) // one failure is its whole budget
	if !strings.Contains(failed.FanoutError, "[redacted]") || strings.Contains(failed.FanoutError, "ada@") {
		t.Errorf("the request's fan-out error: %q; want the subject redacted", failed.FanoutError)
	}
	res.down.Store(false)
	if _, err := e.store.Transition(ctx, r.ID, dsr.StatusNeedsAttention, dsr.StatusVerified, dsr.Change{Actor: "agent", ResetFanout: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.ID, dsr.StatusNeedsAttention)
	job, err := e.store.Job(ctx, dsr.JobID(r.ID, "crm", dsr.ActionErase))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(job.Error, "panicked") || strings.Contains(job.Error, "ada@") {
		t.Errorf("panicking job's error: %q", job.Error)
	}
	// asynq archives the task after the handler returned, so after the
	// store recorded the failure.
	waitArchived(t, insp, e.qname, job.ID)
	archived, err := insp.ListArchivedTasks(e.qname)
	if err != nil {
		t.Fatal(err)
	}
	if len(archived) < 2 {
		t.Errorf("%d archived tasks, want the fan-out and the job", len(archived))
	}
	for _, task := range archived {
		if strings.Contains(task.LastErr, "ada@") || strings.Contains(task.LastErr, "example.com") {
			t.Errorf("task %s keeps the subject in its error: %q", task.ID, task.LastErr)
		}
	}
}

// TestExportKeepsTheDataMap: an export job keeps what the connector's entry
// declares under data_map, for the access package; an erase job does not.
func TestExportKeepsTheDataMap(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	dm := connectors.DataMap{Purpose: "Orders", Categories: []string{"contact details"}, Recipients: []string{"carrier"},
		Retention: "6 years", Source: "the person", LegalBasis: "contract"}
	if err := e.reg.SetDataMap("shop", dm); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetDataMap("nope", dm); err == nil {
		t.Error("SetDataMap of a connector not registered: no error")
	}
	e.startWorkers()
	access := e.file(dsr.TypeAccess, "ada@example.com")
	deletion := e.file(dsr.TypeDeletion, "grace@example.com")
	for _, r := range []*dsr.Request{access, deletion} {
		if err := e.queue.EnqueueFanout(context.Background(), r.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		r    *dsr.Request
		want *dsr.DataMap
	}{{access, dsr.DataMapOf(dm)}, {deletion, nil}} {
		e.waitStatus(tt.r.ID, dsr.StatusCompleted)
		jobs, err := e.store.Jobs(context.Background(), tt.r.ID)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("jobs of %s: %+v, %v", tt.r.Type, jobs, err)
		}
		if diff := cmp.Diff(tt.want, jobs[0].DataMap); diff != "" {
			t.Errorf("%s job's data map (-want +got):\n%s", tt.r.Type, diff)
		}
	}
}
