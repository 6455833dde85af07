// Package manual is the connector type for a system with no API: each
// action becomes a task for a named owner, who is emailed a signed,
// expiring link to the service's task page (GET /tasks/{token}) and there
// confirms the erasure or opt-out, uploads the person's records (an
// export), or reports the person absent.
//
// An action returns Pending at once; the job then waits. Every poll (every
// remind_every) reminds the owner with a fresh link, and once escalate_after
// has passed the escalation channel is told, once; the task stays open. The
// owner's answer is stored on the job, and the worker hands it to Answer,
// which turns it into the action's result. A job whose wait deadline
// (DSAR_JOB_WAIT_MAX) passes unanswered fails with "owner ... did not
// answer", so the request needs an agent's attention: a request never
// completes while a manual task is open.
package manual

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the connector type's name in the connectors file.
const Type = "manual"

// Factory returns the factory of manual connectors over d; d.Tasks (the
// worker provides it) is what opens tasks.
func Factory(d connectors.Deps) connectors.Factory {
	return func(_ context.Context, name string, node *yaml.Node) (connectors.Connector, error) {
		var spec Spec
		if err := connectors.DecodeStrict(node, &spec); err != nil {
			return nil, err
		}
		return New(name, spec, d)
	}
}

// New returns the manual connector called name. Without d.Tasks it is
// built (the connectors commands list and check it) but cannot open a task:
// its actions fail for good.
func New(name string, spec Spec, d connectors.Deps) (*Connector, error) {
	spec = spec.withDefaults()
	if err := spec.validate(); err != nil {
		return nil, err
	}
	return &Connector{name: name, spec: spec, tasks: d.Tasks, now: d.Clock(), log: d.Logger().With("connector", name)}, nil
}

// Connector hands a system's actions to its owner as tasks.
type Connector struct {
	name  string
	spec  Spec
	tasks connectors.Tasks
	now   func() time.Time
	log   *slog.Logger
}

// Name implements connectors.Connector.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the file gives instructions for a.
func (c *Connector) Handles(a connectors.Action) bool {
	_, ok := c.spec.Instructions[string(a)]
	return ok
}

// Export asks the owner to upload the subject's records.
func (c *Connector) Export(ctx context.Context, _ connectors.Subject, _ connectors.RecordWriter) (connectors.Result, error) {
	return c.open(ctx, connectors.ActionExport)
}

// Erase asks the owner to erase the subject's records.
func (c *Connector) Erase(ctx context.Context, _ connectors.Subject) (connectors.Result, error) {
	return c.open(ctx, connectors.ActionErase)
}

// OptOut asks the owner to opt the subject out.
func (c *Connector) OptOut(ctx context.Context, _ connectors.Subject) (connectors.Result, error) {
	return c.open(ctx, connectors.ActionOptOut)
}

// retryMail is how soon a poll comes back when a reminder or escalation
// could not be sent.
const retryMail = 10 * time.Minute

// open makes a new task for the job in ctx and mails its owner. A mail
// that fails fails the attempt (the worker retries it with a new task: no
// one can have answered a link never sent).
func (c *Connector) open(ctx context.Context, a connectors.Action) (connectors.Result, error) {
	job, ok := connectors.JobOf(ctx)
	if !ok {
		return connectors.Result{}, connectors.Permanent(errors.New("a manual task needs the job it is for (run it through the worker)"))
	}
	if c.tasks == nil {
		return connectors.Result{}, connectors.Permanent(errors.New("this process cannot mail task owners (no connectors.Deps.Tasks)"))
	}
	task, err := newTaskID()
	if err != nil {
		return connectors.Result{}, err
	}
	now := c.now().UTC()
	st := state{Task: task, Since: now, Reminded: now}
	if err := c.mail(ctx, job, a, st, false); err != nil {
		return connectors.Result{}, fmt.Errorf("mail the task to its owner: %w", err)
	}
	c.log.InfoContext(ctx, "manual task sent to its owner", "request_id", job.RequestID, "action", a)
	return c.pending(st, now), nil
}

// Poll reminds the owner of a task still open, at most once per
// remind_every, and escalates it once escalate_after has passed; the job
// keeps waiting. A reminder or escalation that cannot be sent is tried again
// at the next poll, sooner.
func (c *Connector) Poll(ctx context.Context, a connectors.Action, handle string, _ connectors.RecordWriter) (connectors.Result, error) {
	st, err := parseState(handle)
	if err != nil {
		return connectors.Result{}, connectors.Permanent(err)
	}
	if c.tasks == nil {
		return connectors.Result{}, connectors.Permanent(errors.New("this process cannot mail task owners (no connectors.Deps.Tasks)"))
	}
	job, _ := connectors.JobOf(ctx)
	now := c.now().UTC()
	failed := false
	if now.Sub(st.Reminded) >= c.spec.RemindEvery {
		if err := c.mail(ctx, job, a, st, true); err != nil {
			c.log.WarnContext(ctx, "manual task reminder not sent; tried again later", "request_id", job.RequestID, "error", err)
			failed = true
		} else {
			st.Reminded = now
		}
	}
	if !st.Escalated && now.Sub(st.Since) >= c.spec.EscalateAfter {
		err := c.tasks.Escalate(ctx, connectors.Escalation{Job: job, Owner: c.spec.Owner, Since: st.Since,
			Text: fmt.Sprintf("%s has not answered the manual task to %s in %s (connector %s) since %s.",
				c.spec.Owner, actionWords(a), c.spec.System, c.name, st.Since.Format(time.RFC3339))})
		if err != nil {
			c.log.WarnContext(ctx, "manual task escalation not sent; tried again later", "request_id", job.RequestID, "error", err)
			failed = true
		} else {
			st.Escalated = true
			c.log.InfoContext(ctx, "manual task escalated", "request_id", job.RequestID, "action", a)
		}
	}
	res := c.pending(st, now)
	if failed {
		res.Pending.PollAfter = retryMail
	}
	return res, nil
}

// pending is the result that keeps the job waiting on st: its next poll at
// the next reminder or the escalation, whichever comes first.
func (c *Connector) pending(st state, now time.Time) connectors.Result {
	next := st.Reminded.Add(c.spec.RemindEvery).Sub(now)
	if !st.Escalated {
		next = min(next, st.Since.Add(c.spec.EscalateAfter).Sub(now))
	}
	return connectors.Result{Pending: &connectors.Pending{Handle: st.handle(), PollAfter: max(next, time.Second),
		Unanswered: fmt.Sprintf("owner %s did not answer the manual task (%s)", c.spec.Owner, c.spec.System)}}
}

// Answer turns the owner's answer (an [Answer], as JSON) to the task handle
// names into the action's result: an upload's records go to out, in the
// collection "upload". An answer to another task, or one the action does
// not take, is a permanent error.
func (c *Connector) Answer(ctx context.Context, a connectors.Action, handle string, answer []byte, out connectors.RecordWriter) (connectors.Result, error) {
	st, err := parseState(handle)
	if err != nil {
		return connectors.Result{}, connectors.Permanent(err)
	}
	var ans Answer
	if err := json.Unmarshal(answer, &ans); err != nil {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("the answer is not a manual task's: %w", err))
	}
	if ans.Task != st.Task {
		return connectors.Result{}, connectors.Permanent(errors.New("the answer is to another task"))
	}
	if err := ans.Check(a); err != nil {
		return connectors.Result{}, connectors.Permanent(err)
	}
	var res connectors.Result
	switch ans.Kind {
	case AnswerAbsent:
		res.Searched(connectors.CollectionResult{Name: Collection, Outcome: outcome(a), Note: "the owner reported the person absent from " + c.spec.System})
	case AnswerConfirm:
		cr := connectors.CollectionResult{Name: Collection, Outcome: outcome(a), Note: "confirmed by the owner; no count given"}
		if ans.Count != nil {
			cr.Records, cr.Note = *ans.Count, "confirmed by the owner"
		}
		res.Searched(cr)
	case AnswerUpload:
		if out == nil {
			return res, connectors.Permanent(errors.New("an upload needs a record writer"))
		}
		for _, rec := range ans.Records {
			if err := out.WriteRecord(ctx, Collection, rec); err != nil {
				return connectors.Result{}, fmt.Errorf("write uploaded record: %w", err)
			}
		}
		res.Searched(connectors.CollectionResult{Name: Collection, Outcome: outcome(a), Records: int64(len(ans.Records)),
			Note: "uploaded by the owner"})
	}
	return res, nil
}

// Collection is the collection a manual connector's results, and an
// upload's records, are under.
const Collection = "upload"

// outcome is the word for what an action did to records.
func outcome(a connectors.Action) string {
	switch a {
	case connectors.ActionExport:
		return "exported"
	case connectors.ActionErase:
		return "deleted"
	default:
		return "opted_out"
	}
}

// actionWords says what an action asks of the owner.
func actionWords(a connectors.Action) string {
	switch a {
	case connectors.ActionExport:
		return "export a person's records"
	case connectors.ActionErase:
		return "erase a person's records"
	default:
		return "opt a person out"
	}
}

// mail sends the owner the task, or a reminder of it, with a fresh link.
func (c *Connector) mail(ctx context.Context, job connectors.JobRef, a connectors.Action, st state, reminder bool) error {
	now := c.now().UTC()
	exp := now.Add(c.spec.LinkTTL).Truncate(time.Second)
	l := Link{Job: job.ID, Task: st.Task, Connector: c.name, Action: a, System: c.spec.System}
	if a == connectors.ActionExport {
		l.MaxUpload, l.MaxRecords = c.spec.MaxUpload, c.spec.MaxRecords
	}
	link := c.tasks.Link(l.Payload(), exp)
	var b strings.Builder
	subject := fmt.Sprintf("Task: %s in %s", actionWords(a), c.spec.System)
	kind := "manual_task"
	if reminder {
		subject, kind = "Reminder: "+subject, "manual_reminder"
		fmt.Fprintf(&b, "Hello,\n\nThis is a reminder: a privacy request has been waiting on you since %s.\n\n", st.Since.Format("2 January 2006 15:04 MST"))
	} else {
		b.WriteString("Hello,\n\nA privacy request needs you.\n\n")
	}
	fmt.Fprintf(&b, "You are asked to %s in %s (request %s).\n\nWhat to do:\n", actionWords(a), c.spec.System, job.RequestID)
	for _, line := range strings.Split(strings.TrimSpace(c.spec.Instructions[string(a)]), "\n") {
		b.WriteString("    " + strings.TrimRight(line, "\r") + "\n")
	}
	fmt.Fprintf(&b, "\nOpen this page to see who the request is about and to answer:\n%s\n\n", link)
	fmt.Fprintf(&b, "The link works until %s. ", exp.Format("2 January 2006 15:04 MST"))
	fmt.Fprintf(&b, "Until you answer you will be reminded every %s, with a fresh link.\n\n", c.spec.RemindEvery)
	b.WriteString("This email names no one on purpose; the page does. Do not forward it.\n")
	return c.tasks.Mail(ctx, connectors.StaffMail{To: c.spec.Owner, Subject: subject, Text: b.String(), RequestID: job.RequestID, Kind: kind})
}
