package app_test

import (
	"testing"

	"github.com/dsar-project/dsar/app"
)

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
		if got := app.MailboxKey(tt.in); got != tt.want {
			t.Errorf("MailboxKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
