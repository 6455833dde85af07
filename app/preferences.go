package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
)

// preferenceStore is what the preference centre needs of the store: the
// person's suppression entries and consent events, by their suppression
// hashes, and the open opt-outs of their proven identities.
type preferenceStore interface {
	Suppress(ctx context.Context, entries []dsr.Suppression) (int, error)
	LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by, reason string) (int, error)
	Suppressions(ctx context.Context, hashes []string) ([]dsr.Suppression, error)
	AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error
	ConsentHistory(ctx context.Context, hashes []string, limit int) ([]dsr.ConsentEvent, error)
}

// The preference centre's refusals, beyond the domain's sentinels.
var (
	// ErrNotProven: the request a status token opened stands on no
	// identity its holder proved (an opt-out, which needs no proof, or a
	// request not verified yet), so the token cannot open the preference
	// centre. Returned as a *dsr.Refusal saying which.
	ErrNotProven = errors.New("identity not proven")
	// ErrIdentitiesPurged: the request's identities were deleted after its
	// retention period, so nobody's preferences can be found by it.
	ErrIdentitiesPurged = errors.New("identities purged")
)

// subjectActor records the person's own acts in the consent history.
const subjectActor = "subject"

// MaxPortalConsentHistory bounds the events the portal shows a person.
const MaxPortalConsentHistory = 500

// Preferences is a person's choice for every purpose (dsr.Purposes), as the
// preference centre shows it; its JSON form is the answer of
// /v1/portal/requests/{id}/preferences.
type Preferences struct {
	// RequestID is the request whose status token opened them.
	RequestID string `json:"request_id"`
	// Purposes holds one choice per purpose, in dsr.Purposes' order.
	Purposes []PurposeChoice `json:"purposes"`
	// All, when set, says a deletion keeps every use refused: no purpose
	// can be allowed here (only the privacy team can lift it).
	All *Refused `json:"all,omitempty"`
	// OptOutRequestID names the opt-out request this call filed to refuse
	// purposes, when it filed one; the same status token follows it.
	OptOutRequestID string `json:"opt_out_request_id,omitempty"`
	// OptInRequestID names the opt-in request this call filed to carry an
	// allowed purpose to the systems that keep a suppression of their own
	// (see ConsentChange.OptInRequest); empty when it allowed nothing.
	OptInRequestID string `json:"opt_in_request_id,omitempty"`
}

// PurposeChoice is the person's choice for one purpose.
type PurposeChoice struct {
	Purpose dsr.Scope `json:"purpose"`
	// Title is how the purpose is shown to the person.
	Title   string `json:"title"`
	Allowed bool   `json:"allowed"`
	// Since is when the purpose was refused, or allowed again; absent for
	// a purpose never refused.
	Since *time.Time `json:"since,omitempty"`
	// Source is where the refusal (or the latest opt-in) came from.
	Source dsr.ConsentSource `json:"source,omitempty"`
	// Locked says a deletion refuses it (All): it cannot be allowed here.
	Locked bool `json:"locked,omitempty"`
}

// Refused is since when, and by what source, a use is refused.
type Refused struct {
	Since  time.Time         `json:"since"`
	Source dsr.ConsentSource `json:"source"`
}

// PreferenceChange is what the person changes; its JSON form is the body
// of PUT /v1/portal/requests/{id}/preferences: {"purposes": {"marketing":
// false, "profiling": true}}. false refuses a purpose, true allows it again;
// a purpose not named is left as it is.
type PreferenceChange struct {
	// Purposes are read raw, so that a value that is not a boolean is
	// named by its purpose.
	Purposes map[string]json.RawMessage `json:"purposes"`
}

// PortalConsentEntry is one event of a person's consent history as the portal
// shows it: no hashes, no actor.
type PortalConsentEntry struct {
	At        time.Time         `json:"at"`
	Kind      dsr.ConsentKind   `json:"kind"`
	Scopes    []dsr.Scope       `json:"scopes"`
	Source    dsr.ConsentSource `json:"source"`
	RequestID string            `json:"request_id,omitempty"`
}

// person returns the suppression hashes of the identities the request of a
// stands on and its holder proved: those whose blind index is among the
// request's proven ones and that were given (never claimed, never
// resolved from customer data), with the identities. An opt-out filed with
// no proof (the portal's, a GPC signal's) stands on its filer's word, so its
// token opens no preferences: otherwise whoever files an opt-out with
// someone's email would read their choices and could allow them again.
func (s *Service) person(a Access) ([]dsr.Identity, []string, error) {
	req := a.Request
	if req == nil || a.token == "" {
		return nil, nil, dsr.ErrNotFound
	}
	if req.PurgedAt != nil {
		return nil, nil, dsr.Refuse(ErrIdentitiesPurged, "This request's identities were deleted after its retention period, "+
			"so its token can no longer show or change preferences. Use the token of a newer request, or file an access request.")
	}
	if req.Type == dsr.TypeOptOut && req.VerificationMethod == "" {
		return nil, nil, dsr.Refuse(ErrNotProven, "An opt-out needs no proof of identity, so its token cannot show or change preferences. "+
			"Use the token of a request whose email you verified (an access or deletion request).")
	}
	var ids []dsr.Identity
	for _, id := range dsr.Given(req.Identities) {
		if slices.ContainsFunc(s.index.Lookup(id.Kind, id.Value), func(h string) bool { return slices.Contains(req.ProvenHashes, h) }) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil, dsr.Refuse(ErrNotProven, "This request's identity has not been verified, so its token cannot show or change preferences yet. "+
			"Verify it with the emailed code first.")
	}
	return ids, s.index.SuppressionKey().HashAll(ids), nil
}

// Preferences returns the choices of the person whose request a opened:
// for every purpose, refused when any of their proven identities is
// suppressed for it (or for every use, after a deletion), since when and
// by what source.
func (s *Service) Preferences(ctx context.Context, a Access) (Preferences, error) {
	_, hashes, err := s.person(a)
	if err != nil {
		return Preferences{}, err
	}
	return s.preferences(ctx, a.Request.ID, hashes)
}

// preferences reads the choices of hashes: their entries, and for a
// purpose allowed again, the source of its latest opt-in.
func (s *Service) preferences(ctx context.Context, requestID string, hashes []string) (Preferences, error) {
	entries, err := s.store.Suppressions(ctx, hashes)
	if err != nil {
		return Preferences{}, fmt.Errorf("read preferences: %w", err)
	}
	p := Preferences{RequestID: requestID, Purposes: make([]PurposeChoice, 0, len(dsr.Purposes))}
	if e := earliestActive(entries, dsr.ScopeAll); e != nil {
		p.All = &Refused{Since: e.At, Source: e.Source}
	}
	var history []dsr.ConsentEvent
	for _, scope := range dsr.Purposes {
		c := PurposeChoice{Purpose: scope, Title: scope.Purpose(), Allowed: true}
		if e := earliestActive(entries, scope); e != nil {
			at := e.At
			c.Allowed, c.Since, c.Source = false, &at, e.Source
		} else if p.All != nil {
			at := p.All.Since
			c.Allowed, c.Since, c.Source, c.Locked = false, &at, p.All.Source, true
		} else if lifted := latestLift(entries, scope); lifted != nil {
			at := *lifted
			c.Since = &at
			if history == nil {
				if history, err = s.store.ConsentHistory(ctx, hashes, MaxPortalConsentHistory); err != nil {
					return Preferences{}, fmt.Errorf("read preferences: %w", err)
				}
			}
			c.Source = latestOptIn(history, scope)
		}
		p.Purposes = append(p.Purposes, c)
	}
	return p, nil
}

// earliestActive returns the active entry of scope that has held longest,
// or nil.
func earliestActive(entries []dsr.Suppression, scope dsr.Scope) *dsr.Suppression {
	var out *dsr.Suppression
	for i := range entries {
		e := &entries[i]
		if e.Scope == scope && e.Active() && (out == nil || e.At.Before(out.At)) {
			out = e
		}
	}
	return out
}

// latestLift returns when the latest lifted entry of scope was lifted, or
// nil.
func latestLift(entries []dsr.Suppression, scope dsr.Scope) *time.Time {
	var out *time.Time
	for i := range entries {
		e := &entries[i]
		if e.Scope == scope && !e.Active() && (out == nil || e.LiftedAt.After(*out)) {
			out = e.LiftedAt
		}
	}
	return out
}

// latestOptIn returns the source of the latest opt-in of scope in history
// (oldest first), or "".
func latestOptIn(history []dsr.ConsentEvent, scope dsr.Scope) dsr.ConsentSource {
	for i := len(history) - 1; i >= 0; i-- {
		if e := history[i]; (e.Kind == dsr.ConsentOptIn || e.Kind == dsr.ConsentLifted) && slices.Contains(e.Scopes, scope) {
			return e.Source
		}
	}
	return ""
}

// checkChange validates a change: every name a purpose, each true or false,
// at least one unless a GPC signal came; with the signal, sale and sharing
// cannot be allowed in the same call.
func checkChange(ch PreferenceChange, gpc bool) (map[dsr.Scope]bool, error) {
	var ve dsr.ValidationError
	purposes := make([]string, len(dsr.Purposes))
	for i, p := range dsr.Purposes {
		purposes[i] = string(p)
	}
	if len(ch.Purposes) == 0 && !gpc {
		ve.Add("purposes", "required: at least one of %s, each true (allow) or false (refuse)", strings.Join(purposes, ", "))
	}
	names := make([]string, 0, len(ch.Purposes))
	for name := range ch.Purposes {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make(map[dsr.Scope]bool, len(names))
	for _, name := range names {
		raw, scope := bytes.TrimSpace(ch.Purposes[name]), dsr.Scope(name)
		var v *bool
		if string(raw) == "true" || string(raw) == "false" {
			b := string(raw) == "true"
			v = &b
		}
		switch {
		case scope == dsr.ScopeAll:
			ve.Add("purposes."+name, "is not a purpose: a deletion refuses every use, and only the privacy team can lift it; one of %s", strings.Join(purposes, ", "))
		case !slices.Contains(dsr.Purposes, scope):
			ve.Add("purposes."+name, "unknown purpose: one of %s", strings.Join(purposes, ", "))
		case v == nil:
			ve.Add("purposes."+name, "must be true (allow) or false (refuse)")
		case gpc && scope == dsr.ScopeSaleShare && *v:
			ve.Add("purposes."+name, "cannot be allowed while your browser sends a Global Privacy Control signal (Sec-GPC: 1), which refuses sale and sharing")
		default:
			out[scope] = *v
		}
	}
	if gpc {
		out[dsr.ScopeSaleShare] = false
	}
	return out, ve.Err()
}

// SetPreferences changes the choices of the person whose request a
// opened, and returns them as they then are. Nothing changes unless every
// change can be made.
//
// Refusing purposes not yet refused for every proven identity files one
// opt-out request (source portal, verified: the token proves the identity;
// Scopes the purposes refused; followed by the same token; no notices), and
// suppresses them at once, so the choice holds before the fan-out has run;
// the fan-out then suppresses every identity it finds, records the consent
// events and opts the person out at the connectors that serve those
// purposes. gpc says the call came with a Global Privacy Control signal: it
// refuses sale and sharing (the opt-out is filed with GPC, and the fan-out
// records the signal); a signal that changes nothing records nothing.
//
// Allowing a purpose again lifts its suppression of the proven identities
// and records an opt_in consent event. It is refused (409) while a
// deletion refuses every use, and while an opt-out of that purpose for
// these identities has not been fanned out yet (its fan-out would suppress
// it again).
func (s *Service) SetPreferences(ctx context.Context, a Access, ch PreferenceChange, gpc bool) (Preferences, error) {
	changes, err := checkChange(ch, gpc)
	if err != nil {
		return Preferences{}, err
	}
	ids, hashes, err := s.person(a)
	if err != nil {
		return Preferences{}, err
	}
	entries, err := s.store.Suppressions(ctx, hashes)
	if err != nil {
		return Preferences{}, fmt.Errorf("read preferences: %w", err)
	}
	var refuse, allow []dsr.Scope
	for _, scope := range dsr.Purposes {
		want, ok := changes[scope]
		switch {
		case !ok:
		case !want && !coveredForAll(entries, hashes, scope):
			refuse = append(refuse, scope)
		case want && earliestActive(entries, dsr.ScopeAll) != nil:
			return Preferences{}, dsr.Refuse(dsr.ErrConflict, "Every use of your data is refused (after a deletion you asked for, or a partner's list), "+
				"so no purpose can be allowed here; the privacy team can lift it if you ask them.")
		case want && earliestActive(entries, scope) != nil:
			allow = append(allow, scope)
		}
	}
	if len(allow) > 0 {
		if err := s.optOutsSettled(ctx, ids, allow); err != nil {
			return Preferences{}, err
		}
	}
	p := Preferences{}
	if len(refuse) > 0 {
		if p.OptOutRequestID, err = s.refuse(ctx, a, ids, hashes, refuse, gpc); err != nil {
			return Preferences{}, err
		}
	}
	if len(allow) > 0 {
		if p.OptInRequestID, err = s.allow(ctx, a.Request, ids, hashes, allow); err != nil {
			return Preferences{}, err
		}
	}
	got, err := s.preferences(ctx, a.Request.ID, hashes)
	got.OptOutRequestID, got.OptInRequestID = p.OptOutRequestID, p.OptInRequestID
	return got, err
}

// coveredForAll reports whether every hash has an active entry covering
// scope (of scope itself, or of every use).
func coveredForAll(entries []dsr.Suppression, hashes []string, scope dsr.Scope) bool {
	for _, h := range hashes {
		if !slices.ContainsFunc(entries, func(e dsr.Suppression) bool { return e.Hash == h && e.Active() && e.Scope.Covers(scope) }) {
			return false
		}
	}
	return true
}

// optOutsSettled refuses (409) to allow scopes while an opt-out of one of
// them, filed with one of the proven identities, is open and not yet
// fanned out: its fan-out would suppress the scope again after the lift.
func (s *Service) optOutsSettled(ctx context.Context, proven []dsr.Identity, scopes []dsr.Scope) error {
	return s.suppressionsSettled(ctx, s.index.LookupAll(proven), scopes,
		"Your refusal of this purpose is still being applied to our systems; try again in a minute.")
}

// suppressionsSettled refuses (dsr.ErrConflict, with msg) to lift scopes
// while an opt-out or a deletion whose suppression covers one of them,
// filed with one of the identities of hashes (their blind index), is open
// and not yet fanned out: its fan-out would suppress the scope again after
// the lift, and the lift would be undone without a word.
func (s *Service) suppressionsSettled(ctx context.Context, hashes []string, scopes []dsr.Scope, msg string) error {
	for _, h := range hashes {
		for _, t := range []dsr.Type{dsr.TypeOptOut, dsr.TypeDeletion} {
			open, err := s.store.OpenIdentical(ctx, h, t, dsr.VerifiedOpenStatuses, 20)
			if err != nil {
				return fmt.Errorf("open %ss: %w", t, err)
			}
			for _, r := range open {
				if r.FannedOutAt != nil {
					continue
				}
				refused := r.SuppressedScopes()
				if slices.ContainsFunc(scopes, func(sc dsr.Scope) bool { return slices.Contains(refused, sc) }) {
					return dsr.Refuse(dsr.ErrConflict, msg)
				}
			}
		}
	}
	return nil
}

// refuse files the opt-out of scopes for ids, and suppresses hashes under
// each scope at once (the fan-out does it again, idempotently, with every
// identity it finds). It returns the opt-out's id.
func (s *Service) refuse(ctx context.Context, a Access, ids []dsr.Identity, hashes []string, scopes []dsr.Scope, gpc bool) (string, error) {
	given := make([]dsr.Identity, len(ids))
	for i, id := range ids {
		given[i] = dsr.Identity{Kind: id.Kind, Value: id.Value, Source: dsr.SourceSubject}
	}
	in := dsr.Intake{Type: dsr.TypeOptOut, Regulation: a.Request.Regulation, Source: links.SourcePortal, FiledBy: portalActor,
		Status: dsr.StatusVerified, Identities: given, ReceivedAt: s.now(), GPC: gpc, StatusToken: a.token, Calendar: s.calendar,
		Scopes: scopes, VerificationMethod: "status token of " + a.Request.ID}
	req, err := s.file(ctx, in, filing{})
	if err != nil {
		return "", err
	}
	source := dsr.ConsentPortal
	if gpc {
		source = dsr.ConsentGPC
	}
	entries := make([]dsr.Suppression, 0, len(hashes)*len(scopes))
	for _, h := range hashes {
		for _, sc := range scopes {
			entries = append(entries, dsr.Suppression{Hash: h, Scope: sc, Source: source, RequestID: req.ID, At: req.ReceivedAt})
		}
	}
	if _, err := s.store.Suppress(ctx, entries); err != nil {
		// The opt-out is filed: its fan-out suppresses them.
		s.log.WarnContext(ctx, "preferences: opt-out filed, suppression left to its fan-out", "request_id", req.ID, "error", err)
	}
	s.log.InfoContext(ctx, "preferences: purposes refused", "request_id", a.Request.ID, "opt_out_request_id", req.ID, "scopes", scopes, "gpc", gpc)
	return req.ID, nil
}

// allow records the person's opt-in to scopes, then lifts those scopes
// from hashes (app.lift: the evidence is stored before anything is
// lifted, as for an agent's opt-in), and files the opt-in request, under
// req's regulation, that carries the lift to the connectors.
func (s *Service) allow(ctx context.Context, req *dsr.Request, ids []dsr.Identity, hashes []string, scopes []dsr.Scope) (string, error) {
	ev := dsr.ConsentEvent{Hashes: hashes, Kind: dsr.ConsentOptIn, Scopes: scopes, Source: dsr.ConsentPortal,
		RequestID: req.ID, Actor: subjectActor}
	ch, err := s.lift(ctx, ev, "allowed again in the preference centre", s.optInIdentities(Subject{}, ids), req.Regulation)
	if err != nil {
		return "", fmt.Errorf("allow %s: %w", Join(scopes), err)
	}
	return ch.OptInRequest, nil
}

// MyConsentHistory returns the consent history of the person whose request
// a opened: the events that concern their proven identities, oldest first,
// at most MaxPortalConsentHistory.
func (s *Service) MyConsentHistory(ctx context.Context, a Access) ([]PortalConsentEntry, error) {
	_, hashes, err := s.person(a)
	if err != nil {
		return nil, err
	}
	events, err := s.store.ConsentHistory(ctx, hashes, MaxPortalConsentHistory)
	if err != nil {
		return nil, fmt.Errorf("consent history: %w", err)
	}
	out := make([]PortalConsentEntry, len(events))
	for i, e := range events {
		out[i] = PortalConsentEntry{At: e.At, Kind: e.Kind, Scopes: e.Scopes, Source: e.Source, RequestID: e.RequestID}
		if out[i].Scopes == nil {
			out[i].Scopes = []dsr.Scope{}
		}
	}
	return out, nil
}
