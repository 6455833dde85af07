package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// agentStore is what the agent's filing, reads and actions need of the
// store beyond requestStore.
type agentStore interface {
	Jobs(ctx context.Context, requestID string) ([]dsr.Job, error)
	ClaimIdempotencyKey(ctx context.Context, id, requestID, fingerprint string) (string, error)
	ListRequests(ctx context.Context, f dsr.ListFilter) ([]dsr.Request, *dsr.Cursor, error)
	Assign(ctx context.Context, id, agent string) (*dsr.Request, error)
	AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error)
	AuditTrail(ctx context.Context, requestID string) ([]dsr.AuditEvent, error)
	Extend(ctx context.Context, id, actor, reason string) (*dsr.Request, error)
	RetryFailedJobs(ctx context.Context, requestID string) ([]string, error)
	PauseClock(ctx context.Context, id, actor, reason string) (*dsr.Request, error)
	ResumeClock(ctx context.Context, id string) (*dsr.Request, error)
	Appeal(ctx context.Context, id string, f dsr.AppealFiling) (*dsr.Request, error)
	Summary(ctx context.Context, from, to time.Time) (*dsr.Summary, error)
}

// Record is a request with its jobs, as the actions answer it.
type Record struct {
	Request *dsr.Request
	Jobs    []dsr.Job
}

// Filing is an agent's filing of one request.
type Filing struct {
	Request AgentRequest
	// By is the filing agent (the name of its API key).
	By string
	// IdempotencyKey, when set, makes a retry of the same filing answer
	// with the request the first filed (Filed.Replayed), and a reuse of
	// the key for another request fail with dsr.ErrIdempotencyMismatch.
	IdempotencyKey string
}

// Filed is what Create filed, or, Replayed, what the first use of its
// idempotency key filed.
type Filed struct {
	Record
	Replayed bool
}

var idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// Create files a request on behalf of a person (agentIntake says what is
// accepted). It is stored before Create returns; if the queue is down, the
// sweep hands it to the workers later, so a request filed is never lost.
func (s *Service) Create(ctx context.Context, f Filing) (Filed, error) {
	in, err := s.agentIntake(f.Request, f.By, s.now())
	if err != nil {
		return Filed{}, err
	}
	if f.IdempotencyKey != "" {
		replay, err := s.reserve(ctx, f.By, f.IdempotencyKey, &in)
		if err != nil || replay {
			if err != nil {
				return Filed{}, err
			}
			return s.replay(ctx, in.ID)
		}
	}
	req, err := s.file(ctx, in, filing{duplicates: true})
	if f.IdempotencyKey != "" && errors.Is(err, dsr.ErrConflict) {
		return s.replay(ctx, in.ID) // the first attempt with this key stored it meanwhile
	}
	if err != nil {
		return Filed{}, err
	}
	return Filed{Record: Record{Request: req, Jobs: []dsr.Job{}}}, nil
}

// reserve handles an idempotency key: its first use reserves a request id
// for the key (in.ID); a retry with the same intake is to be answered with
// the request the first use filed (replay). A key reused for another
// request is dsr.ErrIdempotencyMismatch.
func (s *Service) reserve(ctx context.Context, by, key string, in *dsr.Intake) (replay bool, err error) {
	if !idempotencyKeyPattern.MatchString(key) {
		var ve dsr.ValidationError
		ve.Add("Idempotency-Key", "must be 1 to 255 printable ASCII characters without spaces")
		return false, &ve
	}
	fresh, err := dsr.NewRequestID()
	if err != nil {
		return false, err
	}
	// A first attempt made before the blind index key changed stored its
	// fingerprint under the previous key: a retry matching that one is
	// still a retry.
	var id string
	for _, fp := range in.Fingerprints(s.index) {
		if id, err = s.store.ClaimIdempotencyKey(ctx, dsr.IdempotencyID(by, key), fresh, fp); !errors.Is(err, dsr.ErrIdempotencyMismatch) {
			break
		}
	}
	if err != nil {
		return false, err
	}
	in.ID = id
	if id == fresh {
		return false, nil
	}
	if _, err := s.store.Request(ctx, id); errors.Is(err, dsr.ErrNotFound) {
		return false, nil // the first attempt died before storing: store it now
	}
	return true, nil
}

// replay answers a retried filing with the request its key filed, and makes
// sure it is queued.
func (s *Service) replay(ctx context.Context, id string) (Filed, error) {
	rec, err := s.Get(ctx, id)
	if err != nil {
		return Filed{}, err
	}
	if rec.Request.Status == dsr.StatusVerified {
		if err := s.queue.EnqueueFanout(ctx, id); err != nil {
			s.log.WarnContext(ctx, "replayed request not enqueued; the sweep will retry", "request_id", id, "error", err)
		}
	}
	s.log.InfoContext(ctx, "request replayed for its idempotency key", "request_id", id)
	return Filed{Record: rec, Replayed: true}, nil
}

// MaxBulk is the most requests one bulk filing takes.
const MaxBulk = 1000

// BulkItem is one item of a bulk filing: the request, or the error the
// surface met decoding it (then it is refused with that error).
type BulkItem struct {
	Request AgentRequest
	Err     error
}

// BulkResult is the outcome of one item of a bulk filing: the request
// filed, or the error that kept it out.
type BulkResult struct {
	Request *dsr.Request
	Err     error
}

// Bulk files up to MaxBulk requests by agent by, each on its own, never all
// or nothing: per item, the request filed or the error that kept it out.
// Every item is checked first, then the whole batch is filed at once, so
// its store commands do not grow with the number of items (fileMany).
func (s *Service) Bulk(ctx context.Context, by string, items []BulkItem) ([]BulkResult, error) {
	if len(items) == 0 || len(items) > MaxBulk {
		var ve dsr.ValidationError
		ve.Add("requests", "give 1 to %d requests", MaxBulk)
		return nil, &ve
	}
	out := make([]BulkResult, len(items))
	now := s.now()
	var (
		intakes []dsr.Intake
		at      []int // the item of each intake
	)
	for i, it := range items {
		if it.Err != nil {
			out[i].Err = it.Err
			continue
		}
		in, err := s.agentIntake(it.Request, by, now)
		if err != nil {
			out[i].Err = err
			continue
		}
		intakes, at = append(intakes, in), append(at, i)
	}
	reqs, errs := s.fileMany(ctx, intakes, filing{duplicates: true})
	for j, i := range at {
		out[i] = BulkResult{Request: reqs[j], Err: errs[j]}
	}
	accepted := 0
	for _, r := range out {
		if r.Err == nil {
			accepted++
		}
	}
	s.log.InfoContext(ctx, "bulk filing", "accepted", accepted, "rejected", len(out)-accepted, "caller", by)
	return out, nil
}

// Get returns request id with its jobs; dsr.ErrNotFound when there is none
// (a malformed id included).
func (s *Service) Get(ctx context.Context, id string) (Record, error) {
	req, err := s.request(ctx, id)
	if err != nil {
		return Record{}, err
	}
	return s.withJobs(ctx, req)
}

// request reads request id; a malformed id is dsr.ErrNotFound, without a
// store command.
func (s *Service) request(ctx context.Context, id string) (*dsr.Request, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	return s.store.Request(ctx, id)
}

// checkID refuses an id no request can have as one not found, before
// the store is asked.
func checkID(id string) error {
	if !dsr.ValidID(id) {
		return fmt.Errorf("request %q: %w", id, dsr.ErrNotFound)
	}
	return nil
}

// withJobs reads the jobs of req.
func (s *Service) withJobs(ctx context.Context, req *dsr.Request) (Record, error) {
	jobs, err := s.store.Jobs(ctx, req.ID)
	if err != nil {
		return Record{}, err
	}
	return Record{Request: req, Jobs: jobs}, nil
}

// ListQuery is a list of requests asked for in words (as a query string
// gives it): each field empty or one of the values dsr.ListFilter takes.
type ListQuery struct {
	Status, Type, Regulation, Source, AssignedTo string
	// DueBefore and DueAfter are RFC 3339 times.
	DueBefore, DueAfter string
	// Overdue is "true" or "false".
	Overdue string
	// Sort is "due" (most urgent first, the default) or "newest".
	Sort string
	// Limit is 1 to MaxListLimit; default DefaultListLimit.
	Limit string
	// Cursor is a Page's NextCursor.
	Cursor string
}

// The page sizes of a list.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
)

// ListFilter checks q and returns the filter it asks for, at the
// application's now, or every problem found.
func (s *Service) ListFilter(q ListQuery) (dsr.ListFilter, error) {
	var ve dsr.ValidationError
	f := dsr.ListFilter{
		Status: dsr.Status(q.Status), Type: dsr.Type(q.Type), Regulation: dsr.Regulation(q.Regulation),
		Source: q.Source, AssignedTo: q.AssignedTo, Sort: dsr.ListSort(q.Sort), Limit: DefaultListLimit, Now: s.now(),
	}
	if f.Status != "" && !f.Status.Valid() {
		ve.Add("status", "must be one of %s", Join(dsr.Statuses))
	}
	if f.Type != "" && !f.Type.Valid() {
		ve.Add("type", "must be one of %s", Join(dsr.Types))
	}
	if f.Regulation != "" && !f.Regulation.Valid() {
		ve.Add("regulation", "must be one of %s", Join(dsr.Regulations))
	}
	switch f.Sort {
	case "":
		f.Sort = dsr.SortDue
	case dsr.SortDue, dsr.SortNewest:
	default:
		ve.Add("sort", "must be due (most urgent first, the default) or newest")
	}
	for _, p := range []struct {
		name, value string
		dst         **time.Time
	}{{"due_before", q.DueBefore, &f.DueBefore}, {"due_after", q.DueAfter, &f.DueAfter}} {
		if p.value != "" {
			t, err := time.Parse(time.RFC3339, p.value)
			if err != nil {
				ve.Add(p.name, "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
				continue
			}
			*p.dst = &t
		}
	}
	switch q.Overdue {
	case "", "false":
	case "true":
		f.Overdue = true
	default:
		ve.Add("overdue", "must be true or false")
	}
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > MaxListLimit {
			ve.Add("limit", "must be a whole number from 1 to %d", MaxListLimit)
		}
		f.Limit = n
	}
	if q.Cursor != "" {
		var cur dsr.Cursor
		b, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || json.Unmarshal(b, &cur) != nil || !dsr.ValidID(cur.ID) {
			ve.Add("cursor", "is not a cursor this API returned")
		}
		f.After = &cur
	}
	return f, ve.Err()
}

// Page is one page of a list of requests.
type Page struct {
	Requests []dsr.Request
	// NextCursor fetches the next page (ListQuery.Cursor); "" on the last.
	NextCursor string
	// Now is the time the list was made at.
	Now time.Time
}

// List returns a page of requests (see ListFilter).
func (s *Service) List(ctx context.Context, f dsr.ListFilter) (Page, error) {
	reqs, next, err := s.store.ListRequests(ctx, f)
	if err != nil {
		return Page{}, err
	}
	p := Page{Requests: reqs, Now: f.Now}
	if next != nil {
		b, _ := json.Marshal(next)
		p.NextCursor = base64.RawURLEncoding.EncodeToString(b)
	}
	return p, nil
}

// Assign gives request id to agent (the name of an agent's or admin's API
// key; "" unassigns), by agent by.
func (s *Service) Assign(ctx context.Context, id, agent, by string) (Record, error) {
	if agent != "" && (s.isAgent == nil || !s.isAgent(agent)) {
		var ve dsr.ValidationError
		ve.Add("agent", "must name an API key with the agent or admin role, or be empty to unassign")
		return Record{}, &ve
	}
	if err := checkID(id); err != nil {
		return Record{}, err
	}
	req, err := s.store.Assign(ctx, id, agent)
	if err != nil {
		return Record{}, err
	}
	s.audit(ctx, id, by, "assigned", map[string]string{"agent": agent})
	return s.withJobs(ctx, req)
}

// audit appends an event by actor to a request's audit chain. It is best
// effort, after the change it records: a failure is logged, and the
// change's facts stay in the request's document.
func (s *Service) audit(ctx context.Context, id, actor, kind string, data map[string]string) {
	if _, err := s.store.AppendAudit(ctx, id, actor, kind, data); err != nil {
		s.log.WarnContext(ctx, "audit event not recorded", "request_id", id, "kind", kind, "error", err)
	}
}

// Unlink ends a duplicate's link: it becomes a request of its own and is
// processed (or its person is sent the verification, or it waits for
// approval) as it would have been.
func (s *Service) Unlink(ctx context.Context, id, by string) (Record, error) {
	req, err := s.request(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if req.Status != dsr.StatusDuplicate {
		return Record{}, dsr.Refuse(dsr.ErrConflict, "This request is not a duplicate.")
	}
	to := req.UnlinkTo
	var notices []string
	if to == dsr.StatusVerifying {
		notices = []string{dsr.NoticeReceipt, dsr.NoticeVerify}
	} else {
		to = dsr.StatusVerified
	}
	moved, err := s.move(ctx, req, by, []dsr.Status{dsr.StatusDuplicate}, to, dsr.Change{Reason: "unlinked from " + req.DuplicateOf, Unlink: true, Notices: notices})
	if err != nil {
		return Record{}, err
	}
	s.dispatch(ctx, moved)
	return s.withJobs(ctx, moved)
}
