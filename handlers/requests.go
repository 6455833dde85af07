package handlers

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/dsr"
)

// requestsAPI serves the agent API on requests.
type requestsAPI struct {
	store *dsr.Store
	queue Enqueuer
	index *dsr.BlindIndex
	log   *slog.Logger
	now   func() time.Time
}

// createBody is the body of POST /v1/requests.
type createBody struct {
	Type       string      `json:"type"`
	Regulation string      `json:"regulation"`
	Subject    subjectBody `json:"subject"`
}

type subjectBody struct {
	Email      *string `json:"email"`
	CustomerID *string `json:"customer_id"`
	Phone      *string `json:"phone"`
}

// validate checks the body and returns the intake it describes, or every
// problem found.
func (b createBody) validate() (dsr.Intake, error) {
	var ve dsr.ValidationError
	in := dsr.Intake{Type: dsr.Type(b.Type), Regulation: dsr.Regulation(b.Regulation)}
	switch {
	case b.Type == "":
		ve.Add("type", "required: one of %s", join(dsr.Types))
	case !in.Type.Valid():
		ve.Add("type", "must be one of %s", join(dsr.Types))
	}
	switch {
	case b.Regulation == "":
		ve.Add("regulation", "required: one of %s", join(dsr.Regulations))
	case !in.Regulation.Valid():
		ve.Add("regulation", "must be one of %s", join(dsr.Regulations))
	}
	in.Identities = b.Subject.identities(&ve, func(dsr.Kind) string { return dsr.SourceSubject })
	if b.Subject == (subjectBody{}) {
		ve.Add("subject", "give at least one identity: email, customer_id or phone")
	}
	return in, ve.Err()
}

// identities normalises the identities given, email first, each with the
// source that source gives its kind; problems go to ve under
// "subject.<kind>".
func (s subjectBody) identities(ve *dsr.ValidationError, source func(dsr.Kind) string) []dsr.Identity {
	given := []struct {
		kind dsr.Kind
		v    *string
	}{{dsr.KindEmail, s.Email}, {dsr.KindCustomerID, s.CustomerID}, {dsr.KindPhone, s.Phone}}
	var out []dsr.Identity
	for _, g := range given {
		if g.v == nil {
			continue
		}
		v, err := dsr.Normalize(g.kind, *g.v)
		if err != nil {
			ve.Add("subject."+string(g.kind), "%s", err)
			continue
		}
		out = append(out, dsr.Identity{Kind: g.kind, Value: v, Source: source(g.kind)})
	}
	return out
}

func join[T ~string](vals []T) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// create files a request on behalf of a subject. Requests filed with an API
// key are taken as verified: the agent vouches for the identity. The request
// is stored before 202 is sent; if the queue is down the sweep hands it to
// the workers later, so an accepted request is never lost.
func (a *requestsAPI) create(c *gin.Context) {
	var body createBody
	if !decodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	in, err := body.validate()
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	in.Source = "agent_api"
	in.FiledBy = principal(c).Name
	in.Status = dsr.StatusVerified
	in.ReceivedAt = a.now()
	ctx := c.Request.Context()
	key := c.GetHeader("Idempotency-Key")
	if key != "" {
		replayed, ok := a.reserve(c, key, &in)
		if !ok || replayed {
			return
		}
	}
	req, err := dsr.NewRequest(in, a.index)
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	if err := a.store.CreateRequest(ctx, req); err != nil {
		if key != "" && errors.Is(err, dsr.ErrConflict) {
			a.replay(c, req.ID) // the first attempt with this key stored it meanwhile
			return
		}
		writeError(c, a.log, err)
		return
	}
	if err := a.queue.EnqueueFanout(ctx, req.ID); err != nil {
		// Stored, so not lost: the sweep enqueues it once the queue is back.
		a.log.WarnContext(ctx, "request stored but not enqueued; the sweep will retry", "request_id", req.ID, "error", err)
	}
	a.log.InfoContext(ctx, "request filed", "request_id", req.ID, "type", req.Type, "regulation", req.Regulation)
	c.Header("Location", "/v1/requests/"+req.ID)
	c.JSON(http.StatusAccepted, viewRequest(req, []dsr.Job{}))
}

var idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// reserve handles an Idempotency-Key: the first use reserves a request id
// for the key (in.ID); a retry with the same body answers with the request
// the first use filed (replayed). A key reused for another request is a 422.
// It returns ok false when it has written an error.
func (a *requestsAPI) reserve(c *gin.Context, key string, in *dsr.Intake) (replayed, ok bool) {
	if !idempotencyKeyPattern.MatchString(key) {
		var ve dsr.ValidationError
		ve.Add("Idempotency-Key", "must be 1 to 255 printable ASCII characters without spaces")
		writeError(c, a.log, &ve)
		return false, false
	}
	fresh, err := dsr.NewRequestID()
	if err != nil {
		writeError(c, a.log, err)
		return false, false
	}
	id, err := a.store.ClaimIdempotencyKey(c.Request.Context(), dsr.IdempotencyID(principal(c).Name, key), fresh, in.Fingerprint(a.index))
	if err != nil {
		writeError(c, a.log, err)
		return false, false
	}
	in.ID = id
	if id == fresh {
		return false, true
	}
	if _, err := a.store.Request(c.Request.Context(), id); errors.Is(err, dsr.ErrNotFound) {
		return false, true // the first attempt died before storing: store it now
	}
	a.replay(c, id)
	return true, true
}

// replay answers a retried POST with the request its key filed, as the
// first answer did, and makes sure it is queued.
func (a *requestsAPI) replay(c *gin.Context, id string) {
	ctx := c.Request.Context()
	req, jobs, ok := a.load(c, id, true)
	if !ok {
		return
	}
	if req.Status == dsr.StatusVerified {
		if err := a.queue.EnqueueFanout(ctx, req.ID); err != nil {
			a.log.WarnContext(ctx, "replayed request not enqueued; the sweep will retry", "request_id", req.ID, "error", err)
		}
	}
	a.log.InfoContext(ctx, "request replayed for its idempotency key", "request_id", req.ID)
	c.Header("Idempotent-Replayed", "true")
	c.Header("Location", "/v1/requests/"+req.ID)
	c.JSON(http.StatusAccepted, viewRequest(req, jobs))
}

func (a *requestsAPI) get(c *gin.Context) {
	if req, jobs, ok := a.load(c, c.Param("id"), true); ok {
		c.JSON(http.StatusOK, viewRequest(req, jobs))
	}
}

// load reads request id, and its jobs when withJobs is set. A malformed or
// unknown id is a 404. On failure it has written the problem.
func (a *requestsAPI) load(c *gin.Context, id string, withJobs bool) (*dsr.Request, []dsr.Job, bool) {
	if !dsr.ValidID(id) {
		writeError(c, a.log, dsr.ErrNotFound)
		return nil, nil, false
	}
	ctx := c.Request.Context()
	req, err := a.store.Request(ctx, id)
	if err != nil {
		writeError(c, a.log, err)
		return nil, nil, false
	}
	if !withJobs {
		return req, nil, true
	}
	jobs, err := a.store.Jobs(ctx, id)
	if err != nil {
		writeError(c, a.log, err)
		return nil, nil, false
	}
	return req, jobs, true
}

// listQuery names the query parameters of GET /v1/requests.
var listQuery = map[string]bool{"status": true, "type": true, "limit": true, "cursor": true}

const (
	defaultLimit = 20
	maxLimit     = 100
)

func (a *requestsAPI) list(c *gin.Context) {
	q := c.Request.URL.Query()
	var ve dsr.ValidationError
	for k := range q {
		if !listQuery[k] {
			ve.Add(k, "unknown query parameter (known: status, type, limit, cursor)")
		}
	}
	f := dsr.ListFilter{Status: dsr.Status(q.Get("status")), Type: dsr.Type(q.Get("type")), Limit: defaultLimit}
	if f.Status != "" && !f.Status.Valid() {
		ve.Add("status", "must be one of %s", join(dsr.Statuses))
	}
	if f.Type != "" && !f.Type.Valid() {
		ve.Add("type", "must be one of %s", join(dsr.Types))
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			ve.Add("limit", "must be a whole number from 1 to %d", maxLimit)
		}
		f.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || !dsr.ValidID(string(b)) {
			ve.Add("cursor", "is not a cursor this API returned")
		}
		f.Before = string(b)
	}
	if err := ve.Err(); err != nil {
		writeError(c, a.log, err)
		return
	}
	reqs, more, err := a.store.ListRequests(c.Request.Context(), f)
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	page := requestPage{Items: make([]requestSummary, len(reqs))}
	for i := range reqs {
		page.Items[i] = summarize(&reqs[i])
	}
	if more {
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(reqs[len(reqs)-1].ID))
	}
	c.JSON(http.StatusOK, page)
}
