package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/dsr"
)

// AddNotice makes a notice due to the subject of request id.
func (s *Store) AddNotice(ctx context.Context, id, notice string) error {
	now := s.now()
	res, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "pending_notices", Value: notice}}}, {Key: "$set", Value: bson.D{{Key: "updated_at", Value: now}}}})
	if err != nil {
		return fmt.Errorf("add notice: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("add notice: request %s: %w", id, dsr.ErrNotFound)
	}
	return nil
}

// NoticeSent records that a notice went out: it is no longer pending.
func (s *Store) NoticeSent(ctx context.Context, id, notice string) error {
	if _, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$pullAll", Value: bson.D{{Key: "pending_notices", Value: bson.A{notice}}}}}); err != nil {
		return fmt.Errorf("notice sent: %w", err)
	}
	return nil
}

// AddStatusToken lets one more token (by its hash) follow request id.
func (s *Store) AddStatusToken(ctx context.Context, id, tokenHash string) error {
	res, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "status_tokens", Value: tokenHash}}}})
	if err != nil {
		return fmt.Errorf("add status token: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("add status token: request %s: %w", id, dsr.ErrNotFound)
	}
	return nil
}

// OpenIdentical returns up to limit requests of type t in one of statuses
// whose proven identities (Request.ProvenHashes) hold the one with
// blind-index hash, newest first: the requests a new one may be merged
// into. An identity a request only resolved or claimed never counts, and
// an appeal is never one: it reviews an earlier denial, its decision is
// final, and a new request is the person's right however it ends.
func (s *Store) OpenIdentical(ctx context.Context, hash string, t dsr.Type, statuses []dsr.Status, limit int) ([]dsr.Request, error) {
	return s.findByIdentity(ctx, "proven_hashes", hash, t, statuses, limit, bson.E{Key: "appeal_of", Value: nil})
}

// Unverified returns up to limit requests of type t still verifying that
// were filed with the identity of blind-index hash, newest first. (A
// request verifying has resolved nothing yet.)
func (s *Store) Unverified(ctx context.Context, hash string, t dsr.Type, limit int) ([]dsr.Request, error) {
	return s.findByIdentity(ctx, "identity_hashes", hash, t, []dsr.Status{dsr.StatusVerifying}, limit)
}

func (s *Store) findByIdentity(ctx context.Context, field, hash string, t dsr.Type, statuses []dsr.Status, limit int, more ...bson.E) ([]dsr.Request, error) {
	cur, err := s.reqs.Find(ctx,
		append(bson.D{{Key: field, Value: hash}, {Key: "type", Value: t}, {Key: "status", Value: bson.D{{Key: "$in", Value: statuses}}}}, more...),
		options.Find().SetSort(bson.D{{Key: "received_at", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("find open requests: %w", err)
	}
	var out []dsr.Request
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("find open requests: %w", err)
	}
	return out, nil
}

// EachUnverifiedPastDue calls fn for every request still verifying whose
// legal window closed before now, its clock running: it is to expire. (A
// paused clock is waiting for the person's answer; its due date moves when
// it resumes.)
func (s *Store) EachUnverifiedPastDue(ctx context.Context, now time.Time, fn func(*dsr.Request) error) error {
	return each(ctx, s.reqs, bson.D{
		{Key: "status", Value: dsr.StatusVerifying},
		{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now}}},
		{Key: "paused_at", Value: nil},
	}, fn)
}

// EachPendingNotice calls fn for every request with a notice due since
// before, whose sending may have been lost.
func (s *Store) EachPendingNotice(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	return each(ctx, s.reqs, bson.D{
		{Key: "pending_notices", Value: bson.D{{Key: "$exists", Value: true}, {Key: "$ne", Value: bson.A{}}}},
		{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before}}},
	}, fn)
}

// CreateRequest stores a new request in one insert, then starts its audit
// chain; ErrConflict when a request with its id exists.
func (s *Store) CreateRequest(ctx context.Context, r *dsr.Request) error {
	if _, err := s.reqs.InsertOne(ctx, r); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("insert request %s: %w", r.ID, dsr.ErrConflict)
		}
		return fmt.Errorf("insert request: %w", err)
	}
	s.heads.put(r.ID, dsr.AuditEvent{}) // a new request's chain is empty
	s.catchUpAudit(ctx, r)
	return nil
}

// Request returns the request with the given id, or ErrNotFound.
func (s *Store) Request(ctx context.Context, id string) (*dsr.Request, error) {
	var r dsr.Request
	err := s.reqs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("request %s: %w", id, dsr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("find request: %w", err)
	}
	return &r, nil
}

// ListRequests returns up to f.Limit requests in f.Sort order and the cursor
// of the last when more follow. The filters a list can combine each have an
// index that leads with the field and continues with the sort.
func (s *Store) ListRequests(ctx context.Context, f dsr.ListFilter) ([]dsr.Request, *dsr.Cursor, error) {
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
			filter = append(filter, bson.E{Key: "status", Value: bson.D{{Key: "$in", Value: dsr.OverdueStatuses}}})
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
	if f.Sort == dsr.SortNewest {
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
	var out []dsr.Request
	if err := cur.All(ctx, &out); err != nil {
		return nil, nil, fmt.Errorf("list requests: %w", err)
	}
	if len(out) <= f.Limit {
		return out, nil, nil
	}
	out = out[:f.Limit]
	last := out[len(out)-1]
	return out, &dsr.Cursor{Due: last.DueAt, ID: last.ID}, nil
}

// Assign gives a request to an agent ("" to nobody), in one update.
func (s *Store) Assign(ctx context.Context, id, agent string) (*dsr.Request, error) {
	var r dsr.Request
	err := s.reqs.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "assigned_to", Value: agent}, {Key: "updated_at", Value: s.now()}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("assign request %s: %w", id, dsr.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("assign request: %w", err)
	}
	return &r, nil
}

// updateFenced applies update to request id if it still matches fence.
func (s *Store) updateFenced(ctx context.Context, id string, fence, update bson.D) (*dsr.Request, error) {
	var r dsr.Request
	err := s.reqs.FindOneAndUpdate(ctx, append(bson.D{{Key: "_id", Value: id}}, fence...), update,
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("request %s: %w", id, dsr.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("update request: %w", err)
	}
	return &r, nil
}

// Transition moves request id from one status to another in a single
// conditional update and records the move in its history. It returns the
// updated request; ErrConflict when the request is no longer in from (another
// actor moved it), ErrNotFound when it does not exist, ErrInvalidTransition
// when the state machine forbids the move.
func (s *Store) Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (*dsr.Request, error) {
	return s.move(ctx, id, from, to, c, nil)
}

// move is Transition with more conditions on the request.
func (s *Store) move(ctx context.Context, id string, from, to dsr.Status, c dsr.Change, also bson.D) (*dsr.Request, error) {
	if err := dsr.CheckMove(from, to); err != nil {
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
	if c.JobCounts != nil {
		set = append(set, bson.E{Key: "jobs_open", Value: c.JobCounts.Open}, bson.E{Key: "jobs_failed", Value: c.JobCounts.Failed})
	}
	if to == dsr.StatusDenied {
		basis := c.DenialBasis
		if basis == "" {
			basis = dsr.DeniedOther
		}
		set = append(set, bson.E{Key: "denial_basis", Value: basis})
	}
	notices := c.Notices
	if c.OutcomeHook {
		set = append(set, bson.E{Key: "outcome_hook", Value: true})
		if dsr.OutcomeDue(to) {
			notices = append(slices.Clip(notices), dsr.NoticeHookOutcome)
		}
	}
	build := func(notices []string) bson.D {
		update := bson.D{
			{Key: "$set", Value: set},
			{Key: "$push", Value: bson.D{{Key: "history", Value: dsr.Transition{From: from, To: to, At: now, Actor: c.Actor, Reason: c.Reason}}}},
		}
		var add bson.D
		if len(notices) > 0 {
			add = append(add, bson.E{Key: "pending_notices", Value: bson.D{{Key: "$each", Value: notices}}})
		}
		if len(c.Exceptions) > 0 {
			add = append(add, bson.E{Key: "exceptions", Value: bson.D{{Key: "$each", Value: c.Exceptions}}})
		}
		if len(add) > 0 {
			update = append(update, bson.E{Key: "$addToSet", Value: add})
		}
		if c.Purge || c.Unlink || to != dsr.StatusVerifying {
			// A verification only matters while verifying; an agent's details
			// go with the subject's.
			unset := bson.D{{Key: "verification", Value: ""}}
			if c.Purge {
				unset = append(unset, bson.E{Key: "agent", Value: ""}, bson.E{Key: "note", Value: ""}, bson.E{Key: "new_values", Value: ""}, bson.E{Key: "data_key", Value: ""})
			}
			if c.Unlink {
				unset = append(unset, bson.E{Key: "duplicate_of", Value: ""}, bson.E{Key: "unlink_to", Value: ""})
			}
			if c.ResetFanout {
				unset = append(unset, bson.E{Key: "fanout_failures", Value: ""}, bson.E{Key: "fanout_error", Value: ""}, bson.E{Key: "hook_hold", Value: ""})
			}
			if to.Closed() {
				// A closed request's clock has stopped for good; its pauses
				// stay recorded.
				unset = append(unset, bson.E{Key: "paused_at", Value: ""})
			}
			update = append(update, bson.E{Key: "$unset", Value: unset})
		}
		return update
	}
	// A request passed by a privacy protocol with a callback owes the
	// party every status (dsr.NoticeProtocolStatus), in the same update:
	// one update is tried for a request without callbacks, the other for
	// one with, each conditional on which it is.
	var r dsr.Request
	err := s.reqs.FindOneAndUpdate(ctx,
		append(bson.D{{Key: "_id", Value: id}, {Key: "status", Value: from}, {Key: "status_callbacks", Value: bson.D{{Key: "$ne", Value: true}}}}, also...),
		build(notices),
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		err = s.reqs.FindOneAndUpdate(ctx,
			append(bson.D{{Key: "_id", Value: id}, {Key: "status", Value: from}, {Key: "status_callbacks", Value: true}}, also...),
			build(append(slices.Clip(notices), dsr.NoticeProtocolStatus)),
			options.FindOneAndUpdate().SetReturnDocument(options.After),
		).Decode(&r)
	}
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
		return fmt.Errorf("%s: request %s: %w", what, id, dsr.ErrNotFound)
	}
	return fmt.Errorf("%s: request %s: %w", what, id, dsr.ErrConflict)
}

// MarkFannedOut records that every job of an in-progress request exists and
// was handed to the queue. Marking twice is a no-op.
func (s *Store) MarkFannedOut(ctx context.Context, id string) error {
	now := s.now()
	_, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: dsr.StatusInProgress}, {Key: "fanned_out_at", Value: nil}},
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
func (s *Store) FanoutFailed(ctx context.Context, id, msg string) (*dsr.Request, error) {
	fence := bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{dsr.StatusVerified, dsr.StatusInProgress}}}},
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
func (s *Store) EachStaleRequest(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	filter := bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{dsr.StatusVerified, dsr.StatusInProgress}}}},
		{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before}}},
	}
	return each(ctx, s.reqs, filter, fn)
}
