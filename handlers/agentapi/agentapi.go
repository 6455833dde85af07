// Package agentapi is the agent API's HTTP surface: the JSON API under /v1
// that agents, admins and auditors call with an API key (requests, their
// actions, exports, evidence reports, the compliance summary, the keys).
// Each handler decodes, calls the application (app.Service), maps an error
// once (httpkit.Error) and encodes; the rules are the application's, so a
// console page can call the same methods.
package agentapi

import (
	"context"
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
	// The actions on a request answer the request and its jobs (app.Service
	// has their rules). Under the four-eyes rule (DSAR_APPROVAL_FOUR_EYES)
	// the agent who filed a request, or for an appeal the request it
	// appeals, may not approve it: 403, and nothing changes.
	v1.POST("/requests/:id/approve", agents, api.act(d.App.Approve))
	v1.POST("/requests/:id/deny", agents, action(api, jsonBody[app.Denial], d.App.Deny))
	v1.POST("/requests/:id/cancel", agents, action(api, reason, d.App.Cancel))
	v1.POST("/requests/:id/extend", agents, action(api, reason, d.App.Extend))
	v1.POST("/requests/:id/retry", agents, api.act(d.App.Retry))
	v1.POST("/requests/:id/close", agents, action(api, jsonBody[app.Closing], d.App.Close))
	v1.POST("/requests/:id/assign", agents, action(api, jsonBody[assignBody], func(ctx context.Context, id string, b assignBody, by string) (app.Record, error) {
		return d.App.Assign(ctx, id, b.Agent, by)
	}))
	v1.POST("/requests/:id/unlink", agents, api.act(d.App.Unlink))
	v1.POST("/requests/bulk", agents, api.bulk)
	v1.GET("/requests/:id/clock", readers, api.clock)
	v1.POST("/requests/:id/pause", agents, action(api, reason, d.App.Pause))
	v1.POST("/requests/:id/resume", agents, api.act(d.App.Resume))
	v1.POST("/requests/:id/appeal", agents, api.appeal)
	v1.GET("/reports/summary", readers, api.summary)
	v1.GET("/reports/segments", readers, api.segments)
	v1.GET("/admin/keys", httpkit.RequireRole(apikey.RoleAdmin), keysList(d.Keys))
	registerConsent(v1, api)
}
