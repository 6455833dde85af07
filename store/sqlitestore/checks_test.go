package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestChecksPageThroughBatches: more requests than one batch, each handed
// to fn once while fn writes (escalating each), in due order.
func TestChecksPageThroughBatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	var reqs []*dsr.Request
	for i := range 2*batch + 17 {
		r := f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, fmt.Sprintf("p%d@example.com", i))
		r.DueAt = f.clock.Now().Add(time.Duration(i%7) * time.Hour) // ties across batches
		reqs = append(reqs, r)
	}
	for i, err := range f.store.CreateRequests(ctx, reqs) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	at := f.clock.Now().Add(24 * time.Hour)
	var seen []dsr.Due
	err := f.store.EachToEscalate(ctx, at, func(d *dsr.Due) error {
		seen = append(seen, *d)
		ok, err := f.store.Escalate(ctx, d.ID, at)
		if err == nil && !ok {
			err = fmt.Errorf("escalate %s: not escalated", d.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != len(reqs) {
		t.Fatalf("%d handed to fn, want %d", len(seen), len(reqs))
	}
	sorted := slices.IsSortedFunc(seen, func(a, b dsr.Due) int {
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return cmpString(a.ID, b.ID)
	})
	if !sorted {
		t.Errorf("not in (due, id) order")
	}
	if got := dueIDs(t, func(fn func(*dsr.Due) error) error { return f.store.EachToEscalate(ctx, at, fn) }); len(got) != 0 {
		t.Errorf("a second run finds %d", len(got))
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestConcurrentRemindAndEscalate: of many runs at once, one reminds and
// one escalates.
func TestConcurrentRemindAndEscalate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.verified(t, dsr.TypeAccess, "ada@example.com")
	late := r.DueAt.Add(time.Hour)
	var reminded, escalated, failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			rok, rerr := f.store.Remind(ctx, r.ID, 7, time.Time{}, r.DueAt.Add(time.Millisecond))
			eok, eerr := f.store.Escalate(ctx, r.ID, late)
			mu.Lock()
			defer mu.Unlock()
			if rerr != nil || eerr != nil {
				failed++
				t.Errorf("remind: %v, escalate: %v", rerr, eerr)
			}
			if rok {
				reminded++
			}
			if eok {
				escalated++
			}
		})
	}
	wg.Wait()
	if reminded != 1 || escalated != 1 {
		t.Errorf("reminded %d times, escalated %d times; want once each", reminded, escalated)
	}
}

// TestConcurrentPauseClock: of several agents pausing one clock at once,
// exactly one wins; the others get ErrConflict, and one pause is recorded.
func TestConcurrentPauseClock(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	r := f.verifying(t, "ada@example.com")
	var wins, conflicts int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := f.store.PauseClock(ctx, r.ID, fmt.Sprint("agent", i), "asked for a bill")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, dsr.ErrConflict):
				conflicts++
			default:
				t.Errorf("pause: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := f.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if wins != 1 || conflicts != 7 || len(got.Pauses) != 1 || got.PausedAt == nil {
		t.Errorf("%d won, %d conflicts, %d pauses recorded; want 1, 7, 1", wins, conflicts, len(got.Pauses))
	}
}

func TestExtend(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	ctx := context.Background()
	early := f.verified(t, dsr.TypeAccess, "grace@example.com")
	if _, err := f.store.Remind(ctx, early.ID, 7, time.Time{}, early.DueAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Extend(ctx, early.ID, "agent", "archives to search")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Reminded) != 0 || got.Extension == nil || !got.DueAt.After(early.DueAt) ||
		!slices.Contains(got.PendingNotices, dsr.NoticeExtended) || !got.UpdatedAt.Equal(f.clock.Now()) {
		t.Errorf("extended: %+v", got)
	}
	if _, err := f.store.Extend(ctx, early.ID, "agent", "twice"); !errors.Is(err, dsr.ErrNoExtension) {
		t.Errorf("extend twice: %v, want ErrNoExtension", err)
	}
	// A duplicate is open but not active: its clock is its original's.
	dup := f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, "ada@example.com")
	dup.Status = dsr.StatusDuplicate
	if err := f.store.CreateRequest(ctx, dup); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Extend(ctx, dup.ID, "agent", "x"); !errors.Is(err, dsr.ErrConflict) {
		t.Errorf("extend a duplicate: %v, want ErrConflict", err)
	}
	if _, err := f.store.Extend(ctx, "nope", "agent", "x"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("extend a request that does not exist: %v, want ErrNotFound", err)
	}
	r := f.verified(t, dsr.TypeAccess, "alan@example.com")
	f.clock.Add(r.DueAt.Sub(f.clock.Now()) + time.Minute)
	if _, err := f.store.Extend(ctx, r.ID, "agent", "too late"); !errors.Is(err, dsr.ErrNoExtension) {
		t.Errorf("extend past the due date: %v, want ErrNoExtension", err)
	}
}
