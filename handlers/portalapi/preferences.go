package portalapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// gpcSignal reports whether the call carries a Global Privacy Control
// signal: Sec-GPC exactly "1".
func gpcSignal(c *gin.Context) bool { return c.GetHeader("Sec-GPC") == "1" }

// preferences shows the person their choices per purpose
// (app.Service.Preferences). A Global Privacy Control signal on the call
// is honoured as on a change: it refuses sale and sharing.
func (h *api) preferences(c *gin.Context) {
	a, ok := h.open(c)
	if !ok {
		return
	}
	var p app.Preferences
	var err error
	if gpcSignal(c) {
		p, err = h.app.SetPreferences(c.Request.Context(), a, app.PreferenceChange{}, true)
	} else {
		p, err = h.app.Preferences(c.Request.Context(), a)
	}
	if err != nil {
		httpkit.Error(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// setPreferences changes the person's choices (app.Service.SetPreferences).
func (h *api) setPreferences(c *gin.Context) {
	a, ok := h.open(c)
	if !ok {
		return
	}
	var body app.PreferenceChange
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	p, err := h.app.SetPreferences(c.Request.Context(), a, body, gpcSignal(c))
	if err != nil {
		httpkit.Error(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// consentHistory shows the person their consent history
// (app.Service.MyConsentHistory).
func (h *api) consentHistory(c *gin.Context) {
	a, ok := h.open(c)
	if !ok {
		return
	}
	events, err := h.app.MyConsentHistory(c.Request.Context(), a)
	if err != nil {
		httpkit.Error(c, h.log, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"events": events})
}
