package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/drp"
	"github.com/dsar-project/dsar/internal/opendsr"
	"github.com/dsar-project/dsar/store"
)

// Options tunes a Processor: the options of its task handlers in one
// place, as dsar's configuration gives them.
type Options struct {
	// MaxRetry is how many times a failing job is retried: a job gets
	// MaxRetry+1 attempts, counted in its document (so attempts made
	// through tasks the sweep re-created count too), then fails for good.
	// A fan-out likewise fails for good after MaxRetry+1 failures.
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
	// ReapplyEvery is how often the scheduler queues a re-application
	// (see ReapplyOptions.Every).
	ReapplyEvery time.Duration
	// PollEvery is how often a job waiting on a remote system is polled
	// when its connector names no interval (connectors.Pending.PollAfter);
	// the sweep hands due polls to the workers, so polls happen no more
	// often than it runs. 0: config's default (DSAR_JOB_POLL_EVERY).
	PollEvery time.Duration
	// WaitMax bounds how long a job waits on a remote system: it fails
	// (and the request needs attention) when the work is unfinished
	// WaitMax after the system accepted it. A request that comes due
	// meanwhile is escalated as any other. 0: config's default
	// (DSAR_JOB_WAIT_MAX).
	WaitMax time.Duration
	// Notices configures the notices to subjects.
	Notices NoticeOptions
	// Approval says which requests wait for an agent's approval before
	// their fan-out.
	Approval dsr.ApprovalPolicy
	// Checks configures the scheduled checks.
	Checks ChecksOptions
	// ResolveMaxRounds bounds identity resolution: each round may find
	// identities that let another collection provide more. 0: config's
	// default (DSAR_RESOLVE_MAX_ROUNDS).
	ResolveMaxRounds int
	// ConnectorConcurrency caps how many jobs of one connector run at once
	// in this process, for connectors whose entry in the connectors file
	// sets no max_concurrency; 0 means no cap. dsar sets it to half the
	// worker concurrency, so one system that hangs cannot take every slot.
	ConnectorConcurrency int
	// SlotWait is how long a job waits for a slot of its connector before
	// giving its worker back and trying again after BusyDelay. 0 means 200ms.
	SlotWait time.Duration
	// Hooks are the business's pre- and post-processing hooks; the zero
	// value: none.
	Hooks HookOptions
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Deps is what a Processor works with.
type Deps struct {
	Store      store.Store
	Connectors *connectors.Registry
	Queue      *Queue
	Index      *dsr.BlindIndex
	// Notifier delivers notices; nil drops them (tests that send none).
	Notifier Notifier
	// Escalation is where alerts (reminders, overdue) go.
	Escalation EscalationOptions
	// CallbackClient posts Data Rights Protocol statuses to the agents (see
	// NoticeDeps.CallbackClient).
	CallbackClient *http.Client
	// DRPAgents are the agents still trusted (NoticeDeps.DRPAgents).
	DRPAgents drp.Directory
	// OpenDSR signs the status callbacks to OpenDSR controllers
	// (NoticeDeps.OpenDSR).
	OpenDSR *opendsr.Signer
	// OpenDSRControllers are the controllers still allowed
	// (NoticeDeps.OpenDSRControllers).
	OpenDSRControllers map[string][32]byte
	// OpenDSRBase is NoticeDeps.OpenDSRBase.
	OpenDSRBase string
	// Suppressions is the in-memory suppression list the re-application
	// checks segment members against; nil: no re-application.
	Suppressions SuppressionSet
	Log          *slog.Logger
}

// Processor is every task handler of dsar over one set of dependencies,
// each handler embedded, so its entry points (Fanout, RunJob, SendNotice,
// Sweep, Reminders, Escalation, Retention) are the Processor's. Build a
// handler alone (NewFanoutHandler...) to run it with its own dependencies.
type Processor struct {
	*FanoutHandler
	*JobHandler
	*NoticeHandler
	*SweepHandler
	*RemindersHandler
	*EscalationHandler
	*RetentionHandler
	*ReapplyHandler
}

// NewProcessor returns a Processor. An option left zero whose setting has a
// default in config (PollEvery, WaitMax, ResolveMaxRounds) takes that
// default.
func NewProcessor(d Deps, o Options) *Processor {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollEvery <= 0 || o.WaitMax <= 0 || o.ResolveMaxRounds <= 0 {
		def := configDefaults()
		if o.PollEvery <= 0 {
			o.PollEvery = def.JobPollEvery
		}
		if o.WaitMax <= 0 {
			o.WaitMax = def.JobWaitMax
		}
		if o.ResolveMaxRounds <= 0 {
			o.ResolveMaxRounds = def.ResolveMaxRounds
		}
	}
	removals, _ := d.Store.(RemovalStore) // every store, once they record removals
	var reapply *ReapplyHandler
	if d.Suppressions != nil && removals != nil {
		reapply = NewReapplyHandler(ReapplyDeps{Store: removals, Set: d.Suppressions, Connectors: d.Connectors, Queue: d.Queue, Log: d.Log},
			ReapplyOptions{Every: o.ReapplyEvery, Now: o.Now})
	}
	var values ValueHasher // a nil *dsr.BlindIndex must stay a nil interface
	if d.Index != nil {
		values = d.Index
	}
	return &Processor{
		FanoutHandler: NewFanoutHandler(FanoutDeps{Store: d.Store, Connectors: d.Connectors, Queue: d.Queue, Index: d.Index, Log: d.Log},
			FanoutOptions{MaxRetry: o.MaxRetry, Approval: o.Approval, ResolveMaxRounds: o.ResolveMaxRounds, Hooks: o.Hooks, Now: o.Now}),
		JobHandler: NewJobHandler(JobDeps{Store: d.Store, Connectors: d.Connectors, Queue: d.Queue, Index: values, Removals: removals, Rates: queueRates(d.Queue), Slots: queueSlots(d.Queue), Log: d.Log},
			JobOptions{MaxRetry: o.MaxRetry, Lease: o.Lease, JobTimeout: o.JobTimeout, PollEvery: o.PollEvery, WaitMax: o.WaitMax,
				ConnectorConcurrency: o.ConnectorConcurrency, SlotWait: o.SlotWait, OutcomeHook: o.Hooks.PostURL != "", Now: o.Now}),
		NoticeHandler: NewNoticeHandler(NoticeDeps{Store: d.Store, Index: d.Index, Notifier: d.Notifier, Escalation: d.Escalation, Hooks: o.Hooks, CallbackClient: d.CallbackClient, DRPAgents: d.DRPAgents, OpenDSR: d.OpenDSR, OpenDSRControllers: d.OpenDSRControllers, OpenDSRBase: d.OpenDSRBase, Log: d.Log},
			o.Notices, o.Now),
		SweepHandler: NewSweepHandler(SweepDeps{Store: d.Store, Queue: d.Queue, Log: d.Log},
			SweepOptions{Grace: o.SweepGrace, Every: o.SweepEvery, Now: o.Now}),
		RemindersHandler:  NewRemindersHandler(RemindersDeps{Store: d.Store, Queue: d.Queue, Log: d.Log}, o.Checks, o.Now),
		EscalationHandler: NewEscalationHandler(EscalationDeps{Store: d.Store, Queue: d.Queue, Log: d.Log}, o.Now),
		RetentionHandler:  NewRetentionHandler(RetentionDeps{Store: d.Store, Log: d.Log}, o.Checks, o.Now),
		ReapplyHandler:    reapply,
	}
}

// configDefaults is config's defaults: the one place they are written.
func configDefaults() config.Config {
	c, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		panic(fmt.Sprintf("config's defaults do not load: %v", err))
	}
	return c
}

// Mux routes each task type to its handler.
func (p *Processor) Mux() *asynq.ServeMux {
	return NewMux(Handlers{Fanout: p.FanoutHandler, Job: p.JobHandler, Notice: p.NoticeHandler, Sweep: p.SweepHandler,
		Reminders: p.RemindersHandler, Escalation: p.EscalationHandler, Retention: p.RetentionHandler, Reapply: p.ReapplyHandler})
}

// Handlers are the task handlers a mux routes to, one per task type.
type Handlers struct {
	Fanout     *FanoutHandler
	Job        *JobHandler
	Notice     *NoticeHandler
	Sweep      *SweepHandler
	Reminders  *RemindersHandler
	Escalation *EscalationHandler
	Retention  *RetentionHandler
	Reapply    *ReapplyHandler
}

// NewMux routes each task type to its handler in h; a nil handler's task
// type is not routed (asynq then fails its tasks as unknown). Each task
// runs in a consumer span (see traced).
func NewMux(h Handlers) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Use(traced)
	route(mux, TypeFanout, h.Fanout)
	route(mux, TypeJob, h.Job)
	route(mux, TypeNotice, h.Notice)
	route(mux, TypeSweep, h.Sweep)
	route(mux, TypeReminders, h.Reminders)
	route(mux, TypeEscalation, h.Escalation)
	route(mux, TypeRetention, h.Retention)
	route(mux, TypeReapply, h.Reapply)
	return mux
}

// route routes typ to h unless h is nil.
func route[H interface {
	*T
	asynq.Handler
}, T any](mux *asynq.ServeMux, typ string, h H) {
	if h != nil {
		mux.Handle(typ, h)
	}
}

// actor names the workers in request histories.
const actor = "worker"

// recordTimeout bounds the recording of an outcome whose own context may
// have ended (a fan-out or a job attempt that ran out of time).
const recordTimeout = 30 * time.Second

// AuditStore appends to a request's audit chain.
type AuditStore interface {
	AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error)
}

// auditor appends the workers' events to audit chains, best effort.
type auditor struct {
	store AuditStore
	log   *slog.Logger
}

// audit appends an event to a request's audit chain. It is best effort: a
// failure is logged, and the event's facts stay in the store's documents.
func (a auditor) audit(ctx context.Context, requestID, kind string, data map[string]string) {
	if _, err := a.store.AppendAudit(ctx, requestID, actor, kind, data); err != nil {
		a.log.WarnContext(ctx, "audit event not recorded", "request_id", requestID, "kind", kind, "error", err)
	}
}

// noticeQueue hands notices to the queue.
type noticeQueue interface {
	EnqueueNotice(ctx context.Context, requestID, notice string) error
}

// redact replaces every identity value of the subject in msg (emails and
// advertising and device ids in any case, phones also without their +), so errors that quote data (a duplicate
// key, a rejected value) never reach logs, the queue or the API. A value is
// replaced where it stands alone: not where a letter or digit continues it
// on either side, so a short one (customer id 1) is taken out of "customer
// 1" and "(id)=(1)" but leaves the request id and error codes readable.
func redact(msg string, ids []dsr.Identity) string {
	for _, id := range ids {
		if id.Value == "" {
			continue
		}
		switch id.Kind {
		case dsr.KindEmail, dsr.KindAdvertisingID, dsr.KindDeviceID:
			// Stored in lower case; a system may write them in upper
			// (iOS writes its ids so).
			msg = replaceAlone(msg, regexp.MustCompile("(?i)"+regexp.QuoteMeta(id.Value)))
		case dsr.KindPhone:
			msg = replaceAlone(msg, regexp.MustCompile(regexp.QuoteMeta(id.Value)))
			msg = replaceAlone(msg, regexp.MustCompile(regexp.QuoteMeta(strings.TrimPrefix(id.Value, "+"))))
		default:
			msg = replaceAlone(msg, regexp.MustCompile(regexp.QuoteMeta(id.Value)))
		}
	}
	return msg
}

// replaceAlone replaces with "[redacted]" each match of re in msg that no
// letter or digit continues: the match's first character, when it is a
// letter or digit, must not follow one, nor its last precede one.
func replaceAlone(msg string, re *regexp.Regexp) string {
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringIndex(msg, -1) {
		if m[0] == m[1] || joined(msg[:m[0]], msg[m[0]:m[1]], msg[m[1]:]) {
			continue
		}
		b.WriteString(msg[last:m[0]])
		b.WriteString("[redacted]")
		last = m[1]
	}
	if last == 0 {
		return msg
	}
	b.WriteString(msg[last:])
	return b.String()
}

// joined says whether match, between before and after, is part of a longer
// word or number.
func joined(before, match, after string) bool {
	alnum := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
	first, _ := utf8.DecodeRuneInString(match)
	lastR, _ := utf8.DecodeLastRuneInString(match)
	prev, _ := utf8.DecodeLastRuneInString(before)
	next, _ := utf8.DecodeRuneInString(after)
	return (before != "" && alnum(first) && alnum(prev)) || (after != "" && alnum(lastR) && alnum(next))
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
	if errors.Is(err, dsr.ErrUnreadable) {
		return unreadable(msg)
	}
	return errors.New(msg)
}

// unreadable is a redacted error that is still dsr.ErrUnreadable.
type unreadable string

func (e unreadable) Error() string        { return string(e) }
func (e unreadable) Is(target error) bool { return target == dsr.ErrUnreadable }
