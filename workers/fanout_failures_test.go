package workers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
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

// hangingResolver is an identity-resolving connector whose system accepts
// the connection and never answers: each lookup lasts until its context
// ends.
type hangingResolver struct{}

func (hangingResolver) Name() string { return "lookup" }

func (hangingResolver) Resolve(ctx context.Context, _ connectors.Subject) ([]connectors.Identity, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("lookup: %w", ctx.Err())
}

// TestFanoutTimeoutsCount: a fan-out that runs out of time (a resolving
// connector that never answers, until the task's deadline) is a failure
// like any other: it is counted, with its error, although the task's own
// context has ended, and the request needs attention after MaxRetry+1 of
// them instead of cycling through retries and sweeps for ever.
func TestFanoutTimeoutsCount(t *testing.T) {
	t.Parallel()
	e := setup(t, 2, hangingResolver{})
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	for i := 1; i <= 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := e.proc.Fanout(ctx, r.ID)
		cancel()
		if err == nil {
			t.Fatalf("fan-out %d: no error, want the deadline's", i)
		}
		got, err := e.store.Request(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.FanoutFailures != i || !strings.Contains(got.FanoutError, "deadline exceeded") {
			t.Fatalf("after timed-out fan-out %d: %d failures, error %q; want %d and the deadline", i, got.FanoutFailures, got.FanoutError, i)
		}
	}
	got, err := e.store.Request(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dsr.StatusNeedsAttention {
		t.Errorf("status %s after 3 timed-out fan-outs, want needs_attention", got.Status)
	}
}
