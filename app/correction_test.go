package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/teststore"
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

// TestPortalCorrectionIntake pins what the portal accepts of a correction:
// the agent API's rule (checkCorrections), each problem at its path
// (corrections[i].field or .value, or the list), a field no connector can
// correct refused when the fields owned are known. As on the other types,
// only the email is proven: the other identities are claimed.
func TestPortalCorrectionIntake(t *testing.T) {
	t.Parallel()
	owned := []string{"address", "email", "name"}
	ada := Subject{Email: ptr("ada@example.com"), CustomerID: ptr("cus_1")}
	corr := func(cs ...CorrectionInput) PortalRequest {
		return PortalRequest{Type: "correction", Jurisdiction: "DE", Subject: ada, Corrections: cs}
	}
	hundred := make([]CorrectionInput, 100)
	for i := range hundred {
		hundred[i] = CorrectionInput{Field: "name", Value: "x"}
	}
	const html = `<img src=x onerror=alert(1)>"><script>alert(2)</script>`
	tests := []struct {
		name  string
		in    PortalRequest
		owned []string
		want  []dsr.FieldValue  // filed with these
		errs  map[string]string // else refused: field -> part of the message
	}{
		{"name and address", corr(CorrectionInput{"name", " Ada King "}, CorrectionInput{"address", "1 Main St\nSpringfield"}), owned,
			[]dsr.FieldValue{{Field: "name", Value: "Ada King"}, {Field: "address", Value: "1 Main St\nSpringfield"}}, nil},
		// Another's address is accepted as asked: nobody proves it, the
		// agent checks it before approving (the request is always held).
		{"email to another's address", corr(CorrectionInput{"email", "Eve@Attacker.Example"}), owned,
			[]dsr.FieldValue{{Field: "email", Value: "eve@attacker.example"}}, nil},
		// Markup is text: kept as written, escaped by whoever shows it.
		{"markup kept literally", corr(CorrectionInput{"name", html}), owned, []dsr.FieldValue{{Field: "name", Value: html}}, nil},
		{"owners not known here", corr(CorrectionInput{"loyalty_tier", "gold"}), nil, []dsr.FieldValue{{Field: "loyalty_tier", Value: "gold"}}, nil},
		{"no changes", corr(), owned, nil, map[string]string{"corrections": "required with type correction: give 1 to 20 changes"}},
		{"100 changes", corr(hundred...), owned, nil, map[string]string{"corrections": "give 1 to 20 changes"}},
		{"field and value at their paths", corr(CorrectionInput{"name", "Ada"}, CorrectionInput{"shoe_size", "42"}, CorrectionInput{"address", " "},
			CorrectionInput{"$where", "1"}, CorrectionInput{"email", "not an email"}, CorrectionInput{"name", "Ada"}), owned, nil,
			map[string]string{
				"corrections[1].field": `"shoe_size": no configured connector can correct it (fields they own: address, email, name)`,
				"corrections[2].value": "required",
				"corrections[3].field": "must be an identity kind",
				"corrections[4].value": "plain email address",
				"corrections[5].field": `"name" is given twice`,
			}},
		{"no field", corr(CorrectionInput{"", "Ada"}), owned, nil, map[string]string{"corrections[0].field": "must be an identity kind"}},
		{"none can be corrected", corr(CorrectionInput{"name", "Ada"}), []string{}, nil,
			map[string]string{"corrections[0].field": "fields they own: none"}},
		{"on an access", PortalRequest{Type: "access", Regulation: "gdpr", Subject: ada, Corrections: []CorrectionInput{{"name", "x"}}}, owned, nil,
			map[string]string{"corrections": "only with type correction"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := portalIntake(tt.in, tt.owned)
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if diff := cmp.Diff(tt.want, in.Corrections); diff != "" {
					t.Errorf("corrections (-want +got):\n%s", diff)
				}
				if in.Type != dsr.TypeCorrection || len(in.Identities) != 2 || in.Identities[0].Source != dsr.SourceSubject || in.Identities[1].Source != dsr.SourceClaimed {
					t.Errorf("intake %s, identities %+v; want the email proven, the customer id claimed", in.Type, in.Identities)
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

// fanouts records the requests handed to the fan-out.
type fanouts struct {
	mu  sync.Mutex
	ids []string
}

func (q *fanouts) EnqueueFanout(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids = append(q.ids, id)
	return nil
}
func (q *fanouts) EnqueueJob(context.Context, string) error            { return nil }
func (q *fanouts) EnqueueNotice(context.Context, string, string) error { return nil }

// TestPortalCorrectionHeld: a correction filed on the portal waits for the
// emailed code, is verified by it, and is then held for an agent (the rule
// the fan-out applies, with no approval policy at all); only an agent's
// approval lets it on. A second correction of the same person is not
// merged into the first: it asks for other changes.
func TestPortalCorrectionHeld(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := teststore.Open(t, clock)
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	q := &fanouts{}
	s := New(Deps{Store: st, Queue: q, Index: idx, Now: clock, CorrectFields: func() []string { return []string{"email", "name"} },
		Portal: PortalOptions{MaxTries: 5, MaxPending: 1, LinkTTL: time.Hour, GPCLastUpdate: "2026-01-01"}})

	file := func(value string) (string, string) {
		t.Helper()
		f, err := s.SubmitPortal(ctx, PortalRequest{Type: "correction", Regulation: "gdpr", Subject: Subject{Email: ptr("ada@example.com")},
			Corrections: []CorrectionInput{{Field: "name", Value: value}, {Field: "email", Value: "eve@attacker.example"}}}, Arrival{})
		if err != nil {
			t.Fatal(err)
		}
		if f.Request.Status != dsr.StatusVerifying || len(f.Request.Corrections) != 2 {
			t.Fatalf("filed %s with %+v; want verifying with the changes", f.Request.Status, f.Request.Corrections)
		}
		return f.Request.ID, f.StatusToken
	}
	verify := func(id, token string) Verified {
		t.Helper()
		if err := st.IssueVerification(ctx, id, idx.HashCode(id, "123456"), dsr.HashToken("link"), now.Add(15*time.Minute)); err != nil {
			t.Fatal(err)
		}
		a, err := s.Open(ctx, id, token)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Verify(ctx, a, Verification{Code: "123456"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	hold := func(id string) *dsr.Request {
		t.Helper()
		r, err := st.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r, err = s.hold(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	id, token := file("Ada King")
	if v := verify(id, token); v.Status != dsr.StatusVerified || !slices.Contains(q.ids, id) {
		t.Fatalf("verified %+v, fan-outs %v", v, q.ids)
	}
	held := hold(id)
	if held.Status != dsr.StatusAwaitingApproval || held.ApprovedBy != "" {
		t.Fatalf("after verification: %s; want awaiting_approval", held.Status)
	}
	if got := held.History[len(held.History)-1]; got.Actor != dsr.ActorPolicy || got.Reason != dsr.ReasonAwaitingApproval {
		t.Errorf("held by %+v", got)
	}

	second, token2 := file("Ada Byron")
	if v := verify(second, token2); v.Status != dsr.StatusVerified || v.MergedInto != "" {
		t.Errorf("second correction: %+v; want verified on its own, not merged", v)
	}
	if r := hold(second); r.Status != dsr.StatusAwaitingApproval {
		t.Errorf("second correction: %s; want awaiting_approval", r.Status)
	}

	rec, err := s.Approve(ctx, id, "desk")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Request.Status != dsr.StatusVerified || rec.Request.ApprovedBy != "desk" {
		t.Errorf("approved: %s by %q", rec.Request.Status, rec.Request.ApprovedBy)
	}
	if r := hold(id); r.Status != dsr.StatusVerified {
		t.Errorf("an approved correction is held again: %s", r.Status)
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
