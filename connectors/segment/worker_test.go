package segment

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

// TestWorkerWaits runs a deletion through the workers' waiting jobs, on the
// test store and Redis, against the fake workspace: the job waits on the
// regulation, is polled every poll_every, and ends done when Segment
// finishes; when Segment ends PARTIAL_SUCCESS or FAILED the job fails with
// every destination's status in its error and the request needs an agent.
func TestWorkerWaits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		final   Status
		job     dsr.JobStatus
		request dsr.Status
		errHas  []string
	}{
		{StatusFinished, dsr.JobSucceeded, dsr.StatusCompleted, nil},
		{StatusPartialSuccess, dsr.JobFailed, dsr.StatusNeedsAttention, []string{"PARTIAL_SUCCESS", "Amplitude (dst_amp_1) FINISHED", "Braze (dst_braze_2) FAILED"}},
		{StatusFailed, dsr.JobFailed, dsr.StatusNeedsAttention, []string{"ended FAILED", "Amplitude (dst_amp_1) FAILED", "Braze (dst_braze_2) FAILED"}},
	} {
		t.Run(string(tc.final), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFake(t)
			f.set(func(f *fake) { f.final, f.events["ada@example.com"] = tc.final, 4 })
			c := f.connector(t, Spec{UserID: []string{"email"}})
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
				Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}}, idx)
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
			if job.Status != dsr.JobWaiting || job.Handle == "" || job.PollAt == nil || !job.PollAt.Equal(clk.Now().Truncate(time.Millisecond).Add(time.Hour)) {
				t.Fatalf("after filing: job %s, handle %q, poll_at %v; want waiting on the regulation, polled in 1h", job.Status, job.Handle, job.PollAt)
			}
			for range 3 {
				clk.Add(61 * time.Minute)
				_ = proc.RunJob(ctx, id)
			}
			if job, err = st.Job(ctx, id); err != nil {
				t.Fatal(err)
			}
			if job.Status != tc.job {
				t.Fatalf("job %s (error %q); want %s", job.Status, job.Error, tc.job)
			}
			for _, w := range tc.errHas {
				if !strings.Contains(job.Error, w) {
					t.Errorf("job error %q does not say %q", job.Error, w)
				}
			}
			if strings.Contains(job.Error, "ada@example.com") {
				t.Errorf("job error quotes the subject: %s", job.Error)
			}
			got, err := st.Request(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.request {
				t.Errorf("request %s; want %s", got.Status, tc.request)
			}
			if strings.Contains(logs.String(), "@example.com") {
				t.Errorf("logs hold an email address:\n%s", logs.String())
			}
		})
	}
}
