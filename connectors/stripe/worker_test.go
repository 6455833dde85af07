package stripe

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

// TestWorkerWaits runs an erasure by redaction job through the workers'
// waiting jobs, on the test store and Redis, against the fake account:
// the job waits on the redaction job, is polled every poll_every (which
// runs the redaction job once it is ready), and ends done when Stripe
// reports it succeeded; when it fails validation, the job fails and the
// request needs an agent.
func TestWorkerWaits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		fail    bool
		job     dsr.JobStatus
		request dsr.Status
		errHas  string
	}{
		{"succeeded", false, dsr.JobSucceeded, dsr.StatusCompleted, ""},
		{"failed", true, dsr.JobFailed, dsr.StatusNeedsAttention, "failed validation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFake(t)
			seed(f)
			f.set(func(f *fake) { f.failValidation = tc.fail })
			c := f.connector(t, Spec{Erase: EraseRedact})
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
				Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: ada.email, Source: dsr.SourceSubject}}}, idx)
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
			if job.Status != dsr.JobWaiting || !strings.HasPrefix(job.Handle, "prj_") || job.PollAt == nil || !job.PollAt.Equal(clk.Now().Truncate(time.Millisecond).Add(time.Hour)) {
				t.Fatalf("after filing: job %s, handle %q, poll_at %v; want waiting on the redaction job, polled in 1h", job.Status, job.Handle, job.PollAt)
			}
			for range 4 {
				clk.Add(61 * time.Minute)
				_ = proc.RunJob(ctx, id)
			}
			if job, err = st.Job(ctx, id); err != nil {
				t.Fatal(err)
			}
			if job.Status != tc.job || !strings.Contains(job.Error, tc.errHas) {
				t.Fatalf("job %s (error %q); want %s saying %q", job.Status, job.Error, tc.job, tc.errHas)
			}
			if strings.Contains(job.Error, ada.email) {
				t.Errorf("job error quotes the subject: %s", job.Error)
			}
			got, err := st.Request(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.request {
				t.Errorf("request %s; want %s", got.Status, tc.request)
			}
			if n := f.holds(ada.email); (n == 0) == tc.fail {
				t.Errorf("Ada's records after the job: %d", n)
			}
			if strings.Contains(logs.String(), "@example.com") {
				t.Errorf("logs hold an email address:\n%s", logs.String())
			}
		})
	}
}
