package workers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/connectors"
)

// ErrConnectorBusy is returned by a job that found its connector at one of
// its limits: every slot taken (its max_concurrency) for Options.SlotWait,
// or its max_rate spent. The job is untouched in the store (no attempt is
// counted) and its task is retried after a short delay ([BusyDelay]) without
// counting as a failure, so one slow or unreachable system holds at most its
// own slots, never every worker. When the rate was spent the error also
// wraps a [connectors.RetryAfterError] saying when the rate allows the next
// job.
var ErrConnectorBusy = errors.New("connector busy")

// BusyDelay is how long a job that found its connector busy waits before
// trying again (with +-25% jitter; asynq looks for due retries every few
// seconds, see ServerOptions.PollInterval).
const BusyDelay = 2 * time.Second

// limits holds back the jobs of each connector beyond the limits of its entry
// in the connectors file: max_concurrency jobs at once in this process, and
// max_rate job starts per period across every worker process, counted in
// Redis by a [RateLimiter].
type limits struct {
	limit func(connector string) int // <= 0: no limit
	wait  time.Duration
	rate  func(connector string) connectors.Rate
	rates connectors.Limiter // nil: rates are not enforced

	mu  sync.Mutex // guards sem; held only to look up or add a semaphore
	sem map[string]chan struct{}
}

// newLimits returns the limits of each connector: limit gives its
// concurrency in this process, rate its rate across processes (nil: none),
// counted by rates.
func newLimits(limit func(string) int, wait time.Duration, rate func(string) connectors.Rate, rates connectors.Limiter) *limits {
	if rate == nil {
		rate = func(string) connectors.Rate { return connectors.Rate{} }
	}
	return &limits{limit: limit, wait: wait, rate: rate, rates: rates, sem: map[string]chan struct{}{}}
}

// queueRates returns the rate limiter shared by every worker of q.
func queueRates(q *Queue) connectors.Limiter {
	if q == nil || q.rdb == nil {
		return nil
	}
	return NewRateLimiter(q.rdb, "dsar:limit:"+q.name+":")
}

// acquire takes a slot of connector, waiting up to l.wait, then one job
// start of its rate. It returns the function that gives the slot back, or
// an error wrapping ErrConnectorBusy (or ctx's error, or Redis's).
func (l *limits) acquire(ctx context.Context, connector string) (release func(), err error) {
	release, err = l.slot(ctx, connector)
	if err != nil {
		return nil, err
	}
	if err := l.start(ctx, connector); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// slot takes a slot of connector in this process.
func (l *limits) slot(ctx context.Context, connector string) (release func(), err error) {
	l.mu.Lock()
	sem, ok := l.sem[connector]
	if !ok {
		if n := l.limit(connector); n > 0 {
			sem = make(chan struct{}, n)
		}
		l.sem[connector] = sem
	}
	l.mu.Unlock()
	if sem == nil {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	default:
	}
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-timer.C:
		return nil, fmt.Errorf("connector %s: all %d slots taken: %w", connector, cap(sem), ErrConnectorBusy)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// start counts one job start of connector against its max_rate. When the
// rate frees up within l.wait it waits for it; otherwise the connector is
// busy until then.
func (l *limits) start(ctx context.Context, connector string) error {
	r := l.rate(connector)
	if r.IsZero() || l.rates == nil {
		return nil
	}
	waited := false
	for {
		wait, err := l.rates.Take(ctx, connector, r)
		if err != nil {
			return fmt.Errorf("connector %s: max_rate not checked: %w", connector, err)
		}
		if wait <= 0 {
			return nil
		}
		if waited || wait > l.wait {
			return fmt.Errorf("connector %s: max_rate %s spent: %w: %w", connector, r, ErrConnectorBusy,
				connectors.RetryAfter(wait, errors.New("max_rate spent")))
		}
		waited = true
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// RateLimiter counts events against rates in Redis, so that every process
// using the same Redis and prefix shares one count per key. It implements
// connectors.Limiter. A rate of N per period allows N events in each window
// of that period, the window starting at its first event.
type RateLimiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRateLimiter returns a limiter counting in rdb under keys that start
// with prefix (one per deployment sharing a Redis: dsar uses
// "dsar:limit:<queue>:").
func NewRateLimiter(rdb redis.UniversalClient, prefix string) *RateLimiter {
	return &RateLimiter{rdb: rdb, prefix: prefix}
}

// takeRate counts one event in the window KEYS[1] of ARGV[2] ms allowing
// ARGV[1] events: 0 when counted, else the milliseconds left in the window
// (the event is then not counted).
var takeRate = redis.NewScript(`
local n = tonumber(redis.call("GET", KEYS[1]) or "0")
if n >= tonumber(ARGV[1]) then
  local ttl = redis.call("PTTL", KEYS[1])
  if ttl < 1 then
    redis.call("PEXPIRE", KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return ttl
end
if redis.call("INCR", KEYS[1]) == 1 then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`)

// Take implements connectors.Limiter.
func (l *RateLimiter) Take(ctx context.Context, key string, r connectors.Rate) (time.Duration, error) {
	if r.IsZero() {
		return 0, nil
	}
	k := l.prefix + key + ":" + strconv.Itoa(r.N) + "/" + strconv.FormatInt(r.Per.Milliseconds(), 10) + "ms"
	ms, err := takeRate.Run(ctx, l.rdb, []string{k}, r.N, max(r.Per.Milliseconds(), 1)).Int64()
	if err != nil {
		return 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// jobConnector returns the connector named in a job id, which is
// "<request id>:<connector>:<action>" (dsr.JobID): request ids and actions
// hold no colon.
func jobConnector(jobID string) string {
	_, rest, ok := strings.Cut(jobID, ":")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		return rest[:i]
	}
	return ""
}
