package app

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestPortalIntake: what a portal submission must say, without a store.
func TestPortalIntake(t *testing.T) {
	t.Parallel()
	ada := Subject{Email: ptr("ada@example.com")}
	tests := []struct {
		name       string
		in         PortalRequest
		wantFields []string // nil: valid
		regulation dsr.Regulation
	}{
		{"access under GDPR", PortalRequest{Type: "access", Regulation: "gdpr", Subject: ada}, nil, dsr.RegulationGDPR},
		{"regulation from the jurisdiction", PortalRequest{Type: "deletion", Jurisdiction: "US-CA", Subject: ada}, nil, dsr.RegulationCCPA},
		{"no type", PortalRequest{Regulation: "gdpr", Subject: ada}, []string{"type"}, ""},
		{"unknown type", PortalRequest{Type: "rectify", Regulation: "gdpr", Subject: ada}, []string{"type"}, ""},
		{"both regulation and jurisdiction", PortalRequest{Type: "access", Regulation: "gdpr", Jurisdiction: "DE", Subject: ada}, []string{"jurisdiction"}, ""},
		{"unknown jurisdiction", PortalRequest{Type: "access", Jurisdiction: "XX", Subject: ada}, []string{"jurisdiction"}, ""},
		{"neither", PortalRequest{Type: "access", Subject: ada}, []string{"regulation"}, ""},
		{"no email", PortalRequest{Type: "access", Regulation: "gdpr", Subject: Subject{CustomerID: ptr("cus_1")}}, []string{"subject.email"}, ""},
		{"agent without permission", PortalRequest{Type: "access", Regulation: "ccpa", Subject: ada,
			Agent: &AuthorizedAgent{Name: "Agency", Email: "agency@example.com"}}, []string{"agent.signed_permission"}, ""},
		{"agent without a name", PortalRequest{Type: "access", Regulation: "ccpa", Subject: ada,
			Agent: &AuthorizedAgent{Email: "agency@example.com", SignedPermission: true}}, []string{"agent.name"}, ""},
		{"agent", PortalRequest{Type: "access", Regulation: "ccpa", Subject: ada,
			Agent: &AuthorizedAgent{Name: "Agency", Email: "agency@example.com", SignedPermission: true}}, nil, dsr.RegulationCCPA},
		{"opt-out with scopes", PortalRequest{Type: "opt_out", Regulation: "ccpa", Subject: ada, Scopes: []string{"marketing", "profiling"}}, nil, dsr.RegulationCCPA},
		{"scopes on an access", PortalRequest{Type: "access", Regulation: "gdpr", Subject: ada, Scopes: []string{"marketing"}}, []string{"scopes"}, ""},
		{"opt-out of all", PortalRequest{Type: "opt_out", Regulation: "gdpr", Subject: ada, Scopes: []string{"all"}}, []string{"scopes[0]"}, ""},
		{"opt-out of an unknown scope", PortalRequest{Type: "opt_out", Regulation: "gdpr", Subject: ada, Scopes: []string{"marketing", "ads"}}, []string{"scopes[1]"}, ""},
	}
	for _, tt := range tests {
		in, err := portalIntake(tt.in, nil)
		var ve *dsr.ValidationError
		switch {
		case tt.wantFields == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantFields == nil && in.Regulation != tt.regulation:
			t.Errorf("%s: regulation %q, want %q", tt.name, in.Regulation, tt.regulation)
		case tt.wantFields != nil && !errors.As(err, &ve):
			t.Errorf("%s: error %v, want a validation error", tt.name, err)
		case tt.wantFields != nil:
			for _, f := range tt.wantFields {
				found := false
				for _, got := range ve.Fields {
					found = found || got.Field == f
				}
				if !found {
					t.Errorf("%s: fields %+v do not name %s", tt.name, ve.Fields, f)
				}
			}
		}
	}
	// Only the email is proven; other identities are claimed, except on an
	// opt-out, which needs no proof.
	sub := Subject{Email: ptr("ada@example.com"), CustomerID: ptr("cus_1")}
	for typ, want := range map[string]string{"access": dsr.SourceClaimed, "opt_out": dsr.SourceSubject} {
		in, err := portalIntake(PortalRequest{Type: typ, Regulation: "ccpa", Subject: sub}, nil)
		if err != nil || len(in.Identities) != 2 || in.Identities[0].Source != dsr.SourceSubject || in.Identities[1].Source != want {
			t.Errorf("%s: identities %+v, %v; want the customer id %s", typ, in.Identities, err, want)
		}
	}
}

// TestVerifyInput: an answer is checked before any try is spent, and only
// for a request opened with its status token.
func TestVerifyInput(t *testing.T) {
	t.Parallel()
	s := New(Deps{})
	opened := Access{Request: &dsr.Request{ID: "r1"}, token: "tok"}
	tests := []struct {
		name string
		a    Access
		v    Verification
		want string // the field named, or "not found"
	}{
		{"neither", opened, Verification{}, "code"},
		{"both", opened, Verification{Code: "123456", Token: "t"}, "code"},
		{"five digits", opened, Verification{Code: "12345"}, "code"},
		{"letters", opened, Verification{Code: "12345a"}, "code"},
		{"long token", opened, Verification{Token: string(make([]byte, 101))}, "token"},
		{"not opened", Access{Request: &dsr.Request{ID: "r1"}}, Verification{Code: "123456"}, "not found"},
	}
	for _, tt := range tests {
		_, err := s.Verify(context.Background(), tt.a, tt.v)
		var ve *dsr.ValidationError
		switch {
		case tt.want == "not found":
			if !errors.Is(err, dsr.ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", tt.name, err)
			}
		case !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != tt.want:
			t.Errorf("%s: %v, want a validation error of %s", tt.name, err, tt.want)
		}
	}
}

func TestSameSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b []string
		want bool
	}{
		{nil, nil, true},
		{[]string{"x", "y"}, []string{"y", "x"}, true},
		{[]string{"x"}, []string{"x", "y"}, false},
		{[]string{"x", "x"}, []string{"x", "y"}, false},
		{[]string{"x", "y"}, []string{"x", "x"}, false},
	}
	for _, tt := range tests {
		if got := sameSet(tt.a, tt.b); got != tt.want {
			t.Errorf("sameSet(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestOpenByLink: a forged, altered or expired link opens nothing (and
// reads no store).
func TestOpenByLink(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	links := dsr.NewLinkSigner([]byte("0123456789abcdef0123456789abcdef"))
	s := New(Deps{Links: links, Now: func() time.Time { return now }})
	id, _ := dsr.NewRequestID()
	other, _ := dsr.NewRequestID()
	exp := now.Add(time.Hour)
	good, sec := links.Sign(id, exp), strconv.FormatInt(exp.Unix(), 10)
	tests := []struct{ name, id, expires, sig string }{
		{"altered signature", id, sec, good[:len(good)-1] + "x"},
		{"later expiry", id, strconv.FormatInt(exp.Add(time.Hour).Unix(), 10), good},
		{"other request", other, sec, good},
		{"expiry not a number", id, "soon", good},
		{"not an id", "../x", sec, good},
	}
	for _, tt := range tests {
		if _, err := s.OpenByLink(context.Background(), tt.id, tt.expires, tt.sig); !errors.Is(err, ErrLinkInvalid) {
			t.Errorf("%s: %v, want ErrLinkInvalid", tt.name, err)
		}
	}
	late := New(Deps{Links: links, Now: func() time.Time { return exp.Add(time.Second) }})
	if _, err := late.OpenByLink(context.Background(), id, sec, good); !errors.Is(err, ErrLinkInvalid) {
		t.Errorf("expired link: %v, want ErrLinkInvalid", err)
	}
}
