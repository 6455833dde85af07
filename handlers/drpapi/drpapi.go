// Package drpapi is the Data Rights Protocol 1.0 surface (the covered
// business's side): authorised agents pair with the service, exercise
// rights for people, read and revoke their requests. Messages are signed by
// the agents (internal/drp); the application does the work
// (app.Service.DRP*). Answers are the protocol's status objects and
// errors, not problem+json.
package drpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/drp"
)

// Deps is what the surface needs; App and Log are required.
type Deps struct {
	App *app.Service
	// Limits are the portal's abuse limits: an exercise that mails the
	// person a verification counts against their mailbox's; nil: none.
	Limits *httpkit.Limits
	Log    *slog.Logger
}

// Register adds the protocol's routes to r. While the protocol is not
// configured (app.DRPOptions), each answers 404 with the protocol's error.
func Register(r *gin.Engine, d Deps) {
	h := &api{d: d}
	r.POST("/v1/agent/:agent", h.pair)
	r.GET("/v1/agent/:agent", h.agent)
	// The trailing slash of versions before 0.9.3 is still taken.
	r.POST("/v1/data-rights-request", h.exercise)
	r.POST("/v1/data-rights-request/", h.exercise)
	r.GET("/v1/data-rights-request/:id", h.status)
	r.DELETE("/v1/data-rights-request/:id", h.revoke)
}

type api struct{ d Deps }

// fail answers the protocol's error: code as text, a message, and whether
// the request will not be processed (fatal).
func fail(c *gin.Context, code int, message string, fatal bool) {
	c.AbortWithStatusJSON(code, drp.NewError(code, message, fatal))
}

// body reads a signed message (at most drp.MaxMessage bytes); false when
// it answered an error.
func (h *api) body(c *gin.Context) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, drp.MaxMessage))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("The signed message must be at most %d bytes.", drp.MaxMessage), true)
		return nil, false
	case err != nil:
		fail(c, http.StatusBadRequest, "The body could not be read.", false)
		return nil, false
	}
	return b, true
}

// bearer returns the bearer token of the call.
func bearer(c *gin.Context) string {
	v := c.GetHeader("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// caller returns the agent of the call's bearer token (which must be
// agentID's when that is given); false when it answered an error.
func (h *api) caller(c *gin.Context, agentID string) (drp.Agent, bool) {
	if !h.d.App.DRPOn() {
		fail(c, http.StatusNotFound, "The Data Rights Protocol is not configured here.", true)
		return drp.Agent{}, false
	}
	agent, err := h.d.App.DRPAgent(bearer(c), agentID)
	if err != nil {
		fail(c, http.StatusForbidden, "The bearer token is not one this service issued to this agent (POST /v1/agent/{agent-id} issues one).", false)
		return drp.Agent{}, false
	}
	return agent, true
}

// pair is the pair-wise key setup: a token for a signed, current message
// of an agent in the directory; anything else is 403 with no body, as the
// protocol says.
func (h *api) pair(c *gin.Context) {
	if !h.d.App.DRPOn() {
		fail(c, http.StatusNotFound, "The Data Rights Protocol is not configured here.", true)
		return
	}
	body, ok := h.body(c)
	if !ok {
		return
	}
	agentID := c.Param("agent")
	token, err := h.d.App.DRPPair(c.Request.Context(), agentID, body)
	if err != nil {
		h.d.Log.WarnContext(c.Request.Context(), "drp pairing refused", "error", err)
		c.AbortWithStatus(http.StatusForbidden)
		return
	}
	c.JSON(http.StatusOK, gin.H{"agent-id": agentID, "token": token})
}

// agent tells an agent its token still stands.
func (h *api) agent(c *gin.Context) {
	if _, ok := h.caller(c, c.Param("agent")); !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{})
}

func (h *api) exercise(c *gin.Context) {
	agent, ok := h.caller(c, "")
	if !ok {
		return
	}
	body, ok := h.body(c)
	if !ok {
		return
	}
	st, err := h.d.App.DRPExercise(c.Request.Context(), agent, body, func(_ context.Context, key string) error {
		return h.d.Limits.PerIdentity(c, key)
	})
	if err != nil {
		h.error(c, err, "drp exercise refused", agent)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (h *api) status(c *gin.Context) {
	agent, ok := h.caller(c, "")
	if !ok {
		return
	}
	st, err := h.d.App.DRPStatus(c.Request.Context(), agent, c.Param("id"))
	if err != nil {
		h.error(c, err, "drp status refused", agent)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (h *api) revoke(c *gin.Context) {
	agent, ok := h.caller(c, "")
	if !ok {
		return
	}
	body, ok := h.body(c)
	if !ok {
		return
	}
	st, err := h.d.App.DRPRevoke(c.Request.Context(), agent, c.Param("id"), body)
	if err != nil {
		h.error(c, err, "drp revocation refused", agent)
		return
	}
	c.JSON(http.StatusOK, st)
}

// error answers err as the protocol's error, and logs it (never the
// message's content: its errors name fields, not values).
func (h *api) error(c *gin.Context, err error, what string, agent drp.Agent) {
	code, fatal, msg := classify(err)
	if rl := (*httpkit.RateLimited)(nil); errors.As(err, &rl) {
		c.Header("Retry-After", strconv.Itoa(rl.Wait))
		code, fatal, msg = http.StatusTooManyRequests, false,
			"Too many requests that mail this person a verification: try again in "+strconv.Itoa(rl.Wait)+" seconds."
	}
	lvl := slog.LevelWarn
	if code >= 500 {
		lvl = slog.LevelError
	}
	h.d.Log.Log(c.Request.Context(), lvl, what, "agent", agent.ID, "status", code, "error", msg)
	fail(c, code, msg, fatal)
}

// classify maps an error onto the protocol's HTTP status, fatality and
// message. A message that will never be accepted as sent is fatal; one
// from a clock ahead of ours, or a store that failed, is not.
func classify(err error) (code int, fatal bool, msg string) {
	var ve *dsr.ValidationError
	switch {
	case errors.Is(err, drp.ErrSignature), errors.Is(err, drp.ErrAgent), errors.Is(err, drp.ErrBusiness):
		return http.StatusForbidden, true, err.Error()
	case errors.Is(err, drp.ErrNotYet):
		return http.StatusBadRequest, false, err.Error() + ": check the agent's clock, sign again and resend"
	case errors.Is(err, drp.ErrEncoding), errors.Is(err, drp.ErrExpired):
		return http.StatusBadRequest, true, err.Error()
	case errors.As(err, &ve):
		return http.StatusBadRequest, true, "drp: malformed message: " + fieldsOf(ve)
	case errors.Is(err, drp.ErrMalformed):
		return http.StatusBadRequest, true, err.Error()
	case errors.Is(err, app.ErrDRPForbidden):
		return http.StatusForbidden, false, "This request was not filed by this agent."
	case errors.Is(err, dsr.ErrNotFound):
		return http.StatusNotFound, false, "No such request."
	case errors.Is(err, dsr.ErrIdempotencyMismatch):
		return http.StatusConflict, true, "This agent-request-id was used for another request."
	case errors.Is(err, dsr.ErrConflict):
		var r *dsr.Refusal
		if errors.As(err, &r) {
			return http.StatusConflict, false, r.Detail
		}
		return http.StatusConflict, false, "The request is already being carried out and can no longer be revoked."
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, false, "The service did not answer in time; send the message again."
	}
	return http.StatusInternalServerError, false, "The service failed; send the message again (code " + strconv.Itoa(http.StatusInternalServerError) + ")."
}

// fieldsOf names the fields of ve with their messages (never values).
func fieldsOf(ve *dsr.ValidationError) string {
	var parts []string
	for _, f := range ve.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return strings.Join(parts, "; ")
}
