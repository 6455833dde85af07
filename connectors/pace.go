package connectors

import (
	"context"
	"fmt"
	"time"
)

// Pacer keeps a connector's calls within its vendor's documented rates,
// counted across every worker process by a [Limiter]: a short wait is
// slept in process, a longer one goes back to the queue as a [RetryAfter]
// (the job waits without using up a retry).
type Pacer struct {
	// Limiter counts the calls; nil: no pacing.
	Limiter Limiter
	// MaxWait is the longest wait slept in process.
	MaxWait time.Duration
	// Now and Sleep are the clock and the wait; nil: time.Now and [Sleep].
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Take returns once one more call under key may go at rate r, or a
// RetryAfter error when the wait is longer than MaxWait or would outlast
// ctx's deadline. what names the limit in that error ("Klaviyo's
// documented limit for profiles"); it must hold no personal data.
func (p Pacer) Take(ctx context.Context, key string, r Rate, what string) error {
	if p.Limiter == nil || r.IsZero() {
		return nil
	}
	now, sleep := p.Now, p.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = Sleep
	}
	for {
		wait, err := p.Limiter.Take(ctx, key, r)
		if err != nil {
			return fmt.Errorf("rate limiter: %w", err)
		}
		if wait <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); wait > p.MaxWait || (ok && now().Add(wait).After(dl)) {
			return RetryAfter(wait, fmt.Errorf("%s (%s) is spent", what, r))
		}
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
}

// Sleep waits d, or until ctx ends (its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
