// Package agentapi is the agent API's HTTP surface: the JSON API under /v1
// that agents, admins and auditors call with an API key (requests, their
// actions, exports, evidence reports, the compliance summary, the keys).
// Each handler decodes, calls the application (app.Service), maps an error
// once (httpkit.Error) and encodes; the rules are the application's, so a
// console page can call the same methods.
package agentapi

import (
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// MaxBodyBytes is the largest request body accepted (1 MiB); a bulk filing
// may be four times as large.
const MaxBodyBytes = 1 << 20

// Deps is what the agent API needs; all fields are required.
type Deps struct {
	App  *app.Service
	Keys *apikey.Keyring
	Log  *slog.Logger
}

// Register adds the agent API's routes to r, under /v1 behind the API key
// (httpkit.RequireKey). Every route names the roles it lets through.
func Register(r *gin.Engine, d Deps) {
	api := &requestsAPI{app: d.App, log: d.Log}
	v1 := r.Group("/v1", httpkit.RequireKey(d.Keys))
	readers, agents := httpkit.RequireRole(apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor), httpkit.RequireRole(apikey.RoleAdmin, apikey.RoleAgent)
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
	v1.GET("/admin/keys", httpkit.RequireRole(apikey.RoleAdmin), keysList(d.Keys))
}
