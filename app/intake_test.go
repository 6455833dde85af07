package app

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

func ptr(s string) *string { return &s }

// TestAgentIntake pins the agent's intake policy without a store: what it
// files and every field it refuses.
func TestAgentIntake(t *testing.T) {
	now := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	s := New(Deps{})
	email := Subject{Email: ptr("Ada@Example.com")}
	tests := []struct {
		name   string
		in     AgentRequest
		fields []string // refused; nil: filed
		check  func(t *testing.T, in dsr.Intake)
	}{
		{"attested by the agent", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email}, nil, func(t *testing.T, in dsr.Intake) {
			if in.Status != dsr.StatusVerified || in.VerificationMethod != "attested by the filing agent" || in.Channel != "api" ||
				!in.ReceivedAt.Equal(now) || !in.Notify || !slices.Equal(in.Notices, []string{dsr.NoticeReceipt}) || in.Source != "agent_api" || in.FiledBy != "desk" {
				t.Errorf("%+v", in)
			}
		}},
		{"no email, no notices", AgentRequest{Type: "access", Regulation: "gdpr", Subject: Subject{CustomerID: ptr("c1")}}, nil, func(t *testing.T, in dsr.Intake) {
			if in.Notify || len(in.Notices) != 0 {
				t.Errorf("%+v", in)
			}
		}},
		{"verified with a method", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, Identity: &Proof{Verified: true, Method: " ID document "}}, nil,
			func(t *testing.T, in dsr.Intake) {
				if in.VerificationMethod != "ID document" {
					t.Errorf("method %q", in.VerificationMethod)
				}
			}},
		{"portal verification", AgentRequest{Type: "deletion", Regulation: "ccpa", Subject: Subject{Email: ptr("a@example.com"), Phone: ptr("+44 20 7946 0958")}, Identity: &Proof{}}, nil,
			func(t *testing.T, in dsr.Intake) {
				if in.Status != dsr.StatusVerifying || in.VerificationMethod != "" || !slices.Equal(in.Notices, []string{dsr.NoticeReceipt, dsr.NoticeVerify}) ||
					in.Identities[1].Source != dsr.SourceClaimed || in.Identities[0].Source != dsr.SourceSubject {
					t.Errorf("%+v", in)
				}
			}},
		{"backdated", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, ReceivedAt: "2026-11-17T09:30:00Z"}, nil, func(t *testing.T, in dsr.Intake) {
			if !in.ReceivedAt.Equal(now.AddDate(0, 0, -3)) {
				t.Errorf("received %v", in.ReceivedAt)
			}
		}},
		{"opt-out with scopes", AgentRequest{Type: "opt_out", Regulation: "ccpa", Subject: email, Scopes: []string{"sale_share", "profiling"}}, nil, func(t *testing.T, in dsr.Intake) {
			if !slices.Equal(in.Scopes, []dsr.Scope{dsr.ScopeSaleShare, dsr.ScopeProfiling}) {
				t.Errorf("scopes %v", in.Scopes)
			}
		}},
		{"opt-out, no scopes", AgentRequest{Type: "opt_out", Regulation: "ccpa", Subject: email}, nil, func(t *testing.T, in dsr.Intake) {
			if in.Scopes != nil {
				t.Errorf("scopes %v; want none (the request takes the default)", in.Scopes)
			}
		}},
		{"scopes on a deletion", AgentRequest{Type: "deletion", Regulation: "gdpr", Subject: email, Scopes: []string{"marketing"}}, []string{"scopes"}, nil},
		{"scopes twice and all", AgentRequest{Type: "opt_out", Regulation: "gdpr", Subject: email, Scopes: []string{"marketing", "marketing", "all"}, Channel: "pigeon"},
			[]string{"channel", "scopes[1]", "scopes[2]"}, nil},
		{"nothing", AgentRequest{}, []string{"type", "regulation", "subject"}, nil},
		{"unknown values", AgentRequest{Type: "x", Regulation: "y", Subject: email, Channel: "pigeon"}, []string{"type", "regulation", "channel"}, nil},
		{"future", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, ReceivedAt: "2026-11-20T11:30:00Z"}, []string{"received_at"}, nil},
		{"too old", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, ReceivedAt: "2025-11-01T00:00:00Z"}, []string{"received_at"}, nil},
		{"not a time", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, ReceivedAt: "yesterday"}, []string{"received_at"}, nil},
		{"long note", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, Note: strings.Repeat("n", MaxReason+1)}, []string{"note"}, nil},
		{"verified without a method", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, Identity: &Proof{Verified: true}}, []string{"identity.method"}, nil},
		{"method without verified", AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, Identity: &Proof{Method: "x"}}, []string{"identity.method"}, nil},
		{"verification without an email", AgentRequest{Type: "access", Regulation: "gdpr", Subject: Subject{CustomerID: ptr("c1")}, Identity: &Proof{}}, []string{"subject.email"}, nil},
		{"bad email", AgentRequest{Type: "access", Regulation: "gdpr", Subject: Subject{Email: ptr("nobody")}}, []string{"subject.email"}, nil},
	}
	for _, tt := range tests {
		in, err := s.agentIntake(tt.in, "desk", now)
		var ve *dsr.ValidationError
		switch {
		case tt.fields == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.fields == nil:
			tt.check(t, in)
		case !errors.As(err, &ve):
			t.Errorf("%s: %v, want fields %v refused", tt.name, err, tt.fields)
		default:
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Errorf("%s: refused %v, want %v", tt.name, got, tt.fields)
			}
		}
	}
}

// TestListFilter pins how a list query in words becomes a filter.
func TestListFilter(t *testing.T) {
	now := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	s := New(Deps{Now: func() time.Time { return now }})
	f, err := s.ListFilter(ListQuery{Status: "verified", Overdue: "true", Limit: "5", DueBefore: "2026-12-01T00:00:00Z"})
	if err != nil || f.Status != dsr.StatusVerified || !f.Overdue || f.Limit != 5 || f.Sort != dsr.SortDue || f.DueBefore == nil || !f.Now.Equal(now) {
		t.Errorf("%+v %v", f, err)
	}
	if f, err := s.ListFilter(ListQuery{}); err != nil || f.Limit != DefaultListLimit {
		t.Errorf("defaults: %+v %v", f, err)
	}
	_, err = s.ListFilter(ListQuery{Status: "x", Type: "x", Regulation: "x", Sort: "x", DueAfter: "x", Overdue: "x", Limit: "101", Cursor: "!"})
	var ve *dsr.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 8 {
		t.Errorf("every value wrong: %v", err)
	}
}
