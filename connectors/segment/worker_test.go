package segment

import (
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
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
			f := newFake(t)
			f.set(func(f *fake) { f.final, f.events["ada@example.com"] = tc.final, 4 })
			c := f.connector(t, Spec{UserID: []string{"email"}})
			w := connectortest.NewWorker(t, c)
			r := w.File(t, dsr.TypeDeletion, dsr.Identity{Kind: dsr.KindEmail, Value: "ada@example.com"})
			id := dsr.JobID(r.ID, c.Name(), dsr.ActionErase)
			job := w.Run(t, id)
			if job.Status != dsr.JobWaiting || job.Handle == "" || job.PollAt == nil || !job.PollAt.Equal(w.Clock.Now().Truncate(time.Millisecond).Add(time.Hour)) {
				t.Fatalf("after filing: job %s, handle %q, poll_at %v; want waiting on the regulation, polled in 1h", job.Status, job.Handle, job.PollAt)
			}
			if job = w.Poll(t, id, 61*time.Minute, 3); job.Status != tc.job {
				t.Fatalf("job %s (error %q); want %s", job.Status, job.Error, tc.job)
			}
			for _, want := range tc.errHas {
				if !strings.Contains(job.Error, want) {
					t.Errorf("job error %q does not say %q", job.Error, want)
				}
			}
			if strings.Contains(job.Error, "ada@example.com") {
				t.Errorf("job error quotes the subject: %s", job.Error)
			}
			if got := w.Request(t, r.ID); got.Status != tc.request {
				t.Errorf("request %s; want %s", got.Status, tc.request)
			}
			w.CheckLogs(t, "@example.com")
		})
	}
}
