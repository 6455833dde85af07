package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dsar-project/dsar/dsr"
)

// beforeProcessing are the statuses a request can be denied or cancelled in.
var beforeProcessing = []dsr.Status{dsr.StatusReceived, dsr.StatusVerifying, dsr.StatusVerified, dsr.StatusAwaitingApproval}

// move moves req from its status to to for agent by, if it is in one of
// allowed (a refusal wrapping dsr.ErrConflict otherwise), in one
// conditional change: of two concurrent actions one wins, the other gets
// dsr.ErrConflict. A request moved to verified goes on to
// awaiting_approval where it waits for approval (see hold).
func (s *Service) move(ctx context.Context, req *dsr.Request, by string, allowed []dsr.Status, to dsr.Status, change dsr.Change) (*dsr.Request, error) {
	if !slices.Contains(allowed, req.Status) {
		return nil, dsr.Refuse(dsr.ErrConflict, fmt.Sprintf("A %s request cannot be moved to %s.", req.Status, to))
	}
	change.Actor = by
	// A request that owes the post-processing hook its outcome keeps
	// owing it: closing it makes the outcome due again.
	change.OutcomeHook = change.OutcomeHook || req.OutcomeHook
	moved, err := s.store.Transition(ctx, req.ID, req.Status, to, change)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "request moved by an agent", "request_id", req.ID, "from", req.Status, "to", to, "caller", by)
	if to == dsr.StatusVerified {
		return s.hold(ctx, moved)
	}
	return moved, nil
}

// act reads request id, moves it as move does, hands the workers the
// notices the change asks for (with any still pending) and answers the
// request with its jobs.
func (s *Service) act(ctx context.Context, id, by string, allowed []dsr.Status, to dsr.Status, change dsr.Change) (Record, error) {
	req, err := s.request(ctx, id)
	if err != nil {
		return Record{}, err
	}
	moved, err := s.move(ctx, req, by, allowed, to, change)
	if err != nil {
		return Record{}, err
	}
	if len(change.Notices) > 0 {
		s.notices(ctx, moved)
	}
	return s.withJobs(ctx, moved)
}

// Approve lets a request waiting for approval be processed, approved by
// agent by. Under the four-eyes rule (Deps.FourEyes) the agent who filed
// the request, or for an appeal the request it appeals, may not approve
// it: ErrFourEyes, and nothing changes.
func (s *Service) Approve(ctx context.Context, id, by string) (Record, error) {
	req, err := s.request(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if s.fourEyes.Requires(req.Type, req.Regulation) {
		filed, err := s.filedBy(ctx, req, by)
		if err != nil {
			return Record{}, err
		}
		if filed {
			s.log.InfoContext(ctx, "approval refused: four eyes", "request_id", req.ID, "caller", by)
			return Record{}, ErrFourEyes
		}
	}
	moved, err := s.move(ctx, req, by, []dsr.Status{dsr.StatusAwaitingApproval}, dsr.StatusVerified, dsr.Change{Reason: "approved", ApprovedBy: by})
	if err != nil {
		return Record{}, err
	}
	if err := s.queue.EnqueueFanout(ctx, moved.ID); err != nil {
		s.log.WarnContext(ctx, "approved request not enqueued; the sweep will retry", "request_id", moved.ID, "error", err)
	}
	return s.withJobs(ctx, moved)
}

// filedBy reports whether agent by filed req or, req being an appeal, the
// request it appeals: an appeal acts on the same person with the same
// proof, so a second agent filing it does not make its approval by the
// first a second pair of eyes.
func (s *Service) filedBy(ctx context.Context, req *dsr.Request, by string) (bool, error) {
	if req.FiledBy == by {
		return true, nil
	}
	if req.AppealOf == "" {
		return false, nil
	}
	appealed, err := s.store.Request(ctx, req.AppealOf)
	if err != nil {
		return false, fmt.Errorf("four eyes: appealed request: %w", err)
	}
	return appealed.FiledBy == by, nil
}

// Denial is an agent's denial of a request.
type Denial struct {
	// Reason is told to the person; required.
	Reason string `json:"reason"`
	// Basis is one of dsr.DenialBases; default other.
	Basis string `json:"basis"`
}

// Deny refuses request id before it is processed, with a reason the person
// is told.
func (s *Service) Deny(ctx context.Context, id string, d Denial, by string) (Record, error) {
	var ve dsr.ValidationError
	reason := CheckReason(&ve, d.Reason, true)
	basis := dsr.DenialBasis(d.Basis)
	switch {
	case basis == "":
		basis = dsr.DeniedOther
	case !slices.Contains(dsr.DenialBases, basis):
		ve.Add("basis", "must be one of %s", Join(dsr.DenialBases))
	}
	if err := ve.Err(); err != nil {
		return Record{}, err
	}
	return s.act(ctx, id, by, beforeProcessing, dsr.StatusDenied, dsr.Change{Reason: reason, DenialBasis: basis, Notices: []string{dsr.NoticeDenied}})
}

// Cancel withdraws request id before it is processed (the person asked,
// or it was filed in error); reason may be empty.
func (s *Service) Cancel(ctx context.Context, id, reason, by string) (Record, error) {
	reason, err := checkReason(reason, false)
	if err != nil {
		return Record{}, err
	}
	if reason == "" {
		reason = "cancelled"
	}
	return s.act(ctx, id, by, append(slices.Clip(beforeProcessing), dsr.StatusDuplicate), dsr.StatusCancelled, dsr.Change{Reason: reason})
}

// Extend gives request id the one extension its regulation allows
// (dsr.ErrNoExtension otherwise), with a reason the person is told.
func (s *Service) Extend(ctx context.Context, id, reason, by string) (Record, error) {
	reason, err := checkReason(reason, true)
	if err != nil {
		return Record{}, err
	}
	if err := checkID(id); err != nil {
		return Record{}, err
	}
	moved, err := s.store.Extend(ctx, id, by, reason)
	if err != nil {
		return Record{}, err
	}
	s.log.InfoContext(ctx, "deadline extended", "request_id", id, "caller", by)
	s.audit(ctx, id, by, "extended", map[string]string{"reason": reason, "from": moved.Extension.From.Format(time.RFC3339), "to": moved.DueAt.Format(time.RFC3339)})
	s.notices(ctx, moved)
	return s.withJobs(ctx, moved)
}

// Retry runs the failed jobs of a request that needs attention again, or,
// when its fan-out failed (no jobs exist yet), the fan-out, with a fresh
// retry budget.
func (s *Service) Retry(ctx context.Context, id, by string) (Record, error) {
	rec, err := s.Get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	req := rec.Request
	if req.Status == dsr.StatusNeedsAttention && req.FannedOutAt == nil {
		return s.retryFanout(ctx, req, by)
	}
	failed := 0
	for _, j := range rec.Jobs {
		if j.Status == dsr.JobFailed {
			failed++
		}
	}
	if req.Status != dsr.StatusNeedsAttention || failed == 0 {
		return Record{}, dsr.Refuse(dsr.ErrConflict, "Only a request that needs attention, with failed jobs or a failed fan-out, can be retried.")
	}
	moved, err := s.move(ctx, req, by, []dsr.Status{dsr.StatusNeedsAttention}, dsr.StatusInProgress, dsr.Change{Reason: fmt.Sprintf("retry of %d failed jobs", failed)})
	if err != nil {
		return Record{}, err
	}
	ids, err := s.store.RetryFailedJobs(ctx, moved.ID)
	if err != nil {
		return Record{}, err
	}
	for _, jid := range ids {
		if err := s.queue.EnqueueJob(ctx, jid); err != nil {
			s.log.WarnContext(ctx, "retried job not enqueued; the sweep will retry", "request_id", moved.ID, "error", err)
		}
	}
	return s.withJobs(ctx, moved)
}

// retryFanout sends a request whose fan-out failed back to verified and
// queues its fan-out again.
func (s *Service) retryFanout(ctx context.Context, req *dsr.Request, by string) (Record, error) {
	reason := fmt.Sprintf("retry of the fan-out after %d failures", req.FanoutFailures)
	if req.FanoutFailures == 0 {
		reason = "retry of the fan-out" // it found no connector for the request's action
	}
	moved, err := s.move(ctx, req, by, []dsr.Status{dsr.StatusNeedsAttention}, dsr.StatusVerified, dsr.Change{Reason: reason, ResetFanout: true})
	if err != nil {
		return Record{}, err
	}
	if moved.Status == dsr.StatusVerified {
		if err := s.queue.EnqueueFanout(ctx, moved.ID); err != nil {
			s.log.WarnContext(ctx, "retried fan-out not enqueued; the sweep will retry", "request_id", moved.ID, "error", err)
		}
	}
	return s.withJobs(ctx, moved)
}

// Closing is an agent's closing of a request that needs attention.
type Closing struct {
	// Reason is required.
	Reason string `json:"reason"`
	// Exceptions are the data kept on a legal basis.
	Exceptions []ClosingException `json:"exceptions"`
}

// ClosingException is data a closing keeps, and the legal basis.
type ClosingException struct {
	Connector  string `json:"connector"`
	Collection string `json:"collection"`
	Basis      string `json:"basis"`
}

// Close completes a request that needs attention, with a reason and the
// exceptions kept on a legal basis; the person is told it is done.
func (s *Service) Close(ctx context.Context, id string, cl Closing, by string) (Record, error) {
	var ve dsr.ValidationError
	reason := strings.TrimSpace(cl.Reason)
	if reason == "" || utf8.RuneCountInString(reason) > MaxReason {
		ve.Add("reason", "required, at most %d characters", MaxReason)
	} else {
		ve.Text("reason", reason, dsr.Lines)
	}
	var exceptions []dsr.Exception
	for i, e := range cl.Exceptions {
		field := func(name string) string { return fmt.Sprintf("exceptions[%d].%s", i, name) }
		if c := strings.TrimSpace(e.Connector); c == "" || utf8.RuneCountInString(c) > 200 {
			ve.Add(field("connector"), "required, at most 200 characters")
		} else {
			ve.Text(field("connector"), c, dsr.OneLine)
		}
		if utf8.RuneCountInString(strings.TrimSpace(e.Collection)) > 200 {
			ve.Add(field("collection"), "must be at most 200 characters")
		} else {
			ve.Text(field("collection"), strings.TrimSpace(e.Collection), dsr.OneLine)
		}
		if b := strings.TrimSpace(e.Basis); b == "" || utf8.RuneCountInString(b) > MaxReason {
			ve.Add(field("basis"), "required: the legal basis for keeping the data, e.g. tax law retention")
		} else {
			ve.Text(field("basis"), b, dsr.Lines)
		}
		exceptions = append(exceptions, dsr.Exception{Connector: strings.TrimSpace(e.Connector), Collection: strings.TrimSpace(e.Collection), Basis: strings.TrimSpace(e.Basis)})
	}
	if err := ve.Err(); err != nil {
		return Record{}, err
	}
	return s.act(ctx, id, by, []dsr.Status{dsr.StatusNeedsAttention}, dsr.StatusCompleted,
		dsr.Change{Reason: reason, Exceptions: exceptions, Notices: []string{dsr.NoticeCompleted}})
}

// Pause stops request id's clock where its rule allows (GDPR: waiting for
// information to confirm identity; dsr.ErrNotPausable otherwise), with a
// reason.
func (s *Service) Pause(ctx context.Context, id, reason, by string) (Record, error) {
	reason, err := checkReason(reason, true)
	if err != nil {
		return Record{}, err
	}
	return s.clockChange(ctx, id, by, "paused", reason, func(ctx context.Context) (*dsr.Request, error) {
		return s.store.PauseClock(ctx, id, by, reason)
	})
}

// Resume restarts request id's paused clock; the due date moves by the
// pause.
func (s *Service) Resume(ctx context.Context, id, by string) (Record, error) {
	return s.clockChange(ctx, id, by, "resumed", "", func(ctx context.Context) (*dsr.Request, error) {
		return s.store.ResumeClock(ctx, id)
	})
}

func (s *Service) clockChange(ctx context.Context, id, by, kind, reason string, change func(context.Context) (*dsr.Request, error)) (Record, error) {
	if err := checkID(id); err != nil {
		return Record{}, err
	}
	moved, err := change(ctx)
	if err != nil {
		return Record{}, err
	}
	data := map[string]string{"due_at": moved.DueAt.Format(time.RFC3339)}
	if reason != "" {
		data["reason"] = reason
	}
	s.audit(ctx, id, by, "clock_"+kind, data)
	return s.withJobs(ctx, moved)
}

// AppealFiling is an agent's filing of an appeal against a denial.
type AppealFiling struct {
	// Reason is required.
	Reason string `json:"reason"`
	// Identity is a new proof of identity, as when filing: attested by
	// the agent (verified, with a method), or the portal's verification.
	// Absent: the appeal inherits the proof of the request it appeals.
	Identity *Proof `json:"identity"`
}

// Appeal files, for agent by, the appeal against denied request id where
// its regulation grants one (VCDPA, CTDPA: answered within 60 days;
// dsr.ErrNotAppealable otherwise). It acts only for the person proven: a
// request denied as unverifiable, or never verified, is appealed only with
// a new proof (dsr.ErrProofRequired). It returns the appeal.
func (s *Service) Appeal(ctx context.Context, id string, a AppealFiling, by string) (Record, error) {
	var ve dsr.ValidationError
	f := dsr.AppealFiling{Actor: by, Reason: CheckReason(&ve, a.Reason, true), Index: s.index}
	f.Attested, f.Verify = a.Identity.check(&ve)
	if err := ve.Err(); err != nil {
		return Record{}, err
	}
	if err := checkID(id); err != nil {
		return Record{}, err
	}
	appeal, err := s.store.Appeal(ctx, id, f)
	if err != nil {
		return Record{}, err
	}
	data := map[string]string{"appeal": appeal.ID}
	switch {
	case f.Attested != "":
		data["proof"] = "attested"
	case f.Verify:
		data["proof"] = "portal verification"
	default:
		data["proof"] = "inherited"
	}
	s.audit(ctx, id, by, "appealed", data)
	s.log.InfoContext(ctx, "appeal filed", "request_id", id, "appeal", appeal.ID, "proof", data["proof"], "caller", by)
	s.notices(ctx, appeal)
	return Record{Request: appeal, Jobs: []dsr.Job{}}, nil
}
