package dsr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/internal/mongocompat"
)

// Collection names.
const (
	RequestsCollection      = "requests"
	JobsCollection          = "jobs"
	ExportRecordsCollection = "export_records"
)

// Index declares one index a query of the store needs.
type Index struct {
	Name   string
	Keys   bson.D
	Unique bool
}

// Indexes lists, per collection, every index the store's queries need. Each
// query the store issues is served by one of them on MongoDB (a test checks
// every command the store sends against this list). FerretDB v1 accepts the
// declarations but scans anyway.
var Indexes = map[string][]Index{
	RequestsCollection: {
		// Lists, newest first.
		{Name: "status_id", Keys: bson.D{{Key: "status", Value: 1}, {Key: "_id", Value: -1}}},
		{Name: "type_id", Keys: bson.D{{Key: "type", Value: 1}, {Key: "_id", Value: -1}}},
		// Lists by due date, each filter leading: a list with several
		// filters uses one of these and filters the rest as it reads.
		{Name: "due_id", Keys: bson.D{{Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "type_due_id", Keys: bson.D{{Key: "type", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "regulation_due_id", Keys: bson.D{{Key: "regulation", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "source_due_id", Keys: bson.D{{Key: "source", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "assignee_due_id", Keys: bson.D{{Key: "assigned_to", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "status_updated", Keys: bson.D{{Key: "status", Value: 1}, {Key: "updated_at", Value: 1}}},
		// Unverified requests by identity (the portal supersedes them).
		{Name: "identity_type_status", Keys: bson.D{{Key: "identity_hashes", Value: 1}, {Key: "type", Value: 1}, {Key: "status", Value: 1}, {Key: "received_at", Value: -1}}},
		// Merges and duplicates, found by proven identities only.
		{Name: "proven_type_status_appeal", Keys: bson.D{{Key: "proven_hashes", Value: 1}, {Key: "type", Value: 1}, {Key: "status", Value: 1}, {Key: "appeal_of", Value: 1}, {Key: "received_at", Value: -1}}},
		{Name: "status_due_id", Keys: bson.D{{Key: "status", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "notices_updated", Keys: bson.D{{Key: "pending_notices", Value: 1}, {Key: "updated_at", Value: 1}}},
		{Name: "audit_due_updated", Keys: bson.D{{Key: "audit_due", Value: 1}, {Key: "updated_at", Value: 1}}},
		{Name: "status_closed", Keys: bson.D{{Key: "status", Value: 1}, {Key: "closed_at", Value: 1}}},
		// The deadline checks (checks.go): each leads with the fields a
		// request loses once acted on, so a run with nothing to do
		// examines nothing.
		{Name: "checks_due", Keys: bson.D{{Key: "status", Value: 1}, {Key: "paused_at", Value: 1}, {Key: "overdue_at", Value: 1}, {Key: "due_at", Value: 1}, {Key: "reminded", Value: 1}}},
		{Name: "checks_exports", Keys: bson.D{{Key: "status", Value: 1}, {Key: "type", Value: 1}, {Key: "exports_purged_at", Value: 1}, {Key: "closed_at", Value: 1}}},
		{Name: "checks_identities", Keys: bson.D{{Key: "status", Value: 1}, {Key: "purged_at", Value: 1}, {Key: "closed_at", Value: 1}}},
		// Statistics (stats.go): counts by status, type and regulation,
		// answered from the index alone, and the report's window of receipt.
		{Name: "status_type_regulation", Keys: bson.D{{Key: "status", Value: 1}, {Key: "type", Value: 1}, {Key: "regulation", Value: 1}}},
		{Name: "received_at", Keys: bson.D{{Key: "received_at", Value: 1}}},
	},
	JobsCollection: {
		{Name: "request_id", Keys: bson.D{{Key: "request_id", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "request_status", Keys: bson.D{{Key: "request_id", Value: 1}, {Key: "status", Value: 1}}},
		{Name: "status_updated", Keys: bson.D{{Key: "status", Value: 1}, {Key: "updated_at", Value: 1}}},
		{Name: "status_lease", Keys: bson.D{{Key: "status", Value: 1}, {Key: "lease_until", Value: 1}}},
		{Name: "status_poll", Keys: bson.D{{Key: "status", Value: 1}, {Key: "poll_at", Value: 1}}},
		// Job outcomes since a time, for the metrics (stats.go).
		{Name: "finished_at", Keys: bson.D{{Key: "finished_at", Value: 1}}},
	},
	ExportRecordsCollection: {
		{Name: "job_seq", Keys: bson.D{{Key: "job_id", Value: 1}, {Key: "seq", Value: 1}}, Unique: true},
		{Name: "request_id", Keys: bson.D{{Key: "request_id", Value: 1}}},
	},
	AuditCollection: {
		{Name: "request_seq", Keys: bson.D{{Key: "request_id", Value: 1}, {Key: "seq", Value: 1}}, Unique: true},
	},
}

// Store keeps requests, jobs and exported records in MongoDB (or FerretDB).
// It is safe for concurrent use.
type Store struct {
	db *mongo.Database
	// The collections: every write goes through their lane (see
	// [collection]).
	reqs, jobs, exports, audit, idem, health *collection
	now                                      func() time.Time
	gate                                     mongocompat.Gate
	heads                                    auditHeads
}

// NewStore returns a store on db. now is the clock; nil means time.Now.
func NewStore(db *mongo.Database, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, now: func() time.Time { return now().UTC().Truncate(time.Millisecond) }}
	s.reqs = newCollection(db, RequestsCollection, &s.gate)
	s.jobs = newCollection(db, JobsCollection, &s.gate)
	s.exports = newCollection(db, ExportRecordsCollection, &s.gate)
	s.audit = newCollection(db, AuditCollection, &s.gate)
	s.idem = newCollection(db, IdempotencyCollection, &s.gate)
	s.health = newCollection(db, HealthCollection, &s.gate)
	return s
}

// Prepare readies the store at start-up: it learns whether the server is
// FerretDB (whose conditional writes are serialized, see
// internal/mongocompat) and creates the indexes of [Indexes]. It is
// idempotent; call it before any other method.
func (s *Store) Prepare(ctx context.Context) error {
	gate, err := mongocompat.Detect(ctx, s.db)
	if err != nil {
		return err
	}
	s.gate = gate
	colls := map[string]*collection{}
	for _, c := range []*collection{s.reqs, s.jobs, s.exports, s.audit, s.idem, s.health} {
		colls[c.Name()] = c
	}
	for name, indexes := range Indexes {
		c := colls[name]
		if c == nil {
			return fmt.Errorf("indexes declared on %s, which the store does not keep", name)
		}
		if err := ensureIndexes(ctx, c, indexes); err != nil {
			return err
		}
	}
	return nil
}

// ensureIndexes creates the indexes coll lacks, one command each. (FerretDB
// v1.24 drops the connection when one createIndexes command names several
// indexes that all exist already, after a restart.)
func ensureIndexes(ctx context.Context, coll *collection, indexes []Index) error {
	specs, err := coll.indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("list indexes on %s: %w", coll.Name(), err)
	}
	have := map[string]bool{}
	for _, s := range specs {
		have[s.Name] = true
	}
	for _, ix := range indexes {
		if have[ix.Name] {
			continue
		}
		model := mongo.IndexModel{Keys: ix.Keys, Options: options.Index().SetName(ix.Name).SetUnique(ix.Unique)}
		if _, err := coll.indexes().CreateOne(ctx, model); err != nil {
			return fmt.Errorf("create index %s on %s: %w", ix.Name, coll.Name(), err)
		}
	}
	return nil
}

// OnFerretDB reports whether the store is FerretDB, on which dsar must run as
// a single process.
func (s *Store) OnFerretDB() bool { return s.gate.FerretDB() }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// HealthCollection holds the one document ProbeWrite rewrites.
const HealthCollection = "health"

// ProbeWrite rewrites one tiny document (by _id, in HealthCollection) and
// reports whether the store can write: ErrStorageFull (see StorageError)
// when its disk is full. Readiness uses it once a write failed for lack of
// space, to learn when space is back.
func (s *Store) ProbeWrite(ctx context.Context) error {
	_, err := s.health.Touch(ctx, "probe", s.now())
	if err != nil {
		return fmt.Errorf("probe write: %w", StorageError(err))
	}
	return nil
}

// CreateRequest stores a new request in one insert, then starts its audit
// chain; ErrConflict when a request with its id exists.
func (s *Store) CreateRequest(ctx context.Context, r *Request) error {
	if _, err := s.reqs.InsertOne(ctx, r); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("insert request %s: %w", r.ID, ErrConflict)
		}
		return fmt.Errorf("insert request: %w", err)
	}
	s.heads.put(r.ID, AuditEvent{}) // a new request's chain is empty
	s.catchUpAudit(ctx, r)
	return nil
}

// Request returns the request with the given id, or ErrNotFound.
func (s *Store) Request(ctx context.Context, id string) (*Request, error) {
	var r Request
	err := s.reqs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find request: %w", err)
	}
	return &r, nil
}

// ListSort orders a list of requests.
type ListSort string

// The orders.
const (
	// SortDue lists the most urgent first: by due date, then id.
	SortDue ListSort = "due"
	// SortNewest lists the newest first.
	SortNewest ListSort = "newest"
)

// ListFilter selects a page of requests. Every field is optional.
type ListFilter struct {
	Status     Status
	Type       Type
	Regulation Regulation
	Source     string
	AssignedTo string
	DueBefore  *time.Time
	DueAfter   *time.Time
	// Overdue keeps open requests past their due date (at Now), their
	// clock running.
	Overdue bool
	Now     time.Time
	Sort    ListSort // default SortDue
	// After is where the previous page ended; nil for the first page.
	After *Cursor
	Limit int // 1..100
}

// Cursor is the position of a request in a list.
type Cursor struct {
	Due time.Time `json:"due"`
	ID  string    `json:"id"`
}

// ListRequests returns up to f.Limit requests in f.Sort order and the cursor
// of the last when more follow. The filters a list can combine each have an
// index that leads with the field and continues with the sort.
func (s *Store) ListRequests(ctx context.Context, f ListFilter) ([]Request, *Cursor, error) {
	filter := bson.D{}
	eq := func(key string, v any, set bool) {
		if set {
			filter = append(filter, bson.E{Key: key, Value: v})
		}
	}
	eq("status", f.Status, f.Status != "")
	eq("type", f.Type, f.Type != "")
	eq("regulation", f.Regulation, f.Regulation != "")
	eq("source", f.Source, f.Source != "")
	eq("assigned_to", f.AssignedTo, f.AssignedTo != "")
	before := f.DueBefore
	if f.Overdue {
		// Open and past due: one $lt, the earlier bound (a key twice in
		// one operator document is an error on FerretDB).
		if before == nil || f.Now.Before(*before) {
			before = &f.Now
		}
		if f.Status == "" {
			filter = append(filter, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: OverdueStatuses}}})
		} else if !f.Status.Open() {
			return nil, nil, nil
		}
		// A paused clock is not late.
		filter = append(filter, bson.E{Key: "paused_at", Value: nil})
	}
	due := bson.D{}
	if before != nil {
		due = append(due, bson.E{Key: "$lt", Value: *before})
	}
	if f.DueAfter != nil {
		due = append(due, bson.E{Key: "$gte", Value: *f.DueAfter})
	}
	if len(due) > 0 {
		filter = append(filter, bson.E{Key: "due_at", Value: due})
	}
	sort := bson.D{{Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}
	if f.Sort == SortNewest {
		sort = bson.D{{Key: "_id", Value: -1}}
		if f.After != nil {
			filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: f.After.ID}}})
		}
	} else if c := f.After; c != nil {
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "due_at", Value: bson.D{{Key: "$gt", Value: c.Due}}}},
			bson.D{{Key: "due_at", Value: c.Due}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: c.ID}}}},
		}})
	}
	cur, err := s.reqs.Find(ctx, filter, options.Find().SetSort(sort).SetLimit(int64(f.Limit)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("list requests: %w", err)
	}
	var out []Request
	if err := cur.All(ctx, &out); err != nil {
		return nil, nil, fmt.Errorf("list requests: %w", err)
	}
	if len(out) <= f.Limit {
		return out, nil, nil
	}
	out = out[:f.Limit]
	last := out[len(out)-1]
	return out, &Cursor{Due: last.DueAt, ID: last.ID}, nil
}

// Assign gives a request to an agent ("" to nobody), in one update.
func (s *Store) Assign(ctx context.Context, id, agent string) (*Request, error) {
	var r Request
	err := s.reqs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "assigned_to", Value: agent}, {Key: "updated_at", Value: s.now()}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("assign request %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("assign request: %w", err)
	}
	return &r, nil
}

// updateFenced applies update to request id if it still matches fence.
func (s *Store) updateFenced(ctx context.Context, id string, fence, update bson.D) (*Request, error) {
	var r Request
	err := s.reqs.FindOneAndUpdate(ctx, append(bson.D{{Key: "_id", Value: id}}, fence...), update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("request %s: %w", id, ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("update request: %w", err)
	}
	return &r, nil
}

// Change is what a transition sets besides the status.
type Change struct {
	Actor  string
	Reason string
	// Identities, when set, replaces the request's identities (and their
	// blind index, Hashes).
	Identities []Identity
	Hashes     []string
	// ProvenHashes, when set, replaces the blind index of the proven
	// identities (see Request.ProvenHashes).
	ProvenHashes []string
	// ResolveBoundReached, when not 0, records that identity resolution
	// stopped at this many rounds while still finding identities.
	ResolveBoundReached int
	// Notices become due with the change (added to PendingNotices).
	Notices []string
	// Purge removes the subject's identities (and an agent's details),
	// keeping the blind index and the history.
	Purge bool
	// StatusTokens, when set, replaces the hashes of the tokens that may
	// follow the request.
	StatusTokens []string
	// ApprovedBy records who approved the request.
	ApprovedBy string
	// Exceptions are added to the request's exceptions.
	Exceptions []Exception
	// Unlink ends the request's link to the one it duplicated.
	Unlink bool
	// DenialBasis records why a request moving to denied was denied.
	DenialBasis DenialBasis
	// ResetFanout forgets the fan-out's failures (an agent's retry).
	ResetFanout bool
}

// Transition moves request id from one status to another in a single
// conditional update and records the move in its history. It returns the
// updated request; ErrConflict when the request is no longer in from (another
// actor moved it), ErrNotFound when it does not exist, ErrInvalidTransition
// when the state machine forbids the move.
func (s *Store) Transition(ctx context.Context, id string, from, to Status, c Change) (*Request, error) {
	return s.move(ctx, id, from, to, c, nil)
}

// move is Transition with more conditions on the request.
func (s *Store) move(ctx context.Context, id string, from, to Status, c Change, also bson.D) (*Request, error) {
	if err := checkMove(from, to); err != nil {
		return nil, err
	}
	now := s.now()
	set := bson.D{{Key: "status", Value: to}, {Key: "updated_at", Value: now}, {Key: "audit_due", Value: true}}
	if to.Closed() {
		set = append(set, bson.E{Key: "closed_at", Value: now})
	}
	if c.Identities != nil {
		set = append(set, bson.E{Key: "identities", Value: c.Identities}, bson.E{Key: "identity_hashes", Value: c.Hashes})
	}
	if c.ProvenHashes != nil {
		set = append(set, bson.E{Key: "proven_hashes", Value: c.ProvenHashes})
	}
	if c.ResolveBoundReached > 0 {
		set = append(set, bson.E{Key: "resolve_bound_reached", Value: c.ResolveBoundReached})
	}
	if c.Purge {
		set = append(set, bson.E{Key: "identities", Value: bson.A{}}, bson.E{Key: "purged_at", Value: now})
	}
	if c.StatusTokens != nil {
		set = append(set, bson.E{Key: "status_tokens", Value: c.StatusTokens})
	}
	if c.ApprovedBy != "" {
		set = append(set, bson.E{Key: "approved_by", Value: c.ApprovedBy})
	}
	if to == StatusDenied {
		basis := c.DenialBasis
		if basis == "" {
			basis = DeniedOther
		}
		set = append(set, bson.E{Key: "denial_basis", Value: basis})
	}
	update := bson.D{
		{Key: "$set", Value: set},
		{Key: "$push", Value: bson.D{{Key: "history", Value: Transition{From: from, To: to, At: now, Actor: c.Actor, Reason: c.Reason}}}},
	}
	var add bson.D
	if len(c.Notices) > 0 {
		add = append(add, bson.E{Key: "pending_notices", Value: bson.D{{Key: "$each", Value: c.Notices}}})
	}
	if len(c.Exceptions) > 0 {
		add = append(add, bson.E{Key: "exceptions", Value: bson.D{{Key: "$each", Value: c.Exceptions}}})
	}
	if len(add) > 0 {
		update = append(update, bson.E{Key: "$addToSet", Value: add})
	}
	if c.Purge || c.Unlink || to != StatusVerifying {
		// A verification only matters while verifying; an agent's details
		// go with the subject's.
		unset := bson.D{{Key: "verification", Value: ""}}
		if c.Purge {
			unset = append(unset, bson.E{Key: "agent", Value: ""})
		}
		if c.Unlink {
			unset = append(unset, bson.E{Key: "duplicate_of", Value: ""}, bson.E{Key: "unlink_to", Value: ""})
		}
		if c.ResetFanout {
			unset = append(unset, bson.E{Key: "fanout_failures", Value: ""}, bson.E{Key: "fanout_error", Value: ""})
		}
		if to.Closed() {
			// A closed request's clock has stopped for good; its pauses
			// stay recorded.
			unset = append(unset, bson.E{Key: "paused_at", Value: ""})
		}
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	var r Request
	err := s.reqs.FindOneAndUpdate(ctx,
		append(bson.D{{Key: "_id", Value: id}, {Key: "status", Value: from}}, also...),
		update,
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, s.missOrConflict(ctx, id, fmt.Sprintf("move %s -> %s", from, to))
	}
	if err != nil {
		return nil, fmt.Errorf("transition request: %w", err)
	}
	s.catchUpAudit(ctx, &r)
	return &r, nil
}

// missOrConflict tells apart, after a conditional update matched nothing, a
// request that does not exist from one in another state.
func (s *Store) missOrConflict(ctx context.Context, id, what string) error {
	n, err := s.reqs.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: request %s: %w", what, id, ErrNotFound)
	}
	return fmt.Errorf("%s: request %s: %w", what, id, ErrConflict)
}

// MarkFannedOut records that every job of an in-progress request exists and
// was handed to the queue. Marking twice is a no-op.
func (s *Store) MarkFannedOut(ctx context.Context, id string) error {
	now := s.now()
	_, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: StatusInProgress}, {Key: "fanned_out_at", Value: nil}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "fanned_out_at", Value: now}, {Key: "updated_at", Value: now}}},
			{Key: "$unset", Value: bson.D{{Key: "fanout_error", Value: ""}}},
		},
	)
	if err != nil {
		return fmt.Errorf("mark fanned out: %w", err)
	}
	return nil
}

// FanoutFailed counts a failed fan-out of a request not yet fanned out
// (verified, or in progress without its jobs) and records its error, which
// must name no person, in one conditional update. It returns the updated
// request, or ErrConflict when the request is fanned out or elsewhere.
func (s *Store) FanoutFailed(ctx context.Context, id, msg string) (*Request, error) {
	fence := bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusVerified, StatusInProgress}}}},
		{Key: "fanned_out_at", Value: nil},
	}
	r, err := s.updateFenced(ctx, id, fence, bson.D{
		{Key: "$set", Value: bson.D{{Key: "fanout_error", Value: msg}, {Key: "updated_at", Value: s.now()}}},
		{Key: "$inc", Value: bson.D{{Key: "fanout_failures", Value: 1}}},
	})
	if err != nil {
		return nil, fmt.Errorf("record fan-out failure: %w", err)
	}
	return r, nil
}

// EachStaleRequest calls fn for every request that is verified or in progress
// and unchanged since before: the sweep's candidates for a lost fan-out or an
// unnoticed completion. It reads in batches; fn may write.
func (s *Store) EachStaleRequest(ctx context.Context, before time.Time, fn func(*Request) error) error {
	filter := bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{StatusVerified, StatusInProgress}}}},
		{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before}}},
	}
	return each(ctx, s.reqs, filter, fn)
}

// each streams the documents matching filter to fn, 100 per round trip.
func each[T any](ctx context.Context, c *collection, filter bson.D, fn func(*T) error) error {
	return stream(ctx, c, filter, options.Find().SetBatchSize(100), fn)
}

// stream finds with opts and hands each document, decoded, to fn.
func stream[T any](ctx context.Context, c *collection, filter bson.D, opts *options.FindOptionsBuilder, fn func(*T) error) error {
	cur, err := c.Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("scan %s: %w", c.Name(), err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var v T
		if err := cur.Decode(&v); err != nil {
			return fmt.Errorf("decode %s: %w", c.Name(), err)
		}
		if err := fn(&v); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("scan %s: %w", c.Name(), err)
	}
	return nil
}

// DB returns the database the store keeps its collections in.
func (s *Store) DB() *mongo.Database { return s.db }
