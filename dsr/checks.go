package dsr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Due is what the deadline checks read of a request: they filter in the
// query, so a run with nothing to do reads nothing.
type Due struct {
	ID    string    `bson:"_id"`
	DueAt time.Time `bson:"due_at"`
}

// dueProjection reads only the fields of [Due].
var dueProjection = bson.D{{Key: "due_at", Value: 1}}

// EachToRemind calls fn for every open request, its clock running and not
// overdue, due in [from, to) that has not had the reminder n days before
// its due date. The index checks_due serves it.
func (s *Store) EachToRemind(ctx context.Context, from, to time.Time, n int, fn func(*Due) error) error {
	return scan(ctx, s.reqs, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: OverdueStatuses}}},
		{Key: "due_at", Value: bson.D{{Key: "$gte", Value: from.UTC()}, {Key: "$lt", Value: to.UTC()}}},
		{Key: "reminded", Value: bson.D{{Key: "$ne", Value: n}}},
		{Key: "paused_at", Value: nil},
		{Key: "overdue_at", Value: nil},
	}, dueProjection, fn)
}

// EachToEscalate calls fn for every open request, its clock running, due
// before now and not marked overdue yet. The index checks_due serves it.
func (s *Store) EachToEscalate(ctx context.Context, now time.Time, fn func(*Due) error) error {
	return scan(ctx, s.reqs, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: OverdueStatuses}}},
		{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now.UTC()}}},
		{Key: "overdue_at", Value: nil},
		{Key: "paused_at", Value: nil},
	}, dueProjection, fn)
}

// Remind records that the reminder n days before its due date is due for
// request id, in one conditional update that repeats the conditions of
// [Store.EachToRemind] (open, clock running, not overdue, due in [from,
// to)): it returns false when it was recorded before, or the request
// changed since it was read (closed, paused, extended), so a check run
// twice reminds once and never for a due date that moved.
func (s *Store) Remind(ctx context.Context, id string, n int, from, to time.Time) (bool, error) {
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{
			{Key: "_id", Value: id}, {Key: "reminded", Value: bson.D{{Key: "$ne", Value: n}}},
			{Key: "status", Value: bson.D{{Key: "$in", Value: OverdueStatuses}}},
			{Key: "due_at", Value: bson.D{{Key: "$gte", Value: from.UTC()}, {Key: "$lt", Value: to.UTC()}}},
			{Key: "paused_at", Value: nil}, {Key: "overdue_at", Value: nil},
		},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "reminded", Value: n}, {Key: "pending_notices", Value: AlertReminder(n)}}}})
	if err != nil {
		return false, fmt.Errorf("remind: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// Escalate marks request id overdue, in one conditional update that
// repeats the conditions of [Store.EachToEscalate] (open, clock running,
// due before now), and makes its overdue alert due; false when it was
// marked before or changed since it was read.
func (s *Store) Escalate(ctx context.Context, id string, now time.Time) (bool, error) {
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{
			{Key: "_id", Value: id}, {Key: "overdue_at", Value: nil},
			{Key: "status", Value: bson.D{{Key: "$in", Value: OverdueStatuses}}},
			{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now.UTC()}}},
			{Key: "paused_at", Value: nil},
		},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "overdue_at", Value: s.now()}}},
			{Key: "$addToSet", Value: bson.D{{Key: "pending_notices", Value: AlertOverdue}}},
		})
	if err != nil {
		return false, fmt.Errorf("escalate: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// ClosedStatuses are the statuses of a request whose life is over.
var ClosedStatuses = []Status{StatusCompleted, StatusDenied, StatusCancelled, StatusExpired}

// EachExportsToPurge calls fn with the id of every access request closed
// before t whose exported data is still kept. The index checks_exports
// serves it.
func (s *Store) EachExportsToPurge(ctx context.Context, t time.Time, fn func(*Due) error) error {
	return scan(ctx, s.reqs, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: ClosedStatuses}}},
		{Key: "closed_at", Value: bson.D{{Key: "$lt", Value: t.UTC()}}},
		{Key: "type", Value: TypeAccess},
		{Key: "exports_purged_at", Value: nil},
	}, dueProjection, fn)
}

// EachIdentitiesToPurge calls fn with the id of every request closed before
// t whose clear identities are still kept. The index checks_identities
// serves it.
func (s *Store) EachIdentitiesToPurge(ctx context.Context, t time.Time, fn func(*Due) error) error {
	return scan(ctx, s.reqs, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: ClosedStatuses}}},
		{Key: "closed_at", Value: bson.D{{Key: "$lt", Value: t.UTC()}}},
		{Key: "purged_at", Value: nil},
	}, dueProjection, fn)
}

// PurgeExports deletes the exported data of a request and records when; it
// returns false when it was purged before.
func (s *Store) PurgeExports(ctx context.Context, id string) (bool, error) {
	_, err := s.exports.DeleteMany(ctx, bson.D{{Key: "request_id", Value: id}})
	if err != nil {
		return false, fmt.Errorf("purge exports: %w", err)
	}
	res, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "exports_purged_at", Value: nil}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "exports_purged_at", Value: s.now()}}}})
	if err != nil {
		return false, fmt.Errorf("purge exports: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// PurgeIdentities removes the clear identities (and an agent's details) of
// a closed request, keeping its blind index, history and audit chain as
// evidence; false when they were purged before.
func (s *Store) PurgeIdentities(ctx context.Context, id string) (bool, error) {
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "purged_at", Value: nil}, {Key: "status", Value: bson.D{{Key: "$in", Value: ClosedStatuses}}}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "identities", Value: bson.A{}}, {Key: "purged_at", Value: s.now()}, {Key: "note", Value: ""}}},
			{Key: "$unset", Value: bson.D{{Key: "agent", Value: ""}}},
		})
	if err != nil {
		return false, fmt.Errorf("purge identities: %w", err)
	}
	return res.ModifiedCount == 1, nil
}

// PausableStatuses are the statuses in which a clock may stop: before the
// identity is confirmed, the only wait the law allows for. Verification
// (on the portal) resumes it.
var PausableStatuses = []Status{StatusReceived, StatusVerifying}

// ErrNotPausable means the request's rule does not let its clock stop.
var ErrNotPausable = errors.New("the clock of this request cannot be paused")

// PauseClock stops the clock of an open request, where its rule allows it
// (GDPR: while waiting for information asked for to confirm identity), in
// one conditional update. ErrNotPausable, or ErrConflict when it is paused
// already or closed.
func (s *Store) PauseClock(ctx context.Context, id, actor, reason string) (*Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	if !RuleFor(r.Regulation, r.Type).Pausable {
		return nil, fmt.Errorf("pause %s: %s: %w", id, r.Regulation, ErrNotPausable)
	}
	now := s.now()
	return s.updateFenced(ctx, id, bson.D{{Key: "paused_at", Value: nil}, {Key: "status", Value: bson.D{{Key: "$in", Value: PausableStatuses}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "paused_at", Value: now}, {Key: "updated_at", Value: now}}},
			{Key: "$push", Value: bson.D{{Key: "pauses", Value: Pause{By: actor, At: now, Reason: reason}}}}})
}

// ResumeClock restarts a paused clock: the due date moves by the length of
// the pause, and the reminders start over for it. ErrConflict when it is
// not paused.
func (s *Store) ResumeClock(ctx context.Context, id string) (*Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.PausedAt == nil || len(r.Pauses) == 0 {
		return nil, fmt.Errorf("resume %s: not paused: %w", id, ErrConflict)
	}
	now := s.now()
	pauses := append([]Pause(nil), r.Pauses...)
	pauses[len(pauses)-1].ResumedAt = &now
	due := r.DueAt.Add(now.Sub(*r.PausedAt))
	return s.updateFenced(ctx, id, bson.D{{Key: "paused_at", Value: *r.PausedAt}, {Key: "due_at", Value: r.DueAt}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: "paused_at", Value: nil}, {Key: "due_at", Value: due}, {Key: "pauses", Value: pauses}, {Key: "updated_at", Value: now}}},
			// The reminders count down to the new due date.
			{Key: "$unset", Value: bson.D{{Key: "reminded", Value: ""}}},
		})
}

// ErrNotAppealable means the request cannot be appealed: not denied, its
// regulation grants no appeal, it was appealed already, or it is itself an
// appeal.
var ErrNotAppealable = errors.New("no appeal possible")

// ErrProofRequired means the appeal needs a new proof of identity: the
// request it appeals was denied as unverifiable, or never verified.
var ErrProofRequired = errors.New("a new proof of identity is required")

// AppealFiling is what an appeal is filed with.
type AppealFiling struct {
	Actor  string
	Reason string
	// Attested, set, is a new proof: how the filing agent verified the
	// person. Verify, set, asks for one: the person is sent the portal's
	// verification (an emailed code) and the appeal starts verifying.
	// Neither: the appeal inherits the proof of the request it appeals.
	Attested string
	Verify   bool
	// Index hashes the identities an attestation proves.
	Index *BlindIndex
}

// Proven reports whether the request's identity was ever established: it
// reached verified (proven by the person, attested by an agent, or an
// opt-out, which needs no proof), and was not denied as unverifiable.
func (r *Request) Proven() bool {
	if r.DenialBasis == DeniedUnverifiable {
		return false
	}
	for _, h := range r.History {
		if h.To == StatusVerified {
			return true
		}
	}
	return false
}

// Undecided reports whether the request ended without anyone deciding it:
// expired or cancelled while it still waited for the person's verification.
// An appeal that ends so leaves the denied request free to be appealed.
func (r *Request) Undecided() bool {
	if r.Status != StatusExpired && r.Status != StatusCancelled {
		return false
	}
	for _, h := range r.History {
		if h.To != StatusVerifying && h.To != StatusExpired && h.To != StatusCancelled {
			return false
		}
	}
	return true
}

// Appeal files the appeal against a denied request, where its regulation
// grants one (VCDPA, CTDPA): a new request of the same type and identities,
// linked both ways, due within AppealPeriod, waiting for an agent's review.
// It inherits the denied request's proof of identity; a request denied as
// unverifiable, or never verified, is appealed only with a new one
// (ErrProofRequired otherwise): the filing agent's attestation, or the
// portal's verification, which the appeal then waits for in verifying.
// One appeal per request: the denied request is claimed first.
func (s *Store) Appeal(ctx context.Context, id string, f AppealFiling) (*Request, error) {
	r, err := s.Request(ctx, id)
	if err != nil {
		return nil, err
	}
	// One appeal: the decision on an appeal is final.
	if r.Status != StatusDenied || !Appealable(r.Regulation) || len(r.Identities) == 0 || r.AppealOf != "" {
		return nil, fmt.Errorf("appeal %s: %w", id, ErrNotAppealable)
	}
	status, method, proven := StatusAwaitingApproval, r.VerificationMethod, r.ProvenHashes
	var notices []string
	switch {
	case f.Attested != "":
		status, method, proven = StatusAwaitingApproval, f.Attested, f.Index.HashAll(Given(r.Identities))
	case f.Verify:
		if !slices.ContainsFunc(r.Identities, func(i Identity) bool { return i.Kind == KindEmail && i.Source == SourceSubject }) {
			var ve ValidationError
			ve.Add("identity.verified", "the portal's verification needs the person's email, which the denied request does not hold; attest a verification instead (verified: true with a method)")
			return nil, &ve
		}
		// Proven by the emailed code, as on the portal.
		status, method, proven, notices = StatusVerifying, "", nil, []string{NoticeVerify}
	case !r.Proven():
		return nil, fmt.Errorf("appeal %s: %w", id, ErrProofRequired)
	}
	appealID, err := NewRequestID()
	if err != nil {
		return nil, err
	}
	// The claim of an earlier appeal that was never decided (or never
	// stored) is free: the one appeal the law grants is one decision.
	var claim any // nil: unclaimed
	if r.AppealedBy != "" {
		prior, err := s.Request(ctx, r.AppealedBy)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && prior.Undecided()):
			claim = r.AppealedBy
		case err != nil:
			return nil, fmt.Errorf("appeal %s: %w", id, err)
		default:
			return nil, fmt.Errorf("appeal %s: appealed already: %w", id, ErrNotAppealable)
		}
	}
	_, err = s.updateFenced(ctx, id, bson.D{{Key: "status", Value: StatusDenied}, {Key: "appealed_by", Value: claim}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "appealed_by", Value: appealID}}}})
	if errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("appeal %s: appealed already: %w", id, ErrNotAppealable)
	}
	if err != nil {
		return nil, fmt.Errorf("appeal %s: %w", id, err)
	}
	now := s.now()
	a := &Request{
		ID: appealID, Type: r.Type, Regulation: r.Regulation, Status: status, Source: "appeal", FiledBy: f.Actor,
		Identities: r.Identities, IdentityHashes: r.IdentityHashes, ProvenHashes: proven, ReceivedAt: now, DueAt: Calendar{}.Add(now, AppealPeriod),
		UpdatedAt: now, Notify: r.Notify || f.Verify, PendingNotices: notices, AppealOf: r.ID, AuditDue: true, VerificationMethod: method,
		History: []Transition{{To: status, At: now, Actor: f.Actor, Reason: "appeal of " + r.ID + ": " + f.Reason}},
	}
	if err := s.CreateRequest(ctx, a); err != nil {
		// Release the claim, so the appeal can be filed again. (A crash
		// right here leaves a claim naming no request, which the next
		// appeal finds free.)
		_, uerr := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "appealed_by", Value: appealID}},
			bson.D{{Key: "$unset", Value: bson.D{{Key: "appealed_by", Value: ""}}}})
		return nil, errors.Join(fmt.Errorf("appeal %s: %w", id, err), uerr)
	}
	return a, nil
}
