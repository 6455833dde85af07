package workers_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers"
)

// fileWith stores a verified GDPR request of typ for ada, given her email
// and claiming a phone, changed by change before it is built.
func (e *env) fileWith(typ dsr.Type, change func(*dsr.Intake)) *dsr.Request {
	e.t.Helper()
	in := dsr.Intake{Type: typ, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester", Status: dsr.StatusVerified, ReceivedAt: e.clock.Now(),
		Identities: []dsr.Identity{
			{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject},
			{Kind: dsr.KindPhone, Value: "+442079460958", Source: dsr.SourceClaimed},
		}}
	if change != nil {
		change(&in)
	}
	r, err := dsr.NewRequest(in, e.index)
	testenv.Must(e.t, err)
	testenv.Must(e.t, e.store.CreateRequest(context.Background(), r))
	return r
}

// adaHashes are the suppression hashes of ada's email, of the customer id
// the shop resolves it to, and of the phone she only claims.
func (e *env) adaHashes() (email, customer, phone string) {
	k := e.index.SuppressionKey()
	return k.Hash(dsr.KindEmail, "ada@example.com"), k.Hash(dsr.KindCustomerID, "cus_ada"), k.Hash(dsr.KindPhone, "+442079460958")
}

// registry reads the suppression list of ada's hashes: per hash, its
// active scopes, sorted, with each entry's source and request.
func (e *env) registry() (map[string][]dsr.Scope, []dsr.Suppression) {
	e.t.Helper()
	email, customer, phone := e.adaHashes()
	got, err := e.store.Suppressions(context.Background(), []string{email, customer, phone})
	testenv.Must(e.t, err)
	out := map[string][]dsr.Scope{}
	for _, s := range got {
		if s.Active() {
			out[s.Hash] = append(out[s.Hash], s.Scope)
		}
	}
	for h := range out {
		slices.Sort(out[h])
	}
	return out, got
}

// TestFanoutSuppresses: the fan-out of an opt-out or a deletion puts every
// actionable identity of its person on the suppression list (the one
// given and the one a connector resolved, never the one only claimed)
// under its scopes, before the request is in progress, and records its
// consent events (and the GPC signal it came with); an access request
// suppresses nothing. The audit event holds counts and scopes only.
func TestFanoutSuppresses(t *testing.T) {
	t.Parallel()
	m, p, s, all := dsr.ScopeMarketing, dsr.ScopeProfiling, dsr.ScopeSaleShare, dsr.ScopeAll
	for _, tt := range []struct {
		name       string
		typ        dsr.Type
		change     func(*dsr.Intake)
		scopes     []dsr.Scope // sorted
		source     dsr.ConsentSource
		wantEvents []dsr.ConsentKind
	}{
		{"opt-out of marketing", dsr.TypeOptOut, func(in *dsr.Intake) { in.Scopes = []dsr.Scope{m} }, []dsr.Scope{m}, dsr.ConsentAPI,
			[]dsr.ConsentKind{dsr.ConsentOptOut}},
		{"opt-out, by an agent", dsr.TypeOptOut, func(in *dsr.Intake) { in.Source = "agent_api" }, []dsr.Scope{m, p, s}, dsr.ConsentAgent,
			[]dsr.ConsentKind{dsr.ConsentOptOut}},
		{"opt-out with GPC", dsr.TypeOptOut, func(in *dsr.Intake) { in.GPC, in.Source = true, "gpc" }, []dsr.Scope{s}, dsr.ConsentGPC,
			[]dsr.ConsentKind{dsr.ConsentGPCSeen, dsr.ConsentOptOut}},
		{"deletion on the portal", dsr.TypeDeletion, func(in *dsr.Intake) { in.Source = "portal" }, []dsr.Scope{all}, dsr.ConsentPortal,
			[]dsr.ConsentKind{dsr.ConsentDeletion}},
		{"access", dsr.TypeAccess, nil, nil, "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, 3)
			ctx := context.Background()
			r := e.fileWith(tt.typ, tt.change)
			testenv.Must(t, e.proc.Fanout(ctx, r.ID))
			got, err := e.store.Request(ctx, r.ID)
			testenv.Must(t, err)
			if got.Status != dsr.StatusInProgress && got.Status != dsr.StatusNeedsAttention {
				t.Fatalf("status %s after the fan-out", got.Status)
			}
			email, customer, phone := e.adaHashes()
			want := map[string][]dsr.Scope{}
			if tt.scopes != nil {
				want = map[string][]dsr.Scope{email: tt.scopes, customer: tt.scopes}
			}
			active, entries := e.registry()
			if diff := cmp.Diff(want, active); diff != "" {
				t.Errorf("suppression list (-want +got):\n%s", diff)
			}
			for _, en := range entries {
				if en.Source != tt.source || en.RequestID != r.ID {
					t.Errorf("entry %s: source %q, request %q; want %q, %q", en.ID, en.Source, en.RequestID, tt.source, r.ID)
				}
			}
			events, err := e.store.ConsentHistory(ctx, []string{email, customer, phone}, 100)
			testenv.Must(t, err)
			var kinds []dsr.ConsentKind
			for _, ev := range events {
				kinds = append(kinds, ev.Kind)
				if ev.ID != r.ID+":"+string(ev.Kind) || ev.RequestID != r.ID || ev.Actor != "worker" || !sameStrings(ev.Hashes, []string{email, customer}) {
					t.Errorf("event %+v", ev)
				}
				if ev.Kind == dsr.ConsentGPCSeen && (ev.Source != dsr.ConsentGPC || !slices.Equal(ev.Scopes, []dsr.Scope{s})) {
					t.Errorf("GPC event %+v; want source gpc, scope sale_share", ev)
				}
			}
			slices.Sort(kinds)
			if diff := cmp.Diff(tt.wantEvents, kinds); diff != "" {
				t.Errorf("consent events (-want +got):\n%s", diff)
			}
			trail, err := e.store.AuditTrail(ctx, r.ID)
			testenv.Must(t, err)
			n := 0
			for _, ev := range trail {
				if ev.Kind != "suppressed" {
					continue
				}
				n++
				if ev.Data["identities"] != "2" || ev.Data["created"] != ev.Data["entries"] || ev.Data["source"] != string(tt.source) {
					t.Errorf("audit event %v", ev.Data)
				}
				for _, v := range ev.Data {
					if strings.Contains(v, "example.com") || strings.Contains(v, "cus_ada") || strings.Contains(v, ":") {
						t.Errorf("audit event holds an identity or a hash: %v", ev.Data)
					}
				}
			}
			if want := len(tt.scopes) > 0; (n == 1) != want {
				t.Errorf("%d suppressed audit events; want one: %v", n, want)
			}
		})
	}
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// failOnce is the store of a fan-out whose first move to in_progress fails,
// as when the store goes away between the suppression and the move.
type failOnce struct {
	workers.FanoutStore
	failed atomic.Bool
}

func (f *failOnce) Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (*dsr.Request, error) {
	if to == dsr.StatusInProgress && f.failed.CompareAndSwap(false, true) {
		return nil, errors.New("store went away")
	}
	return f.FanoutStore.Transition(ctx, id, from, to, c)
}

// TestFanoutSuppressRetry: a fan-out that fails after writing the
// suppressions is retried and writes nothing twice: the same entries, one
// consent event of each kind, the first suppression's time kept.
func TestFanoutSuppressRetry(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, &optOuter{name: "crm"})
	ctx := context.Background()
	store := &failOnce{FanoutStore: e.store}
	h := workers.NewFanoutHandler(workers.FanoutDeps{Store: store, Connectors: e.reg, Queue: e.queue, Index: e.index, Log: slog.New(slog.NewTextHandler(e.logs, nil))},
		workers.FanoutOptions{MaxRetry: 3, ResolveMaxRounds: 3, Now: e.clock.Now})
	r := e.fileWith(dsr.TypeOptOut, func(in *dsr.Intake) { in.GPC = true })
	if err := h.Fanout(ctx, r.ID); err == nil || !strings.Contains(err.Error(), "store went away") {
		t.Fatalf("first fan-out: %v; want the store's error", err)
	}
	first, entries := e.registry()
	if len(first) != 2 {
		t.Fatalf("after the failed fan-out: %v; want both actionable identities suppressed already", first)
	}
	e.clock.Add(time.Minute)
	testenv.Must(t, h.Fanout(ctx, r.ID))
	again, entries2 := e.registry()
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("suppression list after the retry (-first +retry):\n%s", diff)
	}
	byID := func(es []dsr.Suppression) map[string]time.Time {
		out := map[string]time.Time{}
		for _, e := range es {
			out[e.ID] = e.At
		}
		return out
	}
	if diff := cmp.Diff(byID(entries), byID(entries2)); diff != "" {
		t.Errorf("entries' times after the retry (-first +retry):\n%s", diff)
	}
	email, customer, _ := e.adaHashes()
	events, err := e.store.ConsentHistory(ctx, []string{email, customer}, 100)
	testenv.Must(t, err)
	if len(events) != 2 {
		t.Errorf("%d consent events after a retry; want 2 (opt_out, gpc): %+v", len(events), events)
	}
	got, err := e.store.Request(ctx, r.ID)
	testenv.Must(t, err)
	if got.Status != dsr.StatusInProgress || got.FannedOutAt == nil {
		t.Errorf("after the retry: %s, fanned out %v", got.Status, got.FannedOutAt)
	}
	trail, err := e.store.AuditTrail(ctx, r.ID)
	testenv.Must(t, err)
	var created []string
	for _, ev := range trail {
		if ev.Kind == "suppressed" {
			created = append(created, ev.Data["created"])
		}
	}
	if diff := cmp.Diff([]string{"2", "0"}, created); diff != "" {
		t.Errorf("entries created by the fan-out and its retry (-want +got):\n%s", diff)
	}
}

// optOuter is an opt-out-capable system that counts its opt-outs.
type optOuter struct {
	name string
	n    atomic.Int64
}

func (o *optOuter) Name() string { return o.name }

func (o *optOuter) OptOut(context.Context, connectors.Subject) (connectors.Result, error) {
	o.n.Add(1)
	return connectors.Result{Records: 1}, nil
}

// TestScopedOptOut: an opt-out reaches the opt-out-capable connectors whose
// data map serves one of its scopes, and those that declare none; one that
// no connector serves needs attention, its person suppressed all the same.
func TestScopedOptOut(t *testing.T) {
	t.Parallel()
	m, p, s := dsr.ScopeMarketing, dsr.ScopeProfiling, dsr.ScopeSaleShare
	for _, tt := range []struct {
		name   string
		scopes []dsr.Scope
		gpc    bool
		want   []string // the connectors with a job
	}{
		{"marketing", []dsr.Scope{m}, false, []string{"crm", "mailer"}},
		{"sale and sharing, by GPC", nil, true, []string{"adnet", "crm"}},
		{"every purpose", nil, false, []string{"adnet", "crm", "mailer", "segments"}},
		{"profiling", []dsr.Scope{p}, false, []string{"crm", "segments"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mailer, adnet, segments, crm := &optOuter{name: "mailer"}, &optOuter{name: "adnet"}, &optOuter{name: "segments"}, &optOuter{name: "crm"}
			e := setup(t, 3, mailer, adnet, segments, crm)
			for name, sc := range map[string][]dsr.Scope{"mailer": {m}, "adnet": {s}, "segments": {p, m}} {
				testenv.Must(t, e.reg.SetDataMap(name, connectors.DataMap{Purpose: "test", Scopes: sc}))
			}
			testenv.Must(t, e.reg.SetDataMap("crm", connectors.DataMap{Purpose: "customer records"})) // no scopes: every opt-out
			if tt.name == "marketing" {
				// A data map that names other scopes is not asked.
				testenv.Must(t, e.reg.SetDataMap("segments", connectors.DataMap{Scopes: []dsr.Scope{p}}))
			}
			ctx := context.Background()
			r := e.fileWith(dsr.TypeOptOut, func(in *dsr.Intake) { in.Scopes, in.GPC = tt.scopes, tt.gpc })
			testenv.Must(t, e.proc.Fanout(ctx, r.ID))
			jobs, err := e.store.Jobs(ctx, r.ID)
			testenv.Must(t, err)
			var names []string
			for _, j := range jobs {
				names = append(names, j.Connector)
			}
			slices.Sort(names)
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("connectors asked (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("served by none", func(t *testing.T) {
		t.Parallel()
		mailer := &optOuter{name: "mailer"}
		e := setup(t, 3, mailer)
		testenv.Must(t, e.reg.SetDataMap("mailer", connectors.DataMap{Scopes: []dsr.Scope{m}}))
		ctx := context.Background()
		r := e.fileWith(dsr.TypeOptOut, func(in *dsr.Intake) { in.Scopes = []dsr.Scope{s} })
		testenv.Must(t, e.proc.Fanout(ctx, r.ID))
		got, err := e.store.Request(ctx, r.ID)
		testenv.Must(t, err)
		last := got.History[len(got.History)-1]
		if got.Status != dsr.StatusNeedsAttention || !strings.Contains(last.Reason, "no connector serves an opt-out of sale_share") {
			t.Errorf("%s: %q; want needs_attention saying no connector serves sale_share", got.Status, last.Reason)
		}
		if active, _ := e.registry(); len(active) != 2 {
			t.Errorf("suppression list %v; want both identities suppressed", active)
		}
	})
}

// lifter is a system that keeps a suppression of its own (Segment's): it
// opts out and lifts, counting the lifts.
type lifter struct {
	optOuter
	lifts atomic.Int64
}

func (l *lifter) OptIn(context.Context, connectors.Subject) (connectors.Result, error) {
	l.lifts.Add(1)
	return connectors.Result{Records: 1}, nil
}

// TestOptInFanout: an opt-in reaches the connectors that lift (never one
// that only opts out) serving one of its scopes (any, for a lift of all),
// and only when no scope they serve is still suppressed for the person
// (a data map without scopes serves every one, and all holds back every
// connector); those held back are named in the audit. One that reaches
// none completes with no job: nothing was promised in those systems.
func TestOptInFanout(t *testing.T) {
	t.Parallel()
	m, p, s, all := dsr.ScopeMarketing, dsr.ScopeProfiling, dsr.ScopeSaleShare, dsr.ScopeAll
	for _, tt := range []struct {
		name     string
		lifted   []dsr.Scope
		active   []dsr.Scope // still suppressed for ada's email
		want     []string    // the connectors with a job
		heldBack string      // the audit's list, "" when none
	}{
		{"marketing, nothing left", []dsr.Scope{m}, nil, []string{"analytics", "mailer"}, ""},
		{"marketing, sale_share left", []dsr.Scope{m}, []dsr.Scope{s}, []string{"mailer"}, "analytics: sale_share"},
		// The opt-out's fan-out suppressed the customer id its resolution
		// found; the opt-in's resolution finds it again and lifts it too.
		{"marketing, marketing on the resolved customer id", []dsr.Scope{m}, []dsr.Scope{m}, []string{"analytics", "mailer"}, ""},
		{"all, by an admin", []dsr.Scope{all}, nil, []string{"adnet", "analytics", "mailer"}, ""},
		{"profiling, a deletion's all left", []dsr.Scope{p}, []dsr.Scope{all}, nil, "analytics: all"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mailer, adnet, analytics := &lifter{optOuter: optOuter{name: "mailer"}}, &lifter{optOuter: optOuter{name: "adnet"}}, &lifter{optOuter: optOuter{name: "analytics"}}
			crm := &optOuter{name: "crm"}
			e := setup(t, 3, mailer, adnet, analytics, crm)
			testenv.Must(t, e.reg.SetDataMap("mailer", connectors.DataMap{Purpose: "test", Scopes: []dsr.Scope{m}}))
			testenv.Must(t, e.reg.SetDataMap("adnet", connectors.DataMap{Purpose: "test", Scopes: []dsr.Scope{s}}))
			ctx := context.Background()
			email, customer, _ := e.adaHashes()
			var entries []dsr.Suppression
			for _, sc := range tt.active {
				// On the customer id the fan-out resolves: the check covers
				// every actionable identity, not only those given.
				entries = append(entries, dsr.Suppression{Hash: customer, Scope: sc, Source: dsr.ConsentAPI, At: e.clock.Now()})
			}
			entries = append(entries, dsr.Suppression{Hash: email, Scope: m, Source: dsr.ConsentAPI, At: e.clock.Now()})
			_, err := e.store.Suppress(ctx, entries)
			testenv.Must(t, err)
			_, err = e.store.LiftSuppressions(ctx, []string{email}, m, "tester", "opted in")
			testenv.Must(t, err)

			r := e.fileWith(dsr.TypeOptIn, func(in *dsr.Intake) { in.Scopes = tt.lifted })
			testenv.Must(t, e.proc.Fanout(ctx, r.ID))
			jobs, err := e.store.Jobs(ctx, r.ID)
			testenv.Must(t, err)
			var names []string
			for _, j := range jobs {
				names = append(names, j.Connector)
				if j.Action != dsr.ActionOptIn {
					t.Errorf("job %s: action %s; want opt_in", j.Connector, j.Action)
				}
			}
			slices.Sort(names)
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("connectors asked (-want +got):\n%s", diff)
			}
			got, err := e.store.Request(ctx, r.ID)
			testenv.Must(t, err)
			if len(tt.want) == 0 && got.Status != dsr.StatusCompleted {
				t.Errorf("an opt-in no connector lifts: %s; want completed", got.Status)
			}
			active, _ := e.registry()
			if len(active[email]) != 0 {
				t.Errorf("the opt-in's fan-out suppressed ada's email again: %v", active[email])
			}
			for _, sc := range tt.lifted {
				if slices.Contains(active[customer], sc) {
					t.Errorf("the opt-in of %s left ada's resolved customer id suppressed under it: %v", sc, active[customer])
				}
			}
			var held string
			for _, d := range e.events(r.ID, "opt_in_held_back") {
				held = d["connectors"]
			}
			if held != tt.heldBack {
				t.Errorf("held back %q; want %q", held, tt.heldBack)
			}
		})
	}
}

// TestOptInFanoutLiftsGiven: an opt-in's fan-out lifts its scopes from the
// identities it was filed with too, not only from those resolution finds:
// the service files the request before it lifts, so a call that failed in
// between (a crash, a store error) is still carried out, evidence first.
func TestOptInFanoutLiftsGiven(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	ctx := context.Background()
	email, customer, _ := e.adaHashes()
	var entries []dsr.Suppression
	for _, h := range []string{email, customer} {
		for _, sc := range []dsr.Scope{dsr.ScopeMarketing, dsr.ScopeProfiling} {
			entries = append(entries, dsr.Suppression{Hash: h, Scope: sc, Source: dsr.ConsentPortal, At: e.clock.Now()})
		}
	}
	_, err := e.store.Suppress(ctx, entries)
	testenv.Must(t, err)
	r := e.fileWith(dsr.TypeOptIn, func(in *dsr.Intake) { in.Scopes = []dsr.Scope{dsr.ScopeMarketing} })
	testenv.Must(t, e.proc.Fanout(ctx, r.ID))
	active, _ := e.registry()
	want := map[string][]dsr.Scope{email: {dsr.ScopeProfiling}, customer: {dsr.ScopeProfiling}}
	if diff := cmp.Diff(want, active); diff != "" {
		t.Errorf("active entries after the opt-in's fan-out (-want +got):\n%s", diff)
	}
	history, err := e.store.ConsentHistory(ctx, []string{email}, 10)
	testenv.Must(t, err)
	if len(history) != 1 || history[0].Kind != dsr.ConsentOptIn || !slices.Contains(history[0].Hashes, email) || !slices.Contains(history[0].Hashes, customer) {
		t.Errorf("consent history %+v; want the opt-in's event naming both identities", history)
	}
}

// TestOptInFanoutBeforeTheServiceLifts: the service records its opt-in
// event, files the opt-in request, then lifts; a fan-out quicker than that
// lift finds the person still suppressed. It lifts (the service may have
// failed), but records no second event for the identities the service's
// event names: the person's history holds one opt-in, plus one for what
// resolution added.
func TestOptInFanoutBeforeTheServiceLifts(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	ctx := context.Background()
	email, customer, _ := e.adaHashes()
	var entries []dsr.Suppression
	for _, h := range []string{email, customer} {
		entries = append(entries, dsr.Suppression{Hash: h, Scope: dsr.ScopeMarketing, Source: dsr.ConsentPortal, At: e.clock.Now()})
	}
	_, err := e.store.Suppress(ctx, entries)
	testenv.Must(t, err)
	served := dsr.ConsentEvent{ID: "0b1e4bd0-6a9a-7c61-8f2a-38d6d6a1c999", Hashes: []string{email}, Kind: dsr.ConsentOptIn,
		Scopes: []dsr.Scope{dsr.ScopeMarketing}, Source: dsr.ConsentPortal, Actor: "subject", At: e.clock.Now()}
	testenv.Must(t, e.store.AddConsentEvents(ctx, []dsr.ConsentEvent{served}))
	r := e.fileWith(dsr.TypeOptIn, func(in *dsr.Intake) {
		in.Scopes, in.VerificationMethod = []dsr.Scope{dsr.ScopeMarketing}, "consent event "+served.ID
	})
	testenv.Must(t, e.proc.Fanout(ctx, r.ID))
	if active, _ := e.registry(); len(active) != 0 {
		t.Errorf("active entries after the fan-out: %v; want none", active)
	}
	history, err := e.store.ConsentHistory(ctx, []string{email, customer}, 10)
	testenv.Must(t, err)
	var emailEvents, customerEvents int
	for _, ev := range history {
		if slices.Contains(ev.Hashes, email) {
			emailEvents++
		}
		if slices.Contains(ev.Hashes, customer) {
			customerEvents++
		}
	}
	if emailEvents != 1 || customerEvents != 1 {
		t.Errorf("events naming the email: %d, the customer id: %d; want one each (the service's, the fan-out's for what it added)\n%+v", emailEvents, customerEvents, history)
	}
}
