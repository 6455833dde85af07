package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
)

// requestsAPI serves the agent API on requests.
type requestsAPI struct {
	app      *app.Service
	calendar dsr.Calendar
	// dupWindow is how far back an identical open request makes a new one
	// a duplicate; 0 turns duplicate detection off.
	dupWindow time.Duration
	// fourEyes says which requests their filer may not approve.
	fourEyes dsr.ApprovalPolicy
	keys     *Keyring
	store    *dsr.Store
	queue    Enqueuer
	index    *dsr.BlindIndex
	log      *slog.Logger
	now      func() time.Time
}

// createBody is the body of POST /v1/requests.
type createBody struct {
	Type       string      `json:"type"`
	Regulation string      `json:"regulation"`
	Subject    subjectBody `json:"subject"`
	// Channel is how the request reached the business; default "api".
	Channel string `json:"channel"`
	// Note is the agent's note, stored with the request and never logged.
	Note string `json:"note"`
	// ReceivedAt is when the request arrived, if earlier than now: the
	// legal clock starts then. RFC 3339; never in the future.
	ReceivedAt string `json:"received_at"`
	// Identity says whether the agent verified the person's identity
	// (and how), or whether the person is to be sent the portal's
	// verification. Absent: verified by the filing agent.
	Identity *identityBody `json:"identity"`
}

type identityBody struct {
	Verified bool   `json:"verified"`
	Method   string `json:"method"`
}

// Channels lists how an agent may say a request reached the business.
var Channels = []string{"api", "phone", "email", "chat", "letter", "in_person", "web", "other"}

// maxBackdate bounds how far before now an agent may date a request.
const maxBackdate = 366 * 24 * time.Hour

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

// agentIntake adds to validate what only an agent's filing has: channel,
// note, the date of receipt, and how identity was (or is to be) verified.
func (b createBody) agentIntake(now time.Time) (dsr.Intake, error) {
	in, err := b.validate()
	var ve dsr.ValidationError
	if prior := (*dsr.ValidationError)(nil); errors.As(err, &prior) {
		ve = *prior
	}
	in.Channel = b.Channel
	if in.Channel == "" {
		in.Channel = "api"
	}
	if !slices.Contains(Channels, in.Channel) {
		ve.Add("channel", "must be one of %s", strings.Join(Channels, ", "))
	}
	if utf8.RuneCountInString(strings.TrimSpace(b.Note)) > maxReason {
		ve.Add("note", "must be at most %d characters", maxReason)
	} else {
		ve.Text("note", strings.TrimSpace(b.Note), dsr.Lines)
	}
	in.Note = strings.TrimSpace(b.Note)
	in.ReceivedAt = now
	if b.ReceivedAt != "" {
		at, err := time.Parse(time.RFC3339, b.ReceivedAt)
		switch {
		case err != nil:
			ve.Add("received_at", "must be an RFC 3339 time, e.g. 2026-11-20T09:30:00Z")
		case at.After(now.Add(time.Minute)):
			ve.Add("received_at", "must not be in the future: the legal clock starts when the request arrived")
		case at.Before(now.Add(-maxBackdate)):
			ve.Add("received_at", "must be within the last year")
		default:
			in.ReceivedAt = at
		}
	}
	in.Status, in.VerificationMethod = dsr.StatusVerified, "attested by the filing agent"
	// With an email, the person is told of the request as on the portal:
	// its receipt now, then a denial, an extension or its completion.
	for _, id := range in.Identities {
		if id.Kind == dsr.KindEmail {
			in.Notify, in.Notices = true, []string{dsr.NoticeReceipt}
		}
	}
	switch id := b.Identity; {
	case id == nil:
	case id.Verified:
		in.VerificationMethod = checkMethod(&ve, id.Method)
	default:
		if id.Method != "" {
			ve.Add("identity.method", "only with verified: true")
		}
		has := false
		for _, i := range in.Identities {
			has = has || i.Kind == dsr.KindEmail
		}
		if !has {
			ve.Add("subject.email", "required to send the person the verification")
		}
		// The portal's verification: an emailed code; the person is told
		// of the request from the start. As on the portal, only the email
		// is proven: the other identities are kept as claimed.
		in.Status, in.VerificationMethod, in.Notify = dsr.StatusVerifying, "", true
		in.Notices = []string{dsr.NoticeReceipt, dsr.NoticeVerify}
		for i := range in.Identities {
			if in.Identities[i].Kind != dsr.KindEmail {
				in.Identities[i].Source = dsr.SourceClaimed
			}
		}
	}
	return in, ve.Err()
}

// identities normalises the identities given, email first, each with the
// source that source gives its kind; problems go to ve under
// "subject.<kind>".
// checkMethod checks how an agent says it verified a person (one line, at
// most 200 characters) and returns it trimmed.
func checkMethod(ve *dsr.ValidationError, method string) string {
	m := strings.TrimSpace(method)
	if m == "" || utf8.RuneCountInString(m) > 200 {
		ve.Add("identity.method", "required when verified: how the identity was verified, e.g. account login or ID document (at most 200 characters)")
	} else {
		ve.Text("identity.method", m, dsr.OneLine)
	}
	return m
}

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
		v, err := dsr.NormalizeGiven(g.kind, *g.v)
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
	in, err := body.agentIntake(a.now())
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	in.Source = "agent_api"
	in.FiledBy = principal(c).Name
	in.Calendar = a.calendar
	ctx := c.Request.Context()
	key := c.GetHeader("Idempotency-Key")
	if key != "" {
		replayed, ok := a.reserve(c, key, &in)
		if !ok || replayed {
			return
		}
	}
	req, err := a.app.FileAgent(ctx, in)
	if key != "" && errors.Is(err, dsr.ErrConflict) {
		a.replay(c, in.ID) // the first attempt with this key stored it meanwhile
		return
	}
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	c.Header("Location", "/v1/requests/"+req.ID)
	c.JSON(http.StatusAccepted, viewRequest(req, []dsr.Job{}))
}

// dispatch queues what a stored request needs: its fan-out when verified,
// its pending notices.
func (a *requestsAPI) dispatch(ctx context.Context, req *dsr.Request) {
	if req.Status == dsr.StatusVerified {
		if err := a.queue.EnqueueFanout(ctx, req.ID); err != nil {
			a.log.WarnContext(ctx, "request stored but not enqueued; the sweep will retry", "request_id", req.ID, "error", err)
		}
	}
	a.notices(ctx, req)
}

// bulkBody is the body of POST /v1/requests/bulk.
type bulkBody struct {
	Requests []json.RawMessage `json:"requests"`
}

// bulkResult is the outcome of one item of a bulk filing.
type bulkResult struct {
	Index   int             `json:"index"`
	Status  int             `json:"status"`
	Request *requestSummary `json:"request,omitempty"`
	Problem *Problem        `json:"problem,omitempty"`
}

// MaxBulk is the most requests one bulk filing takes.
const MaxBulk = 1000

// bulk files up to MaxBulk requests, each on its own: the answer says, per
// item, 202 with the request or the problem that kept it out. It is never
// all or nothing. Its store commands do not grow with the number of items
// (app.Service.FileAgentMany): every item is checked first, then the whole batch is filed at
// once.
func (a *requestsAPI) bulk(c *gin.Context) {
	var body bulkBody
	if !decodeJSON(c, &body, 4*MaxBodyBytes) {
		return
	}
	if len(body.Requests) == 0 || len(body.Requests) > MaxBulk {
		var ve dsr.ValidationError
		ve.Add("requests", "give 1 to %d requests", MaxBulk)
		writeError(c, a.log, &ve)
		return
	}
	ctx := c.Request.Context()
	out := struct {
		Accepted int          `json:"accepted"`
		Rejected int          `json:"rejected"`
		Results  []bulkResult `json:"results"`
	}{Results: make([]bulkResult, len(body.Requests))}
	now := a.now()
	var (
		intakes []dsr.Intake
		at      []int // the item of each intake
	)
	for i, raw := range body.Requests {
		out.Results[i] = bulkResult{Index: i, Status: http.StatusAccepted}
		in, err := a.bulkIntake(raw, now, principal(c).Name)
		if err != nil {
			a.refuse(ctx, &out.Results[i], err)
			continue
		}
		intakes, at = append(intakes, in), append(at, i)
	}
	reqs, errs := a.app.FileAgentMany(ctx, intakes)
	for j := range errs {
		errs[j] = dsr.StorageError(errs[j])
	}
	for j, i := range at {
		if errs[j] != nil {
			a.refuse(ctx, &out.Results[i], errs[j])
			continue
		}
		sum := summarize(reqs[j], now)
		out.Results[i].Request = &sum
	}
	for _, r := range out.Results {
		if r.Problem != nil {
			out.Rejected++
		} else {
			out.Accepted++
		}
	}
	full := 0
	for _, r := range out.Results {
		if r.Status == http.StatusServiceUnavailable {
			full++
		}
	}
	if full > 0 && full == len(out.Results) {
		// Nothing was saved, for a full disk alone: the whole call is
		// refused as any write is.
		writeError(c, a.log, dsr.ErrStorageFull)
		return
	}
	if full > 0 {
		c.Set(storageFullKey, true) // readiness fails until a write succeeds
	}
	a.log.InfoContext(ctx, "bulk filing", "accepted", out.Accepted, "rejected", out.Rejected, "caller", principal(c).Name)
	c.JSON(http.StatusOK, out)
}

// refuse sets a bulk item's result to the problem err.
func (a *requestsAPI) refuse(ctx context.Context, res *bulkResult, err error) {
	p := itemProblem(err)
	if p.Status >= http.StatusInternalServerError {
		a.log.ErrorContext(ctx, "bulk item failed", "index", res.Index, "error", err)
	}
	res.Status, res.Problem = p.Status, &p
}

// bulkIntake decodes and checks one bulk item, without I/O.
func (a *requestsAPI) bulkIntake(raw json.RawMessage, now time.Time, by string) (dsr.Intake, error) {
	var body createBody
	var generic any
	if json.Unmarshal(raw, &generic) == nil {
		if u := unknownFields(generic, reflect.TypeOf(&body), ""); u != "" {
			var ve dsr.ValidationError
			ve.Add(u, "unknown field")
			return dsr.Intake{}, &ve
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var ve dsr.ValidationError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			ve.Add(typ.Field, "must be %s", jsonKind(typ.Type.Kind().String()))
		} else {
			ve.Add("(item)", "must be a JSON object describing a request")
		}
		return dsr.Intake{}, &ve
	}
	in, err := body.agentIntake(now)
	if err != nil {
		return dsr.Intake{}, err
	}
	in.Source, in.FiledBy, in.Calendar = "agent_api", by, a.calendar
	return in, nil
}

// itemProblem is the problem of a bulk item that was not filed.
func itemProblem(err error) Problem {
	var ve *dsr.ValidationError
	if errors.As(err, &ve) {
		fields := make([]FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = FieldError(f)
		}
		return Problem{Type: problemValidation, Title: "Invalid request", Status: http.StatusBadRequest, Errors: fields}
	}
	if errors.Is(err, dsr.ErrStorageFull) {
		return Problem{Type: problemStorageFull, Title: "Storage full", Status: http.StatusServiceUnavailable,
			Detail: "The store's disk is full, so this item was not saved; file it again later."}
	}
	return Problem{Type: problemBlank, Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError,
		Detail: "This item could not be stored; file it again."}
}

// unlink ends a duplicate's link: it becomes a request of its own and is
// processed (or its person is sent the verification) as it would have been.
func (a *requestsAPI) unlink(c *gin.Context) {
	req, _, ok := a.load(c, c.Param("id"), false)
	if !ok {
		return
	}
	if req.Status != dsr.StatusDuplicate {
		problem(c, Problem{Type: problemConflict, Title: "Conflict", Status: http.StatusConflict, Detail: "This request is not a duplicate."})
		return
	}
	to := req.UnlinkTo
	var notices []string
	if to == dsr.StatusVerifying {
		notices = []string{dsr.NoticeReceipt, dsr.NoticeVerify}
	} else {
		to = dsr.StatusVerified
	}
	moved, ok := a.act(c, []dsr.Status{dsr.StatusDuplicate}, to, dsr.Change{Reason: "unlinked from " + req.DuplicateOf, Unlink: true, Notices: notices})
	if !ok {
		return
	}
	a.dispatch(c.Request.Context(), moved)
	a.respond(c, moved)
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
var listQuery = map[string]bool{"status": true, "type": true, "regulation": true, "source": true, "assigned_to": true,
	"due_before": true, "due_after": true, "overdue": true, "sort": true, "limit": true, "cursor": true}

const (
	defaultLimit = 20
	maxLimit     = 100
)

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
	f := dsr.ListFilter{
		Status: dsr.Status(q.Get("status")), Type: dsr.Type(q.Get("type")), Regulation: dsr.Regulation(q.Get("regulation")),
		Source: q.Get("source"), AssignedTo: q.Get("assigned_to"), Sort: dsr.ListSort(q.Get("sort")), Limit: defaultLimit, Now: a.now(),
	}
	if f.Status != "" && !f.Status.Valid() {
		ve.Add("status", "must be one of %s", join(dsr.Statuses))
	}
	if f.Type != "" && !f.Type.Valid() {
		ve.Add("type", "must be one of %s", join(dsr.Types))
	}
	if f.Regulation != "" && !f.Regulation.Valid() {
		ve.Add("regulation", "must be one of %s", join(dsr.Regulations))
	}
	switch f.Sort {
	case "":
		f.Sort = dsr.SortDue
	case dsr.SortDue, dsr.SortNewest:
	default:
		ve.Add("sort", "must be due (most urgent first, the default) or newest")
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"due_before", &f.DueBefore}, {"due_after", &f.DueAfter}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				ve.Add(p.name, "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
				continue
			}
			*p.dst = &t
		}
	}
	switch q.Get("overdue") {
	case "", "false":
	case "true":
		f.Overdue = true
	default:
		ve.Add("overdue", "must be true or false")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			ve.Add("limit", "must be a whole number from 1 to %d", maxLimit)
		}
		f.Limit = n
	}
	if s := q.Get("cursor"); s != "" {
		var cur dsr.Cursor
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || json.Unmarshal(b, &cur) != nil || !dsr.ValidID(cur.ID) {
			ve.Add("cursor", "is not a cursor this API returned")
		}
		f.After = &cur
	}
	if err := ve.Err(); err != nil {
		writeError(c, a.log, err)
		return
	}
	reqs, next, err := a.store.ListRequests(c.Request.Context(), f)
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	page := requestPage{Items: make([]requestSummary, len(reqs))}
	for i := range reqs {
		page.Items[i] = summarize(&reqs[i], f.Now)
	}
	if next != nil {
		b, _ := json.Marshal(next)
		page.NextCursor = base64.RawURLEncoding.EncodeToString(b)
	}
	c.JSON(http.StatusOK, page)
}

// assignBody is the body of POST /v1/requests/{id}/assign.
type assignBody struct {
	// Agent is the name of an agent's or admin's API key; "" unassigns.
	Agent string `json:"agent"`
}

// assign gives a request to an agent, by the name of their API key.
func (a *requestsAPI) assign(c *gin.Context) {
	var body assignBody
	if !decodeJSON(c, &body, MaxBodyBytes) {
		return
	}
	if body.Agent != "" && !a.keys.hasAgent(body.Agent) {
		var ve dsr.ValidationError
		ve.Add("agent", "must name an API key with the agent or admin role, or be empty to unassign")
		writeError(c, a.log, &ve)
		return
	}
	id := c.Param("id")
	if !dsr.ValidID(id) {
		writeError(c, a.log, dsr.ErrNotFound)
		return
	}
	req, err := a.store.Assign(c.Request.Context(), id, body.Agent)
	if err != nil {
		writeError(c, a.log, err)
		return
	}
	a.recordAudit(c, id, "assigned", map[string]string{"agent": body.Agent})
	a.respond(c, req)
}
