package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// TestCorrectionIntake pins what a correction filing accepts: 1 to
// dsr.MaxCorrections changes, each of a field some connector owns (or an
// identity kind it owns), once, with a value fit for it; and none on other
// types. Refusals name the item and say what is wrong.
func TestCorrectionIntake(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	owned := New(Deps{CorrectFields: func() []string { return []string{"address", "email", "name"} }})
	unknown := New(Deps{}) // fields owned not known: well-formed ones pass
	none := New(Deps{CorrectFields: func() []string { return nil }})
	email := Subject{Email: ptr("ada@example.com")}
	corr := func(cs ...CorrectionInput) AgentRequest {
		return AgentRequest{Type: "correction", Regulation: "gdpr", Subject: email, Corrections: cs}
	}
	many := make([]CorrectionInput, dsr.MaxCorrections+1)
	for i := range many {
		many[i] = CorrectionInput{Field: "name", Value: "x"}
	}
	const injection = `Robert"); DROP TABLE customers;-- {"$ne": null} <script>`
	tests := []struct {
		name string
		s    *Service
		in   AgentRequest
		want []dsr.FieldValue  // filed with these
		errs map[string]string // else refused: field -> part of the message
	}{
		{"name and email", owned, corr(CorrectionInput{"name", "  Ada King "}, CorrectionInput{"email", "Ada.King@Example.com"}),
			[]dsr.FieldValue{{Field: "name", Value: "Ada King"}, {Field: "email", Value: "ada.king@example.com"}}, nil},
		{"injection text kept literally", owned, corr(CorrectionInput{"name", injection}),
			[]dsr.FieldValue{{Field: "name", Value: injection}}, nil},
		{"address on lines", owned, corr(CorrectionInput{"address", "1 Main St\nSpringfield"}),
			[]dsr.FieldValue{{Field: "address", Value: "1 Main St\nSpringfield"}}, nil},
		{"owners unknown here", unknown, corr(CorrectionInput{"loyalty_tier", "gold"}),
			[]dsr.FieldValue{{Field: "loyalty_tier", Value: "gold"}}, nil},
		{"no changes", owned, corr(), nil, map[string]string{"corrections": "give 1 to 20 changes"}},
		{"too many", owned, corr(many...), nil, map[string]string{"corrections": "give 1 to 20 changes"}},
		{"unowned field", owned, corr(CorrectionInput{"phone", "+44 20 7946 0958"}), nil,
			map[string]string{"corrections[0].field": `"phone": no configured connector can correct it (fields they own: address, email, name)`}},
		{"no connector corrects", none, corr(CorrectionInput{"name", "x"}), nil,
			map[string]string{"corrections[0].field": "fields they own: none"}},
		{"malformed field", unknown, corr(CorrectionInput{"$set", "x"}, CorrectionInput{"Name", "x"}), nil,
			map[string]string{"corrections[0].field": "must be an identity kind", "corrections[1].field": "must be an identity kind"}},
		{"twice", owned, corr(CorrectionInput{"name", "a"}, CorrectionInput{"name", "b"}), nil,
			map[string]string{"corrections[1].field": `"name" is given twice`}},
		{"empty value", owned, corr(CorrectionInput{"name", "  "}), nil, map[string]string{"corrections[0].value": "required"}},
		{"long value", owned, corr(CorrectionInput{"name", strings.Repeat("a", dsr.MaxCorrectionValue+1)}), nil,
			map[string]string{"corrections[0].value": "at most 1000 characters"}},
		{"control characters", owned, corr(CorrectionInput{"name", "Ada\x00King"}), nil, map[string]string{"corrections[0].value": ""}},
		{"bad email", owned, corr(CorrectionInput{"email", "not an email"}), nil, map[string]string{"corrections[0].value": "plain email address"}},
		{"on another type", owned, AgentRequest{Type: "access", Regulation: "gdpr", Subject: email, Corrections: []CorrectionInput{{"name", "x"}}}, nil,
			map[string]string{"corrections": "only with type correction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := tt.s.agentIntake(tt.in, "desk", now)
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if diff := cmp.Diff(tt.want, in.Corrections); diff != "" {
					t.Errorf("corrections (-want +got):\n%s", diff)
				}
				return
			}
			var ve *dsr.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err %v; want a validation error", err)
			}
			got := map[string]string{}
			for _, f := range ve.Fields {
				got[f.Field] = f.Message
			}
			if len(got) != len(tt.errs) {
				t.Errorf("refused %v; want %v", got, tt.errs)
			}
			for f, msg := range tt.errs {
				if !strings.Contains(got[f], msg) {
					t.Errorf("%s: %q; want it to say %q", f, got[f], msg)
				}
			}
		})
	}
}

// TestPortalRefusesCorrections: the portal files no correction (an agent
// does, and always approves it), whatever it is sent.
func TestPortalRefusesCorrections(t *testing.T) {
	t.Parallel()
	_, err := portalIntake(PortalRequest{Type: "correction", Regulation: "gdpr", Subject: Subject{Email: ptr("ada@example.com")}})
	var ve *dsr.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "type" || !strings.Contains(ve.Fields[0].Message, "agent API") {
		t.Errorf("portal correction: %v; want type refused", err)
	}
}

// TestCorrectionFingerprint: an idempotency key reused with other changes
// is told apart from a retry.
func TestCorrectionFingerprint(t *testing.T) {
	t.Parallel()
	idx, err := dsr.NewBlindIndex(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	a := dsr.Intake{Type: dsr.TypeCorrection, Corrections: []dsr.FieldValue{{Field: "name", Value: "Ada King"}}}
	b := dsr.Intake{Type: dsr.TypeCorrection, Corrections: []dsr.FieldValue{{Field: "name", Value: "Ada Byron"}}}
	if a.Fingerprint(idx) == b.Fingerprint(idx) {
		t.Error("two corrections with other values share a fingerprint")
	}
}
