package agentapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/links"
)

// requestsAPI serves the agent API on requests: each handler decodes, calls
// the application, maps its error (writeError) and encodes.
type requestsAPI struct {
	app *app.Service
	log *slog.Logger
}

// create files a request on behalf of a subject. Requests filed with an API
// key are taken as verified: the agent vouches for the identity. The request
// is stored before 202 is sent; if the queue is down the sweep hands it to
// the workers later, so an accepted request is never lost. A retry with the
// same Idempotency-Key answers with the request the first filed.
func (a *requestsAPI) create(c *gin.Context) {
	var body app.AgentRequest
	if !httpkit.DecodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	f, err := a.app.Create(c.Request.Context(), app.Filing{Request: body, By: httpkit.PrincipalOf(c).Name, IdempotencyKey: c.GetHeader("Idempotency-Key")})
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	if f.Replayed {
		c.Header("Idempotent-Replayed", "true")
	}
	c.Header("Location", links.AgentRequestPath(f.Request.ID))
	c.JSON(http.StatusAccepted, viewRequest(f.Request, f.Jobs))
}

// bulkBody is the body of POST /v1/requests/bulk.
type bulkBody struct {
	Requests []json.RawMessage `json:"requests"`
}

// bulkResult is the outcome of one item of a bulk filing.
type bulkResult struct {
	Index   int              `json:"index"`
	Status  int              `json:"status"`
	Request *requestSummary  `json:"request,omitempty"`
	Problem *httpkit.Problem `json:"problem,omitempty"`
}

// bulk files up to app.MaxBulk requests, each on its own: the answer says, per
// item, 202 with the request or the problem that kept it out. It is never
// all or nothing. Its store commands do not grow with the number of items
// (app.Service.Bulk).
func (a *requestsAPI) bulk(c *gin.Context) {
	var body bulkBody
	if !httpkit.DecodeJSON(c, &body, 4*MaxBodyBytes) {
		return
	}
	ctx := c.Request.Context()
	items := make([]app.BulkItem, len(body.Requests))
	for i, raw := range body.Requests {
		items[i].Request, items[i].Err = decodeItem(raw)
	}
	results, err := a.app.Bulk(ctx, httpkit.PrincipalOf(c).Name, items)
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	out := struct {
		Accepted int          `json:"accepted"`
		Rejected int          `json:"rejected"`
		Results  []bulkResult `json:"results"`
	}{Results: make([]bulkResult, len(results))}
	full := 0
	for i, r := range results {
		out.Results[i] = bulkResult{Index: i, Status: http.StatusAccepted}
		if r.Err != nil {
			p := itemProblem(r.Err)
			if p.Status >= http.StatusInternalServerError {
				a.log.ErrorContext(ctx, "bulk item failed", "index", i, "error", r.Err)
			}
			if p.Status == http.StatusServiceUnavailable {
				full++
			}
			out.Results[i].Status, out.Results[i].Problem = p.Status, &p
			out.Rejected++
			continue
		}
		sum := summarize(r.Request, a.app.Now())
		out.Results[i].Request = &sum
		out.Accepted++
	}
	if full > 0 && full == len(out.Results) {
		// Nothing was saved, for a full disk alone: the whole call is
		// refused as any write is.
		httpkit.Error(c, a.log, dsr.ErrStorageFull)
		return
	}
	if full > 0 {
		httpkit.MarkStorageFull(c) // readiness fails until a write succeeds
	}
	c.JSON(http.StatusOK, out)
}

// decodeItem decodes one bulk item as strictly as a body, without I/O.
func decodeItem(raw json.RawMessage) (app.AgentRequest, error) {
	var body app.AgentRequest
	err := httpkit.Strict(raw, &body)
	if err == nil {
		return body, nil
	}
	var ve dsr.ValidationError
	var field *httpkit.BodyFieldError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &field):
		ve.Add(field.Field, "%s", field.Message)
	case errors.As(err, &typ) && typ.Field != "":
		ve.Add(typ.Field, "must be %s", httpkit.JSONKind(typ.Type.Kind().String()))
	default:
		ve.Add("(item)", "must be a JSON object describing a request")
	}
	return body, &ve
}

// itemProblem is the problem of a bulk item that was not filed: that of its
// error, said of an item.
func itemProblem(err error) httpkit.Problem {
	p := httpkit.ProblemOf(err)
	switch {
	case p.Status == http.StatusBadRequest:
		p.Detail = ""
	case p.Status == http.StatusServiceUnavailable:
		p.Detail = "The store's disk is full, so this item was not saved; file it again later."
	default:
		p = httpkit.Problem{Type: httpkit.TypeBlank, Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError,
			Detail: "This item could not be stored; file it again."}
	}
	return p
}

func (a *requestsAPI) get(c *gin.Context) {
	rec, err := a.app.Get(c.Request.Context(), c.Param("id"))
	a.respond(c, rec, err)
}

// respond answers an action or a read with the request and its jobs, or
// with the problem of err.
func (a *requestsAPI) respond(c *gin.Context, rec app.Record, err error) {
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	c.JSON(http.StatusOK, viewRequest(rec.Request, rec.Jobs))
}

// listQuery names the query parameters of GET /v1/requests.
var listQuery = map[string]bool{"status": true, "type": true, "regulation": true, "source": true, "assigned_to": true,
	"due_before": true, "due_after": true, "overdue": true, "sort": true, "limit": true, "cursor": true}

// list answers a page of requests, most urgent first by default (sort=due),
// or newest first (sort=newest), with any of the filters.
func (a *requestsAPI) list(c *gin.Context) {
	q := c.Request.URL.Query()
	var ve dsr.ValidationError
	for k := range q {
		if !listQuery[k] {
			ve.Add(k, "unknown query parameter (known: %s)", strings.Join(slices.Sorted(maps.Keys(listQuery)), ", "))
		}
	}
	f, err := a.app.ListFilter(app.ListQuery{
		Status: q.Get("status"), Type: q.Get("type"), Regulation: q.Get("regulation"), Source: q.Get("source"), AssignedTo: q.Get("assigned_to"),
		DueBefore: q.Get("due_before"), DueAfter: q.Get("due_after"), Overdue: q.Get("overdue"), Sort: q.Get("sort"), Limit: q.Get("limit"),
		Cursor: q.Get("cursor"),
	})
	if values := (*dsr.ValidationError)(nil); errors.As(err, &values) {
		ve.Fields = append(ve.Fields, values.Fields...)
	}
	if err := ve.Err(); err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	page, err := a.app.List(c.Request.Context(), f)
	if err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	out := requestPage{Items: make([]requestSummary, len(page.Requests)), NextCursor: page.NextCursor}
	for i := range page.Requests {
		out.Items[i] = summarize(&page.Requests[i], page.Now)
	}
	c.JSON(http.StatusOK, out)
}

// assignBody is the body of POST /v1/requests/{id}/assign.
type assignBody struct {
	// Agent is the name of an agent's or admin's API key; "" unassigns.
	Agent string `json:"agent"`
}
