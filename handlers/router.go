// Package handlers is dsar's HTTP API on gin: the agent API under /v1,
// health and readiness probes, and the OpenAPI document that describes every
// route (kept true by tests that validate real traffic against it).
package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/mongostore"
)

// Enqueuer hands work to the workers: a request's fan-out, a job, a notice
// to its subject.
type Enqueuer interface {
	EnqueueFanout(ctx context.Context, requestID string) error
	EnqueueJob(ctx context.Context, jobID string) error
	EnqueueNotice(ctx context.Context, requestID, notice string) error
}

// Check is one readiness dependency.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Deps is what the API needs. All fields are required except Limits,
// TrustedProxies, Metrics, MetricsToken and Now.
type Deps struct {
	Store *mongostore.Store
	Queue Enqueuer
	Index *dsr.BlindIndex
	Keys  *Keyring
	Log   *slog.Logger
	// Links signs the portal's download links.
	Links *dsr.LinkSigner
	// Limits are the portal's abuse limits; nil means none.
	Limits *Limits
	Portal PortalOptions
	// TrustedProxies are the addresses (or CIDRs) of proxies whose
	// X-Forwarded-For is believed; none by default.
	TrustedProxies []string
	// DuplicateWindow is how far back an open identical request makes an
	// agent's new one a duplicate; 0 turns the check off.
	DuplicateWindow time.Duration
	// FourEyes says which requests the agent who filed them may not
	// approve (another must); the zero value: any.
	FourEyes dsr.ApprovalPolicy
	// Approval says which verified requests wait for an agent's approval
	// (decided when they are filed); the zero value: none but appeals.
	Approval dsr.ApprovalPolicy
	// Calendar counts business days for due dates (holidays).
	Calendar dsr.Calendar
	// Ready lists what /readyz checks.
	Ready []Check
	// Metrics is what GET /metrics serves; nil means the statistics of
	// Store alone (metrics.NewStatsCollector).
	Metrics prometheus.Gatherer
	// MetricsToken, when set, is the bearer token GET /metrics asks for;
	// empty leaves /metrics open, as Prometheus expects by default.
	MetricsToken string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// MaxBodyBytes is the largest request body accepted (1 MiB).
const MaxBodyBytes = 1 << 20

// New returns the HTTP handler of the API.
func New(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		d.Log.Error("trusted proxies ignored: not valid", "error", err)
		_ = r.SetTrustedProxies(nil)
	}
	full := &storageWatch{}
	r.Use(requestID(), securityHeaders(), accessLog(d.Log), recovery(d.Log), full.watch())
	r.NoRoute(func(c *gin.Context) {
		problem(c, Problem{Status: http.StatusNotFound, Detail: "No such route."})
	})
	r.NoMethod(func(c *gin.Context) {
		problem(c, Problem{Status: http.StatusMethodNotAllowed, Detail: "This route does not take this method."})
	})

	r.GET("/healthz", healthz)
	var probe func(context.Context) error
	if d.Store != nil {
		probe = d.Store.ProbeWrite
	}
	r.GET("/readyz", readyz(d.Ready, full, probe))
	r.GET("/openapi.yaml", openAPI)
	if d.Metrics == nil {
		d.Metrics = defaultMetrics(d)
	}
	r.GET("/metrics", metricsHandler(d.Metrics, d.MetricsToken, d.Log))

	var store app.Store
	if d.Store != nil {
		store = d.Store
	}
	svc := app.New(app.Deps{Store: store, Queue: d.Queue, Index: d.Index, Links: d.Links, Calendar: d.Calendar, Approval: d.Approval,
		FourEyes: d.FourEyes, DuplicateWindow: d.DuplicateWindow, IsAgent: d.Keys.hasAgent, Now: d.Now, Log: d.Log})
	api := &requestsAPI{app: svc, log: d.Log}
	// Every /v1 route names the roles it lets through (see Routes).
	v1 := r.Group("/v1", requireKey(d.Keys))
	readers, agents := requireRole(RoleAdmin, RoleAgent, RoleAuditor), requireRole(RoleAdmin, RoleAgent)
	v1.POST("/requests", agents, api.create)
	v1.GET("/requests", readers, api.list)
	v1.GET("/requests/:id", readers, api.get)
	v1.GET("/requests/:id/export", agents, api.export)
	v1.GET("/requests/:id/report", readers, api.report)
	v1.GET("/requests/:id/audit", readers, api.audit)
	v1.POST("/requests/:id/approve", agents, api.approve)
	v1.POST("/requests/:id/deny", agents, api.deny)
	v1.POST("/requests/:id/cancel", agents, api.cancel)
	v1.POST("/requests/:id/extend", agents, api.extend)
	v1.POST("/requests/:id/retry", agents, api.retry)
	v1.POST("/requests/:id/close", agents, api.close)
	v1.POST("/requests/:id/assign", agents, api.assign)
	v1.POST("/requests/:id/unlink", agents, api.unlink)
	v1.POST("/requests/bulk", agents, api.bulk)
	v1.GET("/requests/:id/clock", readers, api.clock)
	v1.POST("/requests/:id/pause", agents, api.pause)
	v1.POST("/requests/:id/resume", agents, api.resume)
	v1.POST("/requests/:id/appeal", agents, api.appeal)
	v1.GET("/reports/summary", readers, api.summary)
	v1.GET("/admin/keys", requireRole(RoleAdmin), keysList(d.Keys))

	if d.Portal.MaxTries <= 0 {
		d.Portal.MaxTries = 5
	}
	if d.Portal.MaxPending <= 0 {
		d.Portal.MaxPending = 1
	}
	if d.Portal.LinkTTL <= 0 {
		d.Portal.LinkTTL = 7 * 24 * time.Hour
	}
	if d.Portal.GPCLastUpdate == "" {
		d.Portal.GPCLastUpdate = "2026-11-24"
	}
	pa := &portalAPI{app: svc, calendar: d.Calendar, store: d.Store, queue: d.Queue, index: d.Index, links: d.Links, limits: d.Limits, log: d.Log, now: d.Now, opts: d.Portal}
	portal := r.Group("/v1/portal", d.Limits.perIP())
	portal.POST("/requests", pa.submit)
	portal.GET("/requests/:id", pa.status)
	portal.POST("/requests/:id/verify", pa.verify)
	portal.POST("/requests/:id/verification", pa.resend)
	portal.GET("/requests/:id/export", pa.export)
	portal.POST("/gpc", pa.gpc)
	r.GET("/.well-known/gpc.json", pa.wellKnownGPC)
	return r
}

// securityHeaders marks every response nosniff (a browser takes its
// Content-Type as given, never guesses HTML in a JSON body or a zip), and
// every response under /v1 no-store: they carry personal data, status
// tokens or exports, which no browser or proxy cache may keep. Problems
// and 401s included, so no route can forget it.
func securityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("X-Content-Type-Options", "nosniff")
		if strings.HasPrefix(c.Request.URL.Path, "/v1/") {
			c.Header("Cache-Control", "no-store")
		}
		c.Next()
	}
}

const requestIDKey = "dsar.request_id"

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID takes a well-formed X-Request-Id from the caller or makes one,
// and echoes it on the response.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Set(requestIDKey, id)
		c.Header("X-Request-Id", id)
		c.Next()
	}
}

// accessLog logs one line per HTTP exchange: route template, status,
// duration and ids. Never the query string, body or client address, which
// can identify a person.
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "(no route)"
		}
		log.InfoContext(c.Request.Context(), "http",
			"method", c.Request.Method, "route", route, "status", c.Writer.Status(),
			"duration_ms", time.Since(start).Milliseconds(), "http_request_id", c.GetString(requestIDKey),
			"caller", principal(c).Name)
	}
}

// recovery turns a panic into a 500 problem and a log line. A handler that
// panics with http.ErrAbortHandler (a stream cut short) is passed on, so the
// server drops the connection and the client sees a broken response rather
// than a complete-looking one.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(rec)
			}
			log.ErrorContext(c.Request.Context(), "panic in handler", "route", c.FullPath(), "http_request_id", c.GetString(requestIDKey), "panic", fmt.Sprint(rec))
			if !c.Writer.Written() {
				problem(c, Problem{Status: http.StatusInternalServerError, Detail: "The server failed; the error is logged under this request_id."})
			}
			c.Abort()
		}()
		c.Next()
	}
}

func healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// storageWatch remembers that a write failed because the store's disk is
// full, until a probe write succeeds: readiness fails meanwhile. Reads still
// work on a full disk, so a ping alone would not see it.
type storageWatch struct {
	mu   sync.Mutex
	full bool
}

// watch marks the store full when an exchange failed for that reason
// (writeError sets storageFullKey).
func (w *storageWatch) watch() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if c.GetBool(storageFullKey) {
			w.mu.Lock()
			w.full = true
			w.mu.Unlock()
		}
	}
}

// check reports whether the store can write: true unless a write failed
// for lack of space and probe (when not nil) still fails. A probe that
// succeeds clears the mark.
func (w *storageWatch) check(ctx context.Context, probe func(context.Context) error) bool {
	w.mu.Lock()
	full := w.full
	w.mu.Unlock()
	if !full || probe == nil {
		return !full
	}
	if err := probe(ctx); err != nil {
		return false
	}
	w.mu.Lock()
	w.full = false
	w.mu.Unlock()
	return true
}

// readyz pings every check; the check named "store" also fails while the
// store cannot write for lack of space (see storageWatch).
func readyz(checks []Check, full *storageWatch, probe func(context.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		status, code := "ok", http.StatusOK
		results := map[string]string{}
		for _, ch := range checks {
			err := ch.Ping(ctx)
			if err == nil && ch.Name == "store" && !full.check(ctx, probe) {
				err = dsr.ErrStorageFull
			}
			if err != nil {
				results[ch.Name] = "unavailable"
				status, code = "unavailable", http.StatusServiceUnavailable
				continue
			}
			results[ch.Name] = "ok"
		}
		c.JSON(code, gin.H{"status": status, "checks": results})
	}
}
