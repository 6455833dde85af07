// Package portalpage is the privacy portal's pages under /privacy: a person
// chooses a right, proves who they are with the emailed code or link,
// follows the request and downloads their data. The pages call the same
// application methods as the portal's JSON API (package portalapi).
package portalpage

import (
	"embed"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/webkit"
)

//go:embed templates messages
var files embed.FS

// Deps is what the portal's pages need. App, Kit and Log are required;
// Limits nil means no abuse limits.
type Deps struct {
	App    *app.Service
	Kit    *webkit.Kit
	Limits *httpkit.Limits
	Log    *slog.Logger
}

// Register adds the portal's pages to r.
func Register(r *gin.Engine, d Deps) {
	pages := d.Kit.Parse(files, "privacy", "/privacy")
	g := r.Group("/privacy", d.Kit.Headers())
	g.GET("", func(c *gin.Context) { pages.Render(c, http.StatusOK, "home", nil) })
}
