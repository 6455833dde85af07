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

// JobStore is what running a job reads and writes in the store.
type JobStore interface {
	AuditStore
	ClaimJob(ctx context.Context, id string, lease time.Duration) (*dsr.Job, error)
	FinishJob(ctx context.Context, j *dsr.Job, o dsr.Outcome) error
	// JobFinished counts a job that ended for good on its request, and
	// settles the request when it was the last.
	JobFinished(ctx context.Context, requestID string, failed bool, actor string) (dsr.Status, error)
	NewExportWriter(ctx context.Context, job *dsr.Job) (dsr.ExportWriter, error)
	// Request is read only for a job made before jobs carried the
	// request's identities.
	Request(ctx context.Context, id string) (*dsr.Request, error)
}

// JobConnectors are the connectors jobs run on.
type JobConnectors interface {
	Lookup(name string) (connectors.Connector, bool)
	// MaxConcurrency is a connector's cap on the jobs it runs at once
	// (its max_concurrency); 0 when it sets none.
	MaxConcurrency(name string) int
	// MaxRate is a connector's cap on job starts per period across every
	// worker process (its max_rate); the zero Rate when it sets none.
	MaxRate(name string) connectors.Rate
	// DataMap is what a connector's entry declares of its system (its
	// data_map), kept on its export jobs; false when it declares nothing.
	DataMap(name string) (connectors.DataMap, bool)
}

// JobDeps is what a JobHandler works with.
type JobDeps struct {
	Store      JobStore
	Connectors JobConnectors
	// Queue takes the completion notice of a request a job settles.
	Queue noticeQueue
	// Rates counts each connector's job starts across worker processes
	// (its max_rate); nil leaves rates unenforced.
	Rates connectors.Limiter
	// Slots holds each connector's max_concurrency across worker
	// processes; nil holds it per process only.
	Slots *SlotCounter
	// Index hashes the values a correction overwrites and writes, for its
	// evidence (dsr.BlindIndex.HashValue); nil: unkeyed SHA-256 (tests).
	Index ValueHasher
	// Removals records what opt-out and erase jobs removed, for the
	// segmentation report; nil records nothing.
	Removals RemovalStore
	Log      *slog.Logger
}

// ValueHasher makes the keyed hashes of a correction's evidence.
type ValueHasher interface {
	HashValue(field, value string) string
}

// slotGrace is how long past the job timeout a shared slot is held at most:
// a worker killed mid-job frees its slots after JobTimeout + slotGrace.
const slotGrace = time.Minute

// JobOptions tunes a JobHandler. dsar sets each from its setting in config.
type JobOptions struct {
	// MaxRetry is how many times a failing job is retried: a job gets
	// MaxRetry+1 attempts, counted in its document (so attempts made
	// through tasks the sweep re-created count too), then fails for good.
	MaxRetry int
	// Lease is how long a claimed job is held; the sweep hands a job whose
	// lease expired to another worker. It must exceed JobTimeout.
	Lease time.Duration
	// JobTimeout bounds one connector action.
	JobTimeout time.Duration
	// PollEvery is how often a job waiting on a remote system is polled
	// when its connector names no interval (connectors.Pending.PollAfter);
	// the sweep hands due polls to the workers, so polls happen no more
	// often than it runs.
	PollEvery time.Duration
	// WaitMax bounds how long a job waits on a remote system: it fails
	// (and the request needs attention) when the work is unfinished
	// WaitMax after the system accepted it.
	WaitMax time.Duration
	// ConnectorConcurrency caps how many jobs of one connector run at once
	// in this process, for connectors that set no max_concurrency; 0
	// means no cap.
	ConnectorConcurrency int
	// SlotWait is how long a job waits for a slot of its connector before
	// giving its worker back and trying again after BusyDelay. 0 means 200ms.
	SlotWait time.Duration
	// OutcomeHook says requests owe a post-processing hook their outcome:
	// a job that settles its request then enqueues it.
	OutcomeHook bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// JobHandler handles TypeJob: one connector action for one request.
type JobHandler struct {
	store JobStore
	conns JobConnectors
	queue noticeQueue
	index ValueHasher
	// removals records what opt-out and erase jobs removed; nil: nothing.
	removals RemovalStore
	log      *slog.Logger
	opts     JobOptions
	slots    *limits
	audit    func(ctx context.Context, requestID, kind string, data map[string]string)
}

// NewJobHandler returns a JobHandler.
func NewJobHandler(d JobDeps, o JobOptions) *JobHandler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SlotWait <= 0 {
		o.SlotWait = 200 * time.Millisecond
	}
	return &JobHandler{store: d.Store, conns: d.Connectors, queue: d.Queue, index: d.Index, removals: d.Removals, log: d.Log, opts: o, slots: newLimits(jobLimits(d, o)),
		audit: auditor{store: d.Store, log: d.Log}.audit}
}

// ProcessTask runs one connector job: claim it under a lease, perform the
// action, record the outcome fenced by the attempt, and settle the request
// when it was the last open job. A failed attempt is retried with back-off
// until the job has had MaxRetry+1 attempts or the connector says the error
// is permanent; then the job fails and the request needs attention.
func (h *JobHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var pl jobPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.JobID == "" {
		return fmt.Errorf("job: malformed payload: %w", asynq.SkipRetry)
	}
	return h.RunJob(ctx, pl.JobID)
}

// RunJob does the work of ProcessTask. Its error never quotes the subject's
// identities. It first takes a slot of the job's connector (see
// JobOptions.ConnectorConcurrency); when none frees up within SlotWait it
// returns ErrConnectorBusy without touching the job.
func (h *JobHandler) RunJob(ctx context.Context, jobID string) error {
	release, err := h.slots.acquire(ctx, jobConnector(jobID))
	if err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	defer release()
	job, err := h.store.ClaimJob(ctx, jobID, h.opts.Lease)
	switch {
	case errors.Is(err, dsr.ErrConflict):
		return nil // finished already, or another worker holds it
	case errors.Is(err, dsr.ErrNotFound):
		return fmt.Errorf("job: %w: %w", err, asynq.SkipRetry)
	case errors.Is(err, dsr.ErrUnreadable) && job != nil:
		// Claimed, but its sealed identities do not open: no retry can
		// help, an agent must look.
		return h.fail(ctx, job, connectors.Permanent(err))
	case err != nil:
		return fmt.Errorf("job: %w", err)
	}
	if job.Handle == "" { // a poll of work under way is not a start
		h.audit(ctx, job.RequestID, "job_started", map[string]string{"connector": job.Connector, "action": string(job.Action), "attempt": fmt.Sprint(job.Attempts)})
	}
	if job.Identities == nil {
		// Made before jobs carried what they need: the request has it.
		req, err := h.store.Request(ctx, job.RequestID)
		if err != nil {
			return h.fail(ctx, job, fmt.Errorf("load request: %w", err))
		}
		job.Identities = req.Identities
	}
	actx, span := startAction(ctx, job)
	res, runErr := h.perform(actx, job)
	endAction(span, res, runErr)
	if runErr != nil {
		return h.fail(ctx, job, runErr)
	}
	if res.Pending != nil {
		return h.wait(ctx, job, res.Pending)
	}
	out := dsr.Outcome{Status: dsr.JobSucceeded, Records: res.Records}
	var notSearched []string
	for _, c := range res.Collections {
		out.Collections = append(out.Collections, dsr.CollectionResultOf(c))
		if c.Outcome == connectors.OutcomeNotSearched {
			notSearched = append(notSearched, c.Name+" ("+c.Note+")")
		}
	}
	if dm, ok := h.conns.DataMap(job.Connector); ok && connectors.WritesRecords(connectors.Action(job.Action)) {
		out.DataMap = dsr.DataMapOf(dm) // what the access package tells the person of this system
	}
	if err := h.store.FinishJob(ctx, job, out); err != nil {
		return fmt.Errorf("job %s: %w", job.ID, err)
	}
	h.jobLog(job).InfoContext(ctx, "job succeeded", "records", res.Records)
	h.recordRemovals(ctx, job, res)
	event := map[string]string{"connector": job.Connector, "action": string(job.Action),
		"attempt": fmt.Sprint(job.Attempts), "records": fmt.Sprint(res.Records)}
	if ch := changesOf(res); ch != "" {
		event["changes"] = ch
	}
	if len(notSearched) > 0 {
		event["not_searched"] = strings.Join(notSearched, "; ")
		h.jobLog(job).WarnContext(ctx, "collections not searched: the request has none of the identities they are matched by", "collections", len(notSearched))
	}
	h.audit(ctx, job.RequestID, "job_succeeded", event)
	return h.finished(ctx, job, false)
}

// finished counts a job that ended for good on its request, settling the
// request when it was the last.
func (h *JobHandler) finished(ctx context.Context, job *dsr.Job, failed bool) error {
	to, err := h.store.JobFinished(ctx, job.RequestID, failed, actor)
	if err != nil {
		return fmt.Errorf("settle %s: %w", job.RequestID, err)
	}
	settled(ctx, h.queue, h.log, job.RequestID, to, h.opts.OutcomeHook)
	return nil
}

func (h *JobHandler) jobLog(job *dsr.Job) *slog.Logger {
	return h.log.With("request_id", job.RequestID, "job", job.Connector+"/"+string(job.Action), "attempt", job.Attempts)
}

// perform runs the connector action of a job under the job timeout: the
// action, or for a job waiting on its system the poll, or the answer that
// came for it (job.Answer). A connector that panics fails the attempt like
// an error.
func (h *JobHandler) perform(ctx context.Context, job *dsr.Job) (connectors.Result, error) {
	c, ok := h.conns.Lookup(job.Connector)
	if !ok {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("connector %q is not configured any more", job.Connector))
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.JobTimeout)
	defer cancel()
	a, s := connectors.Action(job.Action), subjectOf(dsr.Actionable(job.Identities))
	ctx = connectors.WithJob(ctx, connectors.JobRef{ID: job.ID, RequestID: job.RequestID, Connector: job.Connector, Action: a, Retries: job.Retries})
	if a == connectors.ActionCorrect {
		cs, err := h.corrections(ctx, job)
		if err != nil {
			return connectors.Result{}, err
		}
		s = dsr.CorrectionSubject(dsr.Actionable(job.Identities), cs)
		if h.index != nil {
			s.Hash = h.index.HashValue
		}
		res, err := connectors.Do(ctx, c, a, s, job.Handle, job.Answer, nil)
		return res, redactValues(err, cs)
	}
	run := func(w connectors.RecordWriter) (connectors.Result, error) {
		return connectors.Do(ctx, c, a, s, job.Handle, job.Answer, w)
	}
	if connectors.WritesRecords(a) {
		return h.exportTo(ctx, job, run)
	}
	return run(nil)
}

// corrections reads the changes a correction job applies from its request:
// they are kept there alone, so one purge removes them (a job carries no
// copy). A request whose values are gone (purged) fails the job for good.
func (h *JobHandler) corrections(ctx context.Context, job *dsr.Job) ([]dsr.FieldValue, error) {
	req, err := h.store.Request(ctx, job.RequestID)
	if err != nil {
		return nil, fmt.Errorf("load request: %w", err)
	}
	cs := req.CorrectionValues()
	if cs == nil {
		return nil, connectors.Permanent(errors.New("the request holds no values to correct with (purged, or none asked)"))
	}
	return cs, nil
}

// redactValues returns err with the new values of cs taken out of its
// message, keeping what it wraps (errors.Is and errors.As see through).
func redactValues(err error, cs []dsr.FieldValue) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, c := range cs {
		if len(c.Value) > 0 {
			msg = replaceAlone(msg, regexp.MustCompile(regexp.QuoteMeta(c.Value)))
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error whose message had personal data taken out.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// changesOf sums up, for the audit trail, what a correction changed:
// "collection.field: old HASH,... new HASH" per field, hashes only.
func changesOf(res connectors.Result) string {
	var parts []string
	for _, c := range res.Collections {
		for _, ch := range c.Changes {
			old := strings.Join(ch.Old, ",")
			if old == "" {
				old = "none"
			}
			parts = append(parts, fmt.Sprintf("%s.%s: old %s new %s", c.Name, ch.Field, old, ch.New))
		}
	}
	return strings.Join(parts, "; ")
}

// exportTo runs an export (or the poll of one) into the job's export
// records.
func (h *JobHandler) exportTo(ctx context.Context, job *dsr.Job, run func(connectors.RecordWriter) (connectors.Result, error)) (connectors.Result, error) {
	w, err := h.store.NewExportWriter(ctx, job)
	if err != nil {
		return connectors.Result{}, err
	}
	res, err := run(w)
	if err == nil {
		err = w.Flush(ctx)
	} else if d, ok := w.(interface{ Discard() }); ok {
		d.Discard() // a writer that buffers in a file (sealedstore's objects) frees it now
	}
	if errors.Is(err, dsr.ErrExportOrder) {
		err = connectors.Permanent(err)
	}
	return res, err
}

// maxHandle bounds the length of a remote system's handle.
const maxHandle = 512

// wait records that the remote system accepted a job's work and finishes it
// later: the job waits until its next poll. Past the job's wait deadline it
// fails for good instead.
func (h *JobHandler) wait(ctx context.Context, job *dsr.Job, pend *connectors.Pending) error {
	c, _ := h.conns.Lookup(job.Connector)
	if !connectors.Waits(c) {
		return h.fail(ctx, job, connectors.Permanent(fmt.Errorf("connector %q said it finishes later but can neither be polled nor answered", job.Connector)))
	}
	if pend.Handle == "" || len(pend.Handle) > maxHandle {
		return h.fail(ctx, job, connectors.Permanent(fmt.Errorf("connector %q said it finishes later with a handle of %d bytes (want 1 to %d)", job.Connector, len(pend.Handle), maxHandle)))
	}
	now := h.opts.Now()
	until := now.Add(h.opts.WaitMax)
	if job.WaitUntil != nil {
		until = *job.WaitUntil
	}
	if !now.Before(until) {
		what := "the remote system had not finished"
		if pend.Unanswered != "" {
			what = pend.Unanswered
		}
		return h.fail(ctx, job, connectors.Permanent(fmt.Errorf("%s by the job's wait deadline %s", what, until.Format(time.RFC3339))))
	}
	after := pend.PollAfter
	if after <= 0 {
		after = h.opts.PollEvery
	}
	pollAt := now.Add(after)
	if pollAt.After(until) {
		pollAt = until // a last poll at the deadline
	}
	if err := h.store.FinishJob(ctx, job, dsr.Outcome{Status: dsr.JobWaiting, Handle: pend.Handle, PollAt: pollAt, WaitUntil: until}); err != nil {
		return fmt.Errorf("job %s: %w", job.ID, err)
	}
	h.jobLog(job).InfoContext(ctx, "job waiting on the remote system", "poll_at", pollAt, "wait_until", until)
	if job.Handle == "" {
		h.audit(ctx, job.RequestID, "job_waiting", map[string]string{"connector": job.Connector, "action": string(job.Action),
			"wait_until": until.Format(time.RFC3339)})
	}
	return nil
}

// fail records a failed attempt: back to pending for a retry, or failed for
// good when the job has had all its attempts or the error is permanent,
// which then settles the request and tells asynq not to retry.
func (h *JobHandler) fail(ctx context.Context, job *dsr.Job, cause error) error {
	// The attempt's context may have ended (its task ran out of time, or
	// the worker is shutting down): the failure is recorded all the same.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	ids := job.Identities
	msg := redact(cause.Error(), ids)
	// Attempts that ended waiting on a remote system, or that it deferred
	// (connectors.RetryAfter), are not failures; nor are those before the
	// job last began to wait (the system answered since).
	delay, deferred := connectors.RetryDelay(cause)
	deferred = deferred && job.Deferrable(h.opts.Now(), h.opts.WaitMax)
	failures := job.Failures()
	if deferred {
		failures--
	}
	permanent := failures > h.opts.MaxRetry || errors.Is(cause, connectors.ErrPermanent)
	out := dsr.Outcome{Status: dsr.JobPending, Error: msg, Deferred: deferred && !permanent}
	if permanent {
		out.Status = dsr.JobFailed
	}
	log := h.jobLog(job)
	if err := h.store.FinishJob(ctx, job, out); err != nil {
		err = redactErr(err, ids)
		log.ErrorContext(ctx, "job failed and its outcome could not be recorded", "error", err)
		return fmt.Errorf("job %s: %w", job.ID, err)
	}
	if out.Deferred {
		log.WarnContext(ctx, "job deferred by its system; will retry", "after", delay, "error", msg)
		return &connectors.RetryAfterError{Delay: delay, Err: errors.New(msg)}
	}
	if !permanent {
		log.WarnContext(ctx, "job attempt failed; will retry", "error", msg)
		return errors.New(msg)
	}
	log.ErrorContext(ctx, "job failed for good", "error", msg)
	h.audit(ctx, job.RequestID, "job_failed", map[string]string{"connector": job.Connector, "action": string(job.Action),
		"attempt": fmt.Sprint(job.Attempts), "error": msg})
	if err := h.finished(ctx, job, true); err != nil {
		return redactErr(err, ids)
	}
	return fmt.Errorf("%s: %w", msg, asynq.SkipRetry)
}

// rateOf returns each connector's max_rate from conns (none when nil).
func rateOf(conns JobConnectors) func(string) connectors.Rate {
	if conns == nil {
		return nil
	}
	return conns.MaxRate
}

// jobLimits says what limits a JobHandler's jobs: each connector's
// max_concurrency across processes (in d.Slots) and, in this process, that
// or else ConnectorConcurrency; its max_rate (in d.Rates).
func jobLimits(d JobDeps, o JobOptions) limitsConfig {
	c := limitsConfig{Wait: o.SlotWait, Rate: rateOf(d.Connectors), Rates: d.Rates,
		Shared: d.Slots, Lease: o.JobTimeout + slotGrace}
	c.Local = func(string) int { return o.ConnectorConcurrency }
	if d.Connectors != nil {
		c.Global = d.Connectors.MaxConcurrency
		c.Local = func(name string) int {
			if n := d.Connectors.MaxConcurrency(name); n > 0 {
				return n
			}
			return o.ConnectorConcurrency
		}
	}
	return c
}
