package handlers

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/dsr"
)

// report is the evidence of how one request was handled: what a regulator
// asks for (CCPA 11 CCR 7101: the request's date and nature, how it was
// made, the date and nature of the response, the basis of any denial; GDPR
// Art. 5(2): be able to demonstrate compliance). It names no identity of the
// person.
type report struct {
	Request     reportRequest   `json:"request"`
	Response    reportResponse  `json:"response"`
	Systems     []reportSystem  `json:"systems"`
	Exceptions  []dsr.Exception `json:"exceptions"`
	Timeline    []historyView   `json:"timeline"`
	GeneratedAt time.Time       `json:"generated_at"`
}

type reportRequest struct {
	ID                 string         `json:"id"`
	Type               dsr.Type       `json:"type"`
	Regulation         dsr.Regulation `json:"regulation"`
	Status             dsr.Status     `json:"status"`
	Source             string         `json:"source"`
	Channel            string         `json:"channel,omitempty"`
	FiledBy            string         `json:"filed_by"`
	AuthorisedAgent    string         `json:"authorised_agent,omitempty"`
	GPC                bool           `json:"gpc"`
	ReceivedAt         time.Time      `json:"received_at"`
	DueAt              time.Time      `json:"due_at"`
	Extension          *extensionView `json:"extension,omitempty"`
	VerificationMethod string         `json:"verification_method,omitempty"`
	ApprovedBy         string         `json:"approved_by,omitempty"`
	IdentityKinds      []dsr.Kind     `json:"identity_kinds"`
	// ResolveBoundReached: see dsr.Request.
	ResolveBoundReached int `json:"resolve_bound_reached,omitempty"`
}

type reportResponse struct {
	// Date is when the request was closed; absent while open.
	Date *time.Time `json:"date,omitempty"`
	// Nature is completed, denied, cancelled or expired; "open" before.
	Nature string `json:"nature"`
	// DenialBasis is the recorded reason of a denial.
	DenialBasis string `json:"denial_basis,omitempty"`
	// OnTime says whether the response came by the (extended) due date;
	// absent while open.
	OnTime *bool `json:"on_time,omitempty"`
	// DaysToRespond counts calendar days from receipt to response.
	DaysToRespond *int `json:"days_to_respond,omitempty"`
}

type reportSystem struct {
	Connector   string                 `json:"connector"`
	Action      dsr.Action             `json:"action"`
	Status      dsr.JobStatus          `json:"status"`
	Records     int64                  `json:"records"`
	Collections []dsr.CollectionResult `json:"collections"`
	Error       string                 `json:"error,omitempty"`
	FinishedAt  *time.Time             `json:"finished_at,omitempty"`
	// RecordsIncomplete and RecordsNote: see the job's.
	RecordsIncomplete bool   `json:"records_incomplete,omitempty"`
	RecordsNote       string `json:"records_note,omitempty"`
}

func buildReport(r *dsr.Request, jobs []dsr.Job, now time.Time) report {
	rep := report{
		Request: reportRequest{
			ID: r.ID, Type: r.Type, Regulation: r.Regulation, Status: r.Status, Source: r.Source, Channel: r.Channel,
			FiledBy: r.FiledBy, GPC: r.GPC, ReceivedAt: r.ReceivedAt, DueAt: r.DueAt,
			VerificationMethod: r.VerificationMethod, ApprovedBy: r.ApprovedBy, IdentityKinds: []dsr.Kind{},
			ResolveBoundReached: r.ResolveBoundReached,
		},
		Response:    reportResponse{Nature: "open"},
		Systems:     []reportSystem{},
		Exceptions:  exceptions(r, jobs),
		Timeline:    make([]historyView, len(r.History)),
		GeneratedAt: now.UTC(),
	}
	if r.Agent != nil {
		rep.Request.AuthorisedAgent = r.Agent.Name
	}
	if e := r.Extension; e != nil {
		rep.Request.Extension = &extensionView{By: e.By, At: e.At, Reason: e.Reason, From: e.From}
	}
	seen := map[dsr.Kind]bool{}
	for _, id := range r.Identities {
		if !seen[id.Kind] {
			seen[id.Kind] = true
			rep.Request.IdentityKinds = append(rep.Request.IdentityKinds, id.Kind)
		}
	}
	for i, h := range r.History {
		rep.Timeline[i] = historyView(h)
	}
	if r.Status.Closed() && r.ClosedAt != nil {
		rep.Response.Date, rep.Response.Nature = r.ClosedAt, string(r.Status)
		onTime := !r.ClosedAt.After(r.DueAt)
		days := int(r.ClosedAt.Sub(r.ReceivedAt).Hours() / 24)
		rep.Response.OnTime, rep.Response.DaysToRespond = &onTime, &days
		if r.Status == dsr.StatusDenied && len(r.History) > 0 {
			rep.Response.DenialBasis = r.History[len(r.History)-1].Reason
		}
	}
	for _, j := range jobs {
		cols := collectionsView(j.Collections)
		rep.Systems = append(rep.Systems, reportSystem{Connector: j.Connector, Action: j.Action, Status: j.Status, Records: j.Records,
			Collections: cols, Error: j.Error, FinishedAt: j.FinishedAt, RecordsIncomplete: j.RecordsIncomplete, RecordsNote: recordsNote(&j)})
	}
	return rep
}

//go:embed report.html
var reportHTML string

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"day":   func(t time.Time) string { return t.UTC().Format("2 January 2006 15:04 UTC") },
	"title": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"join":  func(s []string) string { return strings.Join(s, ", ") },
}).Parse(reportHTML))

// reportCSP is the Content-Security-Policy of the HTML report: nothing may
// load or run, the one inline style element (known by its hash) applies,
// and no page may frame it, change its base or post a form from it.
var reportCSP = func() string {
	_, rest, _ := strings.Cut(reportHTML, "<style>")
	style, _, ok := strings.Cut(rest, "</style>")
	if !ok || strings.Contains(style, "{{") {
		panic("report.html: want one <style> element without template actions")
	}
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}()

// report answers the evidence report of a request: JSON, or a printable
// HTML page with ?format=html.
func (a *requestsAPI) report(c *gin.Context) {
	format := c.Query("format")
	if format != "" && format != "json" && format != "html" {
		var ve dsr.ValidationError
		ve.Add("format", "must be json or html")
		writeError(c, a.log, &ve)
		return
	}
	req, jobs, ok := a.load(c, c.Param("id"), true)
	if !ok {
		return
	}
	rep := buildReport(req, jobs, a.now())
	if format != "html" {
		c.JSON(http.StatusOK, rep)
		return
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Content-Security-Policy", reportCSP)
	c.Status(http.StatusOK)
	if err := reportPage.Execute(c.Writer, rep); err != nil {
		a.log.ErrorContext(c.Request.Context(), "report page failed", "request_id", req.ID, "error", err)
	}
}
