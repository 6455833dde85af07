package consoleauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sign-in tries (key posts and OIDC starts) a client address may make in
// a window, counted in Redis so the limit holds across replicas.
const (
	triesPerWindow = 10
	triesWindow    = time.Minute
)

// limiter counts sign-in tries per client address in Redis, under a keyed
// hash of the address (never the address itself). The hashing key is made
// once per deployment and kept in Redis, so every replica counts an
// address under the same key.
type limiter struct {
	rdb    redis.UniversalClient
	prefix string

	mu  sync.Mutex
	key []byte
}

// hashKey returns the deployment's address-hashing key, creating it on
// first use.
func (l *limiter) hashKey(ctx context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.key != nil {
		return l.key, nil
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	k := l.prefix + "tries:key"
	if err := l.rdb.SetNX(ctx, k, hex.EncodeToString(b), 0).Err(); err != nil {
		return nil, fmt.Errorf("tries key: %w", err)
	}
	v, err := l.rdb.Get(ctx, k).Result()
	if err != nil {
		return nil, fmt.Errorf("tries key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("tries key: %q is not 32 bytes in hex", k)
	}
	l.key = key
	return key, nil
}

// try counts one try from addr and reports whether it is within the limit,
// and if not, how long until the window ends. An IPv6 address counts by
// its /64, which one subscriber usually holds whole.
func (l *limiter) try(ctx context.Context, addr string) (ok bool, wait time.Duration, err error) {
	key, err := l.hashKey(ctx)
	if err != nil {
		return false, 0, err
	}
	if ip := net.ParseIP(addr); ip != nil && ip.To4() == nil {
		addr = ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(addr))
	k := l.prefix + "tries:" + hex.EncodeToString(m.Sum(nil))[:32]
	var n *redis.IntCmd
	var ttl *redis.DurationCmd
	_, err = l.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, k, 0, triesWindow) // the window starts at the first try
		n = p.Incr(ctx, k)
		ttl = p.PTTL(ctx, k)
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("count sign-in try: %w", err)
	}
	if n.Val() > triesPerWindow {
		return false, max(time.Second, ttl.Val()), nil
	}
	return true, 0, nil
}
