package dsr_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// TestRequestScopes: an opt-out keeps the scopes it names, or takes the
// default (sale and sharing alone for a GPC signal, every purpose
// otherwise); naming scopes on another type, ScopeAll, an unknown scope or
// one twice is a validation error naming the field.
func TestRequestScopes(t *testing.T) {
	t.Parallel()
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	m, p, s := dsr.ScopeMarketing, dsr.ScopeProfiling, dsr.ScopeSaleShare
	for _, tt := range []struct {
		name   string
		typ    dsr.Type
		gpc    bool
		scopes []dsr.Scope
		want   []dsr.Scope
		fields []string // the fields of the validation error
	}{
		{"opt-out, named", dsr.TypeOptOut, false, []dsr.Scope{p}, []dsr.Scope{p}, nil},
		{"opt-out, named with GPC", dsr.TypeOptOut, true, []dsr.Scope{m, s}, []dsr.Scope{m, s}, nil},
		{"opt-out, default", dsr.TypeOptOut, false, nil, []dsr.Scope{m, p, s}, nil},
		{"opt-out, default with GPC", dsr.TypeOptOut, true, nil, []dsr.Scope{s}, nil},
		{"deletion", dsr.TypeDeletion, false, nil, nil, nil},
		{"access", dsr.TypeAccess, true, nil, nil, nil},
		{"deletion naming scopes", dsr.TypeDeletion, false, []dsr.Scope{m}, nil, []string{"scopes"}},
		{"access naming scopes", dsr.TypeAccess, false, []dsr.Scope{s}, nil, []string{"scopes"}},
		{"all", dsr.TypeOptOut, false, []dsr.Scope{m, dsr.ScopeAll}, nil, []string{"scopes[1]"}},
		{"unknown and twice", dsr.TypeOptOut, false, []dsr.Scope{"spam", p, p}, nil, []string{"scopes[0]", "scopes[2]"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := dsr.NewRequest(dsr.Intake{Type: tt.typ, Regulation: dsr.RegulationCCPA, Status: dsr.StatusVerified, GPC: tt.gpc,
				Scopes: tt.scopes, ReceivedAt: time.Now(), Identities: []dsr.Identity{{Kind: dsr.KindCustomerID, Value: "cus_1", Source: dsr.SourceSubject}}}, idx)
			if tt.fields != nil {
				var ve *dsr.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("NewRequest error = %v; want a *dsr.ValidationError", err)
				}
				var got []string
				for _, f := range ve.Fields {
					got = append(got, f.Field)
				}
				if diff := cmp.Diff(tt.fields, got); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, r.Scopes); diff != "" {
				t.Errorf("Scopes (-want +got):\n%s", diff)
			}
		})
	}
}
