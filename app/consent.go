package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
)

// consentStore is what opting in, lifting a suppression and the consent
// history need of the store (store.Suppressions).
type consentStore interface {
	LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by, reason string) (int, error)
	Suppressions(ctx context.Context, hashes []string) ([]dsr.Suppression, error)
	AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error
	ConsentHistory(ctx context.Context, hashes []string, limit int) ([]dsr.ConsentEvent, error)
}

// MaxPersonHashes bounds the identities (and hashes) one consent call
// names: one person's.
const MaxPersonHashes = 100

// MaxConsentHistory bounds the events ConsentHistory returns.
const MaxConsentHistory = 1000

// Person names the person a consent call is about: identities in clear
// (Subject, checked and normalised as a filing's; or Identities, already
// normalised, from Go callers such as the portal's preference centre)
// and/or suppression hashes ("kind:hex", as a pipeline given the
// suppression key computes them). Only their suppression hashes are used
// or kept.
type Person struct {
	Subject Subject  `json:"subject"`
	Hashes  []string `json:"hashes"`
	// Identities are normalised identities (dsr.Normalize), e.g. those of
	// a request; not part of the JSON form.
	Identities []dsr.Identity `json:"-"`
}

// hashes returns the distinct suppression hashes of p, adding to ve what
// is wrong with it (fields "subject.<kind>", "hashes[i]", "subject").
func (s *Service) hashes(ve *dsr.ValidationError, p Person) []string {
	ids := p.Subject.Identities(ve, func(dsr.Kind) string { return dsr.SourceSubject })
	out := s.index.SuppressionKey().HashAll(append(ids, p.Identities...))
	for i, h := range p.Hashes {
		if !dsr.ValidSuppressionHash(h) {
			ve.Add(fmt.Sprintf("hashes[%d]", i), `must be a suppression hash: a kind (%s), ":" and 64 lower-case hex digits`, Join(dsr.Kinds))
			continue
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	switch {
	case p.Subject == (Subject{}) && len(p.Hashes) == 0 && len(p.Identities) == 0:
		ve.Add("subject", "give the person's identities (subject: %s) or their suppression hashes (hashes)", Join(dsr.Kinds))
	case len(out) > MaxPersonHashes:
		ve.Add("hashes", "at most %d identities and hashes in all: one person's", MaxPersonHashes)
	}
	return out
}

// OptInInput is an opt-in: the person consents again to Scopes (each one
// of dsr.Purposes). Its JSON form is the body of POST /v1/consent/opt-in.
type OptInInput struct {
	Subject Subject  `json:"subject"`
	Hashes  []string `json:"hashes"`
	Scopes  []string `json:"scopes"`
	// Regulation labels the opt-in request filed when identities are
	// given (see ConsentChange.OptInRequest); empty: that of the request
	// whose suppression is lifted, else ccpa.
	Regulation string `json:"regulation"`
	// Identities are normalised identities of the person, from Go
	// callers (see Person).
	Identities []dsr.Identity `json:"-"`
	// adjust, from Go callers, changes the opt-in request's intake before
	// it is filed (a protocol's link, its id).
	adjust []func(*dsr.Intake)
}

// ConsentChange is what an opt-in or a lift did: the event recorded, how
// many entries it lifted per scope, and the scopes still suppressed for
// the person afterwards (a deletion's all, which only an admin lifts).
type ConsentChange struct {
	EventID string `json:"event_id"`
	// Identities is how many suppression hashes the call named.
	Identities int               `json:"identities"`
	Lifted     map[dsr.Scope]int `json:"lifted"`
	// StillSuppressed are the scopes some entry of the person still
	// suppresses.
	StillSuppressed []dsr.Scope `json:"still_suppressed"`
	// OptInRequest is the id of the opt_in request filed to carry the lift
	// to the systems that keep a suppression of their own (Segment's
	// UNSUPPRESS): filed when the call named the person's identities, not
	// only hashes (a connector needs the identities; hashes reach no
	// system). Empty when none was filed.
	OptInRequest string `json:"opt_in_request_id,omitempty"`
}

// errLiftAll refuses an opt-in of ScopeAll.
var errLiftAll = dsr.Refuse(dsr.ErrConflict, "A deletion's suppression (scope all) is not lifted by an opt-in: only an admin lifts it, with a reason (POST /v1/suppressions/lift).")

// OptIn records that the person of in consents again to its scopes, from
// source, recorded by actor (an API key's name, or "subject"), and lifts
// their suppressions under exactly those scopes. Every input is checked
// before anything is written; ScopeAll is refused (dsr.ErrConflict: a
// deletion's suppression is lifted only by an admin, LiftSuppression). The
// opt-in event is stored before the lift, so no lift is ever without its
// evidence; a call that fails after it may be repeated (another event, the
// same lift).
func (s *Service) OptIn(ctx context.Context, in OptInInput, source dsr.ConsentSource, actor string) (ConsentChange, error) {
	var ve dsr.ValidationError
	hashes := s.hashes(&ve, Person{Subject: in.Subject, Hashes: in.Hashes, Identities: in.Identities})
	reg := checkRegulation(&ve, in.Regulation)
	var scopes []dsr.Scope
	all := false
	for i, n := range in.Scopes {
		sc := dsr.Scope(n)
		switch {
		case sc == dsr.ScopeAll:
			all = true
		case !sc.Valid():
			ve.Add(fmt.Sprintf("scopes[%d]", i), "unknown scope: want one of %s", Join(dsr.Purposes))
		case slices.Contains(scopes, sc):
			ve.Add(fmt.Sprintf("scopes[%d]", i), "%q given twice", sc)
		default:
			scopes = append(scopes, sc)
		}
	}
	if len(in.Scopes) == 0 {
		ve.Add("scopes", "required: the purposes the person consents to again, of %s", Join(dsr.Purposes))
	}
	if !source.Valid() {
		ve.Add("source", "must be one of %s", Join(dsr.ConsentSources))
	}
	if err := ve.Err(); err != nil {
		return ConsentChange{}, err
	}
	if all {
		return ConsentChange{}, errLiftAll
	}
	ids := s.optInIdentities(in.Subject, in.Identities)
	if err := s.liftSettled(ctx, ids, scopes); err != nil {
		return ConsentChange{}, err
	}
	ev := dsr.ConsentEvent{Hashes: hashes, Kind: dsr.ConsentOptIn, Scopes: scopes, Source: source, Actor: actor}
	return s.lift(ctx, ev, "opted in", ids, reg, in.adjust...)
}

// checkRegulation checks an opt-in's or a lift's optional regulation,
// adding to ve when it is not one of dsr.Regulations.
func checkRegulation(ve *dsr.ValidationError, reg string) dsr.Regulation {
	if reg != "" && !dsr.Regulation(reg).Valid() {
		ve.Add("regulation", "must be one of %s, or left out", Join(dsr.Regulations))
	}
	return dsr.Regulation(reg)
}

// optInIdentities returns the identities an opt-in request is filed with:
// those of subject (already checked by hashes) and ids, as the subject's
// own.
func (s *Service) optInIdentities(subject Subject, ids []dsr.Identity) []dsr.Identity {
	var ve dsr.ValidationError
	out := subject.Identities(&ve, func(dsr.Kind) string { return dsr.SourceSubject })
	for _, id := range ids {
		out = append(out, dsr.Identity{Kind: id.Kind, Value: id.Value, Source: dsr.SourceSubject})
	}
	return dsr.MergeIdentities(out, nil)
}

// LiftInput is an admin's lift of a person's suppression under one scope
// (the way to lift a deletion's, scope all), with the reason recorded.
// Its JSON form is the body of POST /v1/suppressions/lift.
type LiftInput struct {
	Subject Subject  `json:"subject"`
	Hashes  []string `json:"hashes"`
	Scope   string   `json:"scope"`
	Reason  string   `json:"reason"`
	// Regulation labels the opt-in request filed when identities are
	// given, as OptInInput's.
	Regulation string `json:"regulation"`
}

// LiftSuppression lifts the suppressions of the person of in under exactly
// its scope, by an admin (actor) with a reason, and records a "lifted"
// consent event (source admin): Segment's UNSUPPRESS. Every input is
// checked before anything is written; the event is stored before the
// lift.
func (s *Service) LiftSuppression(ctx context.Context, in LiftInput, actor string) (ConsentChange, error) {
	var ve dsr.ValidationError
	hashes := s.hashes(&ve, Person{Subject: in.Subject, Hashes: in.Hashes})
	reg := checkRegulation(&ve, in.Regulation)
	sc := dsr.Scope(in.Scope)
	switch {
	case in.Scope == "":
		ve.Add("scope", "required: one of %s", Join(dsr.Scopes))
	case !sc.Valid():
		ve.Add("scope", "must be one of %s", Join(dsr.Scopes))
	}
	reason := CheckReason(&ve, in.Reason, true)
	if err := ve.Err(); err != nil {
		return ConsentChange{}, err
	}
	ids := s.optInIdentities(in.Subject, nil)
	if err := s.liftSettled(ctx, ids, []dsr.Scope{sc}); err != nil {
		return ConsentChange{}, err
	}
	ev := dsr.ConsentEvent{Hashes: hashes, Kind: dsr.ConsentLifted, Scopes: []dsr.Scope{sc}, Source: dsr.ConsentAdmin, Actor: actor, Reason: reason}
	return s.lift(ctx, ev, reason, ids, reg)
}

// liftSettled refuses (409) a lift of scopes for the identities ids (in
// clear) while an opt-out or a deletion of theirs that suppresses one of
// them has not been fanned out yet: its fan-out would suppress them again
// right after the lift. Identities given only as hashes cannot be matched
// to requests, so they are not checked.
func (s *Service) liftSettled(ctx context.Context, ids []dsr.Identity, scopes []dsr.Scope) error {
	hashes := make([]string, 0, len(ids))
	for _, id := range ids {
		hashes = append(hashes, s.index.Lookup(id.Kind, id.Value)...)
	}
	return s.suppressionsSettled(ctx, hashes, scopes, "An opt-out or a deletion of this person that suppresses these scopes has not been applied yet: "+
		"its fan-out would suppress them again after the lift. Try again once it is in progress (GET /v1/requests?status=verified lists it).")
}

// lift records ev (its ID and time set here), then lifts the entries of
// its hashes under each of its scopes, by its actor with reason. When ids
// (the person's identities in clear) are given, it first files a verified
// opt_in request of ev's scopes with them, under reg (empty: that of the
// latest request whose entry it lifts, else ccpa), whose fan-out lifts
// the scopes from every identity of the person too and carries the lift to
// connectors that keep a suppression of their own.
func (s *Service) lift(ctx context.Context, ev dsr.ConsentEvent, reason string, ids []dsr.Identity, reg dsr.Regulation, adjust ...func(*dsr.Intake)) (ConsentChange, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return ConsentChange{}, fmt.Errorf("consent event id: %w", err)
	}
	ev.ID, ev.At = id.String(), s.now().UTC()
	if err := s.store.AddConsentEvents(ctx, []dsr.ConsentEvent{ev}); err != nil {
		return ConsentChange{}, err
	}
	out := ConsentChange{EventID: ev.ID, Identities: len(ev.Hashes), Lifted: map[dsr.Scope]int{}, StillSuppressed: []dsr.Scope{}}
	if len(ids) > 0 {
		// Filed before the lift: its fan-out lifts the scopes from every
		// identity of the person again (idempotent), so a call that fails
		// after it, even one never repeated, still reaches the connectors.
		if reg == "" {
			if reg, err = s.liftedRegulation(ctx, ev.Hashes, ev.Scopes); err != nil {
				return ConsentChange{}, err
			}
		}
		in := dsr.Intake{Type: dsr.TypeOptIn, Regulation: reg, Source: optInSource(ev.Source), FiledBy: ev.Actor, Status: dsr.StatusVerified,
			Identities: ids, ReceivedAt: s.now(), Calendar: s.calendar, Scopes: ev.Scopes, LinkedTo: ev.RequestID,
			VerificationMethod: "consent event " + ev.ID}
		for _, a := range adjust {
			a(&in)
		}
		req, err := s.file(ctx, in, filing{})
		if err != nil {
			return ConsentChange{}, fmt.Errorf("file the opt-in request: %w", err)
		}
		out.OptInRequest = req.ID
	}
	for _, sc := range ev.Scopes {
		n, err := s.store.LiftSuppressions(ctx, ev.Hashes, sc, ev.Actor, reason)
		if err != nil {
			return ConsentChange{}, err
		}
		out.Lifted[sc] = n
	}
	entries, err := s.store.Suppressions(ctx, ev.Hashes)
	if err != nil {
		return ConsentChange{}, err
	}
	for _, e := range entries {
		if e.Active() && !slices.Contains(out.StillSuppressed, e.Scope) {
			out.StillSuppressed = append(out.StillSuppressed, e.Scope)
		}
	}
	slices.Sort(out.StillSuppressed)
	s.log.InfoContext(ctx, "consent recorded", "event_id", ev.ID, "kind", ev.Kind, "source", ev.Source, "identities", len(ev.Hashes),
		"scopes", Join(ev.Scopes), "lifted", out.Lifted, "opt_in_request_id", out.OptInRequest)
	return out, nil
}

// liftedRegulation returns the regulation of the latest request whose
// entry under one of scopes hashes have, or ccpa when none can be read (an
// entry of a partner's list, a request purged).
func (s *Service) liftedRegulation(ctx context.Context, hashes []string, scopes []dsr.Scope) (dsr.Regulation, error) {
	entries, err := s.store.Suppressions(ctx, hashes)
	if err != nil {
		return "", err
	}
	var latest *dsr.Suppression
	for i := range entries {
		e := &entries[i]
		if e.RequestID != "" && slices.Contains(scopes, e.Scope) && (latest == nil || e.At.After(latest.At)) {
			latest = e
		}
	}
	if latest != nil {
		if r, err := s.store.Request(ctx, latest.RequestID); err == nil && r.Regulation.Valid() {
			return r.Regulation, nil
		}
	}
	return dsr.RegulationCCPA, nil
}

// optInSource is the Source of an opt-in request filed for a consent
// event from source.
func optInSource(source dsr.ConsentSource) string {
	switch source {
	case dsr.ConsentPortal, dsr.ConsentGPC:
		return links.SourcePortal
	case dsr.ConsentAgent:
		return links.SourceAgentAPI
	}
	return "consent_" + string(source)
}

// ConsentRecord is a person's consent history: every consent event that
// concerns one of their hashes, oldest first, and every suppression entry
// of theirs, active or lifted.
type ConsentRecord struct {
	// Hashes are the suppression hashes the history is of.
	Hashes []string       `json:"hashes"`
	Events []ConsentEntry `json:"events"`
	// Truncated says there are more than MaxConsentHistory events: the
	// oldest are shown.
	Truncated    bool               `json:"truncated"`
	Suppressions []SuppressionEntry `json:"suppressions"`
}

// ConsentEntry is one consent event as the APIs show it.
type ConsentEntry struct {
	ID        string            `json:"id"`
	At        time.Time         `json:"at"`
	Kind      dsr.ConsentKind   `json:"kind"`
	Scopes    []dsr.Scope       `json:"scopes"`
	Source    dsr.ConsentSource `json:"source"`
	RequestID string            `json:"request_id,omitempty"`
	Actor     string            `json:"actor"`
	Reason    string            `json:"reason,omitempty"`
	Hashes    []string          `json:"hashes"`
}

// SuppressionEntry is one suppression entry as the APIs show it.
type SuppressionEntry struct {
	Hash       string            `json:"hash"`
	Scope      dsr.Scope         `json:"scope"`
	Active     bool              `json:"active"`
	Source     dsr.ConsentSource `json:"source"`
	RequestID  string            `json:"request_id,omitempty"`
	Partner    string            `json:"partner,omitempty"`
	At         time.Time         `json:"at"`
	LiftedAt   *time.Time        `json:"lifted_at,omitempty"`
	LiftedBy   string            `json:"lifted_by,omitempty"`
	LiftReason string            `json:"lift_reason,omitempty"`
}

// ConsentHistory returns the consent history of p (GDPR Art. 7(1): what
// the controller shows of a person's consent): its events, oldest first
// (at most MaxConsentHistory), and its suppression entries, by hash and
// scope. It holds hashes, never the identities named.
func (s *Service) ConsentHistory(ctx context.Context, p Person) (ConsentRecord, error) {
	var ve dsr.ValidationError
	hashes := s.hashes(&ve, p)
	if err := ve.Err(); err != nil {
		return ConsentRecord{}, err
	}
	events, err := s.store.ConsentHistory(ctx, hashes, MaxConsentHistory+1)
	if err != nil {
		return ConsentRecord{}, err
	}
	entries, err := s.store.Suppressions(ctx, hashes)
	if err != nil {
		return ConsentRecord{}, err
	}
	out := ConsentRecord{Hashes: hashes, Events: []ConsentEntry{}, Suppressions: []SuppressionEntry{}}
	if len(events) > MaxConsentHistory {
		events, out.Truncated = events[:MaxConsentHistory], true
	}
	for _, e := range events {
		out.Events = append(out.Events, ConsentEntry{ID: e.ID, At: e.At.UTC(), Kind: e.Kind, Scopes: e.Scopes, Source: e.Source,
			RequestID: e.RequestID, Actor: e.Actor, Reason: e.Reason, Hashes: e.Hashes})
	}
	slices.SortFunc(entries, func(a, b dsr.Suppression) int { return strings.Compare(a.ID, b.ID) })
	for _, e := range entries {
		v := SuppressionEntry{Hash: e.Hash, Scope: e.Scope, Active: e.Active(), Source: e.Source, RequestID: e.RequestID, Partner: e.Partner,
			At: e.At.UTC(), LiftedBy: e.LiftedBy, LiftReason: e.LiftReason}
		if e.LiftedAt != nil {
			at := e.LiftedAt.UTC()
			v.LiftedAt = &at
		}
		out.Suppressions = append(out.Suppressions, v)
	}
	return out, nil
}
