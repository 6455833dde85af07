package klaviyo

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

func TestMain(m *testing.M) { testenv.Main(m) }

// TestWorkerWaits runs an erasure through the workers' waiting jobs, on
// the test store and Redis, against the fake account: the job files the
// deletion, waits on the profile (its handle the profile id, no email),
// is polled every poll_every, and ends done once Klaviyo answers 404 for
// the profile; the request completes.
func TestWorkerWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFake(t)
	f.seed()
	f.set(func(f *fake) { f.lag = 1 })
	c := f.connector(t, Spec{})
	reg := connectors.NewRegistry()
	if err := reg.Add(c); err != nil {
		t.Fatal(err)
	}
	clk := testenv.NewClock(time.Now().UTC())
	st := teststore.Open(t, clk.Now)
	rd := testenv.RedisServer(t)
	queue := workers.NewQueue(asynq.RedisClientOpt{Addr: rd.Addr}, workers.QueueOptions{Name: testenv.Queue(t, rd), MaxRetry: 1, JobTimeout: 10 * time.Second})
	t.Cleanup(func() { _ = queue.Close() })
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	proc := workers.NewProcessor(workers.Deps{Store: st, Connectors: reg, Queue: queue, Index: idx, Log: slog.New(slog.NewTextHandler(logs, nil))},
		workers.Options{MaxRetry: 1, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: clk.Now})
	r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester",
		Status: dsr.StatusVerified, ReceivedAt: clk.Now(),
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: adaEmail, Source: dsr.SourceSubject}}}, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	id := dsr.JobID(r.ID, c.Name(), dsr.ActionErase)
	_ = proc.RunJob(ctx, id)
	job, err := st.Job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != dsr.JobWaiting || job.Handle != "erase:"+adaID || job.PollAt == nil || !job.PollAt.Equal(clk.Now().Truncate(time.Millisecond).Add(DefaultPollEvery)) {
		t.Fatalf("after filing: job %s, handle %q, poll_at %v; want waiting on erase:%s, polled in %v", job.Status, job.Handle, job.PollAt, adaID, DefaultPollEvery)
	}
	if f.records(adaID) == 0 {
		t.Fatal("the profile went at once; want it deleted later")
	}
	for range 3 {
		clk.Add(DefaultPollEvery + time.Minute)
		_ = proc.RunJob(ctx, id)
	}
	if job, err = st.Job(ctx, id); err != nil {
		t.Fatal(err)
	}
	if job.Status != dsr.JobSucceeded {
		t.Fatalf("job %s (error %q); want %s", job.Status, job.Error, dsr.JobSucceeded)
	}
	if f.records(adaID) != 0 || f.records(bobID) == 0 {
		t.Errorf("ada %d, bob %d records; want ada deleted, bob intact", f.records(adaID), f.records(bobID))
	}
	got, err := st.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dsr.StatusCompleted {
		t.Errorf("request %s; want %s", got.Status, dsr.StatusCompleted)
	}
	if strings.Contains(logs.String(), "@example.com") {
		t.Errorf("logs hold an email address:\n%s", logs.String())
	}
}
