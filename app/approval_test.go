package app

import (
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestHoldAtIntake: a request held when filed reads as one verified, then
// held, in one instant; the others are left as built.
func TestHoldAtIntake(t *testing.T) {
	policy, _ := dsr.ParseApprovalPolicy("deletion")
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Approval: policy, Index: idx})
	at := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	ids := []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}
	tests := []struct {
		name    string
		in      dsr.Intake
		status  dsr.Status
		history []dsr.Transition
	}{
		{"deletion verified", dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, FiledBy: "desk", ReceivedAt: at, Identities: ids},
			dsr.StatusAwaitingApproval, []dsr.Transition{{To: dsr.StatusVerified, At: at, Actor: "desk", Reason: "filed"},
				{From: dsr.StatusVerified, To: dsr.StatusAwaitingApproval, At: at, Actor: dsr.ActorPolicy, Reason: dsr.ReasonAwaitingApproval}}},
		{"deletion verifying", dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerifying, FiledBy: "desk", ReceivedAt: at, Identities: ids},
			dsr.StatusVerifying, []dsr.Transition{{To: dsr.StatusVerifying, At: at, Actor: "desk", Reason: "filed"}}},
		{"deletion duplicate", dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, FiledBy: "desk", ReceivedAt: at, Identities: ids, DuplicateOf: "d"},
			dsr.StatusDuplicate, []dsr.Transition{{To: dsr.StatusDuplicate, At: at, Actor: "desk", Reason: "filed; duplicate of d"}}},
		{"access", dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, FiledBy: "desk", ReceivedAt: at, Identities: ids},
			dsr.StatusVerified, []dsr.Transition{{To: dsr.StatusVerified, At: at, Actor: "desk", Reason: "filed"}}},
	}
	for _, tt := range tests {
		r, err := s.build(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != tt.status || len(r.History) != len(tt.history) {
			t.Errorf("%s: %s %+v, want %s %+v", tt.name, r.Status, r.History, tt.status, tt.history)
			continue
		}
		for i := range tt.history {
			if r.History[i] != tt.history[i] {
				t.Errorf("%s: history[%d] %+v, want %+v", tt.name, i, r.History[i], tt.history[i])
			}
		}
		if tt.status == dsr.StatusAwaitingApproval && len(r.ProvenHashes) == 0 {
			t.Errorf("%s: held without its proof", tt.name)
		}
	}
}
