package dsr

import (
	"testing"
	"time"
)

func TestDeferrable(t *testing.T) {
	created := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	j := &Job{CreatedAt: created}
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
