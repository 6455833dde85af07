package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/links"
	"github.com/dsar-project/dsar/internal/webhook"
)

// FanoutStore is what a fan-out reads and writes in the store.
type FanoutStore interface {
	AuditStore
	Request(ctx context.Context, id string) (*dsr.Request, error)
	Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (*dsr.Request, error)
	FanoutFailed(ctx context.Context, id, msg string) (*dsr.Request, error)
	CreateJobs(ctx context.Context, jobs []dsr.Job) error
	// FannedOut marks the request fanned out with its jobs counted, and
	// settles it if they all finished meanwhile.
	FannedOut(ctx context.Context, id string, jobs int, actor string) (dsr.Status, error)
	// HoldForHook records the pre-fan-out hook's hold on a verified
	// request (ids, when not nil, its identities with those the hook added).
	HoldForHook(ctx context.Context, id string, until time.Time, ids []dsr.Identity, hashes []string) (*dsr.Request, error)
	// Suppress and AddConsentEvents write an opt-out's or a deletion's
	// suppressions and consent events (store.Suppressions).
	Suppress(ctx context.Context, entries []dsr.Suppression) (int, error)
	AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error
	// Suppressions returns the entries of hashes, active and lifted: an
	// opt-in's fan-out reads which scopes still hold.
	Suppressions(ctx context.Context, hashes []string) ([]dsr.Suppression, error)
	// LiftSuppressions lifts an opt-in's scopes from the identities its
	// resolution found.
	LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by, reason string) (int, error)
	// ConsentHistory returns the consent events of hashes: an opt-in's
	// fan-out finds the event the service's own lift recorded.
	ConsentHistory(ctx context.Context, hashes []string, limit int) ([]dsr.ConsentEvent, error)
}

// FanoutConnectors are the connectors a fan-out asks: those that act on a
// request's action, and those that resolve identities; an opt-out asks
// those of them whose data map serves one of its scopes.
type FanoutConnectors interface {
	For(a connectors.Action) []connectors.Connector
	Resolvers() []connectors.Resolver
	DataMap(name string) (connectors.DataMap, bool)
}

// FanoutQueue takes the jobs a fan-out creates, and the notice of a request
// it settles.
type FanoutQueue interface {
	noticeQueue
	EnqueueJob(ctx context.Context, jobID string) error
	// EnqueueFanoutAt schedules a request's fan-out at a time (the end of
	// the pre-fan-out hook's hold).
	EnqueueFanoutAt(ctx context.Context, requestID string, at time.Time) error
}

// Hasher makes the blind index of identities, and gives the key of their
// suppression hashes (dsr.BlindIndex does both).
type Hasher interface {
	HashAll(ids []dsr.Identity) []string
	SuppressionKey() dsr.SuppressionKey
}

// FanoutDeps is what a FanoutHandler works with.
type FanoutDeps struct {
	Store      FanoutStore
	Connectors FanoutConnectors
	Queue      FanoutQueue
	Index      Hasher
	Log        *slog.Logger
}

// FanoutOptions tunes a FanoutHandler.
type FanoutOptions struct {
	// MaxRetry: a fan-out fails for good, and its request needs attention,
	// after MaxRetry+1 failures.
	MaxRetry int
	// Approval says which requests wait for an agent's approval before
	// their fan-out.
	Approval dsr.ApprovalPolicy
	// ResolveMaxRounds bounds identity resolution: each round may find
	// identities that let another collection provide more. 0: no
	// resolution. dsar sets it from DSAR_RESOLVE_MAX_ROUNDS.
	ResolveMaxRounds int
	// Hooks are the business's pre-fan-out hook (called here) and
	// post-processing hook (which requests fanned out then owe their
	// outcome).
	Hooks HookOptions
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// FanoutHandler handles TypeFanout: a verified request's identity
// resolution and its jobs.
type FanoutHandler struct {
	store FanoutStore
	conns FanoutConnectors
	queue FanoutQueue
	index Hasher
	log   *slog.Logger
	opts  FanoutOptions
	hooks HookOptions
	hook  *webhook.Sender
	audit func(ctx context.Context, requestID, kind string, data map[string]string)
}

// NewFanoutHandler returns a FanoutHandler.
func NewFanoutHandler(d FanoutDeps, o FanoutOptions) *FanoutHandler {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &FanoutHandler{store: d.Store, conns: d.Connectors, queue: d.Queue, index: d.Index, log: d.Log, opts: o,
		hooks: o.Hooks, hook: webhook.New(o.Hooks.Client, o.Hooks.Secret, webhook.WithClock(o.Now), webhook.WithPrevious(o.Hooks.Previous)),
		audit: auditor{store: d.Store, log: d.Log}.audit}
}

// ProcessTask moves a verified request to in_progress after identity
// resolution, creates one job per connector that handles the request's
// action, enqueues them and marks the request fanned out. Every step is
// idempotent, so a retry after a crash at any point finishes the work.
func (h *FanoutHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var pl fanoutPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.RequestID == "" {
		return fmt.Errorf("fanout: malformed payload: %w", asynq.SkipRetry)
	}
	err := h.Fanout(ctx, pl.RequestID)
	if err != nil {
		h.log.WarnContext(ctx, "fan-out failed", "request_id", pl.RequestID, "error", err)
	}
	return err
}

// Fanout does the work of ProcessTask for one request. Its error never
// quotes the subject's identities. A failed fan-out counts on the request
// (FanoutFailures, with the error, redacted, shown as FanoutError) however
// it was run, by a retry of its task or by the sweep; after MaxRetry+1
// failures the request needs attention, and an agent's retry runs the
// fan-out again.
func (h *FanoutHandler) Fanout(ctx context.Context, requestID string) error {
	err := h.fanout(ctx, requestID)
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		return err
	}
	return h.fanoutFailed(ctx, requestID, err)
}

// fanoutFailed records a failed fan-out and, past the retry budget, moves
// the request to needs_attention and tells asynq not to retry. cause is
// redacted already.
//
// A fan-out that ran out of time has a context that has ended: the failure
// is recorded under a context of its own, so timeouts count too.
func (h *FanoutHandler) fanoutFailed(ctx context.Context, requestID string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	msg := cause.Error()
	req, err := h.store.FanoutFailed(ctx, requestID, msg)
	if errors.Is(err, dsr.ErrConflict) {
		return cause // fanned out, or moved on, meanwhile
	}
	if err != nil {
		h.log.ErrorContext(ctx, "fan-out failed and its failure could not be recorded", "request_id", requestID, "error", err)
		return cause
	}
	if req.FanoutFailures <= h.opts.MaxRetry && !errors.Is(cause, dsr.ErrUnreadable) {
		return cause
	}
	_, err = h.store.Transition(ctx, req.ID, req.Status, dsr.StatusNeedsAttention, dsr.Change{
		Actor: actor, Reason: fmt.Sprintf("fan-out failed %d times: %s", req.FanoutFailures, msg), OutcomeHook: h.outcomeHook(),
	})
	if errors.Is(err, dsr.ErrConflict) {
		return cause
	}
	if err != nil {
		return fmt.Errorf("%s; then: %w", msg, err)
	}
	h.log.ErrorContext(ctx, "fan-out failed for good; the request needs attention", "request_id", req.ID, "failures", req.FanoutFailures, "error", msg)
	return fmt.Errorf("%s: %w", msg, asynq.SkipRetry)
}

func (h *FanoutHandler) fanout(ctx context.Context, requestID string) (err error) {
	var ids []dsr.Identity
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("fanout %s: panic: %v", requestID, rec)
		}
		err = redactErr(err, ids)
	}()
	req, err := h.store.Request(ctx, requestID)
	if errors.Is(err, dsr.ErrNotFound) {
		return fmt.Errorf("fanout: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	ids = req.Identities
	// An appeal always waits for an agent's decision (one verified by the
	// portal's code comes here first).
	if h.opts.Approval.Holds(req) {
		_, err := h.store.Transition(ctx, req.ID, dsr.StatusVerified, dsr.StatusAwaitingApproval, dsr.Change{
			Actor: dsr.ActorPolicy, Reason: dsr.ReasonAwaitingApproval,
		})
		if err != nil && !errors.Is(err, dsr.ErrConflict) {
			return fmt.Errorf("fanout: %w", err)
		}
		return nil
	}
	if req.Status == dsr.StatusVerified {
		if h.hooks.PreURL != "" {
			proceed, err := h.preHook(ctx, req)
			ids = req.Identities
			if err != nil || !proceed {
				return err
			}
		}
		resolved, bound, err := h.resolve(ctx, req)
		ids = resolved
		if err != nil {
			return fmt.Errorf("fanout %s: %w", req.ID, err)
		}
		// Before the request can move on (so before any job exists, and
		// long before it can be reported completed), its person is on the
		// suppression list: a check sees the opt-out from then on.
		if err := h.suppress(ctx, req, resolved); err != nil {
			return fmt.Errorf("fanout %s: %w", req.ID, err)
		}
		if err := h.liftResolved(ctx, req, resolved); err != nil {
			return fmt.Errorf("fanout %s: %w", req.ID, err)
		}
		// Keep the claimed identities on the record, after the actionable ones.
		all := dsr.MergeIdentities(resolved, req.Identities)
		moved, err := h.store.Transition(ctx, req.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{
			Actor:      actor,
			Reason:     fmt.Sprintf("fan-out: %d identities after resolution", len(resolved)) + boundNote(bound),
			Identities: all,
			Hashes:     h.index.HashAll(all),

			ResolveBoundReached: bound,
			OutcomeHook:         h.outcomeHook(),
		})
		if err == nil && bound > 0 {
			h.log.WarnContext(ctx, "identity resolution stopped at its bound while still finding identities", "request_id", req.ID, "rounds", bound)
			h.audit(ctx, req.ID, "resolution_bound_reached", map[string]string{"rounds": fmt.Sprint(bound), "identities": fmt.Sprint(len(resolved))})
		}
		switch {
		case errors.Is(err, dsr.ErrConflict):
			if req, err = h.store.Request(ctx, req.ID); err != nil {
				return fmt.Errorf("fanout: %w", err)
			}
		case err != nil:
			return fmt.Errorf("fanout: %w", err)
		default:
			req = moved
		}
	}
	if req.Status != dsr.StatusInProgress || req.FannedOutAt != nil {
		return nil // not ours to fan out, or done already
	}
	action := req.Type.Action()
	conns := h.conns.For(connectors.Action(action))
	if action == dsr.ActionCorrect {
		var unowned []string
		if conns, unowned = owners(conns, req.Corrections); len(unowned) > 0 {
			return h.unowned(ctx, req, unowned)
		}
	}
	if action == dsr.ActionOptOut {
		conns = h.serving(conns, req.SuppressedScopes())
	}
	if action == dsr.ActionOptIn {
		var kept map[string][]dsr.Scope
		if conns, kept, err = h.lifting(ctx, req, conns); err != nil {
			return fmt.Errorf("fanout %s: %w", req.ID, err)
		}
		if len(kept) > 0 {
			h.audit(ctx, req.ID, "opt_in_held_back", map[string]string{"connectors": heldBack(kept)})
		}
	}
	var jobs []dsr.Job
	for _, c := range conns {
		j := dsr.NewJob(req.ID, c.Name(), action, h.opts.Now())
		j.Identities = req.Identities // what running it needs: no job reads the request
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 && action != dsr.ActionOptIn {
		return h.noConnector(ctx, req)
	}
	if err := h.store.CreateJobs(ctx, jobs); err != nil {
		return fmt.Errorf("fanout %s: %w", req.ID, err)
	}
	for _, j := range jobs {
		if err := h.queue.EnqueueJob(ctx, j.ID); err != nil {
			return fmt.Errorf("fanout %s: %w", req.ID, err)
		}
	}
	// Jobs that finished before the mark could not settle the request: the
	// mark does when they all did.
	to, err := h.store.FannedOut(ctx, req.ID, len(jobs), actor)
	if err != nil {
		return fmt.Errorf("fanout %s: %w", req.ID, err)
	}
	h.log.InfoContext(ctx, "request fanned out", "request_id", req.ID, "jobs", len(jobs))
	settled(ctx, h.queue, h.log, req.ID, to, h.outcomeHook())
	return nil
}

// noConnector sends an in-progress request that no connector can act on to
// needs_attention with the reason: it is never completed (and the person
// never told it is done) when nothing was asked to do it.
func (h *FanoutHandler) noConnector(ctx context.Context, req *dsr.Request) error {
	reason := fmt.Sprintf("no connector is configured to %s: nothing was done; configure one in DSAR_CONNECTORS_FILE, then retry or close the request",
		actionVerb(req.Type.Action()))
	if req.Type == dsr.TypeOptOut && len(h.conns.For(connectors.ActionOptOut)) > 0 {
		reason = fmt.Sprintf("no connector serves an opt-out of %s (the scopes of its data_map): the person's identities are on the suppression list, "+
			"but no system was asked to opt them out; declare the scope on a connector in DSAR_CONNECTORS_FILE, then retry or close the request",
			scopeNames(req.SuppressedScopes()))
	}
	_, err := h.store.Transition(ctx, req.ID, dsr.StatusInProgress, dsr.StatusNeedsAttention, dsr.Change{Actor: actor, Reason: reason, OutcomeHook: h.outcomeHook()})
	if errors.Is(err, dsr.ErrConflict) {
		return nil // moved meanwhile by someone else
	}
	if err != nil {
		return fmt.Errorf("fanout %s: %w", req.ID, err)
	}
	h.log.WarnContext(ctx, "request needs attention: no connector for its action", "request_id", req.ID, "action", req.Type.Action())
	return nil
}

// serving returns the connectors of conns that serve an opt-out of
// scopes: those whose data map declares none of its own, and those that
// declare one of scopes (connectors.Serves).
func (h *FanoutHandler) serving(conns []connectors.Connector, scopes []dsr.Scope) []connectors.Connector {
	var out []connectors.Connector
	for _, c := range conns {
		dm, _ := h.conns.DataMap(c.Name())
		if connectors.Serves(dm.Scopes, scopes) {
			out = append(out, c)
		}
	}
	return out
}

// lifting returns the connectors of conns that an opt-in reaches: those
// that serve one of its scopes (any, for a lift of ScopeAll) and for which
// no scope they serve is still suppressed for the person in the registry
// (the suppression hashes of the request's actionable identities, after
// resolution). kept names, by connector, the scopes that still hold the
// others back. An opt-in that reaches none completes with nothing to do:
// unlike an opt-out, nothing was promised in those systems.
func (h *FanoutHandler) lifting(ctx context.Context, req *dsr.Request, conns []connectors.Connector) (out []connectors.Connector, kept map[string][]dsr.Scope, err error) {
	hashes := h.index.SuppressionKey().HashAll(dsr.Actionable(req.Identities))
	var active []dsr.Scope
	if len(hashes) > 0 && len(conns) > 0 {
		entries, err := h.store.Suppressions(ctx, hashes)
		if err != nil {
			return nil, nil, fmt.Errorf("suppressions: %w", err)
		}
		for _, e := range entries {
			if e.Active() && !slices.Contains(active, e.Scope) {
				active = append(active, e.Scope)
			}
		}
	}
	for _, c := range conns {
		dm, _ := h.conns.DataMap(c.Name())
		if !slices.Contains(req.Scopes, dsr.ScopeAll) && !connectors.Serves(dm.Scopes, req.Scopes) {
			continue
		}
		if still := connectors.StillSuppressed(dm.Scopes, active); len(still) > 0 {
			if kept == nil {
				kept = map[string][]dsr.Scope{}
			}
			kept[c.Name()] = still
			continue
		}
		out = append(out, c)
	}
	return out, kept, nil
}

// liftResolved lifts an opt-in's scopes from every actionable identity of
// its person (ids: those given and those its resolution found). The
// service lifted those given when it filed the opt-in, unless it failed
// right after filing; an opt-out's fan-out suppressed what its resolution
// found (the customer id a shop gave for the email), so an opt-in that
// lifted only the email would leave the person suppressed under their
// customer id, for the checks and for lifting's hold-back. It names and
// lifts only the hashes still suppressed under one of the scopes; its
// consent event ("<id>:opt_in", or ":lifted" for an admin's lift) is
// stored before the lift, and both are idempotent. Other types lift
// nothing.
func (h *FanoutHandler) liftResolved(ctx context.Context, req *dsr.Request, ids []dsr.Identity) error {
	if req.Type != dsr.TypeOptIn || len(req.Scopes) == 0 {
		return nil
	}
	all := h.index.SuppressionKey().HashAll(dsr.Actionable(ids))
	if len(all) == 0 {
		return nil
	}
	// Only the hashes still suppressed under a scope are named and lifted:
	// those the service lifted when it filed the opt-in already have their
	// event.
	entries, err := h.store.Suppressions(ctx, all)
	if err != nil {
		return fmt.Errorf("suppressions: %w", err)
	}
	var hashes []string
	for _, e := range entries {
		if e.Active() && slices.Contains(req.Scopes, e.Scope) && !slices.Contains(hashes, e.Hash) {
			hashes = append(hashes, e.Hash)
		}
	}
	if len(hashes) == 0 {
		return nil
	}
	slices.Sort(hashes)
	kind, source := dsr.ConsentOptIn, consentSource(req)
	if s := dsr.ConsentSource(strings.TrimPrefix(req.Source, "consent_")); s.Valid() && strings.HasPrefix(req.Source, "consent_") {
		source = s
	}
	if source == dsr.ConsentAdmin {
		kind = dsr.ConsentLifted
	}
	reason := "opt-in request " + req.ID + ": the person's identities, with those found by resolution"
	// The service records its lift's event before it files the opt-in,
	// and lifts after: a fan-out quicker than that lift finds the hashes
	// it names still suppressed. They are lifted here too (idempotent: the
	// service may have failed before its lift), but their evidence is that
	// event, not a second one.
	fresh := hashes
	if evID, ok := strings.CutPrefix(req.VerificationMethod, "consent event "); ok {
		history, err := h.store.ConsentHistory(ctx, hashes, 100)
		if err != nil {
			return fmt.Errorf("consent history: %w", err)
		}
		for _, e := range history {
			if e.ID == evID {
				fresh = slices.DeleteFunc(slices.Clone(hashes), func(x string) bool { return slices.Contains(e.Hashes, x) })
			}
		}
	}
	if len(fresh) > 0 {
		ev := dsr.ConsentEvent{ID: req.ID + ":" + string(kind), Hashes: fresh, Kind: kind, Scopes: req.Scopes, Source: source,
			RequestID: req.ID, Actor: actor, Reason: reason, At: h.opts.Now().UTC()}
		if err := h.store.AddConsentEvents(ctx, []dsr.ConsentEvent{ev}); err != nil {
			return fmt.Errorf("consent events: %w", err)
		}
	}
	lifted := 0
	for _, sc := range req.Scopes {
		n, err := h.store.LiftSuppressions(ctx, hashes, sc, actor, reason)
		if err != nil {
			return fmt.Errorf("lift suppressions: %w", err)
		}
		lifted += n
	}
	h.log.InfoContext(ctx, "opt-in lifted", "request_id", req.ID, "identities", len(hashes), "scopes", scopeNames(req.Scopes), "lifted", lifted)
	h.audit(ctx, req.ID, "lifted", map[string]string{"identities": fmt.Sprint(len(hashes)), "scopes": scopeNames(req.Scopes),
		"lifted": fmt.Sprint(lifted), "source": string(source)})
	return nil
}

// heldBack writes the connectors an opt-in did not reach and the scopes
// that held each back: "crm: marketing; segment: all".
func heldBack(kept map[string][]dsr.Scope) string {
	names := make([]string, 0, len(kept))
	for n := range kept {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + scopeNames(kept[n])
	}
	return strings.Join(parts, "; ")
}

// suppress puts the person of an opt-out or a deletion on the suppression
// list: the suppression hash of every actionable identity (ids: those
// given, resolved and added by the hook; never claimed ones) under the
// request's scopes (a deletion's: ScopeAll), and records the consent
// events ("<id>:opt_out" or "<id>:deletion", and "<id>:gpc" when the
// request came with a GPC signal). Every write is idempotent, so a retried
// fan-out writes nothing twice. Other types suppress nothing. Its audit
// event holds counts and scopes only.
func (h *FanoutHandler) suppress(ctx context.Context, req *dsr.Request, ids []dsr.Identity) error {
	scopes := req.SuppressedScopes()
	if len(scopes) == 0 {
		return nil
	}
	hashes := h.index.SuppressionKey().HashAll(dsr.Actionable(ids))
	if len(hashes) == 0 {
		return nil
	}
	now, source := h.opts.Now().UTC(), consentSource(req)
	entries := make([]dsr.Suppression, 0, len(hashes)*len(scopes))
	for _, hash := range hashes {
		for _, sc := range scopes {
			entries = append(entries, dsr.Suppression{Hash: hash, Scope: sc, Source: source, RequestID: req.ID, At: now})
		}
	}
	created, err := h.store.Suppress(ctx, entries)
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	kind := dsr.ConsentOptOut
	if req.Type == dsr.TypeDeletion {
		kind = dsr.ConsentDeletion
	}
	events := []dsr.ConsentEvent{{ID: req.ID + ":" + string(kind), Hashes: hashes, Kind: kind, Scopes: scopes, Source: source,
		RequestID: req.ID, Actor: actor, At: now}}
	if req.GPC {
		events = append(events, dsr.ConsentEvent{ID: req.ID + ":" + string(dsr.ConsentGPCSeen), Hashes: hashes, Kind: dsr.ConsentGPCSeen,
			Scopes: []dsr.Scope{dsr.ScopeSaleShare}, Source: dsr.ConsentGPC, RequestID: req.ID, Actor: actor, At: now})
	}
	if err := h.store.AddConsentEvents(ctx, events); err != nil {
		return fmt.Errorf("consent events: %w", err)
	}
	h.log.InfoContext(ctx, "identities suppressed", "request_id", req.ID, "identities", len(hashes), "scopes", scopeNames(scopes), "created", created)
	h.audit(ctx, req.ID, "suppressed", map[string]string{"identities": fmt.Sprint(len(hashes)), "scopes": scopeNames(scopes),
		"entries": fmt.Sprint(len(entries)), "created": fmt.Sprint(created), "source": string(source)})
	return nil
}

// consentSource is where a request's suppression and consent events come
// from: its GPC signal, the portal (a source "portal" or "portal_..."),
// an agent (the agent API), a privacy protocol (a source "protocol" or
// "protocol_...", the names the protocol endpoints are to file under), or
// else another system through the API.
func consentSource(req *dsr.Request) dsr.ConsentSource {
	switch {
	case req.GPC || req.Source == links.SourceGPC:
		return dsr.ConsentGPC
	case strings.HasPrefix(req.Source, links.SourcePortal):
		return dsr.ConsentPortal
	case req.Source == links.SourceAgentAPI:
		return dsr.ConsentAgent
	case strings.HasPrefix(req.Source, "protocol"):
		return dsr.ConsentProtocol
	}
	return dsr.ConsentAPI
}

// scopeNames lists scopes, comma-separated.
func scopeNames(scopes []dsr.Scope) string {
	s := make([]string, len(scopes))
	for i, sc := range scopes {
		s[i] = string(sc)
	}
	return strings.Join(s, ",")
}

// owners returns the connectors of conns that own a field of cs (only
// they get a job), and the fields of cs no connector owns.
func owners(conns []connectors.Connector, cs []dsr.Correction) (own []connectors.Connector, unowned []string) {
	for _, c := range conns {
		if slices.ContainsFunc(cs, func(x dsr.Correction) bool { return connectors.Owns(c, x.Field) }) {
			own = append(own, c)
		}
	}
	for _, x := range cs {
		if !slices.ContainsFunc(own, func(c connectors.Connector) bool { return connectors.Owns(c, x.Field) }) {
			unowned = append(unowned, x.Field)
		}
	}
	return own, unowned
}

// unowned sends an in-progress correction that asks for fields no
// connector owns to needs_attention, nothing changed anywhere: a correction
// is applied whole or not at all. An agent configures a connector and
// retries, or closes the request with a reason.
func (h *FanoutHandler) unowned(ctx context.Context, req *dsr.Request, fields []string) error {
	reason := fmt.Sprintf("no connector is configured to correct %s: nothing was changed; configure one (a collection's correct:) in DSAR_CONNECTORS_FILE, then retry, or close the request",
		strings.Join(fields, ", "))
	_, err := h.store.Transition(ctx, req.ID, dsr.StatusInProgress, dsr.StatusNeedsAttention, dsr.Change{Actor: actor, Reason: reason})
	if errors.Is(err, dsr.ErrConflict) {
		return nil // moved meanwhile by someone else
	}
	if err != nil {
		return fmt.Errorf("fanout %s: %w", req.ID, err)
	}
	h.log.WarnContext(ctx, "correction needs attention: fields no connector owns", "request_id", req.ID, "fields", strings.Join(fields, ","))
	return nil
}

// boundNote is what the fan-out's history says when resolution reached its
// bound.
func boundNote(bound int) string {
	if bound == 0 {
		return ""
	}
	return fmt.Sprintf("; identity resolution stopped at its bound of %d rounds while still finding identities (DSAR_RESOLVE_MAX_ROUNDS): data keyed by identities not found may remain", bound)
}

// resolve runs every Resolver until no new identity turns up, normalising
// what they provide; identities that do not normalise are dropped. It
// returns the request's identities with those found, and, when it stopped
// at ResolveMaxRounds although the last round still found new identities,
// that number of rounds (else 0).
func (h *FanoutHandler) resolve(ctx context.Context, req *dsr.Request) ([]dsr.Identity, int, error) {
	ids := dsr.Actionable(req.Identities)
	resolvers := h.conns.Resolvers()
	if len(resolvers) == 0 {
		return ids, 0, nil
	}
	for round := 0; round < h.opts.ResolveMaxRounds; round++ {
		before := len(ids)
		for _, r := range resolvers {
			rctx, span := startResolve(ctx, r, req.ID)
			found, err := r.Resolve(rctx, subjectOf(ids))
			endResolve(span, len(found), err)
			if err != nil {
				return ids, 0, fmt.Errorf("resolve identities: %w", err)
			}
			var fresh []dsr.Identity
			dropped := 0
			for _, f := range found {
				v, err := dsr.Normalize(dsr.Kind(f.Kind), f.Value)
				if err != nil {
					dropped++
					continue
				}
				fresh = append(fresh, dsr.Identity{Kind: dsr.Kind(f.Kind), Value: v, Source: f.Source})
			}
			if dropped > 0 {
				h.log.WarnContext(ctx, "resolved identities dropped: not valid for their kind", "request_id", req.ID, "dropped", dropped)
			}
			ids = dsr.MergeIdentities(ids, fresh)
		}
		if len(ids) == before {
			return ids, 0, nil
		}
	}
	return ids, h.opts.ResolveMaxRounds, nil
}

func subjectOf(ids []dsr.Identity) connectors.Subject {
	s := connectors.Subject{Identities: make([]connectors.Identity, len(ids))}
	for i, id := range ids {
		s.Identities[i] = connectors.Identity{Kind: string(id.Kind), Value: id.Value, Source: id.Source}
	}
	return s
}

// SettleStore closes a request whose jobs are all finished, reading them.
type SettleStore interface {
	Settle(ctx context.Context, requestID, actor string) (dsr.Status, error)
}

// settled logs a request that a worker settled to status to ("": not
// settled), and hands its completion notice (and the status an authorised
// agent is owed, dsr.NoticeProtocolStatus) to the queue, and, when
// requests owe the post-processing hook their outcome (outcome), that too.
func settled(ctx context.Context, q noticeQueue, log *slog.Logger, requestID string, to dsr.Status, outcome bool) {
	if to == "" {
		return
	}
	log.InfoContext(ctx, "request settled", "request_id", requestID, "status", to)
	if to == dsr.StatusCompleted {
		// The notice is pending in the store already; the sweep sends it
		// if this enqueue is lost.
		if err := q.EnqueueNotice(ctx, requestID, dsr.NoticeCompleted); err != nil {
			log.WarnContext(ctx, "completion notice not enqueued; the sweep will retry", "request_id", requestID, "error", err)
		}
		// A request of the Data Rights Protocol owes its agent
		// "fulfilled" too (the task does nothing for any other request:
		// no status pending).
		if err := q.EnqueueNotice(ctx, requestID, dsr.NoticeProtocolStatus); err != nil {
			log.WarnContext(ctx, "agent's status not enqueued; the sweep will retry", "request_id", requestID, "error", err)
		}
	}
	if outcome && dsr.OutcomeDue(to) {
		if err := q.EnqueueNotice(ctx, requestID, dsr.NoticeHookOutcome); err != nil {
			log.WarnContext(ctx, "outcome for the post-processing hook not enqueued; the sweep will retry", "request_id", requestID, "error", err)
		}
	}
}
