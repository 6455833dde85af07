package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// update applies fn to request id in one write transaction: it reads the
// request, fn checks its condition (returning dsr.ErrConflict when it no
// longer holds) and changes it, and the request is written back with the
// audit events of the history entries fn added. It returns the request as
// stored; dsr.ErrNotFound when there is none.
func (s *Store) update(ctx context.Context, id string, fn func(d *requestDoc) error) (*dsr.Request, error) {
	var out *dsr.Request
	err := s.write(ctx, func(tx *wtx) error {
		var err error
		out, err = s.updateIn(ctx, tx, id, fn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// updateIn is update within tx, the caller's write transaction, for an
// operation that writes more than the request in one transaction.
func (s *Store) updateIn(ctx context.Context, tx execer, id string, fn func(d *requestDoc) error) (*dsr.Request, error) {
	d, err := loadRequest(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	hashes, proven := d.IdentityHashes, d.ProvenHashes
	if err := fn(d); err != nil {
		return nil, err
	}
	if err := s.catchUp(ctx, tx, &d.Request); err != nil {
		return nil, err
	}
	if err := saveRequest(ctx, tx, d, hashes, proven); err != nil {
		return nil, err
	}
	return &d.Request, nil
}

// conflict is the error of a conditional update whose condition failed.
func conflict(what, id string) error {
	return fmt.Errorf("%s: request %s: %w", what, id, dsr.ErrConflict)
}

// CreateRequest stores a new request with its audit chain started, in one
// transaction; dsr.ErrConflict when a request with its id exists.
func (s *Store) CreateRequest(ctx context.Context, r *dsr.Request) error {
	d := &requestDoc{Request: *r}
	err := s.write(ctx, func(tx *wtx) error {
		if err := s.catchUp(ctx, tx, &d.Request); err != nil {
			return err
		}
		return insertRequest(ctx, tx, d)
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("insert request %s: %w", r.ID, dsr.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert request: %w", err)
	}
	*r = d.Request
	return nil
}

// CreateRequests stores new requests with their audit chains started, in
// one transaction however many there are. It returns one error per
// request, nil for those stored: dsr.ErrConflict when a request with its id
// exists, or when its DuplicateOf names a request of the same call that was
// not stored (so no stored request points at one that does not exist). An
// error of the store itself fails them all, and none is stored.
func (s *Store) CreateRequests(ctx context.Context, reqs []*dsr.Request) []error {
	errs := make([]error, len(reqs))
	if len(reqs) == 0 {
		return errs
	}
	docs := make([]*requestDoc, len(reqs))
	err := s.write(ctx, func(tx *wtx) error {
		clear(errs)
		lost := map[string]bool{}
		for i, r := range reqs {
			if r.DuplicateOf != "" && lost[r.DuplicateOf] {
				errs[i] = fmt.Errorf("request %s duplicates %s, which was not stored: %w", r.ID, r.DuplicateOf, dsr.ErrConflict)
				lost[r.ID] = true
				continue
			}
			var taken bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM requests WHERE id = ?)`, r.ID).Scan(&taken); err != nil {
				return err
			}
			if taken {
				errs[i] = fmt.Errorf("insert request %s: %w", r.ID, dsr.ErrConflict)
				lost[r.ID] = true
				continue
			}
			d := &requestDoc{Request: *r}
			if err := s.catchUp(ctx, tx, &d.Request); err != nil {
				return err
			}
			if err := insertRequest(ctx, tx, d); err != nil {
				if isUniqueViolation(err) { // the same id twice in one call
					errs[i] = fmt.Errorf("insert request %s: %w", r.ID, dsr.ErrConflict)
					lost[r.ID] = true
					continue
				}
				return err
			}
			docs[i] = d
		}
		return nil
	})
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("insert requests: %w", err)
		}
		return errs
	}
	for i, r := range reqs {
		if errs[i] == nil {
			*r = docs[i].Request
		}
	}
	return errs
}

// Request returns the request with the given id, or dsr.ErrNotFound.
func (s *Store) Request(ctx context.Context, id string) (*dsr.Request, error) {
	d, err := loadRequest(ctx, s.r, id)
	if err != nil {
		return nil, err
	}
	return &d.Request, nil
}

// Assign gives a request to an agent ("" to nobody).
func (s *Store) Assign(ctx context.Context, id, agent string) (*dsr.Request, error) {
	r, err := s.update(ctx, id, func(d *requestDoc) error {
		d.AssignedTo, d.UpdatedAt = agent, s.now()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("assign request: %w", err)
	}
	return r, nil
}

// Transition moves request id from one status to another in one
// transaction and records the move in its history. It returns the updated
// request; dsr.ErrConflict when the request is no longer in from (another
// actor moved it), dsr.ErrNotFound when it does not exist,
// dsr.ErrInvalidTransition when the state machine forbids the move.
func (s *Store) Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (*dsr.Request, error) {
	return s.move(ctx, id, from, to, c, nil)
}

// move is Transition with a further condition on the request (nil: none);
// also returns false when it does not hold.
func (s *Store) move(ctx context.Context, id string, from, to dsr.Status, c dsr.Change, also func(d *requestDoc) bool) (*dsr.Request, error) {
	if err := dsr.CheckMove(from, to); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("move %s -> %s", from, to)
	r, err := s.update(ctx, id, func(d *requestDoc) error {
		if d.Status != from || (also != nil && !also(d)) {
			return conflict(what, id)
		}
		s.applyMove(d, from, to, c)
		return nil
	})
	if err != nil {
		if errors.Is(err, dsr.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if !errors.Is(err, dsr.ErrConflict) {
			err = fmt.Errorf("transition request: %w", err)
		}
		return nil, err
	}
	return r, nil
}

// applyMove changes d as a move from -> to with c does.
func (s *Store) applyMove(d *requestDoc, from, to dsr.Status, c dsr.Change) {
	now := s.now()
	r := &d.Request
	r.Status, r.UpdatedAt, r.AuditDue = to, now, true
	if to.Closed() {
		r.ClosedAt = &now
	}
	if c.Identities != nil {
		r.Identities, r.IdentityHashes = c.Identities, c.Hashes
	}
	if c.ProvenHashes != nil {
		r.ProvenHashes = c.ProvenHashes
	}
	if c.ResolveBoundReached > 0 {
		r.ResolveBoundReached = c.ResolveBoundReached
	}
	if c.Purge {
		r.Identities, r.PurgedAt = []dsr.Identity{}, &now
	}
	if c.StatusTokens != nil {
		r.StatusTokens = c.StatusTokens
	}
	if c.ApprovedBy != "" {
		r.ApprovedBy = c.ApprovedBy
	}
	if c.JobCounts != nil {
		d.JobsOpen, d.JobsFailed = c.JobCounts.Open, c.JobCounts.Failed
	}
	if to == dsr.StatusDenied {
		r.DenialBasis = c.DenialBasis
		if r.DenialBasis == "" {
			r.DenialBasis = dsr.DeniedOther
		}
	}
	r.History = append(r.History, dsr.Transition{From: from, To: to, At: now, Actor: c.Actor, Reason: c.Reason})
	notices := c.Notices
	if c.OutcomeHook {
		r.OutcomeHook = true
		if dsr.OutcomeDue(to) {
			notices = append(slices.Clip(notices), dsr.NoticeHookOutcome)
		}
	}
	if r.StatusCallbacks {
		notices = append(slices.Clip(notices), dsr.NoticeProtocolStatus)
	}
	for _, n := range notices {
		if !slices.Contains(r.PendingNotices, n) {
			r.PendingNotices = append(r.PendingNotices, n)
		}
	}
	for _, e := range c.Exceptions {
		if !slices.Contains(r.Exceptions, e) {
			r.Exceptions = append(r.Exceptions, e)
		}
	}
	if c.Purge || c.Unlink || to != dsr.StatusVerifying {
		// A verification only matters while verifying; an agent's details
		// go with the subject's.
		r.Verification = nil
		if c.Purge {
			r.Agent, r.Note, r.NewValues, r.DataKey = nil, "", nil, ""
		}
		if c.Unlink {
			r.DuplicateOf, r.UnlinkTo = "", ""
		}
		if c.ResetFanout {
			r.FanoutFailures, r.FanoutError, r.HookHold = 0, "", nil
		}
		if to.Closed() {
			// A closed request's clock has stopped for good; its pauses
			// stay recorded.
			r.PausedAt = nil
		}
	}
}

// MarkFannedOut records that every job of an in-progress request exists and
// was handed to the queue. Marking twice is a no-op.
func (s *Store) MarkFannedOut(ctx context.Context, id string) error {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if d.Status != dsr.StatusInProgress || d.FannedOutAt != nil {
			return errNoChange
		}
		now := s.now()
		d.FannedOutAt, d.UpdatedAt, d.FanoutError = &now, now, ""
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) && !errors.Is(err, dsr.ErrNotFound) {
		return fmt.Errorf("mark fanned out: %w", err)
	}
	return nil
}

// errNoChange ends an update that has nothing to do, writing nothing.
var errNoChange = errors.New("no change")

// FanoutFailed counts a failed fan-out of a request not yet fanned out
// (verified, or in progress without its jobs) and records its error, which
// must name no person. It returns the updated request, or dsr.ErrConflict
// when the request is fanned out or elsewhere.
func (s *Store) FanoutFailed(ctx context.Context, id, msg string) (*dsr.Request, error) {
	r, err := s.update(ctx, id, func(d *requestDoc) error {
		if (d.Status != dsr.StatusVerified && d.Status != dsr.StatusInProgress) || d.FannedOutAt != nil {
			return conflict("record fan-out failure", id)
		}
		d.FanoutError, d.UpdatedAt = msg, s.now()
		d.FanoutFailures++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record fan-out failure: %w", err)
	}
	return r, nil
}

// AddNotice makes a notice due to the subject of request id.
func (s *Store) AddNotice(ctx context.Context, id, notice string) error {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if !slices.Contains(d.PendingNotices, notice) {
			d.PendingNotices = append(d.PendingNotices, notice)
		}
		d.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return fmt.Errorf("add notice: %w", err)
	}
	return nil
}

// NoticeSent records that a notice went out: it is no longer pending.
func (s *Store) NoticeSent(ctx context.Context, id, notice string) error {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if !slices.Contains(d.PendingNotices, notice) {
			return errNoChange
		}
		d.PendingNotices = slices.DeleteFunc(d.PendingNotices, func(n string) bool { return n == notice })
		if len(d.PendingNotices) == 0 {
			d.PendingNotices = nil
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) && !errors.Is(err, dsr.ErrNotFound) {
		return fmt.Errorf("notice sent: %w", err)
	}
	return nil
}

// AddStatusToken lets one more token (by its hash) follow request id.
func (s *Store) AddStatusToken(ctx context.Context, id, tokenHash string) error {
	_, err := s.update(ctx, id, func(d *requestDoc) error {
		if slices.Contains(d.StatusTokens, tokenHash) {
			return errNoChange
		}
		d.StatusTokens = append(d.StatusTokens, tokenHash)
		return nil
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("add status token: %w", err)
	}
	return nil
}

// OpenIdentical returns up to limit requests of type t in one of statuses
// whose proven identities hold the one with blind-index hash, newest
// first, appeals excepted: the requests a new one may be merged into.
func (s *Store) OpenIdentical(ctx context.Context, hash string, t dsr.Type, statuses []dsr.Status, limit int) ([]dsr.Request, error) {
	return s.findByIdentity(ctx, 1, hash, t, statuses, limit, "AND r.appeal_of = ''")
}

// Unverified returns up to limit requests of type t still verifying that
// were filed with the identity of blind-index hash, newest first.
func (s *Store) Unverified(ctx context.Context, hash string, t dsr.Type, limit int) ([]dsr.Request, error) {
	return s.findByIdentity(ctx, 0, hash, t, []dsr.Status{dsr.StatusVerifying}, limit, "")
}

func (s *Store) findByIdentity(ctx context.Context, proven int, hash string, t dsr.Type, statuses []dsr.Status, limit int, more string) ([]dsr.Request, error) {
	if len(statuses) == 0 {
		return nil, nil
	}
	args := []any{hash, proven, string(t)}
	for _, st := range statuses {
		args = append(args, string(st))
	}
	args = append(args, limit)
	out, err := scanAll[dsr.Request](s.r.QueryContext(ctx, `SELECT r.doc FROM request_hashes h JOIN requests r ON r.id = h.request_id
		WHERE h.hash = ? AND h.proven = ? AND r.type = ? AND r.status IN (`+placeholders(len(statuses))+`) `+more+`
		ORDER BY r.received_at DESC LIMIT ?`, args...))
	if err != nil {
		return nil, fmt.Errorf("find open requests: %w", err)
	}
	return out, nil
}

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// EachUnverifiedPastDue calls fn for every request still verifying whose
// legal window closed before now, its clock running: it is to expire.
func (s *Store) EachUnverifiedPastDue(ctx context.Context, now time.Time, fn func(*dsr.Request) error) error {
	return s.eachRequest(ctx, "unverified requests", `status = ? AND due_at < ? AND paused_at IS NULL`,
		[]any{string(dsr.StatusVerifying), ms(now)}, "due_at", fn)
}

// EachPendingNotice calls fn for every request with a notice due since
// before, whose sending may have been lost.
func (s *Store) EachPendingNotice(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	return s.eachRequest(ctx, "pending notices", `notices > 0 AND updated_at < ?`, []any{ms(before)}, "updated_at", fn)
}

// EachStaleRequest calls fn for every request that is verified or in
// progress and unchanged since before: the sweep's candidates for a lost
// fan-out or an unnoticed completion. It reads in batches; fn may write.
func (s *Store) EachStaleRequest(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	for _, st := range []dsr.Status{dsr.StatusVerified, dsr.StatusInProgress} {
		err := s.eachRequest(ctx, "stale requests", `status = ? AND updated_at < ?`, []any{string(st), ms(before)}, "updated_at", fn)
		if err != nil {
			return err
		}
	}
	return nil
}

// eachRequest calls fn for every request matching where (with args), in
// (col, id) order, batch by batch along the index that serves where and
// col: each batch starts where the last ended, so a scan costs what it
// finds, however many requests are stored. fn may write; a request it
// moves out of where's range is not seen again.
func (s *Store) eachRequest(ctx context.Context, what, where string, args []any, col string, fn func(*dsr.Request) error) error {
	return eachKeyed(ctx, s.r, what, `SELECT `+col+`, id, doc FROM requests WHERE `+where, col, args,
		func(rows *sql.Rows) (int64, string, *dsr.Request, error) {
			var (
				at      int64
				id, doc string
				r       dsr.Request
			)
			if err := rows.Scan(&at, &id, &doc); err != nil {
				return 0, "", nil, err
			}
			return at, id, &r, decode(doc, &r)
		}, fn)
}
