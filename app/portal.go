package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
)

// portalStore is what the portal's filing and verification need of the
// store, beyond requestStore.
type portalStore interface {
	OpenIdentical(ctx context.Context, hash string, t dsr.Type, statuses []dsr.Status, limit int) ([]dsr.Request, error)
	Unverified(ctx context.Context, hash string, t dsr.Type, limit int) ([]dsr.Request, error)
	AddNotice(ctx context.Context, id, notice string) error
	ReserveTry(ctx context.Context, id string, max int) (*dsr.Request, error)
	ResumeClock(ctx context.Context, id string) (*dsr.Request, error)
}

// PortalOptions tunes the portal. Every field is required: the defaults
// are config's (DSAR_VERIFY_MAX_TRIES, DSAR_PORTAL_MAX_PENDING,
// DSAR_EXPORT_LINK_TTL, DSAR_GPC_LAST_UPDATE), set once there.
type PortalOptions struct {
	// MaxTries is how many verification attempts a request gets; the last
	// wrong one denies it.
	MaxTries int
	// MaxPending is how many open requests of one type one email may have;
	// a further identical submission is merged into the newest.
	MaxPending int
	// LinkTTL is how long the download links the status view gives work.
	LinkTTL time.Duration
	// GPCLastUpdate is the lastUpdate of /.well-known/gpc.json.
	GPCLastUpdate string
}

// portalActor files and moves the portal's requests in their histories.
const portalActor = "portal"

// PortalRequest is a request a person (or their authorised agent) files on
// the portal; its JSON form is the body of POST /v1/portal/requests.
type PortalRequest struct {
	Type string `json:"type"`
	// Regulation, or Jurisdiction to derive it from (one of the two).
	Regulation   string           `json:"regulation"`
	Jurisdiction string           `json:"jurisdiction"`
	Subject      Subject          `json:"subject"`
	Agent        *AuthorizedAgent `json:"agent"`
	// Scopes, for an opt_out only, are the uses the person refuses
	// (marketing, profiling, sale_share); none: every one of them, or with
	// a GPC signal (Sec-GPC: 1) sale and sharing.
	Scopes []string `json:"scopes"`
	// Corrections, for a correction only, are the changes the person asks
	// for, checked as the agent API's are (checkCorrections). Nothing is
	// written before an agent approves them: a correction always waits in
	// awaiting_approval once the email is proven (dsr.ApprovalPolicy.Holds).
	Corrections []CorrectionInput `json:"corrections"`
}

// AuthorizedAgent is who files for a consumer with their signed permission
// (CCPA 11 CCR 7063).
type AuthorizedAgent struct {
	Name             string `json:"name"`
	Email            string `json:"email"`
	SignedPermission bool   `json:"signed_permission"`
}

// GPCSignal is a Global Privacy Control signal a site forwards for a known
// person; its JSON form is the body of POST /v1/portal/gpc.
type GPCSignal struct {
	// Regulation defaults to CCPA.
	Regulation string  `json:"regulation"`
	Subject    Subject `json:"subject"`
}

// Arrival is how a portal filing arrived, beyond what it says.
type Arrival struct {
	// GPC says the person's browser sent a Global Privacy Control signal
	// (Sec-GPC: 1): it is recorded, and with a request of another type it
	// also files a linked opt-out.
	GPC bool
	// Limit, when set, counts the filing against the limit of its person's
	// identity, given by key (a keyed hash); an error stops the filing and
	// is returned as it is.
	Limit func(ctx context.Context, key string) error
}

// PortalFiled is what a portal filing came to: a request filed, with the
// status token that follows it (only its hash is kept, so it is shown
// once), or, for an opt-out like an open one, Merged: nothing new was filed
// and the open request's owner is mailed.
type PortalFiled struct {
	Request     *dsr.Request
	StatusToken string
	Merged      bool
}

// portalTypes are the request types the portal files.
var portalTypes = []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion, dsr.TypeOptOut, dsr.TypeCorrection}

// portalIntake validates a portal submission: the regulation given or
// derived from the jurisdiction, an email (which the verification goes to),
// a correction's changes (checkCorrections, against the fields owned when
// they are known: not nil), and the authorised agent's details when one
// files.
func portalIntake(b PortalRequest, owned []string) (dsr.Intake, error) {
	var ve dsr.ValidationError
	in := dsr.Intake{Type: dsr.Type(b.Type)}
	switch {
	case b.Type == "":
		ve.Add("type", "required: one of %s", Join(portalTypes))
	case !slices.Contains(portalTypes, in.Type):
		ve.Add("type", "must be one of %s", Join(portalTypes))
	}
	switch {
	case b.Regulation != "":
		if in.Regulation = dsr.Regulation(b.Regulation); !in.Regulation.Valid() {
			ve.Add("regulation", "must be one of %s", Join(dsr.Regulations))
		}
		if b.Jurisdiction != "" {
			ve.Add("jurisdiction", "give regulation or jurisdiction, not both")
		}
	case b.Jurisdiction != "":
		r, ok := dsr.RegulationFor(b.Jurisdiction)
		if !ok {
			ve.Add("jurisdiction", "no regulation is known for this jurisdiction; give regulation instead (one of %s)", Join(dsr.Regulations))
		}
		in.Regulation = r
	default:
		ve.Add("regulation", "required, or a jurisdiction such as DE or US-CA: one of %s", Join(dsr.Regulations))
	}
	if b.Subject.Email == nil {
		ve.Add("subject.email", "required: the verification and every notice go there")
	}
	in.Identities = b.Subject.Identities(&ve, func(k dsr.Kind) string {
		if k != dsr.KindEmail && in.Type != dsr.TypeOptOut {
			// Only the email is proven (by the code sent to it): other
			// identities are kept but not acted on.
			return dsr.SourceClaimed
		}
		return dsr.SourceSubject
	})
	checkScopes(&ve, &in, b.Scopes)
	// A correction writes the person's words into the business's systems,
	// a new email or phone included, which nobody has proven: it is never
	// applied before an agent checks and approves it (the portal's
	// verification proves the email it came from, then the fan-out holds
	// it in awaiting_approval).
	in.Corrections = checkCorrections(&ve, in.Type, b.Corrections, owned)
	if a := b.Agent; a != nil {
		email, err := dsr.NormalizeGiven(dsr.KindEmail, a.Email)
		if err != nil {
			ve.Add("agent.email", "%s", err)
		}
		// The name is told to the person in the verification email: one
		// line of visible text, quoted there as the agent's words.
		name := strings.TrimSpace(a.Name)
		if name == "" || utf8.RuneCountInString(name) > 200 {
			ve.Add("agent.name", "required, at most 200 characters")
		} else {
			ve.Text("agent.name", name, dsr.OneLine)
		}
		if !a.SignedPermission {
			ve.Add("agent.signed_permission", "must be true: an agent files only with the consumer's signed permission (11 CCR 7063)")
		}
		in.Agent = &dsr.Agent{Name: name, Email: email, SignedPermission: a.SignedPermission}
	}
	return in, ve.Err()
}

// SubmitPortal files a request from the portal. Opt-outs need no proof of
// identity (11 CCR 7026) and go straight to processing; the others wait for
// the emailed code, and a correction then waits for an agent's approval.
func (s *Service) SubmitPortal(ctx context.Context, b PortalRequest, a Arrival) (PortalFiled, error) {
	in, err := portalIntake(b, s.correctFields())
	if err != nil {
		return PortalFiled{}, err
	}
	return s.filePortal(ctx, in, links.SourcePortal, a)
}

// SubmitGPC records a Global Privacy Control signal a site forwards for a
// known person as an opt-out of sale and sharing (11 CCR 7025): no proof of
// identity, processed at once.
func (s *Service) SubmitGPC(ctx context.Context, g GPCSignal, a Arrival) (PortalFiled, error) {
	if g.Regulation == "" {
		g.Regulation = string(dsr.RegulationCCPA)
	}
	in, err := BaseIntake(string(dsr.TypeOptOut), g.Regulation, g.Subject)
	if err != nil {
		return PortalFiled{}, err
	}
	return s.filePortal(ctx, in, links.SourceGPC, a)
}

// GPCLastUpdate is when the site's GPC support last changed, for
// /.well-known/gpc.json.
func (s *Service) GPCLastUpdate() string { return s.portal.GPCLastUpdate }

// filePortal files a portal intake after the limit per identity and the
// merge of duplicates.
func (s *Service) filePortal(ctx context.Context, in dsr.Intake, source string, a Arrival) (PortalFiled, error) {
	first := in.Identities[0]
	hash := s.index.Hash(first.Kind, first.Value)
	if a.Limit != nil {
		limitKey := hash
		if first.Kind == dsr.KindEmail {
			limitKey = s.index.Hash(first.Kind, MailboxKey(first.Value))
		}
		if err := a.Limit(ctx, limitKey); err != nil {
			return PortalFiled{}, err
		}
	}
	token, err := dsr.NewToken()
	if err != nil {
		return PortalFiled{}, err
	}
	// A GPC signal is honoured whatever becomes of the submission.
	in.GPC = a.GPC
	if in.GPC && in.Type != dsr.TypeOptOut {
		if in.LinkedTo, err = s.gpcOptOut(ctx, in, token); err != nil {
			return PortalFiled{}, err
		}
	}
	if in.Type == dsr.TypeOptOut {
		// Opt-outs are processed at once: a duplicate joins the open one
		// filed with the same identities (never one that only resolved
		// them). Exactly the same: an opt-out needs no proof, so what an
		// open one was filed with is its filer's word, and one filed with
		// Ada's customer id and Eve's email must not absorb Ada's signal
		// (its merge notice would go to Eve). A second opt-out is harmless.
		open, err := s.openIdentical(ctx, s.index.Lookup(first.Kind, first.Value), in.Type, dsr.ActiveStatuses, s.portal.MaxPending)
		if err != nil {
			return PortalFiled{}, err
		}
		// It joins one only if that one refuses every scope it does: one
		// refusing less would not suppress what this one asks.
		given := s.index.HashAllByKey(dsr.Given(in.Identities))
		scopes, err := in.CheckScopes()
		if err != nil {
			return PortalFiled{}, err
		}
		open = slices.DeleteFunc(open, func(r dsr.Request) bool {
			return !slices.ContainsFunc(given, func(g []string) bool { return sameSet(r.ProvenHashes, g) }) || !containsAll(r.SuppressedScopes(), scopes)
		})
		if len(open) > 0 && len(open) >= s.portal.MaxPending {
			if err := s.noteMerge(ctx, open[0].ID); err != nil {
				return PortalFiled{}, err
			}
			return PortalFiled{Merged: true}, nil
		}
	} else if err := s.supersede(ctx, s.index.Lookup(first.Kind, first.Value), in.Type); err != nil {
		return PortalFiled{}, err
	}
	in.Source, in.FiledBy, in.StatusToken, in.Calendar = source, portalActor, token, s.calendar
	in.Notify = first.Kind == dsr.KindEmail
	in.ReceivedAt = s.now()
	in.Status, in.Notices = dsr.StatusVerifying, []string{dsr.NoticeReceipt, dsr.NoticeVerify}
	if in.Type == dsr.TypeOptOut {
		in.Status, in.Notices = dsr.StatusVerified, []string{dsr.NoticeReceipt}
	}
	req, err := s.file(ctx, in, filing{})
	if err != nil {
		return PortalFiled{}, err
	}
	return PortalFiled{Request: req, StatusToken: token}, nil
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// containsAll reports whether have holds every scope of want.
func containsAll(have, want []dsr.Scope) bool {
	for _, s := range want {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

// supersede keeps at most MaxPending unverified requests of a type per
// email: the oldest beyond that is cancelled for the new one. Unverified
// requests are never merged into (whoever filed one may not own the
// mailbox); duplicates are merged when the new one is verified.
func (s *Service) supersede(ctx context.Context, hashes []string, t dsr.Type) error {
	open, err := s.unverified(ctx, hashes, t, s.portal.MaxPending)
	if err != nil {
		return err
	}
	for i := s.portal.MaxPending - 1; i >= 0 && i < len(open); i++ {
		if open[i].Source != links.SourcePortal {
			continue // an agent's filing is the agent's to close
		}
		_, err := s.store.Transition(ctx, open[i].ID, dsr.StatusVerifying, dsr.StatusCancelled, dsr.Change{Actor: portalActor, Reason: "superseded by a newer submission"})
		if err != nil && !errors.Is(err, dsr.ErrConflict) {
			return err
		}
	}
	return nil
}

// noteMerge tells the owner of request id that a duplicate joined it: a
// merge notice, which mails the person a fresh status token, so only the
// mailbox's owner can follow it.
func (s *Service) noteMerge(ctx context.Context, id string) error {
	if err := s.store.AddNotice(ctx, id, dsr.NoticeMerged); err != nil {
		return err
	}
	if err := s.queue.EnqueueNotice(ctx, id, dsr.NoticeMerged); err != nil {
		s.log.WarnContext(ctx, "notice not enqueued; the sweep will retry", "request_id", id, "notice", dsr.NoticeMerged, "error", err)
	}
	s.log.InfoContext(ctx, "duplicate merged", "request_id", id)
	return nil
}

// gpcOptOut files the opt-out a GPC signal adds to a request of another
// type, and returns its id. It can be followed with the same status token as
// the submission; it sends no notices of its own.
func (s *Service) gpcOptOut(ctx context.Context, in dsr.Intake, token string) (string, error) {
	// Always a new one, never an open opt-out found by identity: its id
	// would tell the caller that one exists. A second opt-out is harmless.
	// An opt-out needs no proof (11 CCR 7026): every identity given counts.
	ids := make([]dsr.Identity, len(in.Identities))
	for i, id := range in.Identities {
		ids[i] = dsr.Identity{Kind: id.Kind, Value: id.Value, Source: dsr.SourceSubject}
	}
	oo := dsr.Intake{Type: dsr.TypeOptOut, Regulation: in.Regulation, Source: links.SourceGPC, FiledBy: portalActor, Status: dsr.StatusVerified,
		Identities: ids, ReceivedAt: s.now(), GPC: true, StatusToken: token, Calendar: s.calendar}
	req, err := s.file(ctx, oo, filing{})
	if err != nil {
		return "", err
	}
	s.log.InfoContext(ctx, "GPC opt-out filed", "request_id", req.ID)
	return req.ID, nil
}
