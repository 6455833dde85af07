// Package opendsrapi is the OpenDSR 2.0 processor surface: controllers
// allowed in the settings pass data subject requests to this service,
// follow them and cancel them. Every answer is signed with the processor's
// certificate (internal/opendsr); errors are the specification's error
// object, never quoting an identity. The application does the work
// (app.Service.OpenDSR*).
package opendsrapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/opendsr"
)

// DefaultPrefix is where the routes are mounted unless configured.
const DefaultPrefix = "/opendsr/v2"

// Deps is what the surface needs; App and Log are required.
type Deps struct {
	App *app.Service
	Log *slog.Logger
	// Prefix is where the routes are mounted (DefaultPrefix when empty).
	Prefix string
	// CertPEM is the processor's certificate chain, served for discovery.
	CertPEM []byte
}

// Register adds the processor's routes to r: discovery, the certificate,
// and the requests (also under their OpenGDPR name, /opengdpr_requests).
// While OpenDSR is not configured, each answers 404.
func Register(r *gin.Engine, d Deps) {
	if d.Prefix == "" {
		d.Prefix = DefaultPrefix
	}
	h := &api{d: d}
	g := r.Group(d.Prefix)
	g.GET("/discovery", h.discovery)
	g.GET("/certificate.pem", h.certificate)
	g.POST("/requests", h.create)
	g.GET("/requests/:id", h.status)
	g.DELETE("/requests/:id", h.cancel)
	g.GET("/requests/:id/results", h.results)
	// The OpenGDPR names of the same routes, which section 10.1 requires
	// honouring.
	g.POST("/opengdpr_requests", h.create)
	g.GET("/opengdpr_requests/:id", h.status)
	g.DELETE("/opengdpr_requests/:id", h.cancel)
}

type api struct {
	d Deps
	// disc is the signed discovery document, signed once: it never
	// changes, and anyone may ask for it.
	disc struct {
		sync.Mutex
		body []byte
		sig  http.Header
	}
}

// authenticated is the context key of the controller a call is from.
const authenticated = "opendsr.controller"

// fail answers the specification's error object, signed when the call is
// a controller's (the processor signs its answers; one to a caller
// without credentials is not, so nobody makes it sign without end).
func (h *api) fail(c *gin.Context, code int, message, reason string) {
	body, err := json.Marshal(opendsr.ErrorBody{Error: opendsr.ErrorObject{Code: code, Message: message,
		Errors: []opendsr.ErrorDetail{{Domain: "OpenDSR", Reason: reason, Message: message}}}})
	if err == nil && c.GetString(authenticated) != "" {
		err = h.d.App.OpenDSRSigner().SignHeaders(c.Writer.Header(), body)
	}
	if err != nil {
		h.d.Log.ErrorContext(c.Request.Context(), "opendsr error answer not signed", "error", err)
		c.Writer.Header().Del(opendsr.HeaderSignature)
		c.Writer.Header().Del(opendsr.HeaderDomain)
	}
	c.Header("Cache-Control", "no-store")
	c.Abort()
	c.Data(code, "application/json", body)
}

// on answers 404 and returns false while OpenDSR is off.
func (h *api) on(c *gin.Context) bool {
	if !h.d.App.OpenDSROn() {
		h.fail(c, http.StatusNotFound, "OpenDSR is not configured here.", "NotConfigured")
		return false
	}
	return true
}

// controller returns the controller of the call's bearer secret; it
// answers 401 when there is none.
func (h *api) controller(c *gin.Context) (string, bool) {
	if !h.on(c) {
		return "", false
	}
	v := c.GetHeader("Authorization")
	secret := ""
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		secret = strings.TrimSpace(v[7:])
	}
	id := h.d.App.OpenDSRController(secret)
	if id == "" {
		c.Header("WWW-Authenticate", `Bearer realm="opendsr"`)
		h.fail(c, http.StatusUnauthorized, "Send the controller's credentials: Authorization: Bearer <secret>, as agreed with this processor.", "Unauthenticated")
		return "", false
	}
	c.Set(authenticated, id)
	return id, true
}

// signed answers v with status, signed with the processor's certificate.
func (h *api) signed(c *gin.Context, status int, v any) {
	body, err := json.Marshal(v)
	if err == nil {
		err = h.d.App.OpenDSRSigner().SignHeaders(c.Writer.Header(), body)
	}
	if err != nil {
		h.d.Log.ErrorContext(c.Request.Context(), "opendsr answer not signed", "error", err)
		h.fail(c, http.StatusInternalServerError, "The answer could not be signed; try again.", "Internal")
		return
	}
	c.Data(status, "application/json", body)
}

func (h *api) discovery(c *gin.Context) {
	if !h.on(c) {
		return
	}
	d := &h.disc
	d.Lock()
	if d.body == nil {
		body, err := json.Marshal(h.d.App.OpenDSRDiscovery())
		sig := http.Header{}
		if err == nil {
			err = h.d.App.OpenDSRSigner().SignHeaders(sig, body)
		}
		if err != nil {
			d.Unlock()
			h.d.Log.ErrorContext(c.Request.Context(), "opendsr discovery not signed", "error", err)
			h.fail(c, http.StatusInternalServerError, "The answer could not be signed; try again.", "Internal")
			return
		}
		d.body, d.sig = body, sig
	}
	body, sig := d.body, d.sig
	d.Unlock()
	for k, v := range sig {
		c.Writer.Header()[k] = v
	}
	c.Data(http.StatusOK, "application/json", body)
}

func (h *api) certificate(c *gin.Context) {
	if !h.on(c) {
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", h.d.CertPEM)
}

func (h *api) create(c *gin.Context) {
	controller, ok := h.controller(c)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, opendsr.MaxMessage))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		h.fail(c, http.StatusBadRequest, fmt.Sprintf("The request must be at most %d bytes.", opendsr.MaxMessage), "TooLarge")
		return
	}
	if err != nil {
		h.fail(c, http.StatusBadRequest, "The body could not be read.", "Unreadable")
		return
	}
	out, err := h.d.App.OpenDSRCreate(c.Request.Context(), controller, body)
	if err != nil {
		h.error(c, err, controller)
		return
	}
	h.signed(c, http.StatusCreated, out)
}

func (h *api) status(c *gin.Context) {
	controller, ok := h.controller(c)
	if !ok {
		return
	}
	out, err := h.d.App.OpenDSRStatus(c.Request.Context(), controller, c.Param("id"))
	if err != nil {
		h.error(c, err, controller)
		return
	}
	h.signed(c, http.StatusOK, out)
}

func (h *api) cancel(c *gin.Context) {
	controller, ok := h.controller(c)
	if !ok {
		return
	}
	out, err := h.d.App.OpenDSRCancel(c.Request.Context(), controller, c.Param("id"))
	if err != nil {
		h.error(c, err, controller)
		return
	}
	h.signed(c, http.StatusAccepted, out)
}

// results answers the results document of a completed access request,
// signed like every answer: what the request's results_url names.
func (h *api) results(c *gin.Context) {
	controller, ok := h.controller(c)
	if !ok {
		return
	}
	body, err := h.d.App.OpenDSRResults(c.Request.Context(), controller, c.Param("id"))
	if err != nil {
		h.error(c, err, controller)
		return
	}
	if err := h.d.App.OpenDSRSigner().SignHeaders(c.Writer.Header(), body); err != nil {
		h.d.Log.ErrorContext(c.Request.Context(), "opendsr answer not signed", "error", err)
		h.fail(c, http.StatusInternalServerError, "The answer could not be signed; try again.", "Internal")
		return
	}
	c.Data(http.StatusOK, "application/json", body)
}

// error answers err: 400 for what the controller sent (the
// specification's only error status), 404 for an unknown request, 500
// otherwise. Messages name fields, never values.
func (h *api) error(c *gin.Context, err error, controller string) {
	code, reason, msg := http.StatusInternalServerError, "Internal", "The processor failed; send the request again."
	switch {
	case errors.Is(err, opendsr.ErrMalformed):
		code, reason, msg = http.StatusBadRequest, "Validation", err.Error()
	case errors.Is(err, app.ErrOpenDSRNoIdentity):
		code, reason, msg = http.StatusBadRequest, "UnsupportedIdentity", err.Error()
	case errors.Is(err, dsr.ErrIdempotencyMismatch):
		code, reason, msg = http.StatusBadRequest, "Conflict", "This subject_request_id was used for another request."
	case errors.Is(err, app.ErrOpenDSRNotPending):
		code, reason, msg = http.StatusBadRequest, "NotPending", err.Error()
	case errors.Is(err, app.ErrOpenDSRNoResults):
		code, reason, msg = http.StatusNotFound, "NoResults", app.ErrOpenDSRNoResults.Error()
	case errors.Is(err, app.ErrOpenDSRResultsTooLarge):
		code, reason, msg = http.StatusInternalServerError, "TooLarge", app.ErrOpenDSRResultsTooLarge.Error()
	case errors.Is(err, dsr.ErrNotFound):
		code, reason, msg = http.StatusNotFound, "NotFound", "This controller passed no request with this subject_request_id."
	}
	lvl := slog.LevelWarn
	if code >= 500 {
		lvl = slog.LevelError
	}
	h.d.Log.Log(c.Request.Context(), lvl, "opendsr call refused", "controller", controller, "status", code, "reason", reason, "error", msg)
	h.fail(c, code, msg, reason)
}
