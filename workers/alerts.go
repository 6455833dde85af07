package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
	"github.com/dsar-project/dsar/workers/notify"
)

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
func (h *NoticeHandler) sendAlert(ctx context.Context, r *dsr.Request, kind string) error {
	esc := h.escalation
	a := alert{Event: "overdue", RequestID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status, DueAt: r.DueAt, AssignedTo: r.AssignedTo}
	if days, ok := strings.CutPrefix(kind, "alert_reminder_"); ok {
		a.Event = "reminder"
		a.DaysBeforeDue, _ = strconv.Atoi(days)
	}
	if esc.Email == "" && esc.WebhookURL == "" {
		h.log.WarnContext(ctx, "alert dropped: no escalation channel configured", "request_id", r.ID, "alert", kind)
		return nil
	}
	if r.Status.Closed() || r.PausedAt != nil {
		// Answered, or its clock stopped, since the check raised it.
		h.log.InfoContext(ctx, "alert dropped: the request is closed or paused", "request_id", r.ID, "alert", kind, "status", r.Status)
		return nil
	}
	if esc.Email != "" && h.notifier != nil {
		data := newMessage(r)
		data.DaysBeforeDue, data.AgentLink = a.DaysBeforeDue, links.AgentRequestPath(r.ID)
		subject, text, err := render(kind, data)
		if err != nil {
			return fmt.Errorf("alert email: %w", err)
		}
		err = h.notifier.Send(ctx, notify.Message{To: esc.Email, Subject: subject, Text: text, RequestID: r.ID, Kind: kind})
		switch {
		case errors.Is(err, notify.ErrRejected):
			// Refused for good (a bad address): retrying cannot help; the
			// webhook, if any, still goes.
			h.log.WarnContext(ctx, "alert email refused by the mail system; not retried", "request_id", r.ID, "alert", kind, "error", err)
		case err != nil:
			return fmt.Errorf("alert email: %w", err)
		}
	}
	if esc.WebhookURL != "" {
		body, err := json.Marshal(a)
		if err != nil {
			return err
		}
		// A receiver that refuses the alert is retried all the same: the
		// escalation channel is the team's own, and may be fixed.
		// The id is the same for every send of this alert, so a receiver
		// can drop the copy a retry delivers.
		if err := h.webhook.Send(ctx, esc.WebhookURL, r.ID+"_"+kind, body); err != nil {
			return fmt.Errorf("alert webhook: %w", err)
		}
	}
	h.log.InfoContext(ctx, "alert sent", "request_id", r.ID, "alert", kind)
	return nil
}
