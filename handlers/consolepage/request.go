package consolepage

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/agentapi"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// actions are the actions on a request, in the order of the page's forms:
// each is POST /console/requests/:id/<action>, its form id="action-<action>".
var actions = []string{"approve", "deny", "extend", "pause", "resume", "retry", "close", "assign", "cancel"}

// confirmed are the actions console.js asks to confirm before sending.
var confirmed = map[string]bool{"deny": true, "close": true, "cancel": true}

// requestData is the request page's.
type requestData struct {
	Request   *dsr.Request
	Jobs      []dsr.Job
	Clock     app.Clock
	Audit     app.AuditTrail
	History   []app.HistoryEntry
	Overdue   bool
	Countdown string
	// Respond and Extension are the rule's periods in words ("1 month").
	Respond, Extension string
	// Subject, Resolved and Claimed are the identities as the agent API
	// shows them: given by the person, found by identity resolution
	// (with where), and claimed but not proven.
	Subject, Resolved, Claimed []dsr.Identity
	// CanAct says the principal may act: the forms are shown.
	CanAct bool
	Forms  []actionForm
	Bases  []dsr.DenialBasis
	// Done is the action just done (the flash), "" for none.
	Done string
	// Failed is the action that failed, its problems in Errors and
	// Message (and on its form).
	Failed  string
	Errors  []fieldError
	Message string
}

// actionForm is the form of one action: its fields (Reason says it has a
// reason, required or not), and, after it failed, the input kept and the
// problems by field name.
type actionForm struct {
	Name            string
	Confirm         bool
	Reason          bool
	ReasonRequired  bool
	Basis, Agent    bool
	Input, Problems map[string]string
}

// forms are the forms of the actions, empty.
func forms() []actionForm {
	out := make([]actionForm, len(actions))
	for i, a := range actions {
		out[i] = actionForm{Name: a, Confirm: confirmed[a], Input: map[string]string{}, Problems: map[string]string{},
			Reason: a == "deny" || a == "extend" || a == "pause" || a == "close" || a == "cancel", ReasonRequired: a != "cancel",
			Basis: a == "deny", Agent: a == "assign"}
	}
	return out
}

// request shows a request: its summary, clock, identities, jobs, audit
// trail, a link to its evidence report, and the forms of the actions.
func (c *console) request(ctx *gin.Context) {
	d, err := c.requestData(ctx)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	if done := ctx.Query("done"); slices.Contains(actions, done) {
		d.Done = done
	}
	c.pages.Render(ctx, http.StatusOK, "request", d)
}

// requestData reads what the request page shows, with the application's
// reads the agent API makes (Get, Clock, Audit).
func (c *console) requestData(ctx *gin.Context) (requestData, error) {
	rc, id := ctx.Request.Context(), ctx.Param("id")
	rec, err := c.app.Get(rc, id)
	if err != nil {
		return requestData{}, err
	}
	clock, err := c.app.Clock(rc, id)
	if err != nil {
		return requestData{}, err
	}
	audit, err := c.app.Audit(rc, id)
	if err != nil {
		return requestData{}, err
	}
	now := c.app.Now()
	key, n := countdown(rec.Request, now)
	d := requestData{Request: rec.Request, Jobs: rec.Jobs, Clock: clock, Audit: audit, History: app.History(rec.Request),
		Overdue: rec.Request.Overdue(now), CanAct: canAct(ctx), Forms: forms(), Bases: dsr.DenialBases}
	if n != 0 {
		d.Countdown = c.pages.T(ctx, key, n)
	} else {
		d.Countdown = c.pages.T(ctx, key)
	}
	d.Respond, d.Extension = c.period(ctx, clock.Rule.Respond), c.period(ctx, clock.Rule.Extension)
	for _, i := range rec.Request.Identities {
		switch i.Source {
		case dsr.SourceSubject:
			d.Subject = append(d.Subject, i)
		case dsr.SourceClaimed:
			d.Claimed = append(d.Claimed, i)
		default:
			d.Resolved = append(d.Resolved, i)
		}
	}
	return d, nil
}

// period is p in words in the page's language: "1 month", "45 days",
// "none".
func (c *console) period(ctx *gin.Context, p dsr.Period) string {
	switch {
	case p.N == 0:
		return c.pages.T(ctx, "console.clock.none")
	case p.N == 1:
		return c.pages.T(ctx, "console.period."+string(p.Unit)+".one")
	}
	return c.pages.T(ctx, "console.period."+string(p.Unit), p.N)
}

// report shows the request's evidence report, as the agent API renders it
// (agentapi.WriteReportHTML): printable, under its own strict CSP.
func (c *console) report(ctx *gin.Context) {
	rep, err := c.app.Report(ctx.Request.Context(), ctx.Param("id"))
	if err != nil {
		c.fail(ctx, err)
		return
	}
	agentapi.WriteReportHTML(ctx, c.log, rep)
}

// act does an action on a request with the application's method the agent
// API calls. An unknown action is not found; a reader who may not act is
// forbidden; success is 303 back to the request with a flash
// (?done=<action>); a refusal renders the request page again, the input
// kept, with the precise message and the status the agent API would
// answer.
func (c *console) act(ctx *gin.Context) {
	action := ctx.Param("action")
	if !slices.Contains(actions, action) {
		c.pages.Error(ctx, http.StatusNotFound, "console.notfound.title", "console.notfound.message")
		return
	}
	if !canAct(ctx) {
		c.pages.Error(ctx, http.StatusForbidden, "console.forbidden.title", "console.forbidden.act")
		return
	}
	in := map[string]string{}
	for _, k := range []string{"reason", "basis", "agent"} {
		in[k] = ctx.PostForm(k)
	}
	rec, err := c.do(ctx.Request.Context(), action, ctx.Param("id"), in, httpkit.PrincipalOf(ctx).Name)
	if err == nil {
		ctx.Redirect(http.StatusSeeOther, "/console/requests/"+rec.Request.ID+"?done="+action)
		return
	}
	p := httpkit.ProblemOf(err)
	c.failed(ctx, p, err)
	if p.Status == http.StatusNotFound {
		c.fail(ctx, err)
		return
	}
	d, rerr := c.requestData(ctx)
	if rerr != nil {
		c.fail(ctx, rerr)
		return
	}
	d.Failed = action
	form := &d.Forms[slices.Index(actions, action)]
	form.Input = in
	for _, fe := range p.Errors {
		d.Errors = append(d.Errors, fieldError{Field: fe.Field, For: action + "-" + formField(fe.Field), Text: fe.Field + ": " + fe.Message})
		form.Problems[formField(fe.Field)] = fe.Message
	}
	switch {
	case p.Status >= http.StatusInternalServerError && p.Type != httpkit.TypeStorageFull && p.Type != httpkit.TypeUnavailable:
		d.Message = c.pages.T(ctx, "common.error.message")
	case len(p.Errors) == 0:
		d.Message = p.Detail
	}
	c.pages.Render(ctx, p.Status, "request", d)
}

// formField is the input of the action's form a problem's field is about
// (an exception of a closing is about its reason's form).
func formField(field string) string {
	switch f, _, _ := strings.Cut(field, "."); f {
	case "reason", "basis", "agent":
		return f
	}
	return "reason"
}

// noBasis is the console's own check of a denial: the agent API defaults
// its basis to other, the console asks the agent to choose one (and says
// what else is wrong with the reason, as Deny would).
func noBasis(reason string) error {
	var ve dsr.ValidationError
	ve.Add("basis", "choose the basis of the denial")
	app.CheckReason(&ve, reason, true)
	return &ve
}

// do calls the application's method of action for agent by.
func (c *console) do(ctx context.Context, action, id string, in map[string]string, by string) (app.Record, error) {
	switch action {
	case "approve":
		return c.app.Approve(ctx, id, by)
	case "deny":
		if in["basis"] == "" {
			return app.Record{}, noBasis(in["reason"])
		}
		return c.app.Deny(ctx, id, app.Denial{Reason: in["reason"], Basis: in["basis"]}, by)
	case "extend":
		return c.app.Extend(ctx, id, in["reason"], by)
	case "pause":
		return c.app.Pause(ctx, id, in["reason"], by)
	case "resume":
		return c.app.Resume(ctx, id, by)
	case "retry":
		return c.app.Retry(ctx, id, by)
	case "close":
		return c.app.Close(ctx, id, app.Closing{Reason: in["reason"]}, by)
	case "assign":
		return c.app.Assign(ctx, id, strings.TrimSpace(in["agent"]), by)
	default: // cancel
		return c.app.Cancel(ctx, id, in["reason"], by)
	}
}
