package workers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
// in the connectors file: max_concurrency jobs at once across every worker
// process (held in Redis by a [SlotCounter]), as many as this process lets
// one connector have (its per-process cap), and max_rate job starts per
// period across every worker process, counted in Redis by a [RateLimiter].
type limits struct {
	limitsConfig
	mu  sync.Mutex // guards sem; held only to look up or add a semaphore
	sem map[string]chan struct{}
}

// limitsConfig says what limits hold. Every field may be left zero: no such
// limit.
type limitsConfig struct {
	// Local is a connector's cap on its jobs at once in this process.
	Local func(connector string) int
	// Global is a connector's cap on its jobs at once across every process
	// (its max_concurrency), held in Shared for at most Lease per job.
	Global func(connector string) int
	Shared *SlotCounter
	Lease  time.Duration
	// Wait is how long a job waits for a slot or a rate that frees up.
	Wait time.Duration
	// Rate is a connector's max_rate, counted in Rates.
	Rate  func(connector string) connectors.Rate
	Rates connectors.Limiter
}

// newLimits returns the limits c describes.
func newLimits(c limitsConfig) *limits {
	if c.Local == nil {
		c.Local = func(string) int { return 0 }
	}
	if c.Global == nil || c.Shared == nil {
		c.Global, c.Shared = func(string) int { return 0 }, nil
	}
	if c.Rate == nil {
		c.Rate = func(string) connectors.Rate { return connectors.Rate{} }
	}
	return &limits{limitsConfig: c, sem: map[string]chan struct{}{}}
}

// queueSlots returns the slot counter shared by every worker of q.
func queueSlots(q *Queue) *SlotCounter {
	if q == nil || q.rdb == nil {
		return nil
	}
	return NewSlotCounter(q.rdb, "dsar:slots:"+q.name+":")
}

// queueRates returns the rate limiter shared by every worker of q.
func queueRates(q *Queue) connectors.Limiter {
	if q == nil || q.rdb == nil {
		return nil
	}
	return NewRateLimiter(q.rdb, "dsar:limit:"+q.name+":")
}

// acquire takes a slot of connector, waiting up to l.Wait, then one job
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

// slot takes a slot of connector: one of this process's, then one of all
// processes', both within l.Wait.
func (l *limits) slot(ctx context.Context, connector string) (release func(), err error) {
	deadline := time.Now().Add(l.Wait)
	local, err := l.localSlot(ctx, connector)
	if err != nil {
		return nil, err
	}
	n := l.Global(connector)
	if n <= 0 {
		return local, nil
	}
	free, err := l.Shared.hold(ctx, connector, n, l.Lease, deadline)
	if err != nil {
		local()
		return nil, err
	}
	return func() { free(); local() }, nil
}

// localSlot takes a slot of connector in this process, waiting up to
// l.Wait.
func (l *limits) localSlot(ctx context.Context, connector string) (release func(), err error) {
	l.mu.Lock()
	sem, ok := l.sem[connector]
	if !ok {
		if n := l.Local(connector); n > 0 {
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
	timer := time.NewTimer(l.Wait)
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
// rate frees up within l.Wait it waits for it; otherwise the connector is
// busy until then.
func (l *limits) start(ctx context.Context, connector string) error {
	r := l.Rate(connector)
	if r.IsZero() || l.Rates == nil {
		return nil
	}
	deadline := time.Now().Add(l.Wait)
	for {
		wait, err := l.Rates.Take(ctx, connector, r)
		if err != nil {
			return fmt.Errorf("connector %s: max_rate not checked: %w", connector, err)
		}
		if wait <= 0 {
			return nil
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("connector %s: max_rate %s spent: %w: %w", connector, r, ErrConnectorBusy,
				connectors.RetryAfter(wait, errors.New("max_rate spent")))
		}
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
  if ttl == -1 then
    -- a count without a window (never left by this script): give it one
    redis.call("PEXPIRE", KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  elseif ttl < 1 then
    -- the window ends within the millisecond
    ttl = 1
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

// SlotCounter holds slots of a key (a connector) across every process using
// the same Redis and prefix: at most n holders at once, each until it gives
// its slot back or its lease ends (so a worker killed while holding a slot
// frees it after the lease).
type SlotCounter struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewSlotCounter returns a counter keeping its slots in rdb under keys that
// start with prefix (dsar uses "dsar:slots:<queue>:").
func NewSlotCounter(rdb redis.UniversalClient, prefix string) *SlotCounter {
	return &SlotCounter{rdb: rdb, prefix: prefix}
}

// holdSlot takes a slot of the sorted set KEYS[1] for holder ARGV[1] until
// ARGV[3] ms from now (Redis's clock) when fewer than ARGV[2] unexpired
// holders have one: 1 when taken, else 0.
var holdSlot = redis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now)
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[3]))
return 1
`)

// slotPoll is how often a job waiting for a shared slot asks again.
const slotPoll = 25 * time.Millisecond

// hold takes one of n slots of key for at most lease, asking until
// deadline. It returns the function that gives the slot back, or an error
// wrapping ErrConnectorBusy when none freed up (or ctx's, or Redis's).
func (c *SlotCounter) hold(ctx context.Context, key string, n int, lease time.Duration, deadline time.Time) (free func(), err error) {
	var id [12]byte
	_, _ = rand.Read(id[:])
	holder, k := hex.EncodeToString(id[:]), c.prefix+key
	for {
		ok, err := holdSlot.Run(ctx, c.rdb, []string{k}, holder, n, max(lease.Milliseconds(), 1)).Int()
		if err != nil {
			return nil, fmt.Errorf("connector %s: shared slots not checked: %w", key, err)
		}
		if ok == 1 {
			return func() {
				// Given back even when the job's context has ended.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = c.rdb.ZRem(ctx, k, holder).Err() // else the lease frees it
			}, nil
		}
		if time.Now().Add(slotPoll).After(deadline) {
			return nil, fmt.Errorf("connector %s: all %d shared slots taken: %w", key, n, ErrConnectorBusy)
		}
		t := time.NewTimer(slotPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
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
