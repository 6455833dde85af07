// Package consolepage is the agent console's pages under /console: the
// queue of requests by due date, a request with its jobs, audit trail and
// every action the agent's role allows, the dashboard and the job queues.
// The pages call the same application methods as the agent API (package
// agentapi); sign-in and sessions are package consoleauth's.
package consolepage

import (
	"embed"
	"log/slog"
	"net/http"
	"net/url"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// files are the pages and the catalogues. The templates are named by a
// pattern, not by their directory: a directory's embedding leaves out the
// files whose names start with "_", the partials.
//
//go:embed templates/*.html messages
var files embed.FS

// Auth is the console's sign-in (package consoleauth).
type Auth interface {
	// Register adds the sign-in and sign-out routes to r.
	Register(r *gin.Engine)
	// Require lets through only exchanges of a signed-in session, whose
	// principal it sets, and checks the CSRF token of unsafe ones.
	Require() gin.HandlerFunc
}

// Queues reads the job queues (asynq.Inspector satisfies it).
type Queues interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// Deps is what the console needs. App, Kit, Auth and Log are required;
// Queues nil: the queues page says they cannot be read.
type Deps struct {
	App    *app.Service
	Kit    *webkit.Kit
	Auth   Auth
	Queues Queues
	Log    *slog.Logger
}

// console serves the pages.
type console struct {
	app    *app.Service
	pages  *webkit.Pages
	queues Queues
	log    *slog.Logger
}

// Register adds the console's pages, and its sign-in, to r. Every page
// needs a signed-in agent, admin or auditor (d.Auth.Require); only agents
// and admins act on requests, only admins see the job queues.
func Register(r *gin.Engine, d Deps) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	c := &console{app: d.App, pages: d.Kit.Parse(files, "console", "/console"), queues: d.Queues, log: d.Log}
	d.Auth.Register(r)
	readers := c.role(apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor)
	g := r.Group("/console", limitBody, d.Kit.Headers(), d.Auth.Require(), readers)
	g.GET("", c.queue)
	g.GET("/requests/:id", c.request)
	g.GET("/requests/:id/report", c.report)
	g.POST("/requests/:id/:action", c.act)
	g.GET("/requests/:id/:action", c.back)
	g.GET("/dashboard", c.dashboard)
	g.GET("/queues", c.role(apikey.RoleAdmin), c.queuesPage)
}

// back answers a GET of an action's address, which only its form posts
// to: the language switch of a page an action re-rendered links there.
// It keeps the switch and goes to the request's page.
func (c *console) back(ctx *gin.Context) {
	webkit.Lang(ctx) // keeps a ?lang= switch
	ctx.Redirect(http.StatusSeeOther, "/console/requests/"+url.PathEscape(ctx.Param("id")))
}

// maxForm is the largest form body read (a reason is at most a few
// thousand characters).
const maxForm = 64 << 10

// limitBody caps the body any handler, the sign-in's CSRF check included,
// reads: a larger form reads as empty, and is refused.
func limitBody(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxForm)
	c.Next()
}

// role lets through only the principals of roles; others get the 403
// page.
func (c *console) role(roles ...apikey.Role) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		if !slices.Contains(roles, httpkit.PrincipalOf(ctx).Role) {
			c.pages.Error(ctx, http.StatusForbidden, "console.forbidden.title", "console.forbidden.message")
			return
		}
		ctx.Next()
	}
}

// canAct reports whether the principal may act on requests.
func canAct(ctx *gin.Context) bool { return httpkit.PrincipalOf(ctx).Role.WorksOnRequests() }

// failed logs what a caller cannot act on (a failure of the server or the
// store), by request id and route only, and marks a full disk.
func (c *console) failed(ctx *gin.Context, p httpkit.Problem, err error) {
	switch {
	case p.Type == httpkit.TypeStorageFull:
		httpkit.MarkStorageFull(ctx)
		fallthrough
	case p.Status >= http.StatusInternalServerError:
		c.log.ErrorContext(ctx.Request.Context(), "console page failed", "request_id", httpkit.RequestIDOf(ctx), "route", ctx.FullPath(), "error", err)
	}
}

// fail renders the error page for err: not found, or the server's
// failure.
func (c *console) fail(ctx *gin.Context, err error) {
	p := httpkit.ProblemOf(err)
	c.failed(ctx, p, err)
	switch p.Status {
	case http.StatusNotFound:
		c.pages.Error(ctx, http.StatusNotFound, "console.notfound.title", "console.notfound.message")
	case http.StatusServiceUnavailable:
		c.pages.Error(ctx, p.Status, "console.unavailable.title", "console.unavailable.message")
	default:
		c.pages.Error(ctx, http.StatusInternalServerError, "common.error.title", "common.error.message")
	}
}
