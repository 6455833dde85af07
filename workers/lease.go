package workers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// lease is a lock in Redis held by one holder: taken with SET NX and a TTL,
// renewed while held, so a holder that dies frees it within the TTL, and
// given up only by the holder that took it (its random token must match).
type lease struct {
	rdb   redis.UniversalClient
	key   string
	token string
	ttl   time.Duration
	stop  chan struct{}
	done  sync.WaitGroup
}

// renewLease extends the lease when the caller still holds it: 1, or 0.
var renewLease = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`)

// endLease gives up the lease when the caller still holds it: deletes it,
// or, with a positive ARGV[2], keeps it for that many more milliseconds.
var endLease = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return redis.call("DEL", KEYS[1])
`)

// takeLease takes the lease named key for ttl, renewing it every ttl/3
// until end is called. It returns nil, and no error, when another holder
// has it.
func (q *Queue) takeLease(ctx context.Context, key string, ttl time.Duration) (*lease, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	l := &lease{rdb: q.rdb, key: key, token: hex.EncodeToString(b), ttl: ttl, stop: make(chan struct{})}
	ok, err := q.rdb.SetNX(ctx, key, l.token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("take lease %s: %w", key, err)
	}
	if !ok {
		return nil, nil
	}
	l.done.Add(1)
	go l.renew()
	return l, nil
}

func (l *lease) renew() {
	defer l.done.Done()
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
			n, err := renewLease.Run(ctx, l.rdb, []string{l.key}, l.token, l.ttl.Milliseconds()).Int()
			cancel()
			if err == nil && n == 0 {
				return // lost (Redis lost its data): the holder's work is idempotent
			}
		}
	}
}

// end stops renewing and gives the lease up; with keep > 0 it stays taken
// for keep more, so nobody takes it again that soon.
func (l *lease) end(ctx context.Context, keep time.Duration) error {
	close(l.stop)
	l.done.Wait()
	if err := endLease.Run(ctx, l.rdb, []string{l.key}, l.token, keep.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("end lease %s: %w", l.key, err)
	}
	return nil
}
