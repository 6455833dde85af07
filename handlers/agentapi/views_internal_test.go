package agentapi

import (
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestSummarizeOverdue: the list's overdue is dsr.Request.Overdue: open,
// past due and its clock running.
func TestSummarizeOverdue(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	cases := []struct {
		name   string
		status dsr.Status
		due    time.Time
		paused bool
		want   bool
	}{
		{"open, past due", dsr.StatusInProgress, past, false, true},
		{"open, past due, paused", dsr.StatusVerifying, past, true, false},
		{"open, not yet due", dsr.StatusInProgress, future, false, false},
		{"duplicate, past due", dsr.StatusDuplicate, past, false, true},
		{"closed, past due", dsr.StatusCompleted, past, false, false},
		{"due now", dsr.StatusInProgress, now, false, false},
	}
	for _, c := range cases {
		r := &dsr.Request{Status: c.status, DueAt: c.due}
		if c.paused {
			at := past
			r.PausedAt = &at
		}
		if got := summarize(r, now).Overdue; got != c.want {
			t.Errorf("%s: overdue %v, want %v", c.name, got, c.want)
		}
	}
}
