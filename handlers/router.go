// Package handlers composes dsar's HTTP API on gin: the surfaces (the
// agent API, package agentapi; the portal's, package portalapi; the manual
// task pages, package taskpage) over the
// shared toolkit (package httpkit), health and readiness probes, the
// metrics endpoint, and the OpenAPI document that describes every route
// (kept true by tests that validate real traffic against it).
package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/app/suppression"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/agentapi"
	"github.com/dsar-project/dsar/handlers/callbackapi"
	"github.com/dsar-project/dsar/handlers/consolepage"
	"github.com/dsar-project/dsar/handlers/drpapi"
	"github.com/dsar-project/dsar/handlers/hookapi"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/opendsrapi"
	"github.com/dsar-project/dsar/handlers/portalapi"
	"github.com/dsar-project/dsar/handlers/portalpage"
	"github.com/dsar-project/dsar/handlers/suppressapi"
	"github.com/dsar-project/dsar/handlers/taskpage"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/links"
	"github.com/dsar-project/dsar/internal/telemetry"
	"github.com/dsar-project/dsar/internal/webhook"
	"github.com/dsar-project/dsar/store"
)

// Check is one readiness dependency.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Deps is what the API needs. All fields are required except Limits,
// TrustedProxies, Metrics, MetricsToken, Callbacks, the transport's
// (HSTSMaxAge, BehindTLSProxy, CORSOrigins) and Now.
type Deps struct {
	Store store.Store
	Queue app.Enqueuer
	Index *dsr.BlindIndex
	Keys  *apikey.Keyring
	Log   *slog.Logger
	// Links signs the portal's download links.
	Links *dsr.LinkSigner
	// TaskLinks checks the links to manual task pages (dsr.NewTaskSigner);
	// nil: no task pages are served.
	TaskLinks *dsr.LinkSigner
	// Limits are the portal's abuse limits; nil means none.
	Limits *httpkit.Limits
	// Portal tunes the portal; its defaults are config's (DSAR_VERIFY_MAX_TRIES,
	// DSAR_PORTAL_MAX_PENDING, DSAR_EXPORT_LINK_TTL, DSAR_GPC_LAST_UPDATE).
	Portal app.PortalOptions
	// DRP configures the Data Rights Protocol's endpoints (off when
	// empty: they answer 404).
	DRP app.DRPOptions
	// OpenDSR configures the OpenDSR processor endpoints, mounted at
	// OpenDSRPrefix (opendsrapi.DefaultPrefix when empty), with the
	// certificate chain OpenDSRCertPEM served for discovery; off when
	// empty (they answer 404).
	OpenDSR        app.OpenDSROptions
	OpenDSRPrefix  string
	OpenDSRCertPEM []byte
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
	// CorrectFields names the fields the configured connectors can
	// correct, when this process knows them (app.Deps.CorrectFields).
	CorrectFields func() []string
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
	// HookSecret checks the pre-fan-out hook's resumes
	// (DSAR_HOOK_SECRET); empty: POST /v1/hooks/resume/{id} answers 404.
	HookSecret webhook.Secret
	// HookPreviousSecret, while HookSecret changes, is accepted on
	// resumes too.
	HookPreviousSecret webhook.Secret
	// Callbacks finds the connectors whose systems answer waiting jobs by
	// calling back (POST /v1/callbacks/{job}); nil: none does, and every
	// callback is 404.
	Callbacks callbackapi.Connectors
	// Suppressions is the process's suppression set, which the checks
	// read; nil: New makes one over Store (when Index is set).
	Suppressions *suppression.Set
	// Pages is the pages' toolkit (brand, catalogues, CSRF); nil: no
	// pages are served (neither /privacy nor /console).
	Pages *webkit.Kit
	// ConsoleAuth is the console's sign-in (consoleauth.New); nil: no
	// console.
	ConsoleAuth consolepage.Auth
	// Queues lets the console show the job queues to admins; nil: it says
	// they cannot be read.
	Queues consolepage.Queues
	// HSTSMaxAge is the max-age of Strict-Transport-Security, sent on
	// answers over TLS (httpkit.StrictTransport); 0: never sent.
	HSTSMaxAge time.Duration
	// BehindTLSProxy says a proxy in front terminates TLS, so every
	// answer travels over TLS.
	BehindTLSProxy bool
	// CORSOrigins are the origins whose pages may call the portal API
	// (/v1/portal/...) from a browser; none by default.
	CORSOrigins []string
	// Background runs a filed request's dispatch after its 202 (see
	// app.Background); nil: before it. The process waits for it once the
	// server has stopped, before it closes the queue.
	Background *app.Background
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

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
	full := &httpkit.StorageWatch{}
	r.Use(telemetry.HTTP(), httpkit.RequestID(), httpkit.SecurityHeaders(), httpkit.StrictTransport(d.HSTSMaxAge, d.BehindTLSProxy),
		httpkit.AccessLog(d.Log), httpkit.Recovery(d.Log), full.Watch(), httpkit.CORS(links.Portal, d.CORSOrigins))
	r.NoRoute(func(c *gin.Context) {
		if d.Pages != nil && pagePath(c.Request.URL.Path) {
			d.Pages.NotFound(c)
			return
		}
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusNotFound, Detail: "No such route."})
	})
	r.NoMethod(func(c *gin.Context) {
		if d.Pages != nil && pagePath(c.Request.URL.Path) {
			d.Pages.MethodNotAllowed(c)
			return
		}
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusMethodNotAllowed, Detail: "This route does not take this method."})
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
	if feed, ok := d.Store.(suppression.Feed); ok && d.Suppressions == nil && d.Index != nil {
		d.Suppressions = suppression.NewSet(feed, d.Index.SuppressionKey())
	}
	svc := app.New(app.Deps{Store: store, Queue: d.Queue, Index: d.Index, Links: d.Links, Calendar: d.Calendar, Approval: d.Approval,
		FourEyes: d.FourEyes, DuplicateWindow: d.DuplicateWindow, IsAgent: d.Keys.HasAgent, CorrectFields: d.CorrectFields, Portal: d.Portal, Suppressions: d.Suppressions, DRP: d.DRP, OpenDSR: d.OpenDSR, Background: d.Background, Now: d.Now, Log: d.Log})
	agentapi.Register(r, agentapi.Deps{App: svc, Keys: d.Keys, Log: d.Log})
	portalapi.Register(r, portalapi.Deps{App: svc, Limits: d.Limits, Log: d.Log})
	suppressapi.Register(r, suppressapi.Deps{App: svc, Keys: d.Keys, Log: d.Log})
	suppressapi.RegisterLists(r, suppressapi.Deps{App: svc, Keys: d.Keys, Log: d.Log})
	drpapi.Register(r, drpapi.Deps{App: svc, Limits: d.Limits, Log: d.Log})
	opendsrapi.Register(r, opendsrapi.Deps{App: svc, Log: d.Log, Prefix: d.OpenDSRPrefix, CertPEM: d.OpenDSRCertPEM})
	hookapi.Register(r, hookapi.Deps{App: svc, Secret: d.HookSecret, Previous: d.HookPreviousSecret, Log: d.Log, Now: d.Now})
	if d.TaskLinks != nil {
		taskpage.Register(r, taskpage.Deps{App: svc, Links: d.TaskLinks, Log: d.Log})
	}
	callbackapi.Register(r, callbackapi.Deps{App: svc, Connectors: d.Callbacks, Log: d.Log, Now: d.Now})
	if d.Pages != nil {
		d.Pages.RegisterAssets(r)
		portalpage.Register(r, portalpage.Deps{App: svc, Kit: d.Pages, Limits: d.Limits, Log: d.Log})
		if d.ConsoleAuth != nil {
			consolepage.Register(r, consolepage.Deps{App: svc, Kit: d.Pages, Auth: d.ConsoleAuth, Queues: d.Queues, Log: d.Log})
		}
	}
	return r
}

// pagePath reports whether path is under the pages (/privacy, /console),
// where a missing page is an HTML 404, not a problem.
func pagePath(path string) bool {
	for _, p := range []string{"/privacy", "/console"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz pings every check; the check named "store" also fails while the
// store cannot write for lack of space (see storageWatch).
func readyz(checks []Check, full *httpkit.StorageWatch, probe func(context.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		status, code := "ok", http.StatusOK
		results := map[string]string{}
		for _, ch := range checks {
			err := ch.Ping(ctx)
			if err == nil && ch.Name == "store" && !full.Check(ctx, probe) {
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
