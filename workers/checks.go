package workers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/workers/notify"
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
	// WebhookURL receives a JSON POST signed with WebhookSecret:
	// X-DSAR-Signature: sha256=<hex HMAC-SHA256 of "<X-DSAR-Timestamp>.<body>">.
	WebhookURL    string
	WebhookSecret string
	Client        *http.Client
}

// CheckCounts says what one check did.
type CheckCounts struct {
	Reminded, Escalated, ExportsPurged, IdentitiesPurged int
}

// HandleReminders runs the reminders check.
func (p *Processor) HandleReminders(ctx context.Context, _ *asynq.Task) error {
	_, err := p.Reminders(ctx)
	return err
}

// Reminders makes each reminder due once per request: for every open,
// unpaused request due within N days (and not yet overdue), the reminder for
// the smallest such N, unless it had it. A run with nothing to remind reads
// nothing: one query per reminder, each returning no document.
func (p *Processor) Reminders(ctx context.Context) (CheckCounts, error) {
	var n CheckCounts
	now := p.opts.Now()
	// Each request gets, of the reminders whose window it is in, the one
	// for the fewest days: the windows are [now, now+d1), [now+d1, now+d2)...
	days := slices.Clone(p.opts.Checks.ReminderDays)
	slices.Sort(days)
	from := now
	for _, d := range days {
		to := now.AddDate(0, 0, d)
		err := p.store.EachToRemind(ctx, from, to, d, func(r *dsr.Due) error {
			first, err := p.store.Remind(ctx, r.ID, d, from, to)
			if err != nil || !first {
				return err
			}
			n.Reminded++
			p.audit(ctx, r.ID, "reminded", map[string]string{"days_before_due": strconv.Itoa(d)})
			p.sendLater(ctx, r.ID, dsr.AlertReminder(d))
			return nil
		})
		if err != nil {
			return n, err
		}
		from = to
	}
	if n.Reminded > 0 {
		p.log.InfoContext(ctx, "reminders due", "requests", n.Reminded)
	}
	return n, nil
}

// HandleEscalation runs the escalation check.
func (p *Processor) HandleEscalation(ctx context.Context, _ *asynq.Task) error {
	_, err := p.Escalation(ctx)
	return err
}

// Escalation marks every open, unpaused request past its due date overdue,
// once: an audit event and an alert to the escalation channel.
func (p *Processor) Escalation(ctx context.Context) (CheckCounts, error) {
	var n CheckCounts
	now := p.opts.Now()
	err := p.store.EachToEscalate(ctx, now, func(r *dsr.Due) error {
		first, err := p.store.Escalate(ctx, r.ID, now)
		if err != nil || !first {
			return err
		}
		n.Escalated++
		p.audit(ctx, r.ID, "escalated", map[string]string{"due_at": r.DueAt.Format(time.RFC3339)})
		p.log.WarnContext(ctx, "request overdue: escalated", "request_id", r.ID, "due_at", r.DueAt)
		p.sendLater(ctx, r.ID, dsr.AlertOverdue)
		return nil
	})
	return n, err
}

// sendLater hands an alert the store holds as pending to the queue. A
// queue that is down does not stop the check: the sweep sends what is
// pending.
func (p *Processor) sendLater(ctx context.Context, requestID, alert string) {
	if err := p.queue.EnqueueNotice(ctx, requestID, alert); err != nil {
		p.log.WarnContext(ctx, "alert not enqueued; the sweep will send it", "request_id", requestID, "alert", alert, "error", err)
	}
}

// HandleRetention runs the retention check.
func (p *Processor) HandleRetention(ctx context.Context, _ *asynq.Task) error {
	_, err := p.Retention(ctx)
	return err
}

// Retention purges what closed requests keep longer than allowed: their
// exported data after KeepExports, their clear identities after
// KeepIdentities. The request record (pseudonymised: its blind index,
// dates, history) and its audit chain stay, as CCPA 11 CCR 7101 asks for 24
// months at least.
func (p *Processor) Retention(ctx context.Context) (CheckCounts, error) {
	var n CheckCounts
	now := p.opts.Now()
	c := p.opts.Checks
	if c.KeepExports > 0 {
		err := p.store.EachExportsToPurge(ctx, now.Add(-c.KeepExports), func(r *dsr.Due) error {
			first, err := p.store.PurgeExports(ctx, r.ID)
			if err == nil && first {
				n.ExportsPurged++
				p.audit(ctx, r.ID, "exports_purged", nil)
			}
			return err
		})
		if err != nil {
			return n, err
		}
	}
	if c.KeepIdentities > 0 {
		err := p.store.EachIdentitiesToPurge(ctx, now.Add(-c.KeepIdentities), func(r *dsr.Due) error {
			first, err := p.store.PurgeIdentities(ctx, r.ID)
			if err == nil && first {
				n.IdentitiesPurged++
				p.audit(ctx, r.ID, "identities_purged", nil)
			}
			return err
		})
		if err != nil {
			return n, err
		}
	}
	if n != (CheckCounts{}) {
		p.log.InfoContext(ctx, "retention purged", "exports", n.ExportsPurged, "identities", n.IdentitiesPurged)
	}
	return n, nil
}

// alert is the body of an escalation webhook; it names no person.
type alert struct {
	Event      string         `json:"event"` // "reminder" or "overdue"
	RequestID  string         `json:"request_id"`
	Type       dsr.Type       `json:"type"`
	Regulation dsr.Regulation `json:"regulation"`
	Status     dsr.Status     `json:"status"`
	DueAt      time.Time      `json:"due_at"`
	AssignedTo string         `json:"assigned_to,omitempty"`
	// DaysBeforeDue is set on reminders.
	DaysBeforeDue int `json:"days_before_due,omitempty"`
}

// sendAlert delivers an alert kind for r to the escalation channel: email
// and/or webhook. Neither configured: dropped, logged.
func (p *Processor) sendAlert(ctx context.Context, r *dsr.Request, kind string) error {
	esc := p.escalation
	a := alert{Event: "overdue", RequestID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status, DueAt: r.DueAt, AssignedTo: r.AssignedTo}
	if days, ok := strings.CutPrefix(kind, "alert_reminder_"); ok {
		a.Event = "reminder"
		a.DaysBeforeDue, _ = strconv.Atoi(days)
	}
	if esc.Email == "" && esc.WebhookURL == "" {
		p.log.WarnContext(ctx, "alert dropped: no escalation channel configured", "request_id", r.ID, "alert", kind)
		return nil
	}
	if r.Status.Closed() || r.PausedAt != nil {
		// Answered, or its clock stopped, since the check raised it.
		p.log.InfoContext(ctx, "alert dropped: the request is closed or paused", "request_id", r.ID, "alert", kind, "status", r.Status)
		return nil
	}
	if esc.Email != "" && p.notifier != nil {
		subject := fmt.Sprintf("Privacy request %s is overdue (was due %s)", r.ID, r.DueAt.UTC().Format(time.DateOnly))
		if a.Event == "reminder" {
			subject = fmt.Sprintf("Privacy request %s is due in %d days (%s)", r.ID, a.DaysBeforeDue, r.DueAt.UTC().Format(time.DateOnly))
		}
		text := fmt.Sprintf("Request %s (%s under %s) is %s and due %s.\nAssigned to: %s\n\nOpen it in the agent API: GET /v1/requests/%s\n",
			r.ID, r.Type, r.Regulation, r.Status, r.DueAt.UTC().Format(time.RFC1123), orNobody(r.AssignedTo), r.ID)
		err := p.notifier.Send(ctx, notify.Message{To: esc.Email, Subject: subject, Text: text, RequestID: r.ID, Kind: kind})
		switch {
		case errors.Is(err, notify.ErrRejected):
			// Refused for good (a bad address): retrying cannot help; the
			// webhook, if any, still goes.
			p.log.WarnContext(ctx, "alert email refused by the mail system; not retried", "request_id", r.ID, "alert", kind, "error", err)
		case err != nil:
			return fmt.Errorf("alert email: %w", err)
		}
	}
	if esc.WebhookURL != "" {
		if err := p.postWebhook(ctx, a); err != nil {
			return err
		}
	}
	p.log.InfoContext(ctx, "alert sent", "request_id", r.ID, "alert", kind)
	return nil
}

func orNobody(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}

// postWebhook POSTs an alert, signed: the receiver recomputes
// HMAC-SHA256(secret, timestamp + "." + body) and rejects old timestamps.
func (p *Processor) postWebhook(ctx context.Context, a alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(p.opts.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.escalation.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alert webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-DSAR-Timestamp", ts)
	req.Header.Set("X-DSAR-Signature", "sha256="+Sign(p.escalation.WebhookSecret, ts, body))
	client := p.escalation.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("alert webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("alert webhook: answered %d", resp.StatusCode)
	}
	return nil
}

// Sign returns the hex HMAC-SHA256 of timestamp + "." + body under secret:
// the signature of an alert webhook.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
