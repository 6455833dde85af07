package dsr_test

import (
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// TestSettlement: how a request whose jobs all finished closes.
func TestSettlement(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		noJobs     bool
		failed     int
		want       dsr.Status
		wantReason string
	}{
		{"every job succeeded", false, 0, dsr.StatusCompleted, "every job finished"},
		{"one failed", false, 1, dsr.StatusNeedsAttention, "a job failed past its retries"},
		{"several failed", false, 3, dsr.StatusNeedsAttention, "a job failed past its retries"},
		{"no jobs", true, 0, dsr.StatusCompleted, "no connector handles this request type"},
	}
	for _, tt := range tests {
		to, reason := dsr.Settlement(tt.noJobs, tt.failed)
		if to != tt.want || reason != tt.wantReason {
			t.Errorf("%s: Settlement = %s %q, want %s %q", tt.name, to, reason, tt.want, tt.wantReason)
		}
	}
}
