package agentapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// registerConsent adds the consent routes to v1: an agent records a
// person's opt-in, an admin lifts a suppression (a deletion's too), and
// agents, admins and auditors read a person's consent history. Each names
// the person in its body (POST, so that identities never sit in a URL or
// an access log).
func registerConsent(v1 *gin.RouterGroup, a *requestsAPI) {
	v1.POST("/consent/opt-in", httpkit.RequireRole(apikey.RoleAdmin, apikey.RoleAgent), a.optIn)
	v1.POST("/suppressions/lift", httpkit.RequireRole(apikey.RoleAdmin), a.lift)
	v1.POST("/consent/history", httpkit.RequireRole(apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor), a.consentHistory)
}

// optIn records, on the person's word, that they consent again to some
// purposes, and lifts their suppressions under them (app.Service.OptIn).
func (a *requestsAPI) optIn(c *gin.Context) {
	var body app.OptInInput
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	v, err := a.app.OptIn(c.Request.Context(), body, dsr.ConsentAgent, httpkit.PrincipalOf(c).Name)
	a.answer(c, v, err)
}

// lift lifts a person's suppression under one scope, with a reason
// (app.Service.LiftSuppression).
func (a *requestsAPI) lift(c *gin.Context) {
	var body app.LiftInput
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	v, err := a.app.LiftSuppression(c.Request.Context(), body, httpkit.PrincipalOf(c).Name)
	a.answer(c, v, err)
}

// consentHistory answers a person's consent history and suppression
// entries (app.Service.ConsentHistory).
func (a *requestsAPI) consentHistory(c *gin.Context) {
	var body app.Person
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	v, err := a.app.ConsentHistory(c.Request.Context(), body)
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	c.JSON(http.StatusOK, v)
}
