package httpkit

import (
	"fmt"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"
)

func TestRateLimitKeys(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"::ffff:192.0.2.7":     "::ffff:192.0.2.7",
		"not an address":       "not an address",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalCounter(t *testing.T) {
	t.Parallel()
	c := newLocalCounter(limiter.Rate{Period: time.Minute, Limit: 2})
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var reached []bool
	for _, at := range []time.Duration{0, time.Second, 2 * time.Second, 61 * time.Second} {
		reached = append(reached, c.hit("k", now.Add(at)).Reached)
	}
	if want := []bool{false, false, true, false}; fmt.Sprint(reached) != fmt.Sprint(want) {
		t.Errorf("reached = %v, want %v (2 a minute, a new window after it)", reached, want)
	}
	if c.hit("other", now).Reached {
		t.Error("keys share a count")
	}
}
