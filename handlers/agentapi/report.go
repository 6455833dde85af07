package agentapi

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

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
		httpkit.Error(c, a.log, &ve)
		return
	}
	rep, err := a.app.Report(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	if format != "html" {
		c.JSON(http.StatusOK, rep)
		return
	}
	WriteReportHTML(c, a.log, rep)
}

// WriteReportHTML answers rep as the printable HTML evidence report, under
// its own Content-Security-Policy (replacing any set before): the agent
// API's ?format=html and the console's report page.
func WriteReportHTML(c *gin.Context, log *slog.Logger, rep app.Report) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Content-Security-Policy", reportCSP)
	c.Status(http.StatusOK)
	if err := reportPage.Execute(c.Writer, rep); err != nil {
		log.ErrorContext(c.Request.Context(), "report page failed", "request_id", rep.Request.ID, "error", err)
	}
}
