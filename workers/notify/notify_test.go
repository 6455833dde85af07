package notify_test

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers/notify"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const from = "Privacy Team <privacy@example.com>"

var now = time.Date(2026, 3, 14, 9, 26, 53, 0, time.FixedZone("CET", 3600))

// parsed is a rendered message read back the way a mail client reads it.
type parsed struct {
	raw     []byte
	header  mail.Header
	subject string // decoded
	text    string // decoded from quoted-printable
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, raw)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject: %v", err)
	}
	text, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("decode body: %v", err)
	}
	return parsed{raw: raw, header: msg.Header, subject: subject, text: string(text)}
}

// checkWire checks what every rendered message must be: CRLF line endings
// only, ASCII only, header and body lines within 76 characters (RFC 2047, 2045).
func checkWire(t *testing.T, raw []byte) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Error("message does not end with CRLF")
	}
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') {
			t.Errorf("bare LF at byte %d", i)
		}
		if c == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			t.Errorf("bare CR at byte %d", i)
		}
		if c >= 0x80 {
			t.Errorf("non-ASCII byte %#x at %d", c, i)
		}
	}
	head, body, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatal("no blank line between header and body")
	}
	for _, l := range strings.Split(head, "\r\n") {
		if len(l) > 76 {
			t.Errorf("header line of %d characters: %q", len(l), l)
		}
	}
	for _, l := range strings.Split(body, "\r\n") {
		if len(l) > 76 {
			t.Errorf("body line of %d characters: %q", len(l), l)
		}
	}
}

func TestRender(t *testing.T) {
	longLine := strings.Repeat("Grüße aus Köln, ", 20) + "Ende." // 330 characters, non-ASCII
	cases := []struct {
		name     string
		m        notify.Message
		subject  string // decoded; "" means m.Subject
		text     string // decoded body
		encoded  bool   // Subject header must be an encoded-word
		noLabels bool
	}{
		{
			name: "ascii",
			m: notify.Message{To: "ada@example.com", Subject: "Your verification code: 739214", Text: "Enter 739214.\n",
				RequestID: "0195f0e2-7c4e-7b7a-9d2e-6a1b2c3d4e5f", Kind: "verify"},
			text: "Enter 739214.\r\n",
		},
		{
			name:    "non-ASCII subject",
			m:       notify.Message{To: "Ada Lovelace <ada@example.com>", Subject: "Ihre Anfrage – Bestätigung", Text: "Danke.", RequestID: "r1", Kind: "receipt"},
			text:    "Danke.\r\n",
			encoded: true,
		},
		{
			name: "long non-ASCII subject folds",
			m: notify.Message{To: "ada@example.com", Subject: strings.Repeat("Ihre Anfrage – Bestätigung ", 6), Text: "x",
				RequestID: "r2", Kind: "completed"},
			text:    "x\r\n",
			encoded: true,
		},
		{
			name: "long ASCII subject folds at spaces",
			m: notify.Message{To: "ada@example.com", Subject: strings.Repeat("We received your privacy request ", 5) + "end",
				RequestID: "r3", Kind: "receipt"},
			text: "\r\n",
		},
		{
			name: "body: long lines, non-ASCII, LF, CRLF and CR, trailing spaces, dots",
			m: notify.Message{To: "ada@example.com", Subject: "s", RequestID: "r4", Kind: "denied",
				Text: longLine + "\n.\nline with trailing spaces   \r\nSchöne Grüße\rEnde = Schluss\n"},
			text: longLine + "\r\n.\r\nline with trailing spaces   \r\nSchöne Grüße\r\nEnde = Schluss\r\n",
		},
		{
			name:     "no request id or kind",
			m:        notify.Message{To: "ada@example.com", Subject: "s", Text: "t"},
			text:     "t\r\n",
			noLabels: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := notify.Render(from, c.m, now)
			if err != nil {
				t.Fatal(err)
			}
			checkWire(t, raw)
			p := parse(t, raw)
			wantSubject := c.subject
			if wantSubject == "" {
				wantSubject = c.m.Subject
			}
			if p.subject != wantSubject {
				t.Errorf("subject = %q, want %q", p.subject, wantSubject)
			}
			if got := p.header.Get("Subject"); c.encoded != strings.HasPrefix(got, "=?utf-8?q?") {
				t.Errorf("Subject header %q: encoded-word = %v, want %v", got, !c.encoded, c.encoded)
			}
			if p.text != c.text {
				t.Errorf("text = %q, want %q", p.text, c.text)
			}
			fromAddr, err := p.header.AddressList("From")
			if err != nil || len(fromAddr) != 1 || fromAddr[0].Address != "privacy@example.com" || fromAddr[0].Name != "Privacy Team" {
				t.Errorf("From = %v (%v)", fromAddr, err)
			}
			want, _ := mail.ParseAddress(c.m.To)
			to, err := p.header.AddressList("To")
			if err != nil || len(to) != 1 || *to[0] != *want {
				t.Errorf("To = %v (%v), want %v", to, err, want)
			}
			date, err := p.header.Date()
			if err != nil || !date.Equal(now) || p.header.Get("Date") != "Sat, 14 Mar 2026 09:26:53 +0100" {
				t.Errorf("Date = %q (%v)", p.header.Get("Date"), err)
			}
			if id := p.header.Get("Message-ID"); !regexp.MustCompile(`^<[0-9a-f]{32}@example\.com>$`).MatchString(id) {
				t.Errorf("Message-ID = %q", id)
			}
			for k, v := range map[string]string{
				"MIME-Version": "1.0", "Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "quoted-printable",
				"X-DSAR-Request-Id": c.m.RequestID, "X-DSAR-Kind": c.m.Kind,
			} {
				if got := p.header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if _, ok := p.header["X-Dsar-Request-Id"]; ok == c.noLabels {
				t.Errorf("X-DSAR-Request-Id present = %v, want %v", ok, !c.noLabels)
			}
		})
	}
}

func TestRenderMessageIDsDiffer(t *testing.T) {
	m := notify.Message{To: "ada@example.com", Subject: "s", Text: "t"}
	ids := map[string]bool{}
	for range 3 {
		raw, err := notify.Render(from, m, now)
		if err != nil {
			t.Fatal(err)
		}
		ids[parse(t, raw).header.Get("Message-ID")] = true
	}
	if len(ids) != 3 {
		t.Errorf("3 renders gave %d Message-IDs", len(ids))
	}
}

func TestRenderRejects(t *testing.T) {
	ok := notify.Message{To: "ada@example.com", Subject: "s", Text: "t", RequestID: "r1", Kind: "verify"}
	cases := []struct {
		name string
		from string
		edit func(*notify.Message)
	}{
		{"CRLF in To", from, func(m *notify.Message) { m.To = "ada@example.com\r\nBcc: mallory@example.net" }},
		{"LF in To", from, func(m *notify.Message) { m.To = "ada@example.com\nBcc: mallory@example.net" }},
		{"CRLF in Subject", from, func(m *notify.Message) { m.Subject = "hi\r\nBcc: mallory@example.net" }},
		{"CR in Subject", from, func(m *notify.Message) { m.Subject = "hi\rBcc: mallory@example.net" }},
		{"control character in Subject", from, func(m *notify.Message) { m.Subject = "hi\x00" }},
		{"CRLF in From", "privacy@example.com\r\nBcc: mallory@example.net", func(*notify.Message) {}},
		{"From not an address", "privacy team", func(*notify.Message) {}},
		{"two recipients", from, func(m *notify.Message) { m.To = "ada@example.com, grace@example.com" }},
		{"To not an address", from, func(m *notify.Message) { m.To = "ada at example.com" }},
		{"To empty", from, func(m *notify.Message) { m.To = "" }},
		{"request id with CRLF", from, func(m *notify.Message) { m.RequestID = "r1\r\nBcc: mallory@example.net" }},
		{"request id with a slash", from, func(m *notify.Message) { m.RequestID = "../r1" }},
		{"kind with a space", from, func(m *notify.Message) { m.Kind = "verify me" }},
		{"text not UTF-8", from, func(m *notify.Message) { m.Text = "caf\xe9" }},
	}
	if _, err := notify.Render(from, ok, now); err != nil {
		t.Fatalf("the message the cases start from: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ok
			c.edit(&m)
			raw, err := notify.Render(c.from, m, now)
			if err == nil {
				t.Fatalf("rendered:\n%s", raw)
			}
			if raw != nil {
				t.Errorf("bytes returned with the error %v", err)
			}
			if m.To != "" && strings.Contains(err.Error(), m.To) {
				t.Errorf("error quotes the recipient: %v", err)
			}
		})
	}
}
