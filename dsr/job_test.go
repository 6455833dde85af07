package dsr_test

import (
	"testing"
	"time"

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

// TestDeferrable: how long a system's "call again later" leaves a job's
// retries untouched.
func TestDeferrable(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	j := &dsr.Job{CreatedAt: created}
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"just created", created, true},
		{"within the wait bound", created.Add(13 * 24 * time.Hour), true},
		{"at the bound", created.Add(14 * 24 * time.Hour), false},
		{"past it", created.Add(15 * 24 * time.Hour), false},
	}
	for _, tt := range tests {
		if got := j.Deferrable(tt.now, 14*24*time.Hour); got != tt.want {
			t.Errorf("%s: Deferrable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
