package suppressapi

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// Filterers are the roles that may filter lists: the pipelines that build
// segments, agents and admins.
var Filterers = []apikey.Role{apikey.RoleAdmin, apikey.RoleAgent, apikey.RolePipeline}

// MaxImportBodyBytes is the largest list an import takes (1 GiB, some ten
// million lines). A filter's body has no limit: it is streamed.
const MaxImportBodyBytes = 1 << 30

// IdleTimeout is how long a filter's or an import's body may stall before
// the server gives up on it (the server's ReadTimeout would cut a long
// stream short; it is pushed back as the body comes).
const IdleTimeout = time.Minute

// The trailers of a filter's answer: its counts, whether it went through
// the whole input, and the malformed line it stopped at.
const (
	TrailerStatus       = "Dsar-Filter-Status" // complete, stopped (a malformed record) or failed
	TrailerError        = "Dsar-Filter-Error"  // "line N: problem" when stopped
	TrailerRead         = "Dsar-Filter-Read"
	TrailerKept         = "Dsar-Filter-Kept"
	TrailerSuppressed   = "Dsar-Filter-Suppressed"
	TrailerUnidentified = "Dsar-Filter-Unidentified"
	TrailerSkipped      = "Dsar-Filter-Skipped"
	TrailerExportCount  = "Dsar-Export-Count"
)

var filterTrailers = strings.Join([]string{TrailerStatus, TrailerError, TrailerRead, TrailerKept, TrailerSuppressed, TrailerUnidentified, TrailerSkipped}, ", ")

// RegisterLists adds the list routes to r, under /v1/suppressions behind
// the API key: the filter (pipelines, agents, admins), the export and the
// import (admins).
func RegisterLists(r *gin.Engine, d Deps) {
	a := &api{app: d.App, log: d.Log}
	g := r.Group("/v1/suppressions", httpkit.RequireKey(d.Keys))
	admins := httpkit.RequireRole(apikey.RoleAdmin)
	g.POST("/filter", httpkit.RequireRole(Filterers...), a.filter)
	g.GET("/export", admins, a.export)
	g.POST("/import", admins, a.importList)
}

// filterQuery names the query parameters of POST /v1/suppressions/filter;
// column and kind may be repeated.
var filterQuery = map[string]bool{"scope": true, "format": true, "column": true, "kind": true, "on_error": true, "unidentified": true}

// mediaTypes are the body's types per format, the first the answer's.
var mediaTypes = map[app.ListFormat][]string{
	app.FormatCSV:    {"text/csv"},
	app.FormatNDJSON: {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq"},
}

// filter streams the body's records through the suppression list and
// answers those that may be used under the scope (app.Filter): the answer
// starts once the list is read and the CSV header checked, and its
// trailers give the counts and, when a malformed record stopped it, where.
func (a *api) filter(c *gin.Context) {
	q := c.Request.URL.Query()
	var ve dsr.ValidationError
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case !filterQuery[k]:
			ve.Add(k, "unknown query parameter (known: %s)", strings.Join(slices.Sorted(maps.Keys(filterQuery)), ", "))
		case len(q[k]) > 1 && k != "column" && k != "kind":
			ve.Add(k, "given twice")
		}
	}
	opts := app.FilterOptions{Scope: dsr.Scope(q.Get("scope")), Format: app.ListFormat(q.Get("format")), OnError: app.OnError(q.Get("on_error"))}
	if opts.Format == "" {
		opts.Format = formatOf(c.ContentType())
		if opts.Format == "" {
			ve.Add("format", "give format=csv or format=ndjson, or a Content-Type of text/csv or application/x-ndjson")
		}
	}
	switch q.Get("unidentified") {
	case "", "drop":
	case "keep":
		opts.KeepUnidentified = true
	default:
		ve.Add("unidentified", "must be drop or keep")
	}
	columns, kinds := q["column"], q["kind"]
	if len(columns) == 0 {
		columns = []string{"email"}
	}
	if len(kinds) > len(columns) {
		ve.Add("kind", "one per column at most, in the columns' order")
	}
	for i, name := range columns {
		col := app.IdentityColumn{Name: name}
		if i < len(kinds) {
			col.Kind = kinds[i]
		}
		opts.Columns = append(opts.Columns, col)
	}
	if err := ve.Err(); err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	// Refuse bad options before full duplex: until then, net/http reads
	// what is left of the body after the answer, and keeps the connection.
	if err := opts.Validate(); err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	rc := http.NewResponseController(c.Writer)
	// Answer while the body still comes: net/http's HTTP/1 server would
	// otherwise close the body at the first byte of the answer.
	if err := rc.EnableFullDuplex(); err != nil && c.Request.ProtoMajor == 1 {
		a.log.WarnContext(c.Request.Context(), "filter: no full duplex", "request_id", httpkit.RequestIDOf(c), "error", err)
	}
	// In full duplex, net/http leaves an unread body to the handler: one
	// it closes after the handler (looking for its end, to keep the
	// connection) starts a read of the next request that races the
	// server's own, which panics. Closed here, before the handler returns,
	// it is read to its end (up to 256 KiB; beyond, the connection closes)
	// while the server can still stop that read.
	defer func() { _ = c.Request.Body.Close() }()
	body := &idleReader{r: c.Request.Body, rc: rc}
	ctx := c.Request.Context()
	f, err := a.app.NewSuppressionFilter(ctx, body, opts)
	if err != nil {
		a.listError(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", mediaTypes[opts.Format][0]+"; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", filterTrailers)
	c.Status(http.StatusOK)
	stats, err := f.Run(ctx, c.Writer)
	status := "complete"
	var le *app.LineError
	switch {
	case errors.As(err, &le):
		status = "stopped"
		h.Set(TrailerError, le.Error())
	case err != nil:
		status = "failed"
		a.log.WarnContext(ctx, "filter failed", "request_id", httpkit.RequestIDOf(c), "by", httpkit.Caller(c), "error", err)
	}
	h.Set(TrailerStatus, status)
	for name, n := range map[string]int64{TrailerRead: stats.Read, TrailerKept: stats.Kept, TrailerSuppressed: stats.Suppressed,
		TrailerUnidentified: stats.Unidentified, TrailerSkipped: stats.Skipped} {
		h.Set(name, strconv.FormatInt(n, 10))
	}
	a.log.InfoContext(ctx, "suppression filter", "request_id", httpkit.RequestIDOf(c), "by", httpkit.Caller(c), "scope", opts.Scope,
		"status", status, "read", stats.Read, "kept", stats.Kept, "suppressed", stats.Suppressed, "unidentified", stats.Unidentified, "skipped", stats.Skipped)
}

// formatOf is the format of a media type; "" for one it does not know.
func formatOf(contentType string) app.ListFormat {
	mt, _, _ := mime.ParseMediaType(contentType)
	for f, types := range mediaTypes {
		if slices.Contains(types, mt) {
			return f
		}
	}
	return ""
}

// listError answers an error met before a filter's or an import's answer
// began.
func (a *api) listError(c *gin.Context, err error) {
	var le *app.LineError
	switch {
	case errors.As(err, &le):
		httpkit.Abort(c, httpkit.Problem{Type: httpkit.TypeValidation, Title: "Invalid request", Status: http.StatusBadRequest,
			Detail: "The body is malformed; see errors.", Errors: []httpkit.FieldError{{Field: fmt.Sprintf("line %d", le.Line), Message: le.Problem}}})
	case errors.Is(err, app.ErrSuppressionsOff), errors.Is(err, app.ErrSuppressionsUnavailable):
		a.log.ErrorContext(c.Request.Context(), "suppression list unavailable", "request_id", httpkit.RequestIDOf(c), "route", c.FullPath(), "error", err)
		c.Header("Retry-After", "5")
		httpkit.Abort(c, httpkit.Problem{Type: httpkit.TypeUnavailable, Title: "Suppression list unavailable", Status: http.StatusServiceUnavailable,
			Detail: "The suppression list could not be read, so nothing can be shown allowed; try again shortly."})
	default:
		httpkit.Error(c, a.log, err)
	}
}

// idleReader reads an HTTP body, pushing the connection's read deadline
// back as it comes: a long stream is not cut by the server's ReadTimeout,
// a stalled one is after IdleTimeout.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	next time.Time // when to push the deadline back again
}

func (b *idleReader) Read(p []byte) (int, error) {
	if now := time.Now(); now.After(b.next) {
		_ = b.rc.SetReadDeadline(now.Add(IdleTimeout)) // unsupported (a test recorder): no deadline to push
		b.next = now.Add(time.Second)
	}
	return b.r.Read(p)
}

// export streams the active entries of the list as NDJSON
// (app.ExportedSuppression), by scope and since. A failure midway breaks
// the answer off, so that no one takes a part for the whole; its trailer
// counts the entries of a whole one.
func (a *api) export(c *gin.Context) {
	q := c.Request.URL.Query()
	var ve dsr.ValidationError
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case k != "scope" && k != "since":
			ve.Add(k, "unknown query parameter (known: scope, since)")
		case len(q[k]) > 1:
			ve.Add(k, "given twice")
		}
	}
	scope := dsr.Scope(q.Get("scope"))
	if scope != "" && !scope.Valid() {
		ve.Add("scope", "must be one of sale_share, marketing, profiling, all")
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			ve.Add("since", "must be an RFC 3339 time")
		}
		since = t
	}
	if err := ve.Err(); err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "application/x-ndjson; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", TrailerExportCount)
	c.Status(http.StatusOK)
	ctx := c.Request.Context()
	n, err := a.app.ExportSuppressions(ctx, c.Writer, scope, since)
	if err != nil && !c.Writer.Written() { // nothing sent yet: a plain error
		h.Del("Trailer")
		h.Del("Content-Type")
		httpkit.Error(c, a.log, err)
		return
	}
	if err != nil {
		a.log.ErrorContext(ctx, "suppression export failed", "request_id", httpkit.RequestIDOf(c), "by", httpkit.Caller(c), "written", n, "error", err)
		panic(http.ErrAbortHandler)
	}
	h.Set(TrailerExportCount, strconv.Itoa(n))
	a.log.InfoContext(ctx, "suppression list exported", "request_id", httpkit.RequestIDOf(c), "by", httpkit.Caller(c), "scope", scope, "entries", n)
}

// importList adds a partner's list (NDJSON) to the list: all or nothing,
// each malformed line named in the problem.
func (a *api) importList(c *gin.Context) {
	q := c.Request.URL.Query()
	var ve dsr.ValidationError
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch {
		case k != "partner":
			ve.Add(k, "unknown query parameter (known: partner)")
		case len(q[k]) > 1:
			ve.Add(k, "given twice")
		}
	}
	if q.Get("partner") == "" {
		ve.Add("partner", "required: the partner whose list it is")
	}
	if err := ve.Err(); err != nil {
		httpkit.Error(c, a.log, err)
		return
	}
	body := &idleReader{r: http.MaxBytesReader(c.Writer, c.Request.Body, MaxImportBodyBytes), rc: http.NewResponseController(c.Writer)}
	res, err := a.app.ImportSuppressions(c.Request.Context(), body, q.Get("partner"), httpkit.Caller(c))
	var ie *app.ImportError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ie):
		p := httpkit.Problem{Type: httpkit.TypeValidation, Title: "Invalid list", Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("%d malformed lines; nothing was imported. errors names the first %d.", ie.Total, len(ie.Lines))}
		if len(ie.Lines) == 0 {
			p.Detail = "The body holds no entries; nothing was imported."
		}
		for _, l := range ie.Lines {
			p.Errors = append(p.Errors, httpkit.FieldError{Field: fmt.Sprintf("line %d", l.Line), Message: l.Problem})
		}
		httpkit.Abort(c, p)
	case errors.As(err, &tooBig):
		httpkit.Abort(c, httpkit.Problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("A list may be at most %d bytes; split it.", MaxImportBodyBytes)})
	case err != nil:
		a.listError(c, err)
	default:
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, res)
	}
}
