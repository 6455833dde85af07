package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/dsar-project/dsar/dsr"
)

// holdAtIntake moves a new, not yet stored request that waits for approval
// (dsr.ApprovalPolicy.Holds) to awaiting_approval, its history saying it was verified
// first and then held, as a request held later would say.
func (s *Service) holdAtIntake(r *dsr.Request) {
	if !s.approval.Holds(r) || len(r.History) == 0 {
		return
	}
	r.Status = dsr.StatusAwaitingApproval
	r.History = append(r.History, dsr.Transition{From: dsr.StatusVerified, To: dsr.StatusAwaitingApproval, At: r.History[0].At,
		Actor: dsr.ActorPolicy, Reason: dsr.ReasonAwaitingApproval})
}

// hold moves a stored request that has just become verified on to
// awaiting_approval when it waits for approval (dsr.ApprovalPolicy.Holds), and
// returns it as it now is. Moved meanwhile by someone else, it is read
// again.
func (s *Service) hold(ctx context.Context, r *dsr.Request) (*dsr.Request, error) {
	if !s.approval.Holds(r) {
		return r, nil
	}
	held, err := s.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusAwaitingApproval, dsr.Change{Actor: dsr.ActorPolicy, Reason: dsr.ReasonAwaitingApproval})
	if errors.Is(err, dsr.ErrConflict) {
		return s.store.Request(ctx, r.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("hold for approval: %w", err)
	}
	return held, nil
}
