package drp

import (
	"net/url"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// ActorPrefix starts the actor of what an agent did through the protocol:
// "drp:" and the agent's id (the request's FiledBy, a revocation's actor).
const ActorPrefix = "drp:"

// StatusOf returns the status object of r, a request filed through the
// protocol (r.DRP set), as the protocol's state machine has it. portalURL
// is the public address of the portal (DSAR_PORTAL_URL): a request still
// verifying the person's email is in_progress with need_user_verification,
// and its user_verification_url is the portal's /check page, where the
// person opens the request with the reference its verification email
// carries ("" leaves it out).
//
// The mapping:
//   - verifying: in_progress, need_user_verification;
//   - verified, awaiting approval, in progress, needs attention, a
//     duplicate waiting for an agent: in_progress, expected_by the due date;
//   - completed: fulfilled;
//   - denied: denied, with the reason of its basis (unverifiable:
//     insuf_verification; not a consumer: outside_jurisdiction; exempt:
//     claim_not_covered; other: other);
//   - expired (never verified in time): denied, insuf_verification;
//   - cancelled by the agent's revocation: revoked; by the business:
//     denied, other.
func StatusOf(r *dsr.Request, portalURL string) Status {
	s := Status{RequestID: r.ID, ReceivedAt: stamp(r.ReceivedAt)}
	if r.DRP != nil {
		s.AgentRequestID = r.DRP.AgentRequestID
	}
	inProgress := func() {
		s.Status, s.ExpectedBy = StateInProgress, stamp(r.DueAt)
		if r.Extension != nil {
			s.ProcessingDetails = "the deadline was extended, as the law allows; the person was told why"
		}
	}
	switch r.Status {
	case dsr.StatusReceived, dsr.StatusVerifying:
		inProgress()
		s.Reason = ReasonNeedUserVerification
		s.ProcessingDetails = "the person must confirm their email address: we sent them a code and a reference"
		if portalURL != "" {
			s.UserVerificationURL = portalURL + "/check?request=" + url.QueryEscape(r.ID)
		}
	case dsr.StatusCompleted:
		s.Status = StateFulfilled
	case dsr.StatusDenied:
		s.Status, s.Reason = StateDenied, denialReason(r.DenialBasis)
	case dsr.StatusExpired:
		s.Status, s.Reason = StateDenied, ReasonInsufVerification
		s.ProcessingDetails = "the person did not confirm their email address in time"
	case dsr.StatusCancelled:
		if revokedByAgent(r) {
			s.Status = StateRevoked
		} else {
			s.Status, s.Reason = StateDenied, ReasonOther
			s.ProcessingDetails = "closed by the business"
		}
	case dsr.StatusDuplicate:
		inProgress()
		s.ProcessingDetails = "the same as a request already open; it is handled with that one"
	default:
		inProgress()
	}
	return s
}

// denialReason is the protocol's reason for a denial basis.
func denialReason(b dsr.DenialBasis) string {
	switch b {
	case dsr.DeniedUnverifiable:
		return ReasonInsufVerification
	case dsr.DeniedNotConsumer:
		return ReasonOutsideJurisdiction
	case dsr.DeniedExempt:
		return ReasonClaimNotCovered
	}
	return ReasonOther
}

// revokedByAgent reports whether r was cancelled by its agent's revocation.
func revokedByAgent(r *dsr.Request) bool {
	if r.DRP == nil || len(r.History) == 0 {
		return false
	}
	last := r.History[len(r.History)-1]
	return last.To == dsr.StatusCancelled && last.Actor == ActorPrefix+r.DRP.Agent
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
