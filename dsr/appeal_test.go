package dsr_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

func TestNewAppeal(t *testing.T) {
	t.Parallel()
	idx, err := dsr.NewBlindIndex([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	email := dsr.Identity{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}
	phone := dsr.Identity{Kind: dsr.KindPhone, Value: "+442079460958", Source: dsr.SourceSubject}
	denied := func(mod func(*dsr.Request)) *dsr.Request {
		r := &dsr.Request{ID: "d", Type: dsr.TypeDeletion, Regulation: dsr.RegulationVCDPA, Status: dsr.StatusDenied,
			Identities: []dsr.Identity{email}, IdentityHashes: []string{"h"}, ProvenHashes: []string{"p"}, VerificationMethod: "id card",
			History: []dsr.Transition{{To: dsr.StatusVerified}, {From: dsr.StatusVerified, To: dsr.StatusDenied}}, DenialBasis: dsr.DeniedExempt}
		if mod != nil {
			mod(r)
		}
		return r
	}
	unproven := func(r *dsr.Request) {
		r.History, r.DenialBasis, r.ProvenHashes = []dsr.Transition{{To: dsr.StatusVerifying}, {To: dsr.StatusDenied}}, dsr.DeniedUnverifiable, nil
	}
	tests := []struct {
		name    string
		denied  *dsr.Request
		f       dsr.AppealFiling
		wantErr error // nil: filed; errValidation: a *ValidationError
		status  dsr.Status
		method  string
		proven  []string
		notices []string
	}{
		{"inherits the proof", denied(nil), dsr.AppealFiling{Actor: "agent", Reason: "disputed"}, nil, dsr.StatusAwaitingApproval, "id card", []string{"p"}, nil},
		{"attested anew", denied(nil), dsr.AppealFiling{Actor: "agent", Attested: "call back", Index: idx}, nil, dsr.StatusAwaitingApproval, "call back", idx.HashAll([]dsr.Identity{email}), nil},
		{"verified anew on the portal", denied(unproven), dsr.AppealFiling{Actor: "agent", Verify: true}, nil, dsr.StatusVerifying, "", nil, []string{dsr.NoticeVerify}},
		{"unverifiable, no new proof", denied(unproven), dsr.AppealFiling{Actor: "agent"}, dsr.ErrProofRequired, "", "", nil, nil},
		{"portal verification without an email", denied(func(r *dsr.Request) { r.Identities = []dsr.Identity{phone} }), dsr.AppealFiling{Verify: true}, errValidation, "", "", nil, nil},
		{"not denied", denied(func(r *dsr.Request) { r.Status = dsr.StatusCompleted }), dsr.AppealFiling{}, dsr.ErrNotAppealable, "", "", nil, nil},
		{"GDPR grants no appeal", denied(func(r *dsr.Request) { r.Regulation = dsr.RegulationGDPR }), dsr.AppealFiling{}, dsr.ErrNotAppealable, "", "", nil, nil},
		{"identities purged", denied(func(r *dsr.Request) { r.Identities = nil }), dsr.AppealFiling{}, dsr.ErrNotAppealable, "", "", nil, nil},
		{"an appeal's decision is final", denied(func(r *dsr.Request) { r.AppealOf = "x" }), dsr.AppealFiling{}, dsr.ErrNotAppealable, "", "", nil, nil},
	}
	for _, tt := range tests {
		a, err := dsr.NewAppeal(tt.denied, tt.f, t0)
		var ve *dsr.ValidationError
		switch {
		case tt.wantErr == errValidation:
			if !errors.As(err, &ve) {
				t.Errorf("%s: %v, want a validation error", tt.name, err)
			}
			continue
		case tt.wantErr != nil:
			if !errors.Is(err, tt.wantErr) || a != nil {
				t.Errorf("%s: %v, %v; want %v", tt.name, a, err, tt.wantErr)
			}
			continue
		case err != nil:
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !dsr.ValidID(a.ID) || a.AppealOf != "d" || a.Source != "appeal" || a.Type != dsr.TypeDeletion || a.Regulation != dsr.RegulationVCDPA ||
			!a.ReceivedAt.Equal(t0) || !a.DueAt.Equal(t0.AddDate(0, 0, 60)) || !a.AuditDue || a.FiledBy != tt.f.Actor {
			t.Errorf("%s: appeal %+v", tt.name, a)
		}
		if a.Status != tt.status || a.VerificationMethod != tt.method || !slices.Equal(a.ProvenHashes, tt.proven) || !slices.Equal(a.PendingNotices, tt.notices) {
			t.Errorf("%s: status %s, method %q, proven %v, notices %v; want %s, %q, %v, %v", tt.name, a.Status, a.VerificationMethod, a.ProvenHashes, a.PendingNotices,
				tt.status, tt.method, tt.proven, tt.notices)
		}
		if len(a.History) != 1 || a.History[0].To != tt.status || a.History[0].Reason != "appeal of d: "+tt.f.Reason || a.Notify != tt.f.Verify {
			t.Errorf("%s: history %+v, notify %v", tt.name, a.History, a.Notify)
		}
	}
}

// errValidation stands for a *dsr.ValidationError in a table.
var errValidation = errors.New("validation")

func TestAppealClaimFree(t *testing.T) {
	t.Parallel()
	undecided := &dsr.Request{Status: dsr.StatusExpired, History: []dsr.Transition{{To: dsr.StatusVerifying}, {To: dsr.StatusExpired}}}
	decided := &dsr.Request{Status: dsr.StatusDenied, History: []dsr.Transition{{To: dsr.StatusAwaitingApproval}, {To: dsr.StatusDenied}}}
	tests := []struct {
		name       string
		appealedBy string
		prior      *dsr.Request
		want       bool
	}{
		{"never appealed", "", nil, true},
		{"its appeal never stored", "a", nil, true},
		{"its appeal ended undecided", "a", undecided, true},
		{"its appeal was decided", "a", decided, false},
		{"its appeal is under way", "a", &dsr.Request{Status: dsr.StatusAwaitingApproval, History: []dsr.Transition{{To: dsr.StatusAwaitingApproval}}}, false},
	}
	for _, tt := range tests {
		if got := dsr.AppealClaimFree(&dsr.Request{AppealedBy: tt.appealedBy}, tt.prior); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAppealKeepsWhatWasAsked: an appeal asks again for what the denied
// request asked: an opt-out's scopes and GPC signal (not every purpose),
// a correction's changes (without them its fan-out has nothing to
// correct). An opt_in request is the service's own record of a lift, not
// a person's request: it is not appealable.
func TestAppealKeepsWhatWasAsked(t *testing.T) {
	t.Parallel()
	email := dsr.Identity{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}
	denied := func(typ dsr.Type, mod func(*dsr.Request)) *dsr.Request {
		r := &dsr.Request{ID: "d", Type: typ, Regulation: dsr.RegulationCTDPA, Status: dsr.StatusDenied,
			Identities: []dsr.Identity{email}, IdentityHashes: []string{"h"}, ProvenHashes: []string{"p"}, VerificationMethod: "id card",
			History: []dsr.Transition{{To: dsr.StatusVerified}, {From: dsr.StatusVerified, To: dsr.StatusDenied}}, DenialBasis: dsr.DeniedExempt}
		mod(r)
		return r
	}
	optOut := denied(dsr.TypeOptOut, func(r *dsr.Request) { r.Scopes, r.GPC = []dsr.Scope{dsr.ScopeSaleShare}, true })
	a, err := dsr.NewAppeal(optOut, dsr.AppealFiling{Actor: "agent"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.SuppressedScopes(), []dsr.Scope{dsr.ScopeSaleShare}) || !a.GPC {
		t.Errorf("opt-out appeal: suppresses %v, gpc %v; want [sale_share], true", a.SuppressedScopes(), a.GPC)
	}
	correction := denied(dsr.TypeCorrection, func(r *dsr.Request) {
		r.Corrections = []dsr.Correction{{Field: "address", Hash: "x"}}
		r.NewValues = map[string]string{"address": "1 Main St"}
	})
	if a, err = dsr.NewAppeal(correction, dsr.AppealFiling{Actor: "agent"}, t0); err != nil {
		t.Fatal(err)
	}
	if got := a.CorrectionValues(); len(got) != 1 || got[0] != (dsr.FieldValue{Field: "address", Value: "1 Main St"}) {
		t.Errorf("correction appeal: changes %v; want address", got)
	}
	correction.NewValues["address"] = "changed"
	if a.NewValues["address"] != "1 Main St" {
		t.Error("the appeal shares its new values with the denied request")
	}
	if a, err := dsr.NewAppeal(denied(dsr.TypeOptIn, func(r *dsr.Request) { r.Scopes = []dsr.Scope{dsr.ScopeMarketing} }), dsr.AppealFiling{Actor: "agent"}, t0); !errors.Is(err, dsr.ErrNotAppealable) {
		t.Errorf("opt-in appeal: %v, %v; want ErrNotAppealable", a, err)
	}
}
