package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ulule/limiter/v3"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// Limits applies the portal's abuse limits: calls per client address and
// submissions per identity. They are counted in Redis, so they hold across
// replicas. Client addresses are counted under a keyed hash, never in clear.
type Limits struct {
	ip, identity *limiter.Limiter
	key          []byte
	log          *slog.Logger
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
	return &Limits{ip: limiter.New(store, ip), identity: limiter.New(store, id), key: m.Sum(nil), log: log}, nil
}

// perIP counts a call against the client address's limit; over it, the call
// gets 429 with Retry-After.
func (l *Limits) perIP() gin.HandlerFunc {
	return func(c *gin.Context) {
		if l == nil {
			c.Next()
			return
		}
		m := hmac.New(sha256.New, l.key)
		m.Write([]byte(c.ClientIP()))
		if l.allow(c, l.ip, "ip:"+hex.EncodeToString(m.Sum(nil))[:32]) {
			c.Next()
		}
	}
}

// perIdentity counts a submission against the limit of an identity, given
// by its blind-index hash. It writes the 429 and returns false when over.
func (l *Limits) perIdentity(c *gin.Context, hash string) bool {
	if l == nil {
		return true
	}
	return l.allow(c, l.identity, "id:"+hash)
}

func (l *Limits) allow(c *gin.Context, lim *limiter.Limiter, key string) bool {
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
	defer cancel()
	got, err := lim.Get(ctx, key)
	if err != nil {
		// Fail open: an outage of the limits' store must not stop people
		// exercising their rights.
		l.log.WarnContext(c.Request.Context(), "rate limit not checked", "http_request_id", c.GetString(requestIDKey), "error", err)
		return true
	}
	c.Header("RateLimit-Limit", strconv.FormatInt(got.Limit, 10))
	c.Header("RateLimit-Remaining", strconv.FormatInt(got.Remaining, 10))
	if !got.Reached {
		return true
	}
	wait := int(math.Max(1, math.Ceil(time.Until(time.Unix(got.Reset, 0)).Seconds())))
	c.Header("Retry-After", strconv.Itoa(wait))
	problem(c, Problem{Type: problemRateLimited, Title: "Too many requests", Status: http.StatusTooManyRequests,
		Detail: fmt.Sprintf("Too many calls; try again in %d seconds.", wait)})
	return false
}
