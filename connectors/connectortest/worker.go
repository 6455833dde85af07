package connectortest

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/workers"
)

// Worker runs the workers' jobs of some connectors as the service does, on
// the test store (internal/teststore), a queue of the test's own on the
// test Redis, and a clock the test moves: a connector type's end-to-end
// test files a request, which fans out, and drives its jobs. A package
// using it calls testenv.Main from its TestMain.
//
// Only tests may import this file's package: it pulls in the workers.
type Worker struct {
	// Store is the test store the processor runs on.
	Store *teststore.Store
	// Proc is the processor, whose retries, lease and timeouts are short.
	Proc *workers.Processor
	// Clock is the processor's and the store's clock: Poll moves it.
	Clock *testenv.Clock
	// Logs is what the processor logged.
	Logs  *testenv.Buffer
	index *dsr.BlindIndex
}

// workerTimeout bounds one job's run, and the queue's tasks.
const workerTimeout = 10 * time.Second

// NewWorker returns a Worker for the connectors cs, released when t ends.
func NewWorker(t testing.TB, cs ...connectors.Connector) *Worker {
	t.Helper()
	reg := connectors.NewRegistry()
	for _, c := range cs {
		if err := reg.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	w := &Worker{Clock: testenv.NewClock(time.Now().UTC()), Logs: &testenv.Buffer{}}
	w.Store = teststore.Open(t, w.Clock.Now)
	rd := testenv.RedisServer(t)
	queue := workers.NewQueue(asynq.RedisClientOpt{Addr: rd.Addr}, workers.QueueOptions{Name: testenv.Queue(t, rd), MaxRetry: 1, JobTimeout: workerTimeout})
	t.Cleanup(func() { _ = queue.Close() })
	var err error
	if w.index, err = dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	w.Proc = workers.NewProcessor(workers.Deps{Store: w.Store, Connectors: reg, Queue: queue, Index: w.index, Log: slog.New(slog.NewTextHandler(w.Logs, nil))},
		workers.Options{MaxRetry: 1, Lease: time.Minute, JobTimeout: workerTimeout, SweepGrace: time.Minute, Now: w.Clock.Now})
	return w
}

// File files a verified GDPR request of type typ for the subject's
// identities ids (Source is set to dsr.SourceSubject where empty) and fans
// it out into its jobs, which it does not run.
func (w *Worker) File(t testing.TB, typ dsr.Type, ids ...dsr.Identity) *dsr.Request {
	t.Helper()
	ctx := context.Background()
	for i := range ids {
		if ids[i].Source == "" {
			ids[i].Source = dsr.SourceSubject
		}
	}
	r, err := dsr.NewRequest(dsr.Intake{Type: typ, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester",
		Status: dsr.StatusVerified, ReceivedAt: w.Clock.Now(), Identities: ids}, w.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := w.Proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	return r
}

// Run runs job id once, now, and returns it as stored after. The run's own
// error is not returned: what it did shows in the job.
func (w *Worker) Run(t testing.TB, id string) *dsr.Job {
	t.Helper()
	_ = w.Proc.RunJob(context.Background(), id)
	return w.Job(t, id)
}

// Poll moves the clock on by every and runs job id, as the worker polls a
// waiting job, until the job is final (dsr.JobStatus.Terminal) or has run
// times times; it returns the job as stored after.
func (w *Worker) Poll(t testing.TB, id string, every time.Duration, times int) *dsr.Job {
	t.Helper()
	job := w.Job(t, id)
	for range times {
		if job.Status.Terminal() {
			break
		}
		w.Clock.Add(every)
		job = w.Run(t, id)
	}
	return job
}

// Job returns job id as stored.
func (w *Worker) Job(t testing.TB, id string) *dsr.Job {
	t.Helper()
	job, err := w.Store.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// Request returns request id as stored.
func (w *Worker) Request(t testing.TB, id string) *dsr.Request {
	t.Helper()
	r, err := w.Store.Request(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// CheckLogs fails t when the processor's log holds any of secrets (the
// subject's email or its domain): no personal data is logged.
func (w *Worker) CheckLogs(t testing.TB, secrets ...string) {
	t.Helper()
	logs := w.Logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs hold %q:\n%s", s, logs)
		}
	}
}
