package agentapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/links"
)

// action is the handler of an agent's action on the request named in the
// path: it decodes the action's input with decode (which on failure has
// written the problem), calls do for the calling agent and answers the
// request and its jobs, or the problem of do's error.
func action[In any](a *requestsAPI, decode func(*gin.Context) (In, bool), do func(ctx context.Context, id string, in In, by string) (app.Record, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		in, ok := decode(c)
		if !ok {
			return
		}
		rec, err := do(c.Request.Context(), c.Param("id"), in, httpkit.PrincipalOf(c).Name)
		a.respond(c, rec, err)
	}
}

// act is the handler of an action that takes no input (its body, if any,
// is not read).
func (a *requestsAPI) act(do func(ctx context.Context, id, by string) (app.Record, error)) gin.HandlerFunc {
	return action(a, noInput, func(ctx context.Context, id string, _ struct{}, by string) (app.Record, error) {
		return do(ctx, id, by)
	})
}

// noInput reads nothing.
func noInput(*gin.Context) (struct{}, bool) { return struct{}{}, true }

// jsonBody decodes a required JSON body of type B.
func jsonBody[B any](c *gin.Context) (B, bool) {
	var body B
	return body, httpkit.DecodeJSON(c, &body, MaxBodyBytes)
}

// reasonBody is the body of the actions that take a reason.
type reasonBody struct {
	Reason string `json:"reason"`
}

// reason decodes a body with a reason; an action whose reason is optional
// may have no body.
func reason(c *gin.Context) (string, bool) {
	var body reasonBody
	if c.Request.ContentLength != 0 || c.GetHeader("Content-Type") != "" {
		if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
			return "", false
		}
	}
	return body.Reason, true
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
