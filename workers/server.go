package workers

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
)

// ServerOptions configures the asynq server that runs the workers.
type ServerOptions struct {
	Queue       string
	Concurrency int
	// RetryBase is the first retry delay; each retry doubles it, with
	// +-25% jitter, up to MaxRetryDelay.
	RetryBase       time.Duration
	ShutdownTimeout time.Duration
	Log             *slog.Logger
	// PollInterval, when set, is how often the server looks for due
	// retries (asynq's default is 5s); tests shorten it.
	PollInterval time.Duration
}

// MaxRetryDelay caps the back-off between two attempts of a job.
const MaxRetryDelay = time.Hour

// ControlQueue is the name of the queue that carries the periodic tasks
// (the sweep and the scheduled checks) beside the work queue named queue.
// Workers take its tasks before any work, so a backlog of jobs never delays
// the sweep that re-drives lost work, nor an escalation.
func ControlQueue(queue string) string { return queue + "_control" }

// NoticeQueue is the name of the queue that carries the notices to people
// (receipts, verification codes, ...) and the alerts beside the work queue
// named queue. Workers take its tasks after the control queue's and before
// any work, so a backlog of jobs never delays a verification code.
func NoticeQueue(queue string) string { return queue + "_notices" }

// CodeQueue is the name of the queue that carries the verification codes
// beside the work queue named queue: a person waits for one at the portal,
// so workers take its tasks before any other notice (a bulk filing's
// hundreds of receipts) and any work; only the control queue goes first.
func CodeQueue(queue string) string { return queue + "_codes" }

// noticeQueueOf is the queue that carries notice (a kind of dsr.Notices or an
// alert) beside the work queue named queue. The status callbacks of the
// Data Rights Protocol go on the work queue itself: they call servers of
// third parties, any of which may hang for the client's whole timeout, and
// an agent filing thousands of opt-outs (no proof needed) with such a
// callback would otherwise hold up every receipt and, the notice queue
// being served first, all work.
func noticeQueueOf(queue, notice string) string {
	switch notice {
	case dsr.NoticeVerify:
		return CodeQueue(queue)
	case dsr.NoticeProtocolStatus:
		return queue
	}
	return NoticeQueue(queue)
}

// NewServer returns an asynq server for dsar's work queue, its control
// queue (served first), its code queue and its notice queue (served next),
// in strict priority; start it with srv.Start(processor.Mux()).
func NewServer(redis asynq.RedisConnOpt, o ServerOptions) *asynq.Server {
	return asynq.NewServer(redis, asynq.Config{
		Concurrency:    o.Concurrency,
		Queues:         map[string]int{ControlQueue(o.Queue): 4, CodeQueue(o.Queue): 3, NoticeQueue(o.Queue): 2, o.Queue: 1},
		StrictPriority: true,
		RetryDelayFunc: retryDelay(Backoff(o.RetryBase)),
		// A job whose connector is busy gave its worker back: not a failure.
		IsFailure:                isFailure,
		ShutdownTimeout:          o.ShutdownTimeout,
		Logger:                   NewAsynqLogger(o.Log),
		LogLevel:                 asynq.WarnLevel,
		DelayedTaskCheckInterval: o.PollInterval,
		// No ErrorHandler: the handlers log their own failures, redacted.
	})
}

// Backoff returns a retry delay that starts at base and doubles per retry,
// with +-25% jitter, capped at MaxRetryDelay.
func Backoff(base time.Duration) asynq.RetryDelayFunc {
	return func(n int, _ error, _ *asynq.Task) time.Duration {
		d := base
		for i := 0; i < n && d < MaxRetryDelay; i++ {
			d *= 2
		}
		jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4 //nolint:gosec // jitter needs no cryptographic randomness
		return min(d+jitter, MaxRetryDelay)
	}
}

// retryDelay is backoff, except for a job that found its connector busy,
// which tries again after BusyDelay.
func retryDelay(backoff asynq.RetryDelayFunc) asynq.RetryDelayFunc {
	return func(n int, err error, t *asynq.Task) time.Duration {
		if d, ok := connectors.RetryDelay(err); ok {
			// The system (or a spent max_rate) named its delay: never sooner,
			// up to +25% later.
			return min(d+time.Duration(rand.Int64N(int64(d)/4+1)), MaxRetryDelay) //nolint:gosec // jitter
		}
		if errors.Is(err, ErrConnectorBusy) {
			return BusyDelay + time.Duration(rand.Int64N(int64(BusyDelay)/2+1)) - BusyDelay/4 //nolint:gosec // jitter
		}
		return backoff(n, err, t)
	}
}

// Schedule is one periodic task: when (a cron spec, or "@every 1m"), and
// what.
type Schedule struct {
	Spec string
	Task *asynq.Task
	// Unique keeps a second scheduler (another replica) from queuing the
	// task again while one is queued; the checks are idempotent anyway.
	// It lasts at most Unique; the sweep also holds a lease while it runs
	// (see SweepHandler.Sweep), and periodic tasks go on the control queue,
	// which workers serve before any backlog of work.
	Unique time.Duration
}

// Schedules lists dsar's periodic tasks: the sweep and the scheduled
// checks.
func Schedules(sweepEvery time.Duration, reminders, escalation, retention string) []Schedule {
	return []Schedule{
		{Spec: fmt.Sprintf("@every %s", sweepEvery), Task: NewSweepTask(), Unique: sweepEvery},
		{Spec: reminders, Task: asynq.NewTask(TypeReminders, nil), Unique: 10 * time.Minute},
		{Spec: escalation, Task: asynq.NewTask(TypeEscalation, nil), Unique: 10 * time.Minute},
		{Spec: retention, Task: asynq.NewTask(TypeRetention, nil), Unique: 10 * time.Minute},
	}
}

// ReapplySchedule is the schedule of the re-application check, every
// every (dsar schedules it only when every is positive). A run may take
// up to every, and at least an hour; one cut short is taken up by the
// next, which lists every segment again.
func ReapplySchedule(every time.Duration) Schedule {
	return Schedule{Spec: fmt.Sprintf("@every %s", every), Task: asynq.NewTask(TypeReapply, nil, asynq.Timeout(max(every, time.Hour))), Unique: every}
}

// NewScheduler returns an asynq scheduler that enqueues each schedule on
// its spec, on the control queue of queue. A spec it cannot read is an
// error naming it.
func NewScheduler(redis asynq.RedisConnOpt, queue string, schedules []Schedule, log *slog.Logger) (*asynq.Scheduler, error) {
	s := asynq.NewScheduler(redis, &asynq.SchedulerOpts{
		Logger:   NewAsynqLogger(log),
		LogLevel: asynq.WarnLevel,
		Location: time.UTC,
	})
	for _, sc := range schedules {
		if _, err := s.Register(sc.Spec, sc.Task, asynq.Queue(ControlQueue(queue)), asynq.Unique(sc.Unique), asynq.MaxRetry(0)); err != nil {
			return nil, fmt.Errorf("schedule %s on %q: %w", sc.Task.Type(), sc.Spec, err)
		}
	}
	return s, nil
}

// asynqLogger sends asynq's own log lines to slog.
type asynqLogger struct{ log *slog.Logger }

// NewAsynqLogger adapts log to asynq's Logger interface.
func NewAsynqLogger(log *slog.Logger) asynq.Logger {
	return asynqLogger{log: log.With("component", "asynq")}
}

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }

// isFailure tells asynq which errors count towards a task's retries: not a
// busy connector, nor a system's "call again later" (the job's own document
// counts its attempts; see JobHandler).
func isFailure(err error) bool {
	if errors.Is(err, ErrConnectorBusy) {
		return false
	}
	var ra *connectors.RetryAfterError
	return !errors.As(err, &ra)
}
