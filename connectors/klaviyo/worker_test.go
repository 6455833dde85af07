package klaviyo

import (
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestWorkerWaits runs an erasure through the workers' waiting jobs, on
// the test store and Redis, against the fake account: the job files the
// deletion, waits on the profile (its handle the profile id, no email),
// is polled every poll_every, and ends done once Klaviyo answers 404 for
// the profile; the request completes.
func TestWorkerWaits(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.seed()
	f.set(func(f *fake) { f.lag = 1 })
	c := f.connector(t, Spec{})
	w := connectortest.NewWorker(t, c)
	r := w.File(t, dsr.TypeDeletion, dsr.Identity{Kind: dsr.KindEmail, Value: adaEmail})
	id := dsr.JobID(r.ID, c.Name(), dsr.ActionErase)
	job := w.Run(t, id)
	if job.Status != dsr.JobWaiting || job.Handle != "erase:"+adaID || job.PollAt == nil || !job.PollAt.Equal(w.Clock.Now().Truncate(time.Millisecond).Add(DefaultPollEvery)) {
		t.Fatalf("after filing: job %s, handle %q, poll_at %v; want waiting on erase:%s, polled in %v", job.Status, job.Handle, job.PollAt, adaID, DefaultPollEvery)
	}
	if f.records(adaID) == 0 {
		t.Fatal("the profile went at once; want it deleted later")
	}
	if job = w.Poll(t, id, DefaultPollEvery+time.Minute, 3); job.Status != dsr.JobSucceeded {
		t.Fatalf("job %s (error %q); want %s", job.Status, job.Error, dsr.JobSucceeded)
	}
	if f.records(adaID) != 0 || f.records(bobID) == 0 {
		t.Errorf("ada %d, bob %d records; want ada deleted, bob intact", f.records(adaID), f.records(bobID))
	}
	if got := w.Request(t, r.ID); got.Status != dsr.StatusCompleted {
		t.Errorf("request %s; want %s", got.Status, dsr.StatusCompleted)
	}
	w.CheckLogs(t, "@example.com")
}
