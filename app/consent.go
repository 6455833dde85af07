package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dsar-project/dsar/dsr"
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
			ve.Add(fmt.Sprintf("hashes[%d]", i), `must be a suppression hash: a kind (email, customer_id, phone), ":" and 64 lower-case hex digits`)
			continue
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	switch {
	case p.Subject == (Subject{}) && len(p.Hashes) == 0 && len(p.Identities) == 0:
		ve.Add("subject", "give the person's identities (subject: email, customer_id or phone) or their suppression hashes (hashes)")
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
	// Identities are normalised identities of the person, from Go
	// callers (see Person).
	Identities []dsr.Identity `json:"-"`
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
	ev := dsr.ConsentEvent{Hashes: hashes, Kind: dsr.ConsentOptIn, Scopes: scopes, Source: source, Actor: actor}
	return s.lift(ctx, ev, "opted in")
}

// LiftInput is an admin's lift of a person's suppression under one scope
// (the way to lift a deletion's, scope all), with the reason recorded.
// Its JSON form is the body of POST /v1/suppressions/lift.
type LiftInput struct {
	Subject Subject  `json:"subject"`
	Hashes  []string `json:"hashes"`
	Scope   string   `json:"scope"`
	Reason  string   `json:"reason"`
}

// LiftSuppression lifts the suppressions of the person of in under exactly
// its scope, by an admin (actor) with a reason, and records a "lifted"
// consent event (source admin): Segment's UNSUPPRESS. Every input is
// checked before anything is written; the event is stored before the
// lift.
func (s *Service) LiftSuppression(ctx context.Context, in LiftInput, actor string) (ConsentChange, error) {
	var ve dsr.ValidationError
	hashes := s.hashes(&ve, Person{Subject: in.Subject, Hashes: in.Hashes})
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
	ev := dsr.ConsentEvent{Hashes: hashes, Kind: dsr.ConsentLifted, Scopes: []dsr.Scope{sc}, Source: dsr.ConsentAdmin, Actor: actor, Reason: reason}
	return s.lift(ctx, ev, reason)
}

// lift records ev (its ID and time set here), then lifts the entries of
// its hashes under each of its scopes, by its actor with reason.
func (s *Service) lift(ctx context.Context, ev dsr.ConsentEvent, reason string) (ConsentChange, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return ConsentChange{}, fmt.Errorf("consent event id: %w", err)
	}
	ev.ID, ev.At = id.String(), s.now().UTC()
	if err := s.store.AddConsentEvents(ctx, []dsr.ConsentEvent{ev}); err != nil {
		return ConsentChange{}, err
	}
	out := ConsentChange{EventID: ev.ID, Identities: len(ev.Hashes), Lifted: map[dsr.Scope]int{}, StillSuppressed: []dsr.Scope{}}
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
		"scopes", Join(ev.Scopes), "lifted", out.Lifted)
	return out, nil
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
