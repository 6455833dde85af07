package portalpage

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
)

// preferencesData is what the preference centre shows.
type preferencesData struct {
	ID string
	// P is nil when the choices cannot be shown (Problem says why).
	P         *app.Preferences
	GPCHeader bool
	Flash     string
	Problem   problem
}

// preferences shows the person's choice per purpose (app.Service.Preferences);
// a Global Privacy Control signal is honoured as on a change, as the API does.
func (h *handler) preferences(c *gin.Context) {
	a, err := h.open(c, "")
	if err != nil {
		h.notFound(c, err)
		return
	}
	var p app.Preferences
	if gpcSignal(c) {
		p, err = h.app.SetPreferences(c.Request.Context(), a, app.PreferenceChange{}, true)
		h.followOptOut(c, a, p)
	} else {
		p, err = h.app.Preferences(c.Request.Context(), a)
	}
	h.renderPreferences(c, a, p, err, flash(c, "preferences"))
}

func (h *handler) renderPreferences(c *gin.Context, a app.Access, p app.Preferences, err error, flash string) {
	d := preferencesData{ID: a.Request.ID, GPCHeader: c.GetHeader("Sec-GPC") == "1", Flash: flash, Problem: problem{Fields: map[string]string{}}}
	code := http.StatusOK
	if err != nil {
		d.Problem = h.problemOf(c, err, "portal.err.prefs.conflict")
		code = d.Problem.Status
	}
	if len(p.Purposes) > 0 {
		d.P = &p
	}
	h.pages.Render(c, code, "preferences", d)
}

// followOptOut puts in the cookie the opt-out a change filed, which the
// same token follows.
func (h *handler) followOptOut(c *gin.Context, a app.Access, p app.Preferences) {
	if p.OptOutRequestID != "" {
		follow(c, followed{p.OptOutRequestID, tokenFor(c, a.Request.ID)})
	}
}

// setPreferences saves the form (app.Service.SetPreferences): a purpose
// checked is refused, one unchecked allowed; purposes a deletion refuses
// cannot be allowed here and are left out, and with a Global Privacy
// Control signal sale and sharing stays refused.
func (h *handler) setPreferences(c *gin.Context) {
	a, err := h.open(c, "")
	if err != nil {
		h.notFound(c, err)
		return
	}
	now, err := h.app.Preferences(c.Request.Context(), a)
	if err != nil {
		h.renderPreferences(c, a, now, err, "")
		return
	}
	refuse := c.PostFormArray("refuse")
	gpc := gpcSignal(c)
	ch := app.PreferenceChange{Purposes: map[string]json.RawMessage{}}
	for _, pc := range now.Purposes {
		if pc.Locked || (gpc && pc.Purpose == dsr.ScopeSaleShare) {
			continue
		}
		allowed := !slices.Contains(refuse, string(pc.Purpose))
		ch.Purposes[string(pc.Purpose)] = json.RawMessage(strconv.FormatBool(allowed))
	}
	p, err := h.app.SetPreferences(c.Request.Context(), a, ch, gpc)
	if err != nil {
		h.renderPreferences(c, a, now, err, "")
		return
	}
	h.followOptOut(c, a, p)
	c.Redirect(http.StatusSeeOther, statusPath(a.Request.ID)+"/preferences?done=saved")
}

// historyData is what the consent history shows.
type historyData struct {
	ID      string
	Events  []app.PortalConsentEntry
	Problem problem
}

// history is the person's consent history (app.Service.MyConsentHistory),
// newest first.
func (h *handler) history(c *gin.Context) {
	a, err := h.open(c, "")
	if err != nil {
		h.notFound(c, err)
		return
	}
	d := historyData{ID: a.Request.ID, Problem: problem{Fields: map[string]string{}}}
	code := http.StatusOK
	events, err := h.app.MyConsentHistory(c.Request.Context(), a)
	if err != nil {
		d.Problem = h.problemOf(c, err, "")
		code = d.Problem.Status
	}
	slices.Reverse(events)
	d.Events = events
	h.pages.Render(c, code, "history", d)
}
