package connectors

import (
	"context"
	"time"
)

// Tasks hands work to people, for connectors whose system has no API (the
// manual type): it signs links to the service's task page, mails staff and
// raises escalations. The worker process provides it (workers.StaffTasks);
// nil in [Deps] makes such connector types refuse to be configured.
//
// Nothing passed to it may carry a data subject's personal data: task
// links name a job and a random task id, mails and escalations name the
// request, the job and the system.
type Tasks interface {
	// Link returns the absolute URL of the task page for payload, signed so
	// that it works, unchanged, until exp. payload is opaque to the
	// service (the connector reads it back when the page is answered) and
	// carries no personal data.
	Link(payload string, exp time.Time) string
	// Mail sends a plain-text email to a member of staff (a task's owner).
	// requestID labels it; kind names what it is ("manual_task",
	// "manual_reminder").
	Mail(ctx context.Context, m StaffMail) error
	// Escalate tells the escalation channel (email and/or webhook) that a
	// job waits on a person past its time.
	Escalate(ctx context.Context, e Escalation) error
}

// StaffMail is one plain-text email to a member of staff.
type StaffMail struct {
	To, Subject, Text string
	// RequestID and Kind label the message (headers, logs); letters,
	// digits, '.', '_' and '-'.
	RequestID, Kind string
}

// Escalation says that a job waits on a person past its time.
type Escalation struct {
	Job JobRef
	// Owner is who was asked (a staff email), Since when.
	Owner string
	Since time.Time
	// Text says it in a sentence, for the email; it names no data subject.
	Text string
}

// JobRef names the job a connector action runs for.
type JobRef struct {
	ID, RequestID, Connector string
	Action                   Action
	// Retries counts an agent's retries of the job (dsr.Job.Retries): a
	// connector that names its system's work after the job names it anew
	// after one.
	Retries int
}

type jobKey struct{}

// WithJob returns ctx carrying j: the worker sets it before it calls a
// connector, so that a connector that hands work to people (see [Tasks])
// can name the job in a link.
func WithJob(ctx context.Context, j JobRef) context.Context {
	return context.WithValue(ctx, jobKey{}, j)
}

// JobOf returns the job ctx carries (see [WithJob]).
func JobOf(ctx context.Context) (JobRef, bool) {
	j, ok := ctx.Value(jobKey{}).(JobRef)
	return j, ok
}
