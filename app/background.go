package app

import (
	"context"
	"fmt"
	"sync"
)

// Background runs work that a caller's answer need not wait for: the
// dispatch of a request just filed, whose 202 promises that the request is
// stored, not that it is queued (what the queue misses, the sweep does).
//
// It runs at most its limit at once; beyond that Go runs the work in the
// caller, so that a slow queue slows filing rather than piles up
// goroutines. Wait waits for what runs: a process calls it once its API
// has stopped taking requests, before it closes the queue. A nil
// *Background runs all work in the caller.
type Background struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

// BackgroundLimit is the limit dsar serves with: how many filed requests
// may be dispatching after their 202 at once.
const BackgroundLimit = 64

// NewBackground returns a Background running at most limit (at least 1)
// pieces of work at once.
func NewBackground(limit int) *Background {
	return &Background{slots: make(chan struct{}, max(1, limit))}
}

// Go runs fn with a context that keeps ctx's values (its trace) but not
// its cancellation, which ends with the caller's request: in a goroutine
// of its own when a slot is free, else in the caller before Go returns.
func (b *Background) Go(ctx context.Context, fn func(ctx context.Context)) {
	if b == nil {
		fn(ctx)
		return
	}
	select {
	case b.slots <- struct{}{}:
	default:
		fn(ctx)
		return
	}
	b.wg.Add(1)
	go func() {
		defer func() { <-b.slots; b.wg.Done() }()
		fn(context.WithoutCancel(ctx))
	}()
}

// Wait waits for the work running in the background, or for ctx to end:
// then it returns an error saying how much was still running (the sweep
// does what it did not).
func (b *Background) Wait(ctx context.Context) error {
	if b == nil {
		return nil
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("background work: %d still running: %w", len(b.slots), ctx.Err())
	}
}
