package links_test

import (
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/links"
)

type fakeSigner struct{}

func (fakeSigner) Sign(id string, exp time.Time) string {
	return "sig-" + id + "-" + exp.UTC().Format("20060102")
}

func TestLinks(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct{ name, got, want string }{
		{"status path", links.StatusPath("r_1"), "/v1/portal/requests/r_1"},
		{"status", links.Status("https://privacy.example", "r_1"), "https://privacy.example/v1/portal/requests/r_1"},
		{"export path", links.ExportPath("r_1", exp, fakeSigner{}), "/v1/portal/requests/r_1/export?expires=1772366400&sig=sig-r_1-20260301"},
		{"export", links.Export("https://privacy.example", "r_1", exp, fakeSigner{}),
			"https://privacy.example/v1/portal/requests/r_1/export?expires=1772366400&sig=sig-r_1-20260301"},
		{"verify", links.Verify("https://portal.example", "r_1", "t/k+n"), "https://portal.example/verify#request=r_1&token=t%2Fk%2Bn"},
		{"agent API", links.AgentRequestPath("r_1"), "/v1/requests/r_1"},
		{"verify without a portal", links.Verify("", "r_1", "tok"), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestFiledBySubject(t *testing.T) {
	t.Parallel()
	for source, want := range map[string]bool{
		links.SourcePortal: true, links.SourceGPC: true, links.SourceAgentAPI: false, "": false, "import": false,
	} {
		if got := links.FiledBySubject(source); got != want {
			t.Errorf("FiledBySubject(%q) = %v, want %v", source, got, want)
		}
	}
}
