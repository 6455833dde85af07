package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestGroupCommit: writes that wait together are committed together, and a
// write that fails in a shared transaction is undone alone.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	newRequest := func(id string) *dsr.Request {
		return &dsr.Request{ID: id, Type: dsr.TypeOptOut, Regulation: dsr.RegulationCCPA, Status: dsr.StatusVerified, Source: "agent_api",
			ReceivedAt: now, DueAt: now.Add(time.Hour), UpdatedAt: now,
			History: []dsr.Transition{{To: dsr.StatusVerified, At: now, Actor: "agent"}}}
	}
	if err := s.CreateRequest(ctx, newRequest("taken")); err != nil {
		t.Fatal(err)
	}
	before := s.commits.Load()
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("r%02d", i)
			if i%4 == 0 {
				id = "taken" // refused in the middle of whatever batch it lands in
			}
			errs[i] = s.CreateRequest(ctx, newRequest(id))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if want := i%4 == 0; errors.Is(err, dsr.ErrConflict) != want || (!want && err != nil) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	commits := s.commits.Load() - before
	if commits >= n-n/4 {
		t.Errorf("%d commits for %d stored writes: none shared a commit", commits, n-n/4)
	}
	t.Logf("%d writes in %d commits", n, commits)
	for i := range n {
		if i%4 == 0 {
			continue
		}
		r, err := s.Request(ctx, fmt.Sprintf("r%02d", i))
		if err != nil {
			t.Fatalf("request %d after the batch: %v", i, err)
		}
		if trail, err := s.AuditTrail(ctx, r.ID); err != nil || len(trail) != 1 {
			t.Errorf("request %d: %d audit events, %v", i, len(trail), err)
		}
	}
	if trail, err := s.AuditTrail(ctx, "taken"); err != nil || len(trail) != 1 {
		t.Errorf("the refused writes left audit events on the stored request: %d, %v", len(trail), err)
	}
}

// TestWriteAfterItsContextEnds: a write whose context ended before the
// writer took it is not run; one after Close fails.
func TestWriteAfterItsContextEnds(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := s.write(ctx, func(*wtx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Errorf("write on an ended context: %v, ran %v", err, ran)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.write(context.Background(), func(*wtx) error { return nil }); !errors.Is(err, errClosed) {
		t.Errorf("write after Close: %v", err)
	}
}
