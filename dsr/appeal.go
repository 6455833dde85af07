package dsr

import (
	"maps"
	"slices"
	"time"
)

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
	// Index hashes the identities an attestation proves. A store that
	// holds the identities sealed sets AttestedHashes instead: the blind
	// index of the denied request's given identities ([Given]), which it
	// alone can read.
	Index          *BlindIndex
	AttestedHashes []string
	// Reseal, set by a store that seals personal fields, is given the
	// denied request and its appeal as NewAppeal made it (holding the
	// denied request's sealed values): it seals the appeal's copies
	// afresh, under keys of the appeal's own.
	Reseal func(denied, appeal *Request) error
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

// NewAppeal builds the appeal against denied, filed at now, where its
// regulation grants one (VCDPA, CTDPA): a new request of the same type and
// identities, linked to denied (AppealOf), due within AppealPeriod, waiting
// for an agent's review. It does not store it, nor claim denied (see
// [Request.AppealedBy]): the store does both.
//
// The appeal inherits denied's proof of identity. A request denied as
// unverifiable, or never verified, is appealed only with a new proof
// (ErrProofRequired otherwise): the filing agent's attestation (f.Attested;
// the appeal then waits in awaiting_approval, its given identities proven),
// or the portal's verification (f.Verify; the appeal waits in verifying for
// the emailed code, a *ValidationError when denied holds no email the person
// gave). ErrNotAppealable when denied is not denied, its regulation grants
// no appeal, it holds no identities, it is itself an appeal (the decision
// on an appeal is final), or it is an opt_in (the service's record of a
// lift, not a person's request). The appeal asks again for what denied
// asked: its type, an opt-out's scopes and GPC signal, a correction's
// changes.
func NewAppeal(denied *Request, f AppealFiling, now time.Time) (*Request, error) {
	r := denied
	if r.Status != StatusDenied || !Appealable(r.Regulation) || len(r.Identities) == 0 || r.AppealOf != "" || r.Type == TypeOptIn {
		return nil, ErrNotAppealable
	}
	status, method, proven := StatusAwaitingApproval, r.VerificationMethod, r.ProvenHashes
	var notices []string
	switch {
	case f.Attested != "":
		status, method, proven = StatusAwaitingApproval, f.Attested, f.AttestedHashes
		if f.Index != nil {
			proven = f.Index.HashAll(Given(r.Identities))
		}
	case f.Verify:
		if !slices.ContainsFunc(r.Identities, func(i Identity) bool { return i.Kind == KindEmail && i.Source == SourceSubject }) {
			var ve ValidationError
			ve.Add("identity.verified", "the portal's verification needs the person's email, which the denied request does not hold; attest a verification instead (verified: true with a method)")
			return nil, &ve
		}
		// Proven by the emailed code, as on the portal.
		status, method, proven, notices = StatusVerifying, "", nil, []string{NoticeVerify}
	case !r.Proven():
		return nil, ErrProofRequired
	}
	id, err := NewRequestID()
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Millisecond)
	appeal := &Request{
		ID: id, Type: r.Type, Regulation: r.Regulation, Status: status, Source: "appeal", FiledBy: f.Actor,
		Identities: r.Identities, IdentityHashes: r.IdentityHashes, ProvenHashes: proven, ReceivedAt: now, DueAt: Calendar{}.Add(now, AppealPeriod),
		UpdatedAt: now, Notify: r.Notify || f.Verify, PendingNotices: notices, AppealOf: r.ID, AuditDue: true, VerificationMethod: method,
		History: []Transition{{To: status, At: now, Actor: f.Actor, Reason: "appeal of " + r.ID + ": " + f.Reason}},
		// What the denied request asked for, asked again.
		GPC: r.GPC, Scopes: slices.Clone(r.Scopes), Corrections: slices.Clone(r.Corrections), NewValues: maps.Clone(r.NewValues),
	}
	if f.Reseal != nil {
		if err := f.Reseal(r, appeal); err != nil {
			return nil, err
		}
	}
	return appeal, nil
}

// AppealClaimFree reports whether denied's claim by an earlier appeal
// (AppealedBy) leaves it free to be appealed again: it has none, or the
// earlier appeal was never stored (prior nil) or ended undecided
// ([Request.Undecided]). The one appeal the law grants is one decision.
func AppealClaimFree(denied, prior *Request) bool {
	return denied.AppealedBy == "" || prior == nil || prior.Undecided()
}
