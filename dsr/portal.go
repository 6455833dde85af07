package dsr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Notices lists every notice kind sent to the subject.
var Notices = []string{NoticeReceipt, NoticeVerify, NoticeCompleted, NoticeDenied, NoticeMerged, NoticeExtended}

// Alerts go to the business's escalation channel, not to the subject:
// AlertOverdue when a request passes its due date, and AlertReminder(n)
// n days before it.
const AlertOverdue = "alert_overdue"

// AlertReminder is the alert kind of a reminder n days before the due date.
func AlertReminder(n int) string { return fmt.Sprintf("alert_reminder_%d", n) }

// IsNotice reports whether kind is a notice or an alert kind.
func IsNotice(kind string) bool {
	return slices.Contains(Notices, kind) || kind == AlertOverdue || strings.HasPrefix(kind, "alert_reminder_")
}

// IsAlert reports whether kind goes to the escalation channel.
func IsAlert(kind string) bool { return strings.HasPrefix(kind, "alert_") }

// OpenStatuses are the statuses of a request still being worked on.
var OpenStatuses = []Status{StatusReceived, StatusVerifying, StatusVerified, StatusAwaitingApproval, StatusInProgress, StatusNeedsAttention}

// OverdueStatuses are the statuses in which a request past its due date is
// overdue: open ones, and duplicates (which still await an agent).
var OverdueStatuses = append(append([]Status{}, OpenStatuses...), StatusDuplicate)

// Open reports whether a request in status s is still to be answered.
func (s Status) Open() bool {
	for _, o := range OverdueStatuses {
		if s == o {
			return true
		}
	}
	return false
}

// DuplicateCandidates are the statuses a new request is a duplicate of:
// open ones whose identity is established (an unverified request may never
// be verified, and would hold its duplicates for ever).
var DuplicateCandidates = VerifiedOpenStatuses

// MaxVerificationRounds caps the codes sent for one request.
const MaxVerificationRounds = 5

// Verification errors.
var (
	// ErrLocked means the request's verification tries are used up.
	ErrLocked = errors.New("verification locked: too many tries")
	// ErrNoCode means no code has been sent for the request yet.
	ErrNoCode = errors.New("no verification code sent yet")
)

// IssueVerification stores the hashes of a new code and link token for a
// request that is verifying, replacing any earlier pair; the tries already
// made still count. The round counts only once the code is sent (see
// VerificationSent). ErrConflict when the request is not verifying.
func (s *Store) IssueVerification(ctx context.Context, id, codeHash, tokenHash string, expiresAt time.Time) error {
	now := s.now()
	res, err := s.reqs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: StatusVerifying}},
		bson.D{
			{Key: "$set", Value: bson.D{
				{Key: "verification.code_hash", Value: codeHash}, {Key: "verification.token_hash", Value: tokenHash},
				{Key: "verification.expires_at", Value: expiresAt.UTC().Truncate(time.Millisecond)},
				{Key: "verification.sent_at", Value: now}, {Key: "updated_at", Value: now},
			}},
			{Key: "$inc", Value: bson.D{{Key: "verification.round", Value: 0}, {Key: "verification.tries", Value: 0}}},
		})
	if err != nil {
		return fmt.Errorf("issue verification: %w", err)
	}
	if res.MatchedCount == 0 {
		return s.missOrConflict(ctx, id, "issue verification")
	}
	return nil
}

// VerificationSent counts a round: a code reached the mail system.
func (s *Store) VerificationSent(ctx context.Context, id string) error {
	if _, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: StatusVerifying}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "verification.round", Value: 1}}}}); err != nil {
		return fmt.Errorf("verification sent: %w", err)
	}
	return nil
}

// ReserveTry counts one verification attempt before it is checked, so that
// however many attempts arrive at once, no more than max are ever checked.
// It returns the request as it is after the count. ErrLocked when max tries
// were made, ErrNoCode when no code was sent, ErrConflict when the request is
// not verifying, ErrNotFound when it does not exist.
func (s *Store) ReserveTry(ctx context.Context, id string, max int) (*Request, error) {
	var r Request
	err := s.reqs.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "status", Value: StatusVerifying}, {Key: "verification.tries", Value: bson.D{{Key: "$lt", Value: max}}}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "verification.tries", Value: 1}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After),
	).Decode(&r)
	if err == nil {
		return &r, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("reserve verification try: %w", err)
	}
	cur, err := s.Request(ctx, id)
	switch {
	case err != nil:
		return nil, err
	case cur.Status != StatusVerifying:
		return nil, fmt.Errorf("verify request %s: %w", id, ErrConflict)
	case cur.Verification == nil:
		return nil, ErrNoCode
	}
	return cur, ErrLocked
}

// AddNotice makes a notice due to the subject of request id.
func (s *Store) AddNotice(ctx context.Context, id, notice string) error {
	now := s.now()
	res, err := s.reqs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "pending_notices", Value: notice}}}, {Key: "$set", Value: bson.D{{Key: "updated_at", Value: now}}}})
	if err != nil {
		return fmt.Errorf("add notice: %w", err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("add notice: request %s: %w", id, ErrNotFound)
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
		return fmt.Errorf("add status token: request %s: %w", id, ErrNotFound)
	}
	return nil
}

// VerifiedOpenStatuses are the open statuses of a request whose identity is
// established.
var VerifiedOpenStatuses = []Status{StatusVerified, StatusAwaitingApproval, StatusInProgress, StatusNeedsAttention}

// OpenIdentical returns up to limit requests of type t in one of statuses
// whose proven identities (Request.ProvenHashes) hold the one with
// blind-index hash, newest first: the requests a new one may be merged
// into. An identity a request only resolved or claimed never counts, and
// an appeal is never one: it reviews an earlier denial, its decision is
// final, and a new request is the person's right however it ends.
func (s *Store) OpenIdentical(ctx context.Context, hash string, t Type, statuses []Status, limit int) ([]Request, error) {
	return s.findByIdentity(ctx, "proven_hashes", hash, t, statuses, limit, bson.E{Key: "appeal_of", Value: nil})
}

// Unverified returns up to limit requests of type t still verifying that
// were filed with the identity of blind-index hash, newest first. (A
// request verifying has resolved nothing yet.)
func (s *Store) Unverified(ctx context.Context, hash string, t Type, limit int) ([]Request, error) {
	return s.findByIdentity(ctx, "identity_hashes", hash, t, []Status{StatusVerifying}, limit)
}

func (s *Store) findByIdentity(ctx context.Context, field, hash string, t Type, statuses []Status, limit int, more ...bson.E) ([]Request, error) {
	cur, err := s.reqs.Find(ctx,
		append(bson.D{{Key: field, Value: hash}, {Key: "type", Value: t}, {Key: "status", Value: bson.D{{Key: "$in", Value: statuses}}}}, more...),
		options.Find().SetSort(bson.D{{Key: "received_at", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("find open requests: %w", err)
	}
	var out []Request
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("find open requests: %w", err)
	}
	return out, nil
}

// EachUnverifiedPastDue calls fn for every request still verifying whose
// legal window closed before now, its clock running: it is to expire. (A
// paused clock is waiting for the person's answer; its due date moves when
// it resumes.)
func (s *Store) EachUnverifiedPastDue(ctx context.Context, now time.Time, fn func(*Request) error) error {
	return each(ctx, s.reqs, bson.D{
		{Key: "status", Value: StatusVerifying},
		{Key: "due_at", Value: bson.D{{Key: "$lt", Value: now}}},
		{Key: "paused_at", Value: nil},
	}, fn)
}

// EachPendingNotice calls fn for every request with a notice due since
// before, whose sending may have been lost.
func (s *Store) EachPendingNotice(ctx context.Context, before time.Time, fn func(*Request) error) error {
	return each(ctx, s.reqs, bson.D{
		{Key: "pending_notices", Value: bson.D{{Key: "$exists", Value: true}, {Key: "$ne", Value: bson.A{}}}},
		{Key: "updated_at", Value: bson.D{{Key: "$lt", Value: before}}},
	}, fn)
}

// FindDuplicate returns the request a new request of type t with hashes
// (blind-index hashes of its proven identities), received at since or
// later, duplicates, or nil: [PickDuplicate] over [Store.OpenDuplicates],
// the one rule that bulk filing applies too. An identity a request only
// resolved or claimed never counts, and an appeal is never one.
func (s *Store) FindDuplicate(ctx context.Context, hashes []string, t Type, since time.Time) (*Request, error) {
	cands, err := s.OpenDuplicates(ctx, hashes, []Type{t}, since)
	if err != nil {
		return nil, err
	}
	return PickDuplicate(cands, hashes, t, since), nil
}
