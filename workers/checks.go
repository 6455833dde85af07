package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/webhook"
)

// The scheduled checks, each a task the scheduler enqueues on its own cron.
const (
	// TypeReminders sends a reminder to the escalation channel for each
	// open request within a reminder's number of days of its due date.
	TypeReminders = "dsar:check:reminders"
	// TypeEscalation marks open requests past their due date overdue and
	// alerts the escalation channel, once per request.
	TypeEscalation = "dsar:check:escalation"
	// TypeRetention purges the exports and identities of requests closed
	// longer than their retention periods.
	TypeRetention = "dsar:check:retention"
)

// ChecksOptions configures the scheduled checks.
type ChecksOptions struct {
	// ReminderDays lists how many days before the due date reminders go
	// out (e.g. 7 and 2).
	ReminderDays []int
	// KeepExports and KeepIdentities are how long the exported data and
	// the clear identities of a closed request are kept.
	KeepExports, KeepIdentities time.Duration
}

// EscalationOptions says where alerts go: an email address, a webhook, or
// both. With neither, alerts are dropped (and logged).
type EscalationOptions struct {
	Email string
	// WebhookURL receives a JSON POST signed with WebhookSecret in the
	// Standard Webhooks scheme (package internal/webhook).
	WebhookURL    string
	WebhookSecret webhook.Secret
	// WebhookPrevious, while WebhookSecret changes, signs them too.
	WebhookPrevious webhook.Secret
	Client          *http.Client
}

// CheckCounts says what one check did.
type CheckCounts struct {
	Reminded, Escalated, ExportsPurged, IdentitiesPurged int
}

// RemindStore is what the reminders check reads and writes in the store.
type RemindStore interface {
	AuditStore
	EachToRemind(ctx context.Context, from, to time.Time, n int, fn func(*dsr.Due) error) error
	Remind(ctx context.Context, id string, n int, from, to time.Time) (bool, error)
}

// RemindersDeps is what a RemindersHandler works with; Queue takes the
// alerts it raises.
type RemindersDeps struct {
	Store RemindStore
	Queue noticeQueue
	Log   *slog.Logger
}

// RemindersHandler handles TypeReminders.
type RemindersHandler struct {
	store RemindStore
	queue noticeQueue
	log   *slog.Logger
	days  []int
	now   func() time.Time
	audit func(ctx context.Context, requestID, kind string, data map[string]string)
}

// NewRemindersHandler returns a RemindersHandler that reminds
// o.ReminderDays before due dates; now nil means time.Now.
func NewRemindersHandler(d RemindersDeps, o ChecksOptions, now func() time.Time) *RemindersHandler {
	return &RemindersHandler{store: d.Store, queue: d.Queue, log: d.Log, days: o.ReminderDays, now: orNow(now),
		audit: auditor{store: d.Store, log: d.Log}.audit}
}

// ProcessTask runs the reminders check.
func (h *RemindersHandler) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	_, err := h.Reminders(ctx)
	return err
}

// Reminders makes each reminder due once per request: for every open,
// unpaused request due within N days (and not yet overdue), the reminder for
// the smallest such N, unless it had it. A run with nothing to remind reads
// nothing: one query per reminder, each returning no document.
func (h *RemindersHandler) Reminders(ctx context.Context) (CheckCounts, error) {
	var n CheckCounts
	now := h.now()
	// Each request gets, of the reminders whose window it is in, the one
	// for the fewest days: the windows are [now, now+d1), [now+d1, now+d2)...
	days := slices.Clone(h.days)
	slices.Sort(days)
	from := now
	for _, d := range days {
		to := now.AddDate(0, 0, d)
		err := h.store.EachToRemind(ctx, from, to, d, func(r *dsr.Due) error {
			first, err := h.store.Remind(ctx, r.ID, d, from, to)
			if err != nil || !first {
				return err
			}
			n.Reminded++
			h.audit(ctx, r.ID, "reminded", map[string]string{"days_before_due": strconv.Itoa(d)})
			sendLater(ctx, h.queue, h.log, r.ID, dsr.AlertReminder(d))
			return nil
		})
		if err != nil {
			return n, err
		}
		from = to
	}
	if n.Reminded > 0 {
		h.log.InfoContext(ctx, "reminders due", "requests", n.Reminded)
	}
	return n, nil
}

// EscalateStore is what the escalation check reads and writes in the store.
type EscalateStore interface {
	AuditStore
	EachToEscalate(ctx context.Context, now time.Time, fn func(*dsr.Due) error) error
	Escalate(ctx context.Context, id string, now time.Time) (bool, error)
}

// EscalationDeps is what an EscalationHandler works with; Queue takes the
// alerts it raises.
type EscalationDeps struct {
	Store EscalateStore
	Queue noticeQueue
	Log   *slog.Logger
}

// EscalationHandler handles TypeEscalation.
type EscalationHandler struct {
	store EscalateStore
	queue noticeQueue
	log   *slog.Logger
	now   func() time.Time
	audit func(ctx context.Context, requestID, kind string, data map[string]string)
}

// NewEscalationHandler returns an EscalationHandler; now nil means
// time.Now.
func NewEscalationHandler(d EscalationDeps, now func() time.Time) *EscalationHandler {
	return &EscalationHandler{store: d.Store, queue: d.Queue, log: d.Log, now: orNow(now), audit: auditor{store: d.Store, log: d.Log}.audit}
}

// ProcessTask runs the escalation check.
func (h *EscalationHandler) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	_, err := h.Escalation(ctx)
	return err
}

// Escalation marks every open, unpaused request past its due date overdue,
// once: an audit event and an alert to the escalation channel.
func (h *EscalationHandler) Escalation(ctx context.Context) (CheckCounts, error) {
	var n CheckCounts
	now := h.now()
	err := h.store.EachToEscalate(ctx, now, func(r *dsr.Due) error {
		first, err := h.store.Escalate(ctx, r.ID, now)
		if err != nil || !first {
			return err
		}
		n.Escalated++
		h.audit(ctx, r.ID, "escalated", map[string]string{"due_at": r.DueAt.Format(time.RFC3339)})
		h.log.WarnContext(ctx, "request overdue: escalated", "request_id", r.ID, "due_at", r.DueAt)
		sendLater(ctx, h.queue, h.log, r.ID, dsr.AlertOverdue)
		return nil
	})
	return n, err
}

// sendLater hands an alert the store holds as pending to the queue. A
// queue that is down does not stop the check: the sweep sends what is
// pending.
func sendLater(ctx context.Context, q noticeQueue, log *slog.Logger, requestID, alert string) {
	if err := q.EnqueueNotice(ctx, requestID, alert); err != nil {
		log.WarnContext(ctx, "alert not enqueued; the sweep will send it", "request_id", requestID, "alert", alert, "error", err)
	}
}

// RetentionStore is what the retention check reads and writes in the store.
type RetentionStore interface {
	AuditStore
	EachExportsToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error
	PurgeExports(ctx context.Context, id string) (bool, error)
	EachIdentitiesToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error
	PurgeIdentities(ctx context.Context, id string) (bool, error)
}

// RetentionDeps is what a RetentionHandler works with.
type RetentionDeps struct {
	Store RetentionStore
	Log   *slog.Logger
}

// RetentionHandler handles TypeRetention.
type RetentionHandler struct {
	store RetentionStore
	log   *slog.Logger
	keep  ChecksOptions
	now   func() time.Time
	audit func(ctx context.Context, requestID, kind string, data map[string]string)
}

// NewRetentionHandler returns a RetentionHandler that keeps what
// o.KeepExports and o.KeepIdentities say; now nil means time.Now.
func NewRetentionHandler(d RetentionDeps, o ChecksOptions, now func() time.Time) *RetentionHandler {
	return &RetentionHandler{store: d.Store, log: d.Log, keep: o, now: orNow(now), audit: auditor{store: d.Store, log: d.Log}.audit}
}

// ProcessTask runs the retention check.
func (h *RetentionHandler) ProcessTask(ctx context.Context, _ *asynq.Task) error {
	_, err := h.Retention(ctx)
	return err
}

// Retention purges what closed requests keep longer than allowed: their
// exported data after KeepExports, their clear identities after
// KeepIdentities. The request record (pseudonymised: its blind index,
// dates, history) and its audit chain stay, as CCPA 11 CCR 7101 asks for 24
// months at least.
func (h *RetentionHandler) Retention(ctx context.Context) (CheckCounts, error) {
	var n CheckCounts
	now := h.now()
	c := h.keep
	// Exports that cannot be purged (their bucket down) fail the check,
	// to be tried again, but do not keep identities past their own
	// retention: those are purged all the same.
	// One request's exports that cannot be purged (an object the bucket
	// refuses to delete) do not keep the others' past their retention
	// either: the scan goes on, and the check fails with the first error.
	var exportsErr, failed error
	failures := 0
	if c.KeepExports > 0 {
		exportsErr = h.store.EachExportsToPurge(ctx, now.Add(-c.KeepExports), func(r *dsr.Due) error {
			first, err := h.store.PurgeExports(ctx, r.ID)
			switch {
			case err != nil && ctx.Err() == nil:
				if failures++; failed == nil {
					failed = fmt.Errorf("purge exports of request %s: %w", r.ID, err)
				}
				return nil
			case err == nil && first:
				n.ExportsPurged++
				h.audit(ctx, r.ID, "exports_purged", nil)
			}
			return err
		})
		if exportsErr == nil && failed != nil {
			exportsErr = fmt.Errorf("%d requests' exports not purged; first: %w", failures, failed)
		}
	}
	if c.KeepIdentities > 0 {
		err := h.store.EachIdentitiesToPurge(ctx, now.Add(-c.KeepIdentities), func(r *dsr.Due) error {
			first, err := h.store.PurgeIdentities(ctx, r.ID)
			if err == nil && first {
				n.IdentitiesPurged++
				h.audit(ctx, r.ID, "identities_purged", nil)
			}
			return err
		})
		if err != nil {
			return n, errors.Join(exportsErr, err)
		}
	}
	if n != (CheckCounts{}) {
		h.log.InfoContext(ctx, "retention purged", "exports", n.ExportsPurged, "identities", n.IdentitiesPurged)
	}
	return n, exportsErr
}

func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
