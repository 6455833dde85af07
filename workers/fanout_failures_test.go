package workers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestFanoutFailuresNeedAttention: a down identity-resolving connector
// fails the fan-out; the failures are counted on the request with the
// error, redacted, and after MaxRetry+1 of them the request needs
// attention instead of waiting in verified for ever. A retry after the
// connector is back completes it.
func TestFanoutFailuresNeedAttention(t *testing.T) {
	t.Parallel()
	res := &flakyResolver{}
	res.down.Store(true)
	e := setup(t, 2, res)
	e.startWorkers()
	ctx := context.Background()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	got := e.waitStatus(r.ID, dsr.StatusNeedsAttention)
	if got.FanoutFailures != 3 || !strings.Contains(got.FanoutError, "lookup failed for [redacted]") || strings.Contains(got.FanoutError, "ada@") {
		t.Errorf("request: %d failures, error %q; want 3 and the lookup's error, redacted", got.FanoutFailures, got.FanoutError)
	}
	if jobs, _ := e.store.Jobs(ctx, r.ID); len(jobs) != 0 {
		t.Errorf("jobs: %+v, want none", jobs)
	}
	// The sweep leaves it alone now, and no further fan-out runs.
	e.clock.Add(2 * time.Minute)
	if counts, err := e.proc.Sweep(ctx); err != nil || counts.Fanouts != 0 {
		t.Errorf("sweep: %+v, %v; want no fan-out", counts, err)
	}
	// An agent's retry, as handlers' retry does it, once the lookup is back.
	res.down.Store(false)
	if _, err := e.store.Transition(ctx, r.ID, dsr.StatusNeedsAttention, dsr.StatusVerified, dsr.Change{Actor: "agent", ResetFanout: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	done := e.waitStatus(r.ID, dsr.StatusCompleted)
	if done.FanoutFailures != 0 || done.FanoutError != "" {
		t.Errorf("after the retry: %d failures, error %q; want both cleared", done.FanoutFailures, done.FanoutError)
	}
}
