package app

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
)

// Access is a request opened by a holder of one of its status tokens (see
// Open): what the portal's person may see and do with it.
type Access struct {
	// Request is the request as it was read.
	Request *dsr.Request
	token   string
}

// Open returns request id for a holder of one of its status tokens. A
// wrong token is ErrNotFound, exactly as an unknown id is, so one request's
// token reveals nothing of another.
func (s *Service) Open(ctx context.Context, id, token string) (Access, error) {
	if !dsr.ValidID(id) || token == "" {
		return Access{}, dsr.ErrNotFound
	}
	req, err := s.store.Request(ctx, id)
	if errors.Is(err, dsr.ErrNotFound) || (err == nil && !dsr.TokenMatches(token, req.StatusTokens)) {
		return Access{}, dsr.ErrNotFound
	}
	if err != nil {
		return Access{}, err
	}
	return Access{Request: req, token: token}, nil
}

// Verification is a person's answer to the emailed verification: the code,
// or the token of the link (one of the two). Its JSON form is the body of
// POST /v1/portal/requests/{id}/verify.
type Verification struct {
	Code  string `json:"code"`
	Token string `json:"token"`
}

// Verified is what a verification came to: the request verified (Status),
// or cancelled as merged into the verified open request MergedInto.
type Verified struct {
	ID         string     `json:"id"`
	Status     dsr.Status `json:"status"`
	MergedInto string     `json:"merged_into,omitempty"`
}

var codePattern = regexp.MustCompile(`^[0-9]{6}$`)

// errNotVerifying refuses a verification step on a request past it.
var errNotVerifying = &dsr.Refusal{Err: dsr.ErrConflict, Detail: "This request is not waiting for verification."}

// Verify checks an emailed code or link token for a request opened with its
// status token: so nobody who merely knows the id can spend its tries, and
// the request ends up bound to a token its mailbox's owner holds. Each
// attempt is counted before it is checked, so no more than MaxTries are ever
// checked; the last wrong one denies the request and the person is told. A
// wrong answer is a *VerificationFailure. Once verified, only the
// presented status token follows the request, and a verified open duplicate
// (same proven email) absorbs it. Neither secret is logged.
func (s *Service) Verify(ctx context.Context, a Access, v Verification) (Verified, error) {
	if a.Request == nil || a.token == "" {
		return Verified{}, dsr.ErrNotFound
	}
	var ve dsr.ValidationError
	switch {
	case (v.Code == "") == (v.Token == ""):
		ve.Add("code", "give the 6-digit code or the link's token, one of the two")
	case v.Code != "" && !codePattern.MatchString(v.Code):
		ve.Add("code", "must be the 6 digits of the emailed code")
	case v.Token != "" && len(v.Token) > 100:
		ve.Add("token", "is not a token this service sent")
	}
	if err := ve.Err(); err != nil {
		return Verified{}, err
	}
	req, err := s.store.ReserveTry(ctx, a.Request.ID, s.portal.MaxTries)
	if errors.Is(err, dsr.ErrConflict) {
		err = errNotVerifying
	}
	if err != nil {
		return Verified{}, err
	}
	ver := req.Verification
	method, ok := "emailed code", false
	if v.Code != "" {
		ok = s.index.CodeMatches(req.ID, v.Code, ver.CodeHash)
	} else {
		method, ok = "emailed link", dsr.TokenMatches(v.Token, []string{ver.TokenHash})
	}
	if ok && s.now().Before(ver.ExpiresAt) {
		return s.verified(ctx, req, a.token, method)
	}
	left := s.portal.MaxTries - ver.Tries
	if left <= 0 {
		moved, err := s.store.Transition(ctx, req.ID, dsr.StatusVerifying, dsr.StatusDenied, dsr.Change{
			Actor: portalActor, Reason: "identity could not be verified: " + strconv.Itoa(s.portal.MaxTries) + " wrong or expired codes",
			DenialBasis: dsr.DeniedUnverifiable,
			Notices:     []string{dsr.NoticeDenied},
		})
		if errors.Is(err, dsr.ErrConflict) {
			// A right answer won the race to the last try.
			return Verified{}, errNotVerifying
		}
		if err != nil {
			return Verified{}, err
		}
		s.dispatch(ctx, moved)
		s.log.InfoContext(ctx, "request denied: verification failed", "request_id", req.ID)
	}
	detail := "The code or link is wrong, or has expired."
	if left > 0 && !s.now().Before(ver.ExpiresAt) {
		detail = "The code has expired; ask for a new one."
	}
	if left <= 0 {
		detail = "The code or link is wrong, and no tries are left: the request is closed. You may file a new one."
	}
	return Verified{}, &VerificationFailure{TriesLeft: left, Detail: detail}
}

// verified completes a verification, which proves the request's email: the
// request (unless an appeal, a correction or an agent's filing through the
// Data Rights Protocol) is merged into a verified open
// request of the same type whose proven identities hold that email, if
// there is one, else it moves to
// verified, followed by token alone. A merged request is cancelled, its
// history naming the one it joined; its token follows it alone (it never
// reads the other, which may hold more than this email's data), and the
// other's owner is mailed a token of its own (NoticeMerged).
func (s *Service) verified(ctx context.Context, req *dsr.Request, token, method string) (Verified, error) {
	email := ""
	for _, id := range req.Identities {
		if id.Kind == dsr.KindEmail && id.Source == dsr.SourceSubject {
			email = id.Value
		}
	}
	proven := s.index.Hash(dsr.KindEmail, email)
	var dups []dsr.Request
	var err error
	// An appeal is decided on its own, and two corrections ask for
	// different changes: neither is merged. Nor is an authorised agent's
	// request (the Data Rights Protocol): it owes the agent its outcome,
	// which a merge would close as cancelled, under a request the agent
	// cannot follow.
	if req.AppealOf == "" && req.Type != dsr.TypeCorrection && req.DRP == nil {
		if dups, err = s.openIdentical(ctx, s.index.Lookup(dsr.KindEmail, email), req.Type, dsr.VerifiedOpenStatuses, 1); err != nil {
			return Verified{}, err
		}
	}
	if len(dups) > 0 {
		into := dups[0].ID
		if _, err := s.store.Transition(ctx, req.ID, dsr.StatusVerifying, dsr.StatusCancelled, dsr.Change{
			Actor: "subject", Reason: "identity verified by " + method + "; merged into " + into,
		}); err != nil {
			return Verified{}, err
		}
		if err := s.noteMerge(ctx, into); err != nil {
			return Verified{}, err
		}
		return Verified{ID: req.ID, Status: dsr.StatusCancelled, MergedInto: into}, nil
	}
	if req.PausedAt != nil {
		// The information the clock waited for has come: it runs again,
		// the due date later by the pause.
		if _, err := s.store.ResumeClock(ctx, req.ID); err != nil && !errors.Is(err, dsr.ErrConflict) {
			return Verified{}, err
		}
	}
	// Straight to verified, as the answer says: a request that waits for
	// approval is held by the fan-out (an appeal, always).
	moved, err := s.store.Transition(ctx, req.ID, dsr.StatusVerifying, dsr.StatusVerified, dsr.Change{
		Actor: "subject", Reason: "identity verified by " + method, StatusTokens: []string{dsr.HashToken(token)},
		ProvenHashes: []string{proven},
	})
	if err != nil {
		return Verified{}, err
	}
	s.dispatch(ctx, moved)
	s.log.InfoContext(ctx, "request verified", "request_id", req.ID)
	return Verified{ID: moved.ID, Status: moved.Status}, nil
}

// PortalStatus is a request as its person sees it.
type PortalStatus struct {
	RequestHead
	ReceivedAt time.Time  `json:"received_at"`
	DueAt      time.Time  `json:"due_at"`
	ClosedAt   *time.Time `json:"closed_at,omitempty"`
	GPC        bool       `json:"gpc"`
	// Scopes, for an opt-out, are the uses it refuses.
	Scopes []dsr.Scope `json:"scopes,omitempty"`
	// Reason explains a denial, an expiry or a cancellation.
	Reason          string    `json:"reason,omitempty"`
	LinkedRequestID string    `json:"linked_request_id,omitempty"`
	Download        *Download `json:"download,omitempty"`
}

// Download is a signed link to an access request's export.
type Download struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Status is the request of a as its person sees it: with a download link
// (good for LinkTTL) once an access request is completed.
func (s *Service) Status(a Access) PortalStatus {
	req := a.Request
	v := PortalStatus{RequestHead: HeadOf(req), ReceivedAt: req.ReceivedAt,
		DueAt: req.DueAt, ClosedAt: req.ClosedAt, GPC: req.GPC, LinkedRequestID: req.LinkedTo}
	if req.Type == dsr.TypeOptOut {
		v.Scopes = req.SuppressedScopes()
	}
	if (req.Status == dsr.StatusDenied || req.Status == dsr.StatusExpired || req.Status == dsr.StatusCancelled) && len(req.History) > 0 {
		v.Reason = req.History[len(req.History)-1].Reason
	}
	if req.Type == dsr.TypeAccess && req.Status == dsr.StatusCompleted {
		exp := s.now().Add(s.portal.LinkTTL).UTC().Truncate(time.Second)
		v.Download = &Download{URL: s.exportLink(req.ID, exp), ExpiresAt: exp}
	}
	return v
}

// exportLink is the path of a signed download link.
func (s *Service) exportLink(id string, exp time.Time) string {
	return links.ExportPath(id, exp, s.links)
}

// OpenByLink returns the request of a signed download link (its id, the
// expiry in Unix seconds and the signature as the link gives them), or
// ErrLinkInvalid when the link is forged, altered or expired.
func (s *Service) OpenByLink(ctx context.Context, id, expires, sig string) (*dsr.Request, error) {
	sec, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || !dsr.ValidID(id) || !s.links.Valid(id, time.Unix(sec, 0), sig, s.now()) {
		return nil, ErrLinkInvalid
	}
	return s.store.Request(ctx, id)
}

// Resend sends a new code (the old one stops working) to the person of a
// request still verifying, and returns the request as it was read.
func (s *Service) Resend(ctx context.Context, a Access) (*dsr.Request, error) {
	req := a.Request
	if req == nil || a.token == "" {
		return nil, dsr.ErrNotFound
	}
	if req.Status != dsr.StatusVerifying {
		return nil, errNotVerifying
	}
	if req.Verification != nil && req.Verification.Round >= dsr.MaxVerificationRounds {
		return nil, &dsr.Refusal{Err: dsr.ErrLocked, Detail: "No more codes can be sent for this request."}
	}
	if err := s.store.AddNotice(ctx, req.ID, dsr.NoticeVerify); err != nil {
		return nil, err
	}
	if err := s.queue.EnqueueNotice(ctx, req.ID, dsr.NoticeVerify); err != nil {
		s.log.WarnContext(ctx, "notice not enqueued; the sweep will retry", "request_id", req.ID, "notice", dsr.NoticeVerify, "error", err)
	}
	return req, nil
}

// The portal's refusals, beyond the domain's sentinels.
var (
	// ErrVerificationFailed: a verification code or link was wrong or had
	// expired. See VerificationFailure.
	ErrVerificationFailed = errors.New("verification failed")
	// ErrLinkInvalid: a signed download link is forged, altered or expired.
	ErrLinkInvalid = errors.New("download link not valid")
)

// VerificationFailure is ErrVerificationFailed for one attempt: how many
// tries are left (none: the request has been denied) and why, in words for
// the person.
type VerificationFailure struct {
	TriesLeft int
	Detail    string
}

func (v *VerificationFailure) Error() string {
	return ErrVerificationFailed.Error() + ": " + v.Detail
}

func (v *VerificationFailure) Unwrap() error { return ErrVerificationFailed }
