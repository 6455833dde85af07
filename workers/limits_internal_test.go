package workers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/testenv"
)

// redisPrefix returns a Redis client on the test Redis and a key prefix of
// the test's own, whose keys are deleted when the test ends.
func redisPrefix(t *testing.T) (func() redis.UniversalClient, string) {
	t.Helper()
	r := testenv.RedisServer(t)
	prefix := testenv.Name("dsar_test_limit") + ":"
	var clients []*redis.Client
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: r.Addr})
		defer c.Close()
		ctx := context.Background()
		keys, _ := c.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
		for _, c := range clients {
			_ = c.Close()
		}
	})
	return func() redis.UniversalClient {
		c := redis.NewClient(&redis.Options{Addr: r.Addr})
		clients = append(clients, c)
		return c
	}, prefix
}

// TestRateLimiterShared: two limiters on their own connections (two worker
// processes) share one count per key and rate; other keys and other
// prefixes count apart; a spent rate says how long until its window ends
// and does not count the refused event.
func TestRateLimiterShared(t *testing.T) {
	t.Parallel()
	client, prefix := redisPrefix(t)
	a, b := NewRateLimiter(client(), prefix), NewRateLimiter(client(), prefix)
	ctx := t.Context()
	r := connectors.Rate{N: 3, Per: time.Minute}
	take := func(l *RateLimiter, key string) time.Duration {
		t.Helper()
		wait, err := l.Take(ctx, key, r)
		if err != nil {
			t.Fatalf("Take: %v", err)
		}
		return wait
	}
	for i, l := range []*RateLimiter{a, b, a} {
		if wait := take(l, "crm"); wait != 0 {
			t.Fatalf("event %d of 3 a minute: wait %v; want none", i+1, wait)
		}
	}
	for _, l := range []*RateLimiter{b, a, b} {
		if wait := take(l, "crm"); wait <= 0 || wait > time.Minute {
			t.Fatalf("event past 3 a minute: wait %v; want the rest of the minute", wait)
		}
	}
	if wait := take(a, "shop"); wait != 0 {
		t.Errorf("another key waits %v: keys share a count", wait)
	}
	if wait, err := NewRateLimiter(client(), prefix+"other:").Take(ctx, "crm", r); err != nil || wait != 0 {
		t.Errorf("another prefix: wait %v, %v; prefixes share a count", wait, err)
	}
	if wait, err := a.Take(ctx, "crm", connectors.Rate{N: 4, Per: time.Minute}); err != nil || wait != 0 {
		t.Errorf("a changed rate: wait %v, %v; want a count of its own", wait, err)
	}
	if wait, err := a.Take(ctx, "crm", connectors.Rate{}); err != nil || wait != 0 {
		t.Errorf("no rate: wait %v, %v", wait, err)
	}

	// Concurrent takers never exceed the rate.
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := a
			if i%2 == 1 {
				l = b
			}
			if wait, err := l.Take(ctx, "burst", r); err == nil && wait == 0 {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != 3 {
		t.Errorf("20 concurrent takers of 3 a minute: %d allowed", allowed)
	}
}

// TestLimitsRate: a connector's max_rate holds across two processes'
// limits; a job past it is busy (retried without counting as a failure)
// and says when the rate allows the next; its slot is given back; a rate
// that frees up within the slot wait is waited for.
func TestLimitsRate(t *testing.T) {
	t.Parallel()
	client, prefix := redisPrefix(t)
	rates := func(name string) connectors.Rate {
		switch name {
		case "crm":
			return connectors.Rate{N: 2, Per: time.Minute}
		case "fast":
			return connectors.Rate{N: 1, Per: time.Second}
		}
		return connectors.Rate{}
	}
	one := func(string) int { return 1 }
	p1 := newLimits(limitsConfig{Local: one, Wait: 1500 * time.Millisecond, Rate: rates, Rates: NewRateLimiter(client(), prefix)})
	p2 := newLimits(limitsConfig{Local: one, Wait: 1500 * time.Millisecond, Rate: rates, Rates: NewRateLimiter(client(), prefix)})
	ctx := t.Context()
	for i, p := range []*limits{p1, p2} {
		release, err := p.acquire(ctx, "crm")
		if err != nil {
			t.Fatalf("job %d of 2 a minute: %v", i+1, err)
		}
		release()
	}
	_, err := p1.acquire(ctx, "crm")
	if !errors.Is(err, ErrConnectorBusy) {
		t.Fatalf("third job of 2 a minute: %v; want ErrConnectorBusy", err)
	}
	if d, ok := connectors.RetryDelay(err); !ok || d <= 0 || d > time.Minute {
		t.Errorf("third job: retry after %v, %v; want the rest of the minute", d, ok)
	}
	// The refused job gave its slot back: another connector's job and a
	// job of a connector without a rate still run.
	if release, err := p1.slot(ctx, "crm"); err != nil {
		t.Errorf("the refused job kept its slot: %v", err)
	} else {
		release()
	}
	for range 3 {
		release, err := p1.acquire(ctx, "shop")
		if err != nil {
			t.Fatalf("a connector without a rate: %v", err)
		}
		release()
	}

	// 1 a second: the second job waits for the next second, under the
	// 1.5 s slot wait, and runs.
	release, err := p1.acquire(ctx, "fast")
	if err != nil {
		t.Fatal(err)
	}
	release()
	start := time.Now()
	release, err = p2.acquire(ctx, "fast")
	if err != nil {
		t.Fatalf("a rate that frees up within the slot wait: %v", err)
	}
	release()
	// Far more than the second it should take: only a wait for the wrong
	// window (a minute) would reach it, whatever the machine's load.
	if waited := time.Since(start); waited > 20*time.Second {
		t.Errorf("waited %v for a rate of 1 a second", waited)
	}
}

// TestSlotsShared: a connector's max_concurrency holds across two
// processes' limits sharing a Redis; a slot given back is free to the other
// process; a slot whose holder died (never given back) frees at its lease.
func TestSlotsShared(t *testing.T) {
	t.Parallel()
	client, prefix := redisPrefix(t)
	two := func(string) int { return 2 }
	p1 := newLimits(limitsConfig{Local: two, Global: two, Wait: 100 * time.Millisecond, Shared: NewSlotCounter(client(), prefix), Lease: time.Minute})
	p2 := newLimits(limitsConfig{Local: two, Global: two, Wait: 100 * time.Millisecond, Shared: NewSlotCounter(client(), prefix), Lease: time.Minute})
	ctx := t.Context()
	r1, err := p1.acquire(ctx, "crm")
	if err != nil {
		t.Fatalf("first slot: %v", err)
	}
	r2, err := p2.acquire(ctx, "crm")
	if err != nil {
		t.Fatalf("second slot, other process: %v", err)
	}
	for i, p := range []*limits{p1, p2} {
		if _, err := p.acquire(ctx, "crm"); !errors.Is(err, ErrConnectorBusy) {
			t.Fatalf("process %d, third slot of 2: %v; want ErrConnectorBusy", i+1, err)
		}
	}
	if release, err := p1.acquire(ctx, "shop"); err != nil {
		t.Fatalf("another connector's slot: %v", err)
	} else {
		release()
	}
	r1()
	r3, err := p2.acquire(ctx, "crm")
	if err != nil {
		t.Fatalf("the slot process 1 gave back, taken by process 2: %v", err)
	}
	r2()
	r3()

	// A holder that died: its slots free at the lease, not before.
	oneSlot := func(string) int { return 1 }
	short := newLimits(limitsConfig{Local: oneSlot, Global: oneSlot, Wait: 50 * time.Millisecond, Shared: NewSlotCounter(client(), prefix), Lease: time.Second})
	if _, err := short.acquire(ctx, "dying"); err != nil { // never released
		t.Fatal(err)
	}
	other := newLimits(limitsConfig{Local: oneSlot, Global: oneSlot, Wait: 50 * time.Millisecond, Shared: NewSlotCounter(client(), prefix), Lease: time.Second})
	if _, err := other.acquire(ctx, "dying"); !errors.Is(err, ErrConnectorBusy) {
		t.Fatalf("a slot held by a live lease: %v; want ErrConnectorBusy", err)
	}
	time.Sleep(1200 * time.Millisecond)
	release, err := other.acquire(ctx, "dying")
	if err != nil {
		t.Fatalf("after the dead holder's lease: %v", err)
	}
	release()
}
