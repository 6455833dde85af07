package agentapi

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
)

// summaryQuery names the query parameters of GET /v1/reports/summary and
// the other reports of a window.
var summaryQuery = map[string]bool{"from": true, "to": true}

// summary answers the compliance report of the requests received in
// [from, to) (app.Service.Summary).
func (a *requestsAPI) summary(c *gin.Context) {
	from, to, ok := a.window(c)
	if !ok {
		return
	}
	sum, err := a.app.Summary(c.Request.Context(), from, to)
	a.answer(c, sum, err)
}

// window reads the window of a report, [from, to) (dsr.SummaryWindow), from
// the query; ok false when it answered the problems with it.
func (a *requestsAPI) window(c *gin.Context) (from, to time.Time, ok bool) {
	q := c.Request.URL.Query()
	var ve dsr.ValidationError
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !summaryQuery[k] {
			ve.Add(k, "unknown query parameter (known: %s)", strings.Join(slices.Sorted(maps.Keys(summaryQuery)), ", "))
		}
	}
	from, to, err := dsr.SummaryWindow(q.Get("from"), q.Get("to"))
	if window := (*dsr.ValidationError)(nil); errors.As(err, &window) {
		ve.Fields = append(ve.Fields, window.Fields...)
	}
	if err := ve.Err(); err != nil {
		httpkit.Error(c, a.log, err)
		return from, to, false
	}
	return from, to, true
}
