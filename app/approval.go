package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/dsar-project/dsar/dsr"
)

// PolicyActor is the actor of the history entries the application records
// by rule rather than for a person (a request held for approval).
const PolicyActor = "policy"

// ReasonAwaitingApproval is the history reason of a request held for an
// agent's approval.
const ReasonAwaitingApproval = "waiting for an agent's approval"

// AwaitsApproval is the rule of which requests wait for an agent's approval
// before they are processed: a verified one, not approved yet, whose type
// (and regulation) policy names, or any appeal (an appeal is always decided
// by an agent).
func AwaitsApproval(policy dsr.ApprovalPolicy, r *dsr.Request) bool {
	return r.Status == dsr.StatusVerified && r.ApprovedBy == "" && (policy.Requires(r.Type, r.Regulation) || r.AppealOf != "")
}

// holdAtIntake moves a new, not yet stored request that waits for approval
// (AwaitsApproval) to awaiting_approval, its history saying it was verified
// first and then held, as a request held later would say.
func (s *Service) holdAtIntake(r *dsr.Request) {
	if !AwaitsApproval(s.approval, r) || len(r.History) == 0 {
		return
	}
	r.Status = dsr.StatusAwaitingApproval
	r.History = append(r.History, dsr.Transition{From: dsr.StatusVerified, To: dsr.StatusAwaitingApproval, At: r.History[0].At,
		Actor: PolicyActor, Reason: ReasonAwaitingApproval})
}

// hold moves a stored request that has just become verified on to
// awaiting_approval when it waits for approval (AwaitsApproval), and
// returns it as it now is. Moved meanwhile by someone else, it is read
// again.
func (s *Service) hold(ctx context.Context, r *dsr.Request) (*dsr.Request, error) {
	if !AwaitsApproval(s.approval, r) {
		return r, nil
	}
	held, err := s.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusAwaitingApproval, dsr.Change{Actor: PolicyActor, Reason: ReasonAwaitingApproval})
	if errors.Is(err, dsr.ErrConflict) {
		return s.store.Request(ctx, r.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("hold for approval: %w", err)
	}
	return held, nil
}

// verify moves request id from status from to verified with change, then
// on to awaiting_approval where it waits for approval: every move into
// verified the application makes goes through here.
func (s *Service) verify(ctx context.Context, id string, from dsr.Status, change dsr.Change) (*dsr.Request, error) {
	moved, err := s.store.Transition(ctx, id, from, dsr.StatusVerified, change)
	if err != nil {
		return nil, err
	}
	return s.hold(ctx, moved)
}
