package portalpage

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// statusData is what a request's page shows.
type statusData struct {
	S app.PortalStatus
	// Reference is the status token, shown so the person can open the
	// request from another browser.
	Reference string
	Verifying bool
	// Proven says the request stands on a proven identity: its token
	// opens the preference centre and the consent history.
	Proven bool
	// Flash is the message key of what was just done ("" : none).
	Flash   string
	Problem problem
}

// status is a request's page, or, for a request the cookie holds no token
// of (unknown, another person's, a tampered cookie), the page to open one.
func (h *handler) status(c *gin.Context) {
	a, err := h.open(c, "")
	if err != nil {
		h.notFound(c, err)
		return
	}
	h.renderStatus(c, http.StatusOK, a, flash(c, "status"), problem{})
}

// notFound answers a request that cannot be opened: the page to open one
// by its id and reference, 404, the same whatever was wrong, but for a
// failure of the server.
func (h *handler) notFound(c *gin.Context, err error) {
	p := h.problemOf(c, err, "")
	if p.Status != http.StatusNotFound {
		h.pages.Render(c, p.Status, "failed", errorPage(p))
		c.Abort()
		return
	}
	id := c.Param("id")
	if !dsr.ValidID(id) {
		id = ""
	}
	h.pages.Render(c, http.StatusNotFound, "check", checkData{Request: id, NotFound: true})
}

func (h *handler) renderStatus(c *gin.Context, code int, a app.Access, flash string, p problem) {
	req := a.Request
	if p.Fields == nil {
		p.Fields = map[string]string{}
	}
	h.pages.Render(c, code, "status", statusData{
		S: h.app.Status(a), Reference: tokenFor(c, req.ID), Verifying: req.Status == dsr.StatusVerifying,
		Proven: len(req.ProvenHashes) > 0 && !(req.Type == dsr.TypeOptOut && req.VerificationMethod == ""),
		Flash:  flash, Problem: p,
	})
}

// verify checks the emailed code, or the emailed link's token
// (app.Service.Verify). Without the cookie (the link opened in another
// browser) the person's typed reference opens the request, and then goes
// in the cookie.
func (h *handler) verify(c *gin.Context) {
	ref := trimmed(c, "reference")
	a, err := h.open(c, ref)
	if err != nil {
		h.notFound(c, err)
		return
	}
	code := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, c.PostForm("code"))
	v, err := h.app.Verify(c.Request.Context(), a, app.Verification{Code: code, Token: strings.TrimSpace(c.PostForm("token"))})
	if err != nil {
		p := h.problemOf(c, err, "portal.err.notverifying")
		if again, err2 := h.open(c, ref); err2 == nil {
			a = again // a last wrong code closed it
		}
		h.renderStatus(c, p.Status, a, "", p)
		return
	}
	if tokenFor(c, a.Request.ID) == "" {
		follow(c, followed{a.Request.ID, ref})
	}
	done := "verified"
	if v.MergedInto != "" {
		done = "merged"
	}
	c.Redirect(http.StatusSeeOther, statusPath(a.Request.ID)+"?done="+done)
}

// resend sends a new code (app.Service.Resend).
func (h *handler) resend(c *gin.Context) {
	a, err := h.open(c, "")
	if err != nil {
		h.notFound(c, err)
		return
	}
	if _, err := h.app.Resend(c.Request.Context(), a); err != nil {
		p := h.problemOf(c, err, "portal.err.notverifying")
		h.renderStatus(c, p.Status, a, "", p)
		return
	}
	c.Redirect(http.StatusSeeOther, statusPath(a.Request.ID)+"?done=resent")
}

// download streams the export (app.Service.ExportOf) to the holder of the
// request's token.
func (h *handler) download(c *gin.Context) {
	a, err := h.open(c, "")
	if err != nil {
		h.notFound(c, err)
		return
	}
	e, err := h.app.ExportOf(c.Request.Context(), a.Request, httpkit.Caller(c))
	if err != nil {
		p := h.problemOf(c, err, "")
		h.renderStatus(c, p.Status, a, "", p)
		return
	}
	httpkit.WriteZip(c, e)
}

// verifyLanding is the emailed link's page: privacy.js reads the link's
// fragment (#request=&token=, which never reaches a server) into a form
// that posts it to the request's verify; without JavaScript the page says
// to type the code.
func (h *handler) verifyLanding(c *gin.Context) {
	h.pages.Render(c, http.StatusOK, "verify", nil)
}

// checkData is what the page to open a request shows.
type checkData struct {
	Request  string
	NotFound bool
}

// checkForm is the page to open a request by its id and reference.
func (h *handler) checkForm(c *gin.Context) {
	id := c.Query("request")
	if !dsr.ValidID(id) {
		id = ""
	}
	h.pages.Render(c, http.StatusOK, "check", checkData{Request: id})
}

// check opens a request by its id and reference (its status token): the
// pair goes in the cookie, and the browser to the request's page. Anything
// wrong answers the same.
func (h *handler) check(c *gin.Context) {
	id, ref := trimmed(c, "request"), trimmed(c, "reference")
	if !dsr.ValidID(id) || !validToken(ref) {
		h.checkFailed(c, id)
		return
	}
	a, err := h.app.Open(c.Request.Context(), id, ref)
	if err != nil {
		if p := h.problemOf(c, err, ""); p.Status != http.StatusNotFound {
			h.pages.Render(c, p.Status, "failed", errorPage(p))
			return
		}
		h.checkFailed(c, id)
		return
	}
	follow(c, followed{a.Request.ID, ref})
	c.Redirect(http.StatusSeeOther, statusPath(a.Request.ID)+"?done=opened")
}

func (h *handler) checkFailed(c *gin.Context, id string) {
	if !dsr.ValidID(id) {
		id = ""
	}
	h.pages.Render(c, http.StatusNotFound, "check", checkData{Request: id, NotFound: true})
}

// errorData is the portal's error page: a message already translated.
type errorData struct{ Message string }

func errorPage(p problem) errorData { return errorData{Message: p.Message} }
