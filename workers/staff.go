package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/links"
	"github.com/dsar-project/dsar/internal/webhook"
	"github.com/dsar-project/dsar/workers/notify"
)

// StaffTasks is how connectors reach the service's own people
// (connectors.Tasks): it signs task page links under PublicURL, mails
// through the Notifier, and escalates to the escalation channel (email
// and/or signed webhook), as the deadline alerts do.
type StaffTasks struct {
	notifier   Notifier
	escalation EscalationOptions
	webhook    *webhook.Sender
	publicURL  string
	signer     links.Signer
	log        *slog.Logger
}

// StaffOptions configures StaffTasks.
type StaffOptions struct {
	// Notifier sends the mails; nil: a task cannot be mailed (an error).
	Notifier   Notifier
	Escalation EscalationOptions
	// PublicURL is where the API, and the task pages, are reached from
	// outside.
	PublicURL string
	// Links signs task links (dsr.NewTaskSigner).
	Links links.Signer
	Log   *slog.Logger
	// Now is the webhook's clock; nil: time.Now.
	Now func() time.Time
}

// NewStaffTasks returns the connectors.Tasks of the worker process.
func NewStaffTasks(o StaffOptions) *StaffTasks {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StaffTasks{notifier: o.Notifier, escalation: o.Escalation, publicURL: o.PublicURL, signer: o.Links, log: log,
		webhook: webhook.New(o.Escalation.Client, o.Escalation.WebhookSecret, webhook.WithClock(orNow(o.Now)), webhook.WithPrevious(o.Escalation.WebhookPrevious))}
}

// Link implements connectors.Tasks.
func (s *StaffTasks) Link(payload string, exp time.Time) string {
	return links.Task(s.publicURL, payload, exp, s.signer)
}

// Mail implements connectors.Tasks. An address the mail system refuses for
// good is a permanent error: the connectors file names a wrong owner.
func (s *StaffTasks) Mail(ctx context.Context, m connectors.StaffMail) error {
	if s.notifier == nil {
		return connectors.Permanent(errors.New("no mail system configured (DSAR_SMTP_HOST)"))
	}
	err := s.notifier.Send(ctx, notify.Message{To: m.To, Subject: m.Subject, Text: m.Text, RequestID: m.RequestID, Kind: m.Kind})
	if errors.Is(err, notify.ErrRejected) {
		return connectors.Permanent(fmt.Errorf("the mail system refused the owner's address: %w", err))
	}
	return err
}

// staffAlert is the body of a manual task's escalation webhook.
type staffAlert struct {
	Event     string    `json:"event"` // "task_unanswered"
	RequestID string    `json:"request_id"`
	JobID     string    `json:"job_id"`
	Connector string    `json:"connector"`
	Action    string    `json:"action"`
	Owner     string    `json:"owner"`
	Since     time.Time `json:"since"`
}

// Escalate implements connectors.Tasks: an email to the escalation address
// and a signed webhook to its URL, whichever are configured; with neither,
// the escalation is logged and dropped, as alerts are.
func (s *StaffTasks) Escalate(ctx context.Context, e connectors.Escalation) error {
	esc := s.escalation
	if esc.Email == "" && esc.WebhookURL == "" {
		s.log.WarnContext(ctx, "task escalation dropped: no escalation channel configured", "request_id", e.Job.RequestID, "connector", e.Job.Connector)
		return nil
	}
	if esc.Email != "" {
		text := e.Text + "\n\nThe request: " + links.AgentRequestPath(e.Job.RequestID) + "\n"
		err := s.Mail(ctx, connectors.StaffMail{To: esc.Email, Subject: "Unanswered manual task: request " + e.Job.RequestID,
			Text: text, RequestID: e.Job.RequestID, Kind: "task_unanswered"})
		if err != nil && !errors.Is(err, connectors.ErrPermanent) {
			return fmt.Errorf("escalation email: %w", err)
		}
		if err != nil {
			s.log.WarnContext(ctx, "task escalation email refused by the mail system", "request_id", e.Job.RequestID, "error", err)
		}
	}
	if esc.WebhookURL != "" {
		body, err := json.Marshal(staffAlert{Event: "task_unanswered", RequestID: e.Job.RequestID, JobID: e.Job.ID, Connector: e.Job.Connector,
			Action: string(e.Job.Action), Owner: e.Owner, Since: e.Since})
		if err != nil {
			return err
		}
		if err := s.webhook.Send(ctx, esc.WebhookURL, e.Job.ID+"_task_unanswered", body); err != nil {
			return fmt.Errorf("escalation webhook: %w", err)
		}
	}
	return nil
}
