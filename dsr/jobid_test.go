package dsr_test

import (
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

func TestValidJobID(t *testing.T) {
	const req = "01a2301a-ad3f-7db8-8a82-3714f5f185fc"
	tests := []struct {
		id   string
		want bool
	}{
		{dsr.JobID(req, "crm", dsr.ActionErase), true},
		{dsr.JobID(req, "shop-db_2", dsr.ActionOptOut), true},
		{"", false},
		{req, false},
		{req + ":crm", false},
		{"qqzjob@leakcheck.example", false},
		{req + ":ada@example.com:erase", false},
		{"01A2301A-AD3F-7DB8-8A82-3714F5F185FC:crm:erase", false},
		{"not-a-uuid-not-a-uuid-not-a-uuid-xx:crm:erase", false},
		{req + ":crm:erase:more", false},
		{req + ":" + strings.Repeat("c", 64) + ":erase", false},
		{req + ":crm:" + strings.Repeat("e", 1<<20), false},
	}
	for _, tt := range tests {
		if got := dsr.ValidJobID(tt.id); got != tt.want {
			t.Errorf("ValidJobID(%.60q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}
