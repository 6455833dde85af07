package stripe

import (
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
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
			f := newFake(t)
			seed(f)
			f.set(func(f *fake) { f.failValidation = tc.fail })
			c := f.connector(t, Spec{Erase: EraseRedact})
			w := connectortest.NewWorker(t, c)
			r := w.File(t, dsr.TypeDeletion, dsr.Identity{Kind: dsr.KindEmail, Value: ada.email})
			id := dsr.JobID(r.ID, c.Name(), dsr.ActionErase)
			job := w.Run(t, id)
			if job.Status != dsr.JobWaiting || !strings.HasPrefix(job.Handle, "prj_") || job.PollAt == nil || !job.PollAt.Equal(w.Clock.Now().Truncate(time.Millisecond).Add(time.Hour)) {
				t.Fatalf("after filing: job %s, handle %q, poll_at %v; want waiting on the redaction job, polled in 1h", job.Status, job.Handle, job.PollAt)
			}
			if job = w.Poll(t, id, 61*time.Minute, 4); job.Status != tc.job || !strings.Contains(job.Error, tc.errHas) {
				t.Fatalf("job %s (error %q); want %s saying %q", job.Status, job.Error, tc.job, tc.errHas)
			}
			if strings.Contains(job.Error, ada.email) {
				t.Errorf("job error quotes the subject: %s", job.Error)
			}
			if got := w.Request(t, r.ID); got.Status != tc.request {
				t.Errorf("request %s; want %s", got.Status, tc.request)
			}
			if n := f.holds(ada.email); (n == 0) == tc.fail {
				t.Errorf("Ada's records after the job: %d", n)
			}
			w.CheckLogs(t, "@example.com")
		})
	}
}
