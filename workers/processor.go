package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// Options tunes a Processor.
type Options struct {
	// MaxRetry is how many times a failing job is retried: a job gets
	// MaxRetry+1 attempts, counted in its document (so attempts made
	// through tasks the sweep re-created count too), then fails for good.
	MaxRetry int
	// Lease is how long a claimed job is held; the sweep hands a job whose
	// lease expired to another worker. It must exceed JobTimeout.
	Lease time.Duration
	// JobTimeout bounds one connector action.
	JobTimeout time.Duration
	// SweepGrace is how long work may sit untouched before the sweep
	// re-enqueues it.
	SweepGrace time.Duration
	// SweepEvery is how often the scheduler queues a sweep. A sweep that
	// starts less than half of it after the last one ended does nothing,
	// so sweeps queued up behind a backlog run once. 0: no such pause.
	SweepEvery time.Duration
	// PollEvery is how often a job waiting on a remote system is polled
	// when its connector names no interval (connectors.Pending.PollAfter);
	// the sweep hands due polls to the workers, so polls happen no more
	// often than it runs. 0 means 5 minutes.
	PollEvery time.Duration
	// WaitMax bounds how long a job waits on a remote system: it fails
	// (and the request needs attention) when the work is unfinished
	// WaitMax after the system accepted it. A request that comes due
	// meanwhile is escalated as any other. 0 means 14 days.
	WaitMax time.Duration
	// Notices configures the notices to subjects.
	Notices NoticeOptions
	// Approval says which requests wait for an agent's approval before
	// their fan-out.
	Approval dsr.ApprovalPolicy
	// Checks configures the scheduled checks.
	Checks ChecksOptions
	// ResolveMaxRounds bounds identity resolution: each round may find
	// identities that let another collection provide more. 0 means 3.
	ResolveMaxRounds int
	// ConnectorConcurrency caps how many jobs of one connector run at once
	// in this process, for connectors whose entry in the connectors file
	// sets no max_concurrency; 0 means no cap. dsar sets it to half the
	// worker concurrency, so one system that hangs cannot take every slot.
	ConnectorConcurrency int
	// SlotWait is how long a job waits for a slot of its connector before
	// giving its worker back and trying again after BusyDelay. 0 means 200ms.
	SlotWait time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Deps is what a Processor works with.
type Deps struct {
	Store      *dsr.Store
	Connectors *connectors.Registry
	Queue      *Queue
	Index      *dsr.BlindIndex
	// Notifier delivers notices; nil drops them (tests that send none).
	Notifier Notifier
	// Escalation is where alerts (reminders, overdue) go.
	Escalation EscalationOptions
	Log        *slog.Logger
}

// Processor handles dsar's tasks against the store and the connectors.
type Processor struct {
	store      *dsr.Store
	conns      *connectors.Registry
	queue      *Queue
	index      *dsr.BlindIndex
	notifier   Notifier
	escalation EscalationOptions
	log        *slog.Logger
	opts       Options
	notices    NoticeOptions
	slots      *limits
}

// NewProcessor returns a Processor.
func NewProcessor(d Deps, o Options) *Processor {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollEvery <= 0 {
		o.PollEvery = 5 * time.Minute
	}
	if o.WaitMax <= 0 {
		o.WaitMax = 14 * 24 * time.Hour
	}
	if o.ResolveMaxRounds <= 0 {
		o.ResolveMaxRounds = defaultResolveRounds
	}
	if o.SlotWait <= 0 {
		o.SlotWait = 200 * time.Millisecond
	}
	limit := func(name string) int {
		if d.Connectors != nil {
			if n := d.Connectors.MaxConcurrency(name); n > 0 {
				return n
			}
		}
		return o.ConnectorConcurrency
	}
	return &Processor{store: d.Store, conns: d.Connectors, queue: d.Queue, index: d.Index, notifier: d.Notifier, escalation: d.Escalation,
		log: d.Log, opts: o, notices: o.Notices, slots: newLimits(limit, o.SlotWait, registryRates(d.Connectors), queueRates(d.Queue))}
}

// Mux routes each task type to its handler.
func (p *Processor) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeFanout, p.HandleFanout)
	mux.HandleFunc(TypeJob, p.HandleJob)
	mux.HandleFunc(TypeSweep, p.HandleSweep)
	mux.HandleFunc(TypeNotice, p.HandleNotice)
	mux.HandleFunc(TypeReminders, p.HandleReminders)
	mux.HandleFunc(TypeEscalation, p.HandleEscalation)
	mux.HandleFunc(TypeRetention, p.HandleRetention)
	return mux
}

// actor names the workers in request histories.
const actor = "worker"

// HandleFanout moves a verified request to in_progress after identity
// resolution, creates one job per connector that handles the request's
// action, enqueues them and marks the request fanned out. Every step is
// idempotent, so a retry after a crash at any point finishes the work.
func (p *Processor) HandleFanout(ctx context.Context, t *asynq.Task) error {
	var pl fanoutPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.RequestID == "" {
		return fmt.Errorf("fanout: malformed payload: %w", asynq.SkipRetry)
	}
	err := p.Fanout(ctx, pl.RequestID)
	if err != nil {
		p.log.WarnContext(ctx, "fan-out failed", "request_id", pl.RequestID, "error", err)
	}
	return err
}

// Fanout does the work of HandleFanout for one request. Its error never
// quotes the subject's identities. A failed fan-out counts on the request
// (FanoutFailures, with the error, redacted, shown as FanoutError) however
// it was run, by a retry of its task or by the sweep; after MaxRetry+1
// failures the request needs attention, and an agent's retry runs the
// fan-out again.
func (p *Processor) Fanout(ctx context.Context, requestID string) error {
	err := p.fanout(ctx, requestID)
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		return err
	}
	return p.fanoutFailed(ctx, requestID, err)
}

// recordTimeout bounds the recording of an outcome whose own context may
// have ended (a fan-out that ran out of time).
const recordTimeout = 30 * time.Second

// fanoutFailed records a failed fan-out and, past the retry budget, moves
// the request to needs_attention and tells asynq not to retry. cause is
// redacted already.
//
// A fan-out that ran out of time has a context that has ended: the failure
// is recorded under a context of its own, so timeouts count too.
func (p *Processor) fanoutFailed(ctx context.Context, requestID string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	msg := cause.Error()
	req, err := p.store.FanoutFailed(ctx, requestID, msg)
	if errors.Is(err, dsr.ErrConflict) {
		return cause // fanned out, or moved on, meanwhile
	}
	if err != nil {
		p.log.ErrorContext(ctx, "fan-out failed and its failure could not be recorded", "request_id", requestID, "error", err)
		return cause
	}
	if req.FanoutFailures <= p.opts.MaxRetry {
		return cause
	}
	_, err = p.store.Transition(ctx, req.ID, req.Status, dsr.StatusNeedsAttention, dsr.Change{
		Actor: actor, Reason: fmt.Sprintf("fan-out failed %d times: %s", req.FanoutFailures, msg),
	})
	if errors.Is(err, dsr.ErrConflict) {
		return cause
	}
	if err != nil {
		return fmt.Errorf("%s; then: %w", msg, err)
	}
	p.log.ErrorContext(ctx, "fan-out failed for good; the request needs attention", "request_id", req.ID, "failures", req.FanoutFailures, "error", msg)
	return fmt.Errorf("%s: %w", msg, asynq.SkipRetry)
}

func (p *Processor) fanout(ctx context.Context, requestID string) (err error) {
	var ids []dsr.Identity
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("fanout %s: panic: %v", requestID, rec)
		}
		err = redactErr(err, ids)
	}()
	req, err := p.store.Request(ctx, requestID)
	if errors.Is(err, dsr.ErrNotFound) {
		return fmt.Errorf("fanout: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	ids = req.Identities
	// An appeal always waits for an agent's decision (one verified by the
	// portal's code comes here first).
	if req.Status == dsr.StatusVerified && req.ApprovedBy == "" && (p.opts.Approval.Requires(req.Type, req.Regulation) || req.AppealOf != "") {
		_, err := p.store.Transition(ctx, req.ID, dsr.StatusVerified, dsr.StatusAwaitingApproval, dsr.Change{
			Actor: actor, Reason: "waiting for an agent's approval",
		})
		if err != nil && !errors.Is(err, dsr.ErrConflict) {
			return fmt.Errorf("fanout: %w", err)
		}
		return nil
	}
	if req.Status == dsr.StatusVerified {
		resolved, bound, err := p.resolve(ctx, req)
		ids = resolved
		if err != nil {
			return fmt.Errorf("fanout %s: %w", req.ID, err)
		}
		// Keep the claimed identities on the record, after the actionable ones.
		all := dsr.MergeIdentities(resolved, req.Identities)
		moved, err := p.store.Transition(ctx, req.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{
			Actor:      actor,
			Reason:     fmt.Sprintf("fan-out: %d identities after resolution", len(resolved)) + boundNote(bound),
			Identities: all,
			Hashes:     p.index.HashAll(all),

			ResolveBoundReached: bound,
		})
		if err == nil && bound > 0 {
			p.log.WarnContext(ctx, "identity resolution stopped at its bound while still finding identities", "request_id", req.ID, "rounds", bound)
			p.audit(ctx, req.ID, "resolution_bound_reached", map[string]string{"rounds": fmt.Sprint(bound), "identities": fmt.Sprint(len(resolved))})
		}
		switch {
		case errors.Is(err, dsr.ErrConflict):
			if req, err = p.store.Request(ctx, req.ID); err != nil {
				return fmt.Errorf("fanout: %w", err)
			}
		case err != nil:
			return fmt.Errorf("fanout: %w", err)
		default:
			req = moved
		}
	}
	if req.Status != dsr.StatusInProgress || req.FannedOutAt != nil {
		return nil // not ours to fan out, or done already
	}
	action := req.Type.Action()
	var jobs []dsr.Job
	for _, c := range p.conns.For(connectors.Action(action)) {
		jobs = append(jobs, dsr.NewJob(req.ID, c.Name(), action, p.opts.Now()))
	}
	if len(jobs) == 0 {
		return p.noConnector(ctx, req)
	}
	if err := p.store.CreateJobs(ctx, jobs); err != nil {
		return fmt.Errorf("fanout %s: %w", req.ID, err)
	}
	for _, j := range jobs {
		if err := p.queue.EnqueueJob(ctx, j.ID); err != nil {
			return fmt.Errorf("fanout %s: %w", req.ID, err)
		}
	}
	if err := p.store.MarkFannedOut(ctx, req.ID); err != nil {
		return fmt.Errorf("fanout %s: %w", req.ID, err)
	}
	p.log.InfoContext(ctx, "request fanned out", "request_id", req.ID, "jobs", len(jobs))
	// Jobs that finished before the mark could not settle the request.
	return p.settle(ctx, req.ID)
}

// noConnector sends an in-progress request that no connector can act on to
// needs_attention with the reason: it is never completed (and the person
// never told it is done) when nothing was asked to do it.
func (p *Processor) noConnector(ctx context.Context, req *dsr.Request) error {
	reason := fmt.Sprintf("no connector is configured to %s: nothing was done; configure one in DSAR_CONNECTORS_FILE, then retry or close the request",
		actionVerb(req.Type.Action()))
	_, err := p.store.Transition(ctx, req.ID, dsr.StatusInProgress, dsr.StatusNeedsAttention, dsr.Change{Actor: actor, Reason: reason})
	if errors.Is(err, dsr.ErrConflict) {
		return nil // moved meanwhile by someone else
	}
	if err != nil {
		return fmt.Errorf("fanout %s: %w", req.ID, err)
	}
	p.log.WarnContext(ctx, "request needs attention: no connector for its action", "request_id", req.ID, "action", req.Type.Action())
	return nil
}

// defaultResolveRounds is Options.ResolveMaxRounds when unset.
const defaultResolveRounds = 3

// boundNote is what the fan-out's history says when resolution reached its
// bound.
func boundNote(bound int) string {
	if bound == 0 {
		return ""
	}
	return fmt.Sprintf("; identity resolution stopped at its bound of %d rounds while still finding identities (DSAR_RESOLVE_MAX_ROUNDS): data keyed by identities not found may remain", bound)
}

// resolve runs every Resolver until no new identity turns up, normalising
// what they provide; identities that do not normalise are dropped. It
// returns the request's identities with those found, and, when it stopped
// at Options.ResolveMaxRounds although the last round still found new
// identities, that number of rounds (else 0).
func (p *Processor) resolve(ctx context.Context, req *dsr.Request) ([]dsr.Identity, int, error) {
	ids := dsr.Actionable(req.Identities)
	resolvers := p.conns.Resolvers()
	if len(resolvers) == 0 {
		return ids, 0, nil
	}
	for round := 0; round < p.opts.ResolveMaxRounds; round++ {
		before := len(ids)
		for _, r := range resolvers {
			found, err := r.Resolve(ctx, subjectOf(ids))
			if err != nil {
				return ids, 0, fmt.Errorf("resolve identities: %w", err)
			}
			var fresh []dsr.Identity
			dropped := 0
			for _, f := range found {
				v, err := dsr.Normalize(dsr.Kind(f.Kind), f.Value)
				if err != nil {
					dropped++
					continue
				}
				fresh = append(fresh, dsr.Identity{Kind: dsr.Kind(f.Kind), Value: v, Source: f.Source})
			}
			if dropped > 0 {
				p.log.WarnContext(ctx, "resolved identities dropped: not valid for their kind", "request_id", req.ID, "dropped", dropped)
			}
			ids = dsr.MergeIdentities(ids, fresh)
		}
		if len(ids) == before {
			return ids, 0, nil
		}
	}
	return ids, p.opts.ResolveMaxRounds, nil
}

func subjectOf(ids []dsr.Identity) connectors.Subject {
	s := connectors.Subject{Identities: make([]connectors.Identity, len(ids))}
	for i, id := range ids {
		s.Identities[i] = connectors.Identity{Kind: string(id.Kind), Value: id.Value, Source: id.Source}
	}
	return s
}

// HandleJob runs one connector job: claim it under a lease, perform the
// action, record the outcome fenced by the attempt, and settle the request
// when it was the last open job. A failed attempt is retried with back-off
// until the job has had MaxRetry+1 attempts or the connector says the error
// is permanent; then the job fails and the request needs attention.
func (p *Processor) HandleJob(ctx context.Context, t *asynq.Task) error {
	var pl jobPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.JobID == "" {
		return fmt.Errorf("job: malformed payload: %w", asynq.SkipRetry)
	}
	return p.RunJob(ctx, pl.JobID)
}

// RunJob does the work of HandleJob. Its error never quotes the subject's
// identities. It first takes a slot of the job's connector (see
// Options.ConnectorConcurrency); when none frees up within SlotWait it
// returns ErrConnectorBusy without touching the job.
func (p *Processor) RunJob(ctx context.Context, jobID string) error {
	release, err := p.slots.acquire(ctx, jobConnector(jobID))
	if err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	defer release()
	job, err := p.store.ClaimJob(ctx, jobID, p.opts.Lease)
	switch {
	case errors.Is(err, dsr.ErrConflict):
		return nil // finished already, or another worker holds it
	case errors.Is(err, dsr.ErrNotFound):
		return fmt.Errorf("job: %w: %w", err, asynq.SkipRetry)
	case err != nil:
		return fmt.Errorf("job: %w", err)
	}
	if job.Handle == "" { // a poll of work under way is not a start
		p.audit(ctx, job.RequestID, "job_started", map[string]string{"connector": job.Connector, "action": string(job.Action), "attempt": fmt.Sprint(job.Attempts)})
	}
	req, err := p.store.Request(ctx, job.RequestID)
	if err != nil {
		return p.fail(ctx, job, nil, fmt.Errorf("load request: %w", err))
	}
	res, runErr := p.perform(ctx, job, req)
	if runErr != nil {
		return p.fail(ctx, job, req, runErr)
	}
	if res.Pending != nil {
		return p.wait(ctx, job, req, res.Pending)
	}
	out := dsr.Outcome{Status: dsr.JobSucceeded, Records: res.Records}
	var notSearched []string
	for _, c := range res.Collections {
		out.Collections = append(out.Collections, dsr.CollectionResult{Name: c.Name, Records: c.Records, Outcome: c.Outcome, Basis: c.Basis,
			MatchKinds: c.MatchKinds, KindsKnown: c.KindsKnown, Note: c.Note})
		if c.Outcome == connectors.OutcomeNotSearched {
			notSearched = append(notSearched, c.Name+" ("+c.Note+")")
		}
	}
	if err := p.store.FinishJob(ctx, job, out); err != nil {
		return fmt.Errorf("job %s: %w", job.ID, err)
	}
	p.jobLog(job).InfoContext(ctx, "job succeeded", "records", res.Records)
	event := map[string]string{"connector": job.Connector, "action": string(job.Action),
		"attempt": fmt.Sprint(job.Attempts), "records": fmt.Sprint(res.Records)}
	if len(notSearched) > 0 {
		event["not_searched"] = strings.Join(notSearched, "; ")
		p.jobLog(job).WarnContext(ctx, "collections not searched: the request has none of the identities they are matched by", "collections", len(notSearched))
	}
	p.audit(ctx, req.ID, "job_succeeded", event)
	return p.settle(ctx, req.ID)
}

// audit appends an event to a request's audit chain. It is best effort: a
// failure is logged, and the event's facts stay in the store's documents.
func (p *Processor) audit(ctx context.Context, requestID, kind string, data map[string]string) {
	if _, err := p.store.AppendAudit(ctx, requestID, actor, kind, data); err != nil {
		p.log.WarnContext(ctx, "audit event not recorded", "request_id", requestID, "kind", kind, "error", err)
	}
}

func (p *Processor) jobLog(job *dsr.Job) *slog.Logger {
	return p.log.With("request_id", job.RequestID, "job", job.Connector+"/"+string(job.Action), "attempt", job.Attempts)
}

// perform runs the connector action of a job under the job timeout. A
// connector that panics fails the attempt like an error.
func (p *Processor) perform(ctx context.Context, job *dsr.Job, req *dsr.Request) (res connectors.Result, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("connector %s panicked: %v", job.Connector, rec)
		}
	}()
	c, ok := p.conns.Lookup(job.Connector)
	if !ok {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("connector %q is not configured any more", job.Connector))
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.JobTimeout)
	defer cancel()
	if job.Handle != "" {
		return p.poll(ctx, c, job)
	}
	s := subjectOf(dsr.Actionable(req.Identities))
	switch job.Action {
	case dsr.ActionExport:
		ex, ok := c.(connectors.Exporter)
		if !ok {
			break
		}
		return p.exportTo(ctx, job, func(w connectors.RecordWriter) (connectors.Result, error) { return ex.Export(ctx, s, w) })
	case dsr.ActionErase:
		if er, ok := c.(connectors.Eraser); ok {
			return er.Erase(ctx, s)
		}
	case dsr.ActionOptOut:
		if oo, ok := c.(connectors.OptOuter); ok {
			return oo.OptOut(ctx, s)
		}
	}
	return connectors.Result{}, connectors.Permanent(fmt.Errorf("connector %q cannot %s", job.Connector, job.Action))
}

// exportTo runs an export (or the poll of one) into the job's export
// records.
func (p *Processor) exportTo(ctx context.Context, job *dsr.Job, run func(connectors.RecordWriter) (connectors.Result, error)) (connectors.Result, error) {
	w, err := p.store.NewExportWriter(ctx, job)
	if err != nil {
		return connectors.Result{}, err
	}
	res, err := run(w)
	if err == nil {
		err = w.Flush(ctx)
	}
	if errors.Is(err, dsr.ErrExportOrder) {
		err = connectors.Permanent(err)
	}
	return res, err
}

// poll asks the remote system how the work a waiting job handed it is
// going.
func (p *Processor) poll(ctx context.Context, c connectors.Connector, job *dsr.Job) (connectors.Result, error) {
	pl, ok := c.(connectors.Poller)
	if !ok {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("connector %q waits on a remote system but cannot poll it any more", job.Connector))
	}
	if job.Action == dsr.ActionExport {
		return p.exportTo(ctx, job, func(w connectors.RecordWriter) (connectors.Result, error) {
			return pl.Poll(ctx, connectors.Action(job.Action), job.Handle, w)
		})
	}
	return pl.Poll(ctx, connectors.Action(job.Action), job.Handle, nil)
}

// maxHandle bounds the length of a remote system's handle.
const maxHandle = 512

// wait records that the remote system accepted a job's work and finishes it
// later: the job waits until its next poll. Past the job's wait deadline it
// fails for good instead.
func (p *Processor) wait(ctx context.Context, job *dsr.Job, req *dsr.Request, pend *connectors.Pending) error {
	c, _ := p.conns.Lookup(job.Connector)
	if _, ok := c.(connectors.Poller); !ok {
		return p.fail(ctx, job, req, connectors.Permanent(fmt.Errorf("connector %q said it finishes later but cannot be polled", job.Connector)))
	}
	if pend.Handle == "" || len(pend.Handle) > maxHandle {
		return p.fail(ctx, job, req, connectors.Permanent(fmt.Errorf("connector %q said it finishes later with a handle of %d bytes (want 1 to %d)", job.Connector, len(pend.Handle), maxHandle)))
	}
	now := p.opts.Now()
	until := now.Add(p.opts.WaitMax)
	if job.WaitUntil != nil {
		until = *job.WaitUntil
	}
	if !now.Before(until) {
		return p.fail(ctx, job, req, connectors.Permanent(fmt.Errorf("the remote system had not finished by the job's wait deadline %s", until.Format(time.RFC3339))))
	}
	after := pend.PollAfter
	if after <= 0 {
		after = p.opts.PollEvery
	}
	pollAt := now.Add(after)
	if pollAt.After(until) {
		pollAt = until // a last poll at the deadline
	}
	if err := p.store.FinishJob(ctx, job, dsr.Outcome{Status: dsr.JobWaiting, Handle: pend.Handle, PollAt: pollAt, WaitUntil: until}); err != nil {
		return fmt.Errorf("job %s: %w", job.ID, err)
	}
	p.jobLog(job).InfoContext(ctx, "job waiting on the remote system", "poll_at", pollAt, "wait_until", until)
	if job.Handle == "" {
		p.audit(ctx, job.RequestID, "job_waiting", map[string]string{"connector": job.Connector, "action": string(job.Action),
			"wait_until": until.Format(time.RFC3339)})
	}
	return nil
}

// fail records a failed attempt: back to pending for a retry, or failed for
// good when the job has had all its attempts or the error is permanent,
// which then settles the request and tells asynq not to retry.
func (p *Processor) fail(ctx context.Context, job *dsr.Job, req *dsr.Request, cause error) error {
	// The attempt's context may have ended (its task ran out of time, or
	// the worker is shutting down): the failure is recorded all the same.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	var ids []dsr.Identity
	if req != nil {
		ids = req.Identities
	}
	msg := redact(cause.Error(), ids)
	// Attempts that ended waiting on a remote system are not failures.
	permanent := job.Attempts-job.Waits > p.opts.MaxRetry || errors.Is(cause, connectors.ErrPermanent)
	out := dsr.Outcome{Status: dsr.JobPending, Error: msg}
	if permanent {
		out.Status = dsr.JobFailed
	}
	log := p.jobLog(job)
	if err := p.store.FinishJob(ctx, job, out); err != nil {
		err = redactErr(err, ids)
		log.ErrorContext(ctx, "job failed and its outcome could not be recorded", "error", err)
		return fmt.Errorf("job %s: %w", job.ID, err)
	}
	if !permanent {
		log.WarnContext(ctx, "job attempt failed; will retry", "error", msg)
		return errors.New(msg)
	}
	log.ErrorContext(ctx, "job failed for good", "error", msg)
	p.audit(ctx, job.RequestID, "job_failed", map[string]string{"connector": job.Connector, "action": string(job.Action),
		"attempt": fmt.Sprint(job.Attempts), "error": msg})
	if err := p.settle(ctx, job.RequestID); err != nil {
		return redactErr(err, ids)
	}
	return fmt.Errorf("%s: %w", msg, asynq.SkipRetry)
}

func (p *Processor) settle(ctx context.Context, requestID string) error {
	to, err := p.store.Settle(ctx, requestID, actor)
	if err != nil {
		return fmt.Errorf("settle %s: %w", requestID, err)
	}
	if to != "" {
		p.log.InfoContext(ctx, "request settled", "request_id", requestID, "status", to)
	}
	if to == dsr.StatusCompleted {
		// The notice is pending in the store already; the sweep sends it
		// if this enqueue is lost.
		if err := p.queue.EnqueueNotice(ctx, requestID, dsr.NoticeCompleted); err != nil {
			p.log.WarnContext(ctx, "completion notice not enqueued; the sweep will retry", "request_id", requestID, "error", err)
		}
	}
	return nil
}

// redact replaces every identity value of the subject in msg (emails in any
// case, phones also without their +), so errors that quote data (a duplicate
// key, a rejected value) never reach logs, the queue or the API.
func redact(msg string, ids []dsr.Identity) string {
	for _, id := range ids {
		if id.Value == "" {
			continue
		}
		switch id.Kind {
		case dsr.KindEmail:
			msg = regexp.MustCompile("(?i)"+regexp.QuoteMeta(id.Value)).ReplaceAllLiteralString(msg, "[redacted]")
		case dsr.KindPhone:
			msg = strings.ReplaceAll(msg, id.Value, "[redacted]")
			msg = strings.ReplaceAll(msg, strings.TrimPrefix(id.Value, "+"), "[redacted]")
		default:
			msg = strings.ReplaceAll(msg, id.Value, "[redacted]")
		}
	}
	return msg
}

// redactErr returns err with its message redacted, keeping asynq.SkipRetry.
func redactErr(err error, ids []dsr.Identity) error {
	if err == nil {
		return nil
	}
	msg := redact(err.Error(), ids)
	if errors.Is(err, asynq.SkipRetry) {
		return fmt.Errorf("%s: %w", strings.TrimSuffix(msg, ": "+asynq.SkipRetry.Error()), asynq.SkipRetry)
	}
	return errors.New(msg)
}

// HandleSweep re-drives work whose queue task may be gone: verified requests
// never fanned out, in-progress requests whose fan-out did not finish or whose
// last job's settlement was lost, pending jobs untouched for the grace period
// and running jobs whose lease expired. Enqueuing uses the same task ids as
// the first time, so work still queued is not duplicated. One sweep runs at
// a time (see Sweep).
func (p *Processor) HandleSweep(ctx context.Context, _ *asynq.Task) error {
	_, err := p.Sweep(ctx)
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

// Sweep does the work of HandleSweep. It holds a lock in Redis while it
// runs, and keeps it for half of Options.SweepEvery after it ends, so
// sweeps that queued up behind a backlog (their schedule's uniqueness lasts
// one interval) or that two schedulers queued at once act once. An item that
// fails (a request, a job, a notice) is logged with its id and reason and
// counted in Failed, and the sweep goes on; the error then sums them up.
func (p *Processor) Sweep(ctx context.Context) (SweepCounts, error) {
	var n SweepCounts
	l, err := p.queue.takeLease(ctx, sweepKey(p.queue.name), sweepLease)
	if err != nil {
		p.log.WarnContext(ctx, "sweep not run", "error", err)
		return n, fmt.Errorf("sweep: %w", err)
	}
	if l == nil {
		p.log.DebugContext(ctx, "sweep skipped: another is running or ran moments ago")
		n.Skipped = true
		return n, nil
	}
	defer func() {
		if err := l.end(context.WithoutCancel(ctx), p.opts.SweepEvery/2); err != nil {
			p.log.WarnContext(ctx, "sweep lock not given up; it expires by itself", "error", err)
		}
	}()
	// Redis may have lost the queue's registration since the last sweep.
	if err := p.queue.register(ctx); err != nil {
		p.log.WarnContext(ctx, "queue not registered", "error", err)
	}
	var first error
	failed := func(what, key, id string, err error) {
		n.Failed++
		p.log.WarnContext(ctx, "sweep: "+what+" not re-driven", key, id, "error", err)
		if first == nil {
			first = fmt.Errorf("%s %s: %w", what, id, err)
		}
	}
	var scans []error
	now := p.opts.Now()
	before := now.Add(-p.opts.SweepGrace)
	err = p.store.EachStaleRequest(ctx, before, func(r *dsr.Request) error {
		if err := p.redrive(ctx, r, &n); err != nil {
			failed("request", "request_id", r.ID, err)
		}
		return ctx.Err()
	})
	if err != nil {
		scans = append(scans, fmt.Errorf("sweep requests: %w", err))
	}
	err = p.store.EachStaleJob(ctx, before, now, func(j *dsr.Job) error {
		queued, err := p.queue.enqueueJob(ctx, j.ID)
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
	err = p.store.EachUnverifiedPastDue(ctx, now, func(r *dsr.Request) error {
		_, err := p.store.Transition(ctx, r.ID, dsr.StatusVerifying, dsr.StatusExpired, dsr.Change{
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
	err = p.store.EachPendingNotice(ctx, before, func(r *dsr.Request) error {
		for _, notice := range r.PendingNotices {
			queued, err := p.queue.enqueueNotice(ctx, r.ID, notice)
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
	err = p.store.EachAuditDue(ctx, before, func(r *dsr.Request) error {
		if err := p.store.CatchUpAudit(ctx, r); err != nil {
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
		p.log.InfoContext(ctx, "sweep re-drove work", "fanouts", n.Fanouts, "settled", n.Settled, "jobs", n.Jobs, "notices", n.Notices,
			"expired", n.Expired, "audited", n.Audited, "failed", n.Failed)
	}
	if n.Failed > 0 {
		scans = append(scans, fmt.Errorf("sweep: %d items not re-driven, the next sweep tries again; first: %w", n.Failed, first))
	}
	if err := errors.Join(scans...); err != nil {
		p.log.ErrorContext(ctx, "sweep incomplete", "error", err)
		return n, err
	}
	return n, nil
}

// redrive re-drives one request the sweep found unchanged since before its
// grace period: its fan-out, or its settlement. The scan's copy may be old
// (under a backlog its fan-out may have run since it was read), so before
// enqueuing a fan-out the request is read again, and left alone if it has
// changed: a request already fanned out is never fanned out again.
func (p *Processor) redrive(ctx context.Context, r *dsr.Request, n *SweepCounts) error {
	if r.Status == dsr.StatusVerified || r.FannedOutAt == nil {
		fresh, err := p.store.Request(ctx, r.ID)
		if err != nil {
			return err
		}
		if !fresh.UpdatedAt.Equal(r.UpdatedAt) || fresh.FannedOutAt != nil {
			return nil // moved on since the scan read it; the next sweep looks again
		}
		queued, err := p.queue.enqueueFanout(ctx, r.ID)
		if queued {
			n.Fanouts++
		}
		return err
	}
	to, err := p.store.Settle(ctx, r.ID, "sweep")
	if to != "" {
		n.Settled++
	}
	return err
}
