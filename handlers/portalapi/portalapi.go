// Package portalapi is the portal's HTTP surface: the JSON API under
// /v1/portal that people (and sites forwarding their GPC signals) call
// without an API key, each request followed with its status token, and
// /.well-known/gpc.json. Each handler decodes, calls the application
// (app.Service), maps an error once (httpkit.Error) and encodes; the
// portal's rules are the application's, so a web page can call the same
// methods.
package portalapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/links"
)

// MaxBodyBytes is the largest body the portal accepts (64 KiB).
const MaxBodyBytes = 64 << 10

// Deps is what the portal's surface needs. App and Log are required;
// Limits nil means no abuse limits.
type Deps struct {
	App    *app.Service
	Limits *httpkit.Limits
	Log    *slog.Logger
}

// Register adds the portal's routes to r: /v1/portal/... under the limit
// per client address, and /.well-known/gpc.json.
func Register(r *gin.Engine, d Deps) {
	h := &api{app: d.App, limits: d.Limits, log: d.Log}
	portal := r.Group(links.Portal, d.Limits.PerIP())
	portal.POST("/requests", h.submit)
	portal.GET("/requests/:id", h.status)
	portal.POST("/requests/:id/verify", h.verify)
	portal.POST("/requests/:id/verification", h.resend)
	portal.GET("/requests/:id/export", h.exportData)
	portal.GET("/requests/:id/preferences", h.preferences)
	portal.PUT("/requests/:id/preferences", h.setPreferences)
	portal.GET("/requests/:id/consent-history", h.consentHistory)
	portal.POST("/gpc", h.gpc)
	r.GET("/.well-known/gpc.json", h.wellKnownGPC)
}

type api struct {
	app    *app.Service
	limits *httpkit.Limits
	log    *slog.Logger
}

// created answers a filing.
type created struct {
	app.RequestHead
	ReceivedAt time.Time `json:"received_at"`
	DueAt      time.Time `json:"due_at"`
	// StatusToken is shown once: only its hash is kept.
	StatusToken string `json:"status_token"`
	// VerificationRequired says a code was emailed to the subject.
	VerificationRequired bool   `json:"verification_required"`
	GPC                  bool   `json:"gpc"`
	LinkedRequestID      string `json:"linked_request_id,omitempty"`
	// Scopes, for an opt-out, are the uses it refuses.
	Scopes []dsr.Scope `json:"scopes,omitempty"`
}

// merged answers a filing that joined an open identical request.
type merged struct {
	Merged bool   `json:"merged"`
	Detail string `json:"detail"`
}

// arrival is what the HTTP exchange says of a filing: its GPC signal, and
// the limit per identity, whose headers go on the answer.
func (h *api) arrival(c *gin.Context) app.Arrival {
	return app.Arrival{
		GPC:   c.GetHeader("Sec-GPC") == "1",
		Limit: func(_ context.Context, key string) error { return h.limits.PerIdentity(c, key) },
	}
}

// submit files a request from the portal (app.Service.SubmitPortal).
func (h *api) submit(c *gin.Context) {
	var body app.PortalRequest
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	filed, err := h.app.SubmitPortal(c.Request.Context(), body, h.arrival(c))
	h.filed(c, filed, err)
}

// gpc records a GPC signal a site forwards (app.Service.SubmitGPC). The
// call must carry Sec-GPC: 1.
func (h *api) gpc(c *gin.Context) {
	if c.GetHeader("Sec-GPC") != "1" {
		var ve dsr.ValidationError
		ve.Add("Sec-GPC", `header required, exactly "1": this endpoint records Global Privacy Control signals`)
		httpkit.Error(c, h.log, &ve)
		return
	}
	var body app.GPCSignal
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	filed, err := h.app.SubmitGPC(c.Request.Context(), body, h.arrival(c))
	h.filed(c, filed, err)
}

// filed answers a filing: 202 with the request and its status token, or
// 202 saying it was merged.
func (h *api) filed(c *gin.Context, f app.PortalFiled, err error) {
	if err != nil {
		httpkit.Error(c, h.log, err)
		return
	}
	if f.Merged {
		c.JSON(http.StatusAccepted, merged{Merged: true,
			Detail: "An identical request is already open for this identity, so nothing new was filed. If it was filed here, its details were emailed to its address."})
		return
	}
	req := f.Request
	c.Header("Location", links.StatusPath(req.ID))
	c.JSON(http.StatusAccepted, created{
		RequestHead: app.HeadOf(req), ReceivedAt: req.ReceivedAt, DueAt: req.DueAt,
		StatusToken: f.StatusToken, VerificationRequired: req.Status == dsr.StatusVerifying, GPC: req.GPC, LinkedRequestID: req.LinkedTo,
		Scopes: req.Scopes,
	})
}

// open opens the request named in the path for the holder of the status
// token in the Authorization header (app.Service.Open). Without a token it
// answers 401; with a wrong one, as for an unknown id.
func (h *api) open(c *gin.Context) (app.Access, bool) {
	token, ok := httpkit.BearerToken(c)
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="dsar portal"`)
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusUnauthorized, Detail: "Send the request's status token as Authorization: Bearer <token>."})
		return app.Access{}, false
	}
	a, err := h.app.Open(c.Request.Context(), c.Param("id"), token)
	if err != nil {
		httpkit.Error(c, h.log, err)
		return app.Access{}, false
	}
	return a, true
}

// verify checks an emailed code or link token (app.Service.Verify).
func (h *api) verify(c *gin.Context) {
	a, ok := h.open(c)
	if !ok {
		return
	}
	var body app.Verification
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	v, err := h.app.Verify(c.Request.Context(), a, body)
	if err != nil {
		httpkit.Error(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// status shows the request to its person (app.Service.Status).
func (h *api) status(c *gin.Context) {
	a, ok := h.open(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, h.app.Status(a))
}

// exportData streams the export (app.Service.ExportOf) to a holder of the
// status token or of a signed link that has not expired.
func (h *api) exportData(c *gin.Context) {
	var req *dsr.Request
	if c.Query("sig") != "" || c.Query("expires") != "" {
		var err error
		if req, err = h.app.OpenByLink(c.Request.Context(), c.Param("id"), c.Query("expires"), c.Query("sig")); err != nil {
			httpkit.Error(c, h.log, err)
			return
		}
	} else {
		a, ok := h.open(c)
		if !ok {
			return
		}
		req = a.Request
	}
	e, err := h.app.ExportOf(c.Request.Context(), req, httpkit.Caller(c))
	if err != nil {
		httpkit.Error(c, h.log, err)
		return
	}
	httpkit.WriteZip(c, e)
}

// resend sends a new code (app.Service.Resend).
func (h *api) resend(c *gin.Context) {
	a, ok := h.open(c)
	if !ok {
		return
	}
	req, err := h.app.Resend(c.Request.Context(), a)
	if err != nil {
		httpkit.Error(c, h.log, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"id": req.ID, "status": req.Status})
}

// wellKnownGPC serves /.well-known/gpc.json: this site honours GPC.
func (h *api) wellKnownGPC(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"gpc": true, "lastUpdate": h.app.GPCLastUpdate()})
}
