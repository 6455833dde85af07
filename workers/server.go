package workers

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
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

// NewServer returns an asynq server for dsar's queue; start it with
// srv.Start(processor.Mux()).
func NewServer(redis asynq.RedisConnOpt, o ServerOptions) *asynq.Server {
	return asynq.NewServer(redis, asynq.Config{
		Concurrency:              o.Concurrency,
		Queues:                   map[string]int{o.Queue: 1},
		RetryDelayFunc:           Backoff(o.RetryBase),
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

// NewScheduler returns an asynq scheduler that enqueues the sweep every
// interval. The task is unique while queued, so a second scheduler rarely
// doubles it; when it does (asynq drops the lock once a sweep finishes), the
// second sweep finds nothing left to do.
func NewScheduler(redis asynq.RedisConnOpt, queue string, every time.Duration, log *slog.Logger) (*asynq.Scheduler, error) {
	s := asynq.NewScheduler(redis, &asynq.SchedulerOpts{
		Logger:   NewAsynqLogger(log),
		LogLevel: asynq.WarnLevel,
		Location: time.UTC,
	})
	spec := fmt.Sprintf("@every %s", every)
	if _, err := s.Register(spec, NewSweepTask(), asynq.Queue(queue), asynq.Unique(every), asynq.MaxRetry(0)); err != nil {
		return nil, fmt.Errorf("register sweep: %w", err)
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
