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

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/handlers/webkit"
)

//go:embed templates messages
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

// Register adds the console's pages, and its sign-in, to r.
func Register(r *gin.Engine, d Deps) {
	pages := d.Kit.Parse(files, "console", "/console")
	d.Auth.Register(r)
	g := r.Group("/console", d.Kit.Headers(), d.Auth.Require())
	g.GET("", func(c *gin.Context) { pages.Render(c, http.StatusOK, "queue", nil) })
}
