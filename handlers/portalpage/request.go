package portalpage

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
)

// requestTypes are the rights the form offers, in its order; a correction
// only when some field can be corrected (app.Service.CorrectableFields).
var requestTypes = []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion, dsr.TypeOptOut}

// correctionRows is how many changes the form offers at once.
const correctionRows = 3

// requestForm is the request form's input, as typed (kept on a re-render).
type requestForm struct {
	Type, Regulation, Jurisdiction string
	Email, Phone, CustomerID       string
	AdvertisingID, DeviceID        string
	// Scopes are the opt-out's uses checked, by name.
	Scopes                map[string]bool
	Agent                 bool
	AgentName, AgentEmail string
	AgentPermission       bool
	GPC                   bool
	// Corrections are the changes asked for, in the order typed, rows left
	// blank dropped (so the application's corrections[i] is row i).
	Corrections []app.CorrectionInput
}

func readRequestForm(c *gin.Context) requestForm {
	f := requestForm{Type: trimmed(c, "type"), Regulation: trimmed(c, "regulation"), Jurisdiction: trimmed(c, "jurisdiction"),
		Email: trimmed(c, "email"), Phone: trimmed(c, "phone"), CustomerID: trimmed(c, "customer_id"),
		AdvertisingID: trimmed(c, "advertising_id"), DeviceID: trimmed(c, "device_id"),
		Scopes: map[string]bool{}, Agent: c.PostForm("agent") == "1",
		AgentName: trimmed(c, "agent_name"), AgentEmail: trimmed(c, "agent_email"), AgentPermission: c.PostForm("agent_permission") == "1",
		GPC: gpcSignal(c)}
	for _, s := range c.PostFormArray("scope") {
		if slices.Contains(dsr.Purposes, dsr.Scope(s)) {
			f.Scopes[s] = true
		}
	}
	fields, values := c.PostFormArray("correction_field"), c.PostFormArray("correction_value")
	for i := range max(len(fields), len(values)) {
		var row app.CorrectionInput
		if i < len(fields) {
			row.Field = strings.TrimSpace(fields[i])
		}
		if i < len(values) {
			row.Value = values[i]
		}
		if row.Field != "" || strings.TrimSpace(row.Value) != "" {
			f.Corrections = append(f.Corrections, row)
		}
	}
	return f
}

// portalRequest is the filing the form asks for. Scopes count for an
// opt-out only and changes for a correction only (the form shows them to
// every type); the agent's fields only when the agent box is checked.
func (f requestForm) portalRequest() app.PortalRequest {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	b := app.PortalRequest{Type: f.Type, Regulation: f.Regulation, Subject: app.Subject{Email: opt(f.Email), Phone: opt(f.Phone), CustomerID: opt(f.CustomerID),
		AdvertisingID: opt(f.AdvertisingID), DeviceID: opt(f.DeviceID)}}
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
	if f.Type == string(dsr.TypeCorrection) {
		b.Corrections = f.Corrections
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
	// Correctable are the fields a correction can change, each with its
	// label; none: the form offers no correction.
	Correctable []fieldOption
	// Corrections are the form's rows of changes: those typed, then blank
	// ones up to correctionRows, with their errors.
	Corrections []correctionRow
}

// fieldOption is a field a correction can change, and its label.
type fieldOption struct{ Name, Label string }

// correctionRow is one row of changes: row N's select is correction_field_N
// and its text input correction_value_N.
type correctionRow struct {
	N, Num                 int
	Field, Value           string
	FieldError, ValueError string
}

func (h *handler) homeData(c *gin.Context, f requestForm, p problem) homeData {
	if p.Fields == nil {
		p.Fields = map[string]string{}
	}
	d := homeData{Form: f, Problem: p, GPCHeader: c.GetHeader("Sec-GPC") == "1", Types: requestTypes,
		Regulations: dsr.Regulations, Purposes: dsr.Purposes}
	fields := h.app.CorrectableFields()
	if len(fields) == 0 {
		return d
	}
	d.Types = append(slices.Clip(requestTypes), dsr.TypeCorrection)
	for _, name := range fields {
		label := name
		if key := "portal.field." + name; h.keys[key] {
			label = h.pages.T(c, key)
		}
		d.Correctable = append(d.Correctable, fieldOption{Name: name, Label: label})
	}
	// Rows typed beyond the form's own (a crafted post) are shown too, up
	// to what a request may carry; the application refuses more.
	rows := min(max(len(f.Corrections), correctionRows), dsr.MaxCorrections)
	for i := range rows {
		r := correctionRow{N: i, Num: i + 1, FieldError: p.Fields[rowField("field", i)], ValueError: p.Fields[rowField("value", i)]}
		if i < len(f.Corrections) {
			r.Field, r.Value = f.Corrections[i].Field, f.Corrections[i].Value
		}
		d.Corrections = append(d.Corrections, r)
	}
	return d
}

// rowField is the form's name of part ("field" or "value") of row i.
func rowField(part string, i int) string { return "correction_" + part + "_" + strconv.Itoa(i) }

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
	var filed app.PortalFiled
	var err error
	if f.Type == string(dsr.TypeCorrection) && len(h.app.CorrectableFields()) == 0 {
		// Not offered here (no field can be corrected, or the fields are
		// not known to this process): as an unknown type.
		var ve dsr.ValidationError
		ve.Add("type", "a correction is not offered: no field can be corrected")
		err = &ve
	} else {
		filed, err = h.app.SubmitPortal(c.Request.Context(), f.portalRequest(), h.arrival(c))
	}
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
