package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/dsr"
)

// SweepStore is what the sweep reads and writes in the store.
type SweepStore interface {
	SettleStore
	Request(ctx context.Context, id string) (*dsr.Request, error)
	Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (*dsr.Request, error)
	EachStaleRequest(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error
	EachStaleJob(ctx context.Context, before, now time.Time, fn func(*dsr.Job) error) error
	EachUnverifiedPastDue(ctx context.Context, now time.Time, fn func(*dsr.Request) error) error
	EachPendingNotice(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error
	EachAuditDue(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error
	CatchUpAudit(ctx context.Context, r *dsr.Request) error
}

// SweepDeps is what a SweepHandler works with. The sweep re-drives the
// queue itself (its lock, its registration, tasks by id), so it takes the
// Queue, not an interface.
type SweepDeps struct {
	Store SweepStore
	Queue *Queue
	Log   *slog.Logger
}

// SweepOptions tunes a SweepHandler.
type SweepOptions struct {
	// Grace is how long work may sit untouched before the sweep
	// re-enqueues it.
	Grace time.Duration
	// Every is how often the scheduler queues a sweep. A sweep that starts
	// less than half of it after the last one ended does nothing, so
	// sweeps queued up behind a backlog run once. 0: no such pause.
	Every time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SweepHandler handles TypeSweep: it re-drives work whose queue task may be
// gone.
type SweepHandler struct {
	store SweepStore
	queue *Queue
	log   *slog.Logger
	opts  SweepOptions
}

// NewSweepHandler returns a SweepHandler.
func NewSweepHandler(d SweepDeps, o SweepOptions) *SweepHandler {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &SweepHandler{store: d.Store, queue: d.Queue, log: d.Log, opts: o}
}

// ProcessTask re-drives work whose queue task may be gone: verified requests
// never fanned out, in-progress requests whose fan-out did not finish or whose
// last job's settlement was lost, pending jobs untouched for the grace period
// and running jobs whose lease expired, and notices still pending (on the
// notice queue, see NoticeQueue). Enqueuing uses the same task ids as the
// first time, so work still queued is not duplicated. One sweep runs at a
// time (see Sweep).
func (h *SweepHandler) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	_, err := h.Sweep(ctx)
	return err
}

// SweepCounts says what one sweep re-drove.
type SweepCounts struct {
	// Fanouts, Jobs and Notices count tasks actually enqueued (not those
	// still queued); Settled counts requests closed, Expired requests never
	// verified whose window closed.
	Fanouts, Settled, Jobs, Notices, Expired int
	// Audited counts requests whose audit chain caught up.
	Audited int
	// Failed counts the items the sweep could not re-drive (each logged
	// with its reason); the sweep goes on past them.
	Failed int
	// Skipped says the sweep did nothing: another was running, or one
	// finished less than half a sweep interval ago.
	Skipped bool
}

// sweepLease is how long the sweep's lock outlives a sweeper that died
// without giving it up; a live sweeper renews it every third of that.
const sweepLease = time.Minute

// sweepKey names the Redis lock of the sweeps on a queue.
func sweepKey(queue string) string { return "dsar:sweep:" + queue }

// Sweep does the work of ProcessTask. It holds a lock in Redis while it
// runs, and keeps it for half of SweepOptions.Every after it ends, so
// sweeps that queued up behind a backlog (their schedule's uniqueness lasts
// one interval) or that two schedulers queued at once act once. An item that
// fails (a request, a job, a notice) is logged with its id and reason and
// counted in Failed, and the sweep goes on; the error then sums them up.
func (h *SweepHandler) Sweep(ctx context.Context) (SweepCounts, error) {
	var n SweepCounts
	l, err := h.queue.takeLease(ctx, sweepKey(h.queue.name), sweepLease)
	if err != nil {
		h.log.WarnContext(ctx, "sweep not run", "error", err)
		return n, fmt.Errorf("sweep: %w", err)
	}
	if l == nil {
		h.log.DebugContext(ctx, "sweep skipped: another is running or ran moments ago")
		n.Skipped = true
		return n, nil
	}
	defer func() {
		if err := l.end(context.WithoutCancel(ctx), h.opts.Every/2); err != nil {
			h.log.WarnContext(ctx, "sweep lock not given up; it expires by itself", "error", err)
		}
	}()
	// Redis may have lost the queues' registration since the last sweep.
	if err := h.queue.register(ctx); err != nil {
		h.log.WarnContext(ctx, "queue not registered", "error", err)
	}
	var first error
	failed := func(what, key, id string, err error) {
		n.Failed++
		h.log.WarnContext(ctx, "sweep: "+what+" not re-driven", key, id, "error", err)
		if first == nil {
			first = fmt.Errorf("%s %s: %w", what, id, err)
		}
	}
	var scans []error
	now := h.opts.Now()
	before := now.Add(-h.opts.Grace)
	err = h.store.EachStaleRequest(ctx, before, func(r *dsr.Request) error {
		if err := h.redrive(ctx, r, &n); err != nil {
			failed("request", "request_id", r.ID, err)
		}
		return ctx.Err()
	})
	if err != nil {
		scans = append(scans, fmt.Errorf("sweep requests: %w", err))
	}
	err = h.store.EachStaleJob(ctx, before, now, func(j *dsr.Job) error {
		queued, err := h.queue.enqueueJob(ctx, j.ID)
		if queued {
			n.Jobs++
		}
		if err != nil {
			failed("job", "job_id", j.ID, err)
		}
		return ctx.Err()
	})
	if err != nil {
		scans = append(scans, fmt.Errorf("sweep jobs: %w", err))
	}
	err = h.store.EachUnverifiedPastDue(ctx, now, func(r *dsr.Request) error {
		_, err := h.store.Transition(ctx, r.ID, dsr.StatusVerifying, dsr.StatusExpired, dsr.Change{
			Actor: "sweep", Reason: "identity never verified within the legal window; identities purged", Purge: true,
		})
		switch {
		case errors.Is(err, dsr.ErrConflict): // verified or closed meanwhile
		case err != nil:
			failed("expiry", "request_id", r.ID, err)
		default:
			n.Expired++
		}
		return ctx.Err()
	})
	if err != nil {
		scans = append(scans, fmt.Errorf("sweep expiries: %w", err))
	}
	err = h.store.EachPendingNotice(ctx, before, func(r *dsr.Request) error {
		for _, notice := range r.PendingNotices {
			queued, err := h.queue.enqueueNotice(ctx, r.ID, notice)
			if err != nil {
				failed("notice "+notice, "request_id", r.ID, err)
			}
			if queued {
				n.Notices++
			}
		}
		return ctx.Err()
	})
	if err != nil {
		scans = append(scans, fmt.Errorf("sweep notices: %w", err))
	}
	err = h.store.EachAuditDue(ctx, before, func(r *dsr.Request) error {
		if err := h.store.CatchUpAudit(ctx, r); err != nil {
			failed("audit", "request_id", r.ID, err)
		} else {
			n.Audited++
		}
		return ctx.Err()
	})
	if err != nil {
		scans = append(scans, fmt.Errorf("sweep audit: %w", err))
	}
	if n != (SweepCounts{}) {
		h.log.InfoContext(ctx, "sweep re-drove work", "fanouts", n.Fanouts, "settled", n.Settled, "jobs", n.Jobs, "notices", n.Notices,
			"expired", n.Expired, "audited", n.Audited, "failed", n.Failed)
	}
	if n.Failed > 0 {
		scans = append(scans, fmt.Errorf("sweep: %d items not re-driven, the next sweep tries again; first: %w", n.Failed, first))
	}
	if err := errors.Join(scans...); err != nil {
		h.log.ErrorContext(ctx, "sweep incomplete", "error", err)
		return n, err
	}
	return n, nil
}

// redrive re-drives one request the sweep found unchanged since before its
// grace period: its fan-out, or its settlement. The scan's copy may be old
// (under a backlog its fan-out may have run since it was read), so before
// enqueuing a fan-out the request is read again, and left alone if it has
// changed: a request already fanned out is never fanned out again.
func (h *SweepHandler) redrive(ctx context.Context, r *dsr.Request, n *SweepCounts) error {
	if r.Status == dsr.StatusVerified || r.FannedOutAt == nil {
		fresh, err := h.store.Request(ctx, r.ID)
		switch {
		case errors.Is(err, dsr.ErrUnreadable):
			// Its fan-out fails on it for good and puts it in front
			// of an agent: queued all the same.
		case err != nil:
			return err
		case !fresh.UpdatedAt.Equal(r.UpdatedAt) || fresh.FannedOutAt != nil:
			return nil // moved on since the scan read it; the next sweep looks again
		}
		queued, err := h.queue.enqueueFanout(ctx, r.ID)
		if queued {
			n.Fanouts++
		}
		return err
	}
	to, err := h.store.Settle(ctx, r.ID, "sweep")
	if to != "" {
		n.Settled++
	}
	return err
}
