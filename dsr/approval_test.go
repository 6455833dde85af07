package dsr_test

import (
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// TestApprovalHolds: which requests wait for an agent's approval.
func TestApprovalHolds(t *testing.T) {
	policy, err := dsr.ParseApprovalPolicy("deletion,access:ccpa")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    dsr.Request
		want bool
	}{
		{"deletion verified", dsr.Request{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified}, true},
		{"deletion approved", dsr.Request{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, ApprovedBy: "desk"}, false},
		{"deletion verifying", dsr.Request{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerifying}, false},
		{"deletion duplicate", dsr.Request{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusDuplicate}, false},
		{"access under ccpa", dsr.Request{Type: dsr.TypeAccess, Regulation: dsr.RegulationCCPA, Status: dsr.StatusVerified}, true},
		{"access under gdpr", dsr.Request{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified}, false},
		{"opt-out", dsr.Request{Type: dsr.TypeOptOut, Regulation: dsr.RegulationCCPA, Status: dsr.StatusVerified}, false},
		{"appeal", dsr.Request{Type: dsr.TypeAccess, Regulation: dsr.RegulationVCDPA, Status: dsr.StatusVerified, AppealOf: "x"}, true},
		{"correction", dsr.Request{Type: dsr.TypeCorrection, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified}, true},
		{"correction approved", dsr.Request{Type: dsr.TypeCorrection, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, ApprovedBy: "desk"}, false},
		{"appeal approved", dsr.Request{Type: dsr.TypeAccess, Regulation: dsr.RegulationVCDPA, Status: dsr.StatusVerified, AppealOf: "x", ApprovedBy: "desk"}, false},
	}
	for _, tt := range tests {
		if got := policy.Holds(&tt.r); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if (dsr.ApprovalPolicy{}).Holds(&dsr.Request{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified}) {
		t.Error("the zero policy holds a deletion")
	}
	if !(dsr.ApprovalPolicy{}).Holds(&dsr.Request{Type: dsr.TypeCorrection, Regulation: dsr.RegulationCCPA, Status: dsr.StatusVerified}) {
		t.Error("the zero policy does not hold a correction; every correction waits for an agent")
	}
}
