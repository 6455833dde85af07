package opendsr_test

import (
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors/opendsr"
)

// TestSettings: each setting a file can get wrong is refused, naming the
// setting.
func TestSettings(t *testing.T) {
	t.Parallel()
	good := opendsr.Spec{URL: "https://api.vendor.example/opendsr/v2", Token: "vendor-token-0123456789"}
	if _, err := opendsr.New("vendor", good); err != nil {
		t.Fatalf("good settings: %v", err)
	}
	for _, tt := range []struct {
		name string
		mod  func(*opendsr.Spec)
		want string
	}{
		{"no url", func(s *opendsr.Spec) { s.URL = "" }, "url: required"},
		{"plain http", func(s *opendsr.Spec) { s.URL = "http://api.vendor.example" }, "url: must be https"},
		{"user info", func(s *opendsr.Spec) { s.URL = "https://u:p@api.vendor.example" }, "url: want an https:// URL"},
		{"a query", func(s *opendsr.Spec) { s.URL = "https://api.vendor.example/v2?x=1" }, "url: want a base URL"},
		{"an internal address", func(s *opendsr.Spec) { s.URL = "https://10.0.0.8/v2" }, "allow_private"},
		{"no token", func(s *opendsr.Spec) { s.Token = "" }, "token: required"},
		{"a token with a space", func(s *opendsr.Spec) { s.Token = "a b" }, "token: must not hold white space"},
		{"a domain with a path", func(s *opendsr.Spec) { s.Domain = "vendor.example/x" }, "domain:"},
		{"a missing ca_file", func(s *opendsr.Spec) { s.CAFile = "/nonexistent/ca.pem" }, "ca_file:"},
		{"another regulation", func(s *opendsr.Spec) { s.Regulation = "lgpd" }, "regulation: want gdpr or ccpa"},
		{"opt_out", func(s *opendsr.Spec) { s.Actions = []string{"opt_out"} }, "actions: unknown action"},
		{"polls too often", func(s *opendsr.Spec) { s.PollEvery = "10s" }, "poll_every:"},
		{"a timeout too long", func(s *opendsr.Spec) { s.Timeout = "1h" }, "timeout:"},
		{"a callback_url with a query", func(s *opendsr.Spec) { s.CallbackURL = "https://dsar.example?x=1" }, "callback_url:"},
	} {
		s := good
		tt.mod(&s)
		if _, err := opendsr.New("vendor", s); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want an error saying %q", tt.name, err, tt.want)
		}
	}
}
