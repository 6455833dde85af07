package notify_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers/notify"
)

func newOutbox(t *testing.T) (*notify.Outbox, string, *testenv.Buffer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outbox")
	logs := &testenv.Buffer{}
	o, err := notify.NewOutbox(dir, from, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return o, dir, logs
}

func TestOutboxWritesMessage(t *testing.T) {
	o, dir, logs := newOutbox(t)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("outbox dir: %v, %v", fi.Mode(), err)
	}
	m := notify.Message{To: "Ada Lovelace <Ada.Lovelace@example.com>", Subject: "Ihr Code: 739214 – Bestätigung",
		Text: "Geben Sie 739214 ein.\nSecret body line.\n", RequestID: "0195f0e2-7c4e-7b7a-9d2e-6a1b2c3d4e5f", Kind: "verify"}
	if err := o.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("outbox holds %d files (%v), want 1", len(entries), err)
	}
	name := entries[0].Name()
	if !regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-` + regexp.QuoteMeta(m.RequestID) + `-verify\.eml$`).MatchString(name) {
		t.Errorf("file name %q", name)
	}
	fi, err := entries[0].Info()
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v (%v), want 0600", fi.Mode(), err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	checkWire(t, raw)
	p := parse(t, raw)
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "Ada.Lovelace@example.com" || to[0].Name != "Ada Lovelace" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if p.subject != m.Subject || p.text != "Geben Sie 739214 ein.\r\nSecret body line.\r\n" ||
		p.header.Get("X-DSAR-Request-Id") != m.RequestID || p.header.Get("X-DSAR-Kind") != "verify" ||
		!strings.Contains(p.header.Get("From"), "<privacy@example.com>") {
		t.Errorf("read back: subject %q, text %q, header %v", p.subject, p.text, p.header)
	}

	out := logs.String()
	for _, want := range []string{`"msg":"message written to outbox"`, `"request_id":"` + m.RequestID + `"`, `"kind":"verify"`, `"file":"` + name + `"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{"ada.lovelace@example.com", "Ada Lovelace", "739214", "Bestätigung", "Secret body", "example.com"} {
		if strings.Contains(strings.ToLower(out), strings.ToLower(secret)) {
			t.Errorf("log quotes %q:\n%s", secret, out)
		}
	}
}

func TestOutboxNamesAreUnique(t *testing.T) {
	o, dir, _ := newOutbox(t)
	m := notify.Message{To: "ada@example.com", Subject: "s", Text: "t", RequestID: "r1", Kind: "receipt"}
	for range 5 {
		if err := o.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 5 {
		t.Errorf("outbox holds %d files (%v), want 5", len(entries), err)
	}
}

func TestOutboxRefuses(t *testing.T) {
	cases := []struct {
		name     string
		ctx      func() context.Context
		m        notify.Message
		rejected bool
	}{
		{name: "header injection", ctx: context.Background, rejected: true,
			m: notify.Message{To: "ada@example.com\r\nBcc: mallory@example.net", Subject: "s", Text: "t", RequestID: "r1", Kind: "verify"}},
		{name: "request id that is a path", ctx: context.Background, rejected: true,
			m: notify.Message{To: "ada@example.com", Subject: "s", Text: "t", RequestID: "../../etc/passwd", Kind: "verify"}},
		{name: "context cancelled", ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, m: notify.Message{To: "ada@example.com", Subject: "s", Text: "t", RequestID: "r1", Kind: "verify"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, dir, logs := newOutbox(t)
			err := o.Send(c.ctx(), c.m)
			if err == nil {
				t.Fatal("written")
			}
			if errors.Is(err, notify.ErrRejected) != c.rejected {
				t.Errorf("errors.Is(%q, ErrRejected) = %v, want %v", err, !c.rejected, c.rejected)
			}
			if strings.Contains(err.Error(), "ada@example.com") {
				t.Errorf("error quotes the address: %v", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("outbox holds %d files", len(entries))
			}
			if logs.String() != "" {
				t.Errorf("logged: %s", logs.String())
			}
		})
	}
}

func TestNewOutboxValidates(t *testing.T) {
	if _, err := notify.NewOutbox(t.TempDir(), "not an address", nil); err == nil {
		t.Error("accepted a From that is not an address")
	}
	if _, err := notify.NewOutbox("", from, nil); err == nil {
		t.Error("accepted no directory")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.NewOutbox(filepath.Join(file, "sub"), from, nil); err == nil {
		t.Error("accepted a directory under a file")
	}
}
