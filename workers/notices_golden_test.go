package workers

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/workers/notify"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden notices in testdata/notices")

// noticeFake is a NoticeStore and CodeHasher that keeps nothing.
type noticeFake struct{}

func (noticeFake) Request(context.Context, string) (*dsr.Request, error) { return nil, dsr.ErrNotFound }
func (noticeFake) NoticeSent(context.Context, string, string) error      { return nil }
func (noticeFake) VerificationSent(context.Context, string) error        { return nil }
func (noticeFake) IssueVerification(context.Context, string, string, string, time.Time) error {
	return nil
}
func (noticeFake) AddStatusToken(context.Context, string, string) error { return nil }
func (noticeFake) HashCode(id, code string) string                      { return id + code }
func (noticeFake) Jobs(context.Context, string) ([]dsr.Job, error)      { return nil, nil }
func (noticeFake) AppendAudit(context.Context, string, string, string, map[string]string) (*dsr.AuditEvent, error) {
	return nil, nil
}

// capture is a Notifier that keeps the last message.
type capture struct{ last notify.Message }

func (c *capture) Send(_ context.Context, m notify.Message) error { c.last = m; return nil }

// secrets finds the secrets a message carries (a code, tokens), which are
// random: the golden files name them instead.
var secrets = []*regexp.Regexp{
	regexp.MustCompile(`token=[^&\s]+`),
	regexp.MustCompile(`(keep it secret\):\n\n    )\S+`),
}

func normalise(m notify.Message) string {
	text := m.Text
	subject := m.Subject
	if code, ok := strings.CutPrefix(subject, "Your verification code: "); ok {
		text = strings.ReplaceAll(text, code, "CODE")
		subject = strings.ReplaceAll(subject, code, "CODE")
	}
	text = secrets[0].ReplaceAllString(text, "token=TOKEN")
	text = secrets[1].ReplaceAllString(text, "${1}TOKEN")
	return "To: " + m.To + "\nKind: " + m.Kind + "\nSubject: " + subject + "\n\n" + text
}

// TestNoticesGolden pins every notice and alert email byte for byte (but
// for their random secrets): the texts moved from Go to templates and must
// not change.
func TestNoticesGolden(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 2, 3, 10, 30, 0, 0, time.UTC)
	received := now.Add(-26 * time.Hour)
	due := time.Date(2026, 3, 5, 10, 30, 0, 0, time.UTC)
	links := dsr.NewLinkSigner([]byte("0123456789abcdef0123456789abcdef"))
	opts := NoticeOptions{PublicURL: "https://privacy.shop.example", PortalURL: "https://portal.shop.example", MaxRounds: 3,
		CodeTTL: 15 * time.Minute, LinkTTL: 7 * 24 * time.Hour, Links: links}
	base := func(typ dsr.Type) *dsr.Request {
		return &dsr.Request{ID: "req_01", Type: typ, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerifying, Source: "portal",
			ReceivedAt: received, DueAt: due, Notify: true}
	}
	with := func(r *dsr.Request, f func(*dsr.Request)) *dsr.Request { f(r); return r }
	cases := []struct {
		name, notice string
		req          *dsr.Request
		noPortal     bool
	}{
		{"receipt-verifying", dsr.NoticeReceipt, base(dsr.TypeAccess), false},
		{"receipt-verified", dsr.NoticeReceipt, with(base(dsr.TypeDeletion), func(r *dsr.Request) { r.Status = dsr.StatusVerified }), false},
		{"receipt-optout", dsr.NoticeReceipt, with(base(dsr.TypeOptOut), func(r *dsr.Request) { r.Status = dsr.StatusInProgress }), false},
		{"verify-portal", dsr.NoticeVerify, base(dsr.TypeAccess), false},
		{"verify-portal-nolink", dsr.NoticeVerify, base(dsr.TypeAccess), true},
		{"verify-gpc", dsr.NoticeVerify, with(base(dsr.TypeOptOut), func(r *dsr.Request) { r.Source = "gpc" }), false},
		{"verify-agent", dsr.NoticeVerify, with(base(dsr.TypeDeletion), func(r *dsr.Request) {
			r.Source = "agent_api"
			r.Agent = &dsr.Agent{Name: "Eve \"the agent\" \u202eevil\\", Email: "eve@agents.example"}
		}), false},
		{"verify-drp", dsr.NoticeVerify, with(base(dsr.TypeAccess), func(r *dsr.Request) {
			r.Source = dsr.SourceDRP
			r.DRP = &dsr.DRPLink{Agent: "CR_AGENT", Exercise: "access"}
		}), false},
		{"verify-appeal", dsr.NoticeVerify, with(base(dsr.TypeDeletion), func(r *dsr.Request) { r.Source = "agent_api"; r.AppealOf = "req_00" }), true},
		{"completed-access", dsr.NoticeCompleted, with(base(dsr.TypeAccess), func(r *dsr.Request) { r.Status = dsr.StatusCompleted }), false},
		{"completed-deletion", dsr.NoticeCompleted, with(base(dsr.TypeDeletion), func(r *dsr.Request) { r.Status = dsr.StatusCompleted }), false},
		{"denied", dsr.NoticeDenied, with(base(dsr.TypeDeletion), func(r *dsr.Request) {
			r.Status = dsr.StatusDenied
			r.History = []dsr.Transition{{Reason: "first"}, {Reason: "We keep invoices\r\nfor 10 years\u2028by law\t(HGB \u00a7257)\u202e."}}
		}), false},
		{"denied-noreason", dsr.NoticeDenied, with(base(dsr.TypeAccess), func(r *dsr.Request) { r.Status = dsr.StatusDenied }), false},
		{"extended", dsr.NoticeExtended, with(base(dsr.TypeAccess), func(r *dsr.Request) {
			r.Status = dsr.StatusInProgress
			r.Extension = &dsr.Extension{Reason: "Many systems\nto search", From: received}
		}), false},
		{"merged", dsr.NoticeMerged, base(dsr.TypeOptOut), false},
		{"alert-overdue", dsr.AlertOverdue, with(base(dsr.TypeDeletion), func(r *dsr.Request) { r.Status = dsr.StatusInProgress }), false},
		{"alert-reminder", dsr.AlertReminder(7), with(base(dsr.TypeAccess), func(r *dsr.Request) {
			r.Status = dsr.StatusInProgress
			r.AssignedTo = "desk"
			r.Regulation = dsr.RegulationCCPA
		}), false},
	}
	for _, tc := range cases {
		o := opts
		if tc.noPortal {
			o.PortalURL = ""
		}
		c := &capture{}
		h := NewNoticeHandler(NoticeDeps{Store: noticeFake{}, Index: noticeFake{}, Notifier: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Escalation: EscalationOptions{Email: "team@shop.example"}}, o, func() time.Time { return now })
		var m notify.Message
		if dsr.IsAlert(tc.notice) {
			if err := h.sendAlert(context.Background(), tc.req, tc.notice); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			m = c.last
		} else {
			var err error
			if m, err = h.compose(context.Background(), tc.req, tc.notice, "ada@example.com"); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		got := normalise(m)
		path := filepath.Join("testdata", "notices", tc.name+".txt")
		if *updateGolden {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, want)
		}
	}
	// A notice that cannot be written is an error, not an empty message.
	h := NewNoticeHandler(NoticeDeps{Store: noticeFake{}, Index: noticeFake{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, opts, nil)
	if _, err := h.compose(context.Background(), base(dsr.TypeAccess), dsr.NoticeExtended, "ada@example.com"); err == nil {
		t.Error("an extension notice without an extension composed")
	}
	if _, err := h.compose(context.Background(), base(dsr.TypeAccess), "no_such_notice", "ada@example.com"); err == nil {
		t.Error("an unknown notice composed")
	}
}

// TestEveryNoticeHasATemplate: each notice and alert kind the store may
// hold pending has its template file.
func TestEveryNoticeHasATemplate(t *testing.T) {
	t.Parallel()
	for _, kind := range append(slices.Clone(dsr.Notices), dsr.AlertOverdue, dsr.AlertReminder(2)) {
		if _, ok := templates[templateKind(kind)]; !ok {
			t.Errorf("no template for %q", kind)
		}
	}
}
