package agentapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/links"
)

// reasonBody is the body of the actions that take a reason.
type reasonBody struct {
	Reason string `json:"reason"`
}

// reason decodes a body with a reason; an action whose reason is optional
// may have no body. On failure it has written the problem.
func (a *requestsAPI) reason(c *gin.Context) (string, bool) {
	var body reasonBody
	if c.Request.ContentLength != 0 || c.GetHeader("Content-Type") != "" {
		if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
			return "", false
		}
	}
	return body.Reason, true
}

// approve lets a request waiting for approval be processed. Under the
// four-eyes rule (DSAR_APPROVAL_FOUR_EYES) the agent who filed the request,
// or for an appeal the request it appeals, may not approve it: 403, and
// nothing changes.
func (a *requestsAPI) approve(c *gin.Context) {
	rec, err := a.app.Approve(c.Request.Context(), c.Param("id"), httpkit.PrincipalOf(c).Name)
	a.respond(c, rec, err)
}

// deny refuses a request before it is processed, with a reason the person
// is told.
func (a *requestsAPI) deny(c *gin.Context) {
	var body app.Denial
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	rec, err := a.app.Deny(c.Request.Context(), c.Param("id"), body, httpkit.PrincipalOf(c).Name)
	a.respond(c, rec, err)
}

// cancel withdraws a request before it is processed (the person asked, or
// it was filed in error).
func (a *requestsAPI) cancel(c *gin.Context) {
	if reason, ok := a.reason(c); ok {
		rec, err := a.app.Cancel(c.Request.Context(), c.Param("id"), reason, httpkit.PrincipalOf(c).Name)
		a.respond(c, rec, err)
	}
}

// extend gives the request the one extension its regulation allows.
func (a *requestsAPI) extend(c *gin.Context) {
	if reason, ok := a.reason(c); ok {
		rec, err := a.app.Extend(c.Request.Context(), c.Param("id"), reason, httpkit.PrincipalOf(c).Name)
		a.respond(c, rec, err)
	}
}

// retry runs the failed jobs of a request that needs attention again, or,
// when its fan-out failed (no jobs exist yet), the fan-out, with a fresh
// retry budget.
func (a *requestsAPI) retry(c *gin.Context) {
	rec, err := a.app.Retry(c.Request.Context(), c.Param("id"), httpkit.PrincipalOf(c).Name)
	a.respond(c, rec, err)
}

// close completes a request that needs attention, with a reason and the
// exceptions kept on a legal basis; the person is told it is done.
func (a *requestsAPI) close(c *gin.Context) {
	var body app.Closing
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	rec, err := a.app.Close(c.Request.Context(), c.Param("id"), body, httpkit.PrincipalOf(c).Name)
	a.respond(c, rec, err)
}

// keys lists the API keys by name and role (never their secrets).
func keysList(keys *apikey.Keyring) gin.HandlerFunc {
	return func(c *gin.Context) {
		kk := keys.Principals()
		out := make([]gin.H, 0, len(kk))
		for _, k := range kk {
			out = append(out, gin.H{"name": k.Name, "role": k.Role})
		}
		c.JSON(http.StatusOK, gin.H{"items": out})
	}
}

// audit answers a request's audit chain and whether it verifies.
func (a *requestsAPI) audit(c *gin.Context) {
	v, err := a.app.Audit(c.Request.Context(), c.Param("id"))
	a.answer(c, v, err)
}

// answer answers v, or the problem of err.
func (a *requestsAPI) answer(c *gin.Context, v any, err error) {
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// clock explains a request's due date: the rule and its version, the start,
// the pauses and the extension, and the business-day calendar used.
func (a *requestsAPI) clock(c *gin.Context) {
	v, err := a.app.Clock(c.Request.Context(), c.Param("id"))
	a.answer(c, v, err)
}

// pause stops a request's clock where its rule allows (GDPR: waiting for
// information to confirm identity), with a reason.
func (a *requestsAPI) pause(c *gin.Context) {
	if reason, ok := a.reason(c); ok {
		rec, err := a.app.Pause(c.Request.Context(), c.Param("id"), reason, httpkit.PrincipalOf(c).Name)
		a.respond(c, rec, err)
	}
}

// resume restarts a paused clock; the due date moves by the pause.
func (a *requestsAPI) resume(c *gin.Context) {
	rec, err := a.app.Resume(c.Request.Context(), c.Param("id"), httpkit.PrincipalOf(c).Name)
	a.respond(c, rec, err)
}

// appeal files the appeal against a denied request where its regulation
// grants one (VCDPA, CTDPA: answered within 60 days). It acts only for the
// person proven: a request denied as unverifiable, or never verified, is
// appealed only with a new proof.
func (a *requestsAPI) appeal(c *gin.Context) {
	var body app.AppealFiling
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	rec, err := a.app.Appeal(c.Request.Context(), c.Param("id"), body, httpkit.PrincipalOf(c).Name)
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	c.Header("Location", links.AgentRequestPath(rec.Request.ID))
	c.JSON(http.StatusAccepted, viewRequest(rec.Request, rec.Jobs))
}
