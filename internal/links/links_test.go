package links_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
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

func TestTaskToken(t *testing.T) {
	t.Parallel()
	signer := dsr.NewTaskSigner([]byte("0123456789abcdef0123456789abcdef"))
	other := dsr.NewTaskSigner([]byte("another key, another service....."))
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	token := links.TaskToken(`{"j":"r_1:paper:erase","t":"abc"}`, exp, signer)
	if got := links.Task("https://privacy.example", "p", exp, signer); !strings.HasPrefix(got, "https://privacy.example/tasks/") {
		t.Errorf("Task = %q", got)
	}
	payload, gotExp, err := links.ParseTaskToken(token, signer, now)
	if err != nil || payload != `{"j":"r_1:paper:erase","t":"abc"}` || !gotExp.Equal(exp) {
		t.Fatalf("ParseTaskToken = %q, %s, %v", payload, gotExp, err)
	}
	parts := strings.Split(token, ".")
	forged := links.TaskToken(`{"j":"r_2:paper:erase","t":"abc"}`, exp, signer)
	tests := []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"expired", token, exp, links.ErrLinkExpired},
		{"another key", links.TaskToken("p", exp, other), now, links.ErrLinkInvalid},
		{"payload swapped", strings.Split(forged, ".")[0] + "." + parts[1] + "." + parts[2], now, links.ErrLinkInvalid},
		{"expiry extended", parts[0] + "." + fmt.Sprint(exp.Add(time.Hour).Unix()) + "." + parts[2], now, links.ErrLinkInvalid},
		{"signature changed", parts[0] + "." + parts[1] + "." + strings.Repeat("0", len(parts[2])), now, links.ErrLinkInvalid},
		{"an export link's signature", parts[0] + "." + parts[1] + "." + dsr.NewLinkSigner([]byte("0123456789abcdef0123456789abcdef")).Sign("task\x00"+parts[0], exp), now, links.ErrLinkInvalid},
		{"not three parts", parts[0] + "." + parts[1], now, links.ErrLinkInvalid},
		{"empty", "", now, links.ErrLinkInvalid},
	}
	for _, tt := range tests {
		if _, _, err := links.ParseTaskToken(tt.token, signer, tt.now); !errors.Is(err, tt.want) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.want)
		}
	}
}
