package httpkit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ulule/limiter/v3"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// Limits applies the portal's abuse limits: calls per client address (an
// IPv6 client counts by its /64) and submissions per identity (an email
// counts by its mailbox: see app.MailboxKey). They are counted in Redis, so they
// hold across replicas; while Redis cannot be asked they are counted in this
// process instead. Client addresses are counted under a keyed hash, never in
// clear.
type Limits struct {
	ip, identity       *limiter.Limiter
	ipMem, identityMem *localCounter
	key                []byte
	log                *slog.Logger
}

// NewLimits returns limits counted in client under keys starting with
// prefix (one per deployment sharing a Redis). ipRate and identityRate read
// as 30-M (30 a minute; S, M, H, D). key hashes client addresses.
func NewLimits(client sredis.Client, prefix, ipRate, identityRate string, key []byte, log *slog.Logger) (*Limits, error) {
	store, err := sredis.NewStoreWithOptions(client, limiter.StoreOptions{Prefix: prefix, CleanUpInterval: limiter.DefaultCleanUpInterval})
	if err != nil {
		return nil, fmt.Errorf("rate limit store: %w", err)
	}
	ip, err := limiter.NewRateFromFormatted(ipRate)
	if err != nil {
		return nil, fmt.Errorf("rate limit per address: %w", err)
	}
	id, err := limiter.NewRateFromFormatted(identityRate)
	if err != nil {
		return nil, fmt.Errorf("rate limit per identity: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("dsar rate limit keys v1"))
	return &Limits{
		ip: limiter.New(store, ip), identity: limiter.New(store, id),
		ipMem: newLocalCounter(ip), identityMem: newLocalCounter(id),
		key: m.Sum(nil), log: log,
	}, nil
}

// clientKey is the address a client is counted under: IPv4 as it is, IPv6 by
// its /64, which one subscriber usually holds whole.
func clientKey(ip string) string {
	a := net.ParseIP(ip)
	if a == nil || a.To4() != nil {
		return ip
	}
	return a.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// PerIP counts a call against the client address's limit; over it, the call
// gets 429 with Retry-After.
func (l *Limits) PerIP() gin.HandlerFunc {
	return func(c *gin.Context) {
		if l == nil {
			c.Next()
			return
		}
		if err := l.CheckIP(c); err != nil {
			Error(c, l.log, err)
			return
		}
		c.Next()
	}
}

// CheckIP counts a call against the client address's limit, as PerIP
// does, but leaves the answer to the caller: over the limit it returns a
// *RateLimited (the pages answer with a page, not a problem). A nil
// Limits allows every call.
func (l *Limits) CheckIP(c *gin.Context) error {
	if l == nil {
		return nil
	}
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(clientKey(c.ClientIP())))
	return l.allow(c, l.ip, l.ipMem, "ip:"+hex.EncodeToString(m.Sum(nil))[:32])
}

// PerIdentity counts a submission against the limit of an identity, given
// by key (a keyed hash of it): over it, a *RateLimited error. The
// RateLimit headers go on c either way.
func (l *Limits) PerIdentity(c *gin.Context, key string) error {
	if l == nil {
		return nil
	}
	return l.allow(c, l.identity, l.identityMem, "id:"+key)
}

// RateLimited is a call over a limit: the caller may try again in Wait
// seconds.
type RateLimited struct {
	Wait int
}

func (r *RateLimited) Error() string {
	return fmt.Sprintf("rate limited: try again in %d seconds", r.Wait)
}

func (l *Limits) allow(c *gin.Context, shared *limiter.Limiter, local *localCounter, key string) error {
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
	defer cancel()
	got, err := shared.Get(ctx, key)
	if err != nil {
		// Redis cannot be asked: count in this process rather than not at
		// all, and rather than refuse people exercising their rights.
		l.log.WarnContext(c.Request.Context(), "rate limit counted in process: its store did not answer", "http_request_id", RequestIDOf(c), "error", err)
		got = local.hit(key, time.Now())
	}
	c.Header("RateLimit-Limit", strconv.FormatInt(got.Limit, 10))
	c.Header("RateLimit-Remaining", strconv.FormatInt(got.Remaining, 10))
	if !got.Reached {
		return nil
	}
	return &RateLimited{Wait: int(math.Max(1, math.Ceil(time.Until(time.Unix(got.Reset, 0)).Seconds())))}
}

// localCounter counts hits per key in fixed windows in this process: the
// fallback while Redis cannot be asked. It runs no goroutine; expired
// windows are dropped when the map grows.
type localCounter struct {
	mu   sync.Mutex
	rate limiter.Rate
	hits map[string]*window
}

type window struct {
	end time.Time
	n   int64
}

func newLocalCounter(r limiter.Rate) *localCounter {
	return &localCounter{rate: r, hits: map[string]*window{}}
}

// hit counts one hit for key at now and says where the key stands.
func (l *localCounter) hit(key string, now time.Time) limiter.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) > 100_000 {
		for k, w := range l.hits {
			if !now.Before(w.end) {
				delete(l.hits, k)
			}
		}
	}
	w := l.hits[key]
	if w == nil || !now.Before(w.end) {
		w = &window{end: now.Add(l.rate.Period)}
		l.hits[key] = w
	}
	w.n++
	return limiter.Context{Limit: l.rate.Limit, Remaining: max(0, l.rate.Limit-w.n), Reset: w.end.Unix(), Reached: w.n > l.rate.Limit}
}
