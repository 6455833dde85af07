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
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/ulule/limiter/v3"
	sredis "github.com/ulule/limiter/v3/drivers/store/redis"
	"golang.org/x/net/idna"
)

// Limits applies the portal's abuse limits: calls per client address (an
// IPv6 client counts by its /64) and submissions per identity (an email
// counts by its mailbox: see MailboxKey). They are counted in Redis, so they
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

// MailboxKey is the form of an email that the per-mailbox limit counts:
// the address as its provider delivers it, so variants that reach one
// inbox share one limit. Every address loses a "+tag" from its local part
// and is compared in lower case, its domain in ASCII (punycode); where the
// provider is known to ignore more (mailboxRules), that goes too.
//
// It is for counting only: the blind index, merges and duplicate checks
// match the address as given, since a wrong guess here must never join two
// people's requests.
func MailboxKey(email string) string {
	local, domain, ok := strings.Cut(strings.ToLower(email), "@")
	if !ok {
		return strings.ToLower(email)
	}
	if a, err := idna.Lookup.ToASCII(domain); err == nil {
		domain = a
	}
	local, _, _ = strings.Cut(local, "+")
	rule, known := mailboxRules[domain]
	if !known {
		// Subdomain addressing: anything@user.fastmail.com reaches
		// user@fastmail.com.
		if sub, parent, ok := strings.Cut(domain, "."); ok && mailboxRules[parent].subdomains {
			local, domain, rule = sub, parent, mailboxRules[parent]
		}
	}
	if rule.dashTag {
		local, _, _ = strings.Cut(local, "-")
	}
	if rule.noDots {
		local = strings.ReplaceAll(local, ".", "")
	}
	if rule.domain != "" {
		domain = rule.domain
	}
	return local + "@" + domain
}

// mailboxRule is what a provider ignores in the addresses it delivers,
// beyond the "+tag" every address loses.
type mailboxRule struct {
	noDots     bool   // dots in the local part are ignored
	dashTag    bool   // "name-keyword" is a disposable address of "name"
	subdomains bool   // "x@name.domain" reaches "name@domain"
	domain     string // another domain of the same mailboxes
}

// mailboxRules lists the providers whose rules are documented by the
// provider (docs/portal.md cites each). Providers not listed (Outlook,
// iCloud, Proton...) are counted with "+tags" removed only.
var mailboxRules = map[string]mailboxRule{
	"gmail.com":      {noDots: true},
	"googlemail.com": {noDots: true, domain: "gmail.com"},
	"yahoo.com":      {dashTag: true},
	"fastmail.com":   {subdomains: true},
	"fastmail.fm":    {subdomains: true},
}

// PerIP counts a call against the client address's limit; over it, the call
// gets 429 with Retry-After.
func (l *Limits) PerIP() gin.HandlerFunc {
	return func(c *gin.Context) {
		if l == nil {
			c.Next()
			return
		}
		m := hmac.New(sha256.New, l.key)
		m.Write([]byte(clientKey(c.ClientIP())))
		if l.allow(c, l.ip, l.ipMem, "ip:"+hex.EncodeToString(m.Sum(nil))[:32]) {
			c.Next()
		}
	}
}

// PerIdentity counts a submission against the limit of an identity, given
// by its blind-index hash. It writes the 429 and returns false when over.
func (l *Limits) PerIdentity(c *gin.Context, hash string) bool {
	if l == nil {
		return true
	}
	return l.allow(c, l.identity, l.identityMem, "id:"+hash)
}

func (l *Limits) allow(c *gin.Context, shared *limiter.Limiter, local *localCounter, key string) bool {
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
		return true
	}
	wait := int(math.Max(1, math.Ceil(time.Until(time.Unix(got.Reset, 0)).Seconds())))
	c.Header("Retry-After", strconv.Itoa(wait))
	Abort(c, Problem{Type: TypeRateLimited, Title: "Too many requests", Status: http.StatusTooManyRequests,
		Detail: fmt.Sprintf("Too many calls; try again in %d seconds.", wait)})
	return false
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
