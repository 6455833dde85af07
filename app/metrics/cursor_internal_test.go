package metrics

import (
	"errors"
	"testing"
	"time"
)

// TestCursor: each outcome counts once across overlapping reads; a read
// that fails resumes from the last outcome it counted, one that succeeds
// from the overlap before its time, forgetting what is older.
func TestCursor(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	type outcome struct {
		id string
		at int
	}
	for _, tt := range []struct {
		name     string
		from     int // minutes after t0; -1: zero time
		seen     []outcome
		read     []outcome
		err      error
		now      int
		fresh    []bool
		wantFrom int
		wantSeen []string
	}{
		{name: "first read succeeds", from: -1, read: []outcome{{"a", 1}, {"b", 20}}, now: 30,
			fresh: []bool{true, true}, wantFrom: 20, wantSeen: []string{"b"}},
		{name: "the overlap counts once", from: 20, seen: []outcome{{"b", 20}}, read: []outcome{{"b", 20}, {"c", 35}}, now: 40,
			fresh: []bool{false, true}, wantFrom: 30, wantSeen: []string{"c"}},
		{name: "a failed read resumes from its last outcome", from: 5, read: []outcome{{"a", 6}, {"b", 8}}, err: errors.New("timeout"), now: 60,
			fresh: []bool{true, true}, wantFrom: 8, wantSeen: []string{"a", "b"}},
		{name: "a failed read of nothing stays", from: 5, err: errors.New("timeout"), now: 60,
			wantFrom: 5},
		{name: "a failed read of only older outcomes stays", from: 10, seen: []outcome{{"x", 10}}, read: []outcome{{"x", 10}}, err: errors.New("timeout"), now: 60,
			fresh: []bool{false}, wantFrom: 10, wantSeen: []string{"x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cursor{seen: map[string]time.Time{}}
			if tt.from >= 0 {
				c.from = at(tt.from)
			}
			for _, o := range tt.seen {
				c.seen[o.id] = at(o.at)
			}
			for i, o := range tt.read {
				if got := c.fresh(o.id, at(o.at)); got != tt.fresh[i] {
					t.Errorf("fresh(%s) = %v, want %v", o.id, got, tt.fresh[i])
				}
			}
			c.end(tt.err, at(tt.now), 10*time.Minute)
			if !c.from.Equal(at(tt.wantFrom)) {
				t.Errorf("from = %s, want %s", c.from, at(tt.wantFrom))
			}
			if !c.last.IsZero() {
				t.Errorf("last = %s after end, want zero", c.last)
			}
			if len(c.seen) != len(tt.wantSeen) {
				t.Errorf("seen = %v, want %v", c.seen, tt.wantSeen)
			}
			for _, id := range tt.wantSeen {
				if _, ok := c.seen[id]; !ok {
					t.Errorf("seen lacks %s: %v", id, c.seen)
				}
			}
		})
	}
}
