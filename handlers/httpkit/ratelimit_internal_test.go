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

// TestMailboxKey: addresses one provider delivers to one inbox count as one
// mailbox; those it keeps apart stay apart.
func TestMailboxKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"ada@example.com", "ada@example.com"},
		{"Ada+News@Example.com", "ada@example.com"},
		{"ada+a+b@example.com", "ada@example.com"},
		// Dots count where the provider does not say they do not.
		{"a.da@example.com", "a.da@example.com"},
		{"a.da@outlook.com", "a.da@outlook.com"},
		{"ada-news@example.com", "ada-news@example.com"},
		// Gmail ignores dots, and googlemail.com is gmail.com.
		{"A.D.A+x@Gmail.com", "ada@gmail.com"},
		{"a.da@googlemail.com", "ada@gmail.com"},
		// Yahoo: name-keyword is a disposable address of name.
		{"ada-shop@yahoo.com", "ada@yahoo.com"},
		{"a.da@yahoo.com", "a.da@yahoo.com"},
		// Fastmail: x@name.fastmail.com reaches name@fastmail.com.
		{"shop@ada.fastmail.com", "ada@fastmail.com"},
		{"ada+shop@fastmail.com", "ada@fastmail.com"},
		{"shop@ada.example.com", "shop@ada.example.com"},
		// A domain in Unicode and in punycode is one domain.
		{"ada@Bücher.example", "ada@xn--bcher-kva.example"},
		{"ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"},
	}
	for _, tt := range tests {
		if got := MailboxKey(tt.in); got != tt.want {
			t.Errorf("MailboxKey(%q) = %q, want %q", tt.in, got, tt.want)
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
