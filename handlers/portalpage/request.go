package portalpage

import (
	"errors"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
)

// requestTypes are the rights the form offers, in its order.
var requestTypes = []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion, dsr.TypeOptOut}

// requestForm is the request form's input, as typed (kept on a re-render).
type requestForm struct {
	Type, Regulation, Jurisdiction string
	Email, Phone, CustomerID       string
	// Scopes are the opt-out's uses checked, by name.
	Scopes                map[string]bool
	Agent                 bool
	AgentName, AgentEmail string
	AgentPermission       bool
	GPC                   bool
}

func readRequestForm(c *gin.Context) requestForm {
	f := requestForm{Type: trimmed(c, "type"), Regulation: trimmed(c, "regulation"), Jurisdiction: trimmed(c, "jurisdiction"),
		Email: trimmed(c, "email"), Phone: trimmed(c, "phone"), CustomerID: trimmed(c, "customer_id"),
		Scopes: map[string]bool{}, Agent: c.PostForm("agent") == "1",
		AgentName: trimmed(c, "agent_name"), AgentEmail: trimmed(c, "agent_email"), AgentPermission: c.PostForm("agent_permission") == "1",
		GPC: gpcSignal(c)}
	for _, s := range c.PostFormArray("scope") {
		if slices.Contains(dsr.Purposes, dsr.Scope(s)) {
			f.Scopes[s] = true
		}
	}
	return f
}

// portalRequest is the filing the form asks for. Scopes count for an
// opt-out only (the form shows them to every type); the agent's fields only
// when the agent box is checked.
func (f requestForm) portalRequest() app.PortalRequest {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	b := app.PortalRequest{Type: f.Type, Regulation: f.Regulation, Subject: app.Subject{Email: opt(f.Email), Phone: opt(f.Phone), CustomerID: opt(f.CustomerID)}}
	if f.Regulation == "" {
		b.Jurisdiction = f.Jurisdiction
	}
	if f.Type == string(dsr.TypeOptOut) {
		for _, s := range dsr.Purposes {
			if f.Scopes[string(s)] {
				b.Scopes = append(b.Scopes, string(s))
			}
		}
	}
	if f.Agent {
		b.Agent = &app.AuthorizedAgent{Name: f.AgentName, Email: f.AgentEmail, SignedPermission: f.AgentPermission}
	}
	return b
}

// homeData is what the home page (the request form) shows.
type homeData struct {
	Form    requestForm
	Problem problem
	// GPCHeader says the browser sent Sec-GPC: 1: the notice shows.
	GPCHeader   bool
	Types       []dsr.Type
	Regulations []dsr.Regulation
	Purposes    []dsr.Scope
	// Correctable are the fields a correction can change (the privacy
	// team files corrections); none: the page does not mention them.
	Correctable []string
}

func (h *handler) homeData(c *gin.Context, f requestForm, p problem) homeData {
	if p.Fields == nil {
		p.Fields = map[string]string{}
	}
	return homeData{Form: f, Problem: p, GPCHeader: c.GetHeader("Sec-GPC") == "1", Types: requestTypes,
		Regulations: dsr.Regulations, Purposes: dsr.Purposes, Correctable: h.app.CorrectableFields()}
}

// home is the request form: choose a right, say who you are.
func (h *handler) home(c *gin.Context) {
	h.pages.Render(c, http.StatusOK, "home", h.homeData(c, requestForm{Scopes: map[string]bool{}}, problem{}))
}

// submit files the form's request (app.Service.SubmitPortal): the request
// and its status token go in the cookie (with the opt-out a GPC signal
// filed beside it, which the same token follows), and the browser to its
// page. A problem re-renders the form, input kept.
func (h *handler) submit(c *gin.Context) {
	f := readRequestForm(c)
	filed, err := h.app.SubmitPortal(c.Request.Context(), f.portalRequest(), h.arrival(c))
	if err != nil {
		p := h.problemOf(c, err, "")
		if ve := (*dsr.ValidationError)(nil); !errors.As(err, &ve) {
			p.Summary = []summaryItem{{Text: p.Message}}
		}
		h.pages.Render(c, p.Status, "home", h.homeData(c, f, p))
		return
	}
	if filed.Merged {
		h.pages.Render(c, http.StatusOK, "merged", nil)
		return
	}
	req := filed.Request
	add := []followed{{req.ID, filed.StatusToken}}
	if req.LinkedTo != "" {
		add = append(add, followed{req.LinkedTo, filed.StatusToken})
	}
	follow(c, add...)
	c.Redirect(http.StatusSeeOther, statusPath(req.ID)+"?done=submitted")
}
