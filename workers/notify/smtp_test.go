package notify_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers/notify"
)

const (
	sender = "privacy@example.com"
	ada    = "ada@example.com"
)

// newSMTP returns an SMTP sender for srv, with cfg's TLS mode and
// credentials (Username "-" means the server's).
func newSMTP(t *testing.T, srv *testenv.SMTPServer, cfg notify.SMTPConfig) *notify.SMTP {
	t.Helper()
	cfg.Host, cfg.Port = srv.Host, srv.Port
	cfg.From = "Privacy Team <" + sender + ">"
	if cfg.TLSConfig == nil {
		cfg.TLSConfig = srv.TLSConfig
	}
	if cfg.Username == "-" {
		cfg.Username, cfg.Password = srv.Username, srv.Password
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	s, err := notify.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifyMessage(to string) notify.Message {
	return notify.Message{To: to, Subject: "Ihre Anfrage – Bestätigung", Text: "Ihr Code: 739214\n",
		RequestID: "0195f0e2-7c4e-7b7a-9d2e-6a1b2c3d4e5f", Kind: "verify"}
}

func TestSMTPDelivers(t *testing.T) {
	cases := []struct {
		name    string
		server  testenv.SMTPOptions
		cfg     notify.SMTPConfig
		wantTLS bool
		user    string // the AUTH user the server saw
	}{
		{name: "plain", cfg: notify.SMTPConfig{TLS: notify.TLSNone}},
		{name: "none ignores STARTTLS offered", server: testenv.SMTPOptions{StartTLS: true}, cfg: notify.SMTPConfig{TLS: notify.TLSNone}},
		{name: "opportunistic, STARTTLS offered", server: testenv.SMTPOptions{StartTLS: true}, cfg: notify.SMTPConfig{TLS: notify.TLSOpportunistic}, wantTLS: true},
		{name: "opportunistic is the default", server: testenv.SMTPOptions{StartTLS: true}, wantTLS: true},
		// Pins go-smtp's error text for a missing STARTTLS (errNoStartTLS).
		{name: "opportunistic, STARTTLS not offered", cfg: notify.SMTPConfig{TLS: notify.TLSOpportunistic}},
		{name: "starttls required and offered", server: testenv.SMTPOptions{StartTLS: true}, cfg: notify.SMTPConfig{TLS: notify.TLSStartTLS}, wantTLS: true},
		{name: "implicit TLS", server: testenv.SMTPOptions{Implicit: true}, cfg: notify.SMTPConfig{TLS: notify.TLSImplicit}, wantTLS: true},
		{name: "AUTH in plain text to loopback", cfg: notify.SMTPConfig{TLS: notify.TLSNone, Username: "-"}, user: "dsar"},
		{name: "AUTH after STARTTLS", server: testenv.SMTPOptions{StartTLS: true}, cfg: notify.SMTPConfig{TLS: notify.TLSStartTLS, Username: "-"}, wantTLS: true, user: "dsar"},
		{name: "AUTH over implicit TLS", server: testenv.SMTPOptions{Implicit: true}, cfg: notify.SMTPConfig{TLS: notify.TLSImplicit, Username: "-"}, wantTLS: true, user: "dsar"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := testenv.StartSMTP(t, c.server)
			s := newSMTP(t, srv, c.cfg)
			m := verifyMessage(ada)
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			got := srv.WaitMessage(t, ada, nil, 5*time.Second)
			if got.From != sender {
				t.Errorf("MAIL FROM = %q, want the bare address %q", got.From, sender)
			}
			if len(got.To) != 1 || got.To[0] != ada {
				t.Errorf("RCPT TO = %q", got.To)
			}
			if got.TLS != c.wantTLS {
				t.Errorf("over TLS = %v, want %v", got.TLS, c.wantTLS)
			}
			if got.User != c.user {
				t.Errorf("authenticated as %q, want %q", got.User, c.user)
			}
			p := parse(t, got.Data)
			checkWire(t, got.Data)
			if p.subject != m.Subject || p.text != "Ihr Code: 739214\r\n" || p.header.Get("X-DSAR-Request-Id") != m.RequestID {
				t.Errorf("received subject %q, text %q, request id %q", p.subject, p.text, p.header.Get("X-DSAR-Request-Id"))
			}
			if n := len(srv.Messages()); n != 1 {
				t.Errorf("server received %d messages, want 1", n)
			}
		})
	}
}

func TestSMTPFails(t *testing.T) {
	const (
		gone = "Gone.Person@Example.com"
		busy = "busy@example.com"
	)
	reject := map[string]int{strings.ToLower(gone): 550, busy: 451}
	cases := []struct {
		name     string
		server   testenv.SMTPOptions
		cfg      notify.SMTPConfig
		to       string
		rejected bool
		want     string // in the error
	}{
		{name: "starttls required, not offered", cfg: notify.SMTPConfig{TLS: notify.TLSStartTLS}, to: ada, want: "does not offer STARTTLS"},
		{name: "implicit TLS to a plain server", cfg: notify.SMTPConfig{TLS: notify.TLSImplicit, Timeout: 2 * time.Second}, to: ada, want: "tls"},
		{name: "STARTTLS to an untrusted certificate does not fall back to plain text", server: testenv.SMTPOptions{StartTLS: true},
			cfg: notify.SMTPConfig{TLS: notify.TLSOpportunistic, TLSConfig: &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}, to: ada, want: "certificate"},
		// A wrong password is the sender's configuration, not the message:
		// retrying once it is fixed helps, so it is not ErrRejected.
		{name: "wrong password", cfg: notify.SMTPConfig{TLS: notify.TLSNone, Username: "dsar", Password: "wrong"}, to: ada, want: "AUTH: server replied 535 5.7.8"},
		{name: "wrong user over STARTTLS", server: testenv.SMTPOptions{StartTLS: true}, cfg: notify.SMTPConfig{TLS: notify.TLSStartTLS, Username: "nobody", Password: "x"}, to: ada, want: "535"},
		{name: "recipient refused for good", server: testenv.SMTPOptions{RejectRecipients: reject}, cfg: notify.SMTPConfig{TLS: notify.TLSNone}, to: gone, rejected: true, want: "RCPT TO: server replied 550 5.1.1"},
		{name: "recipient refused for good, over TLS", server: testenv.SMTPOptions{StartTLS: true, RejectRecipients: reject}, to: gone, rejected: true, want: "550"},
		{name: "recipient refused for now", server: testenv.SMTPOptions{RejectRecipients: reject}, cfg: notify.SMTPConfig{TLS: notify.TLSNone}, to: busy, want: "RCPT TO: server replied 451 4.1.1"},
		{name: "recipient not an address", cfg: notify.SMTPConfig{TLS: notify.TLSNone}, to: "ada@example.com, mallory@example.net", rejected: true, want: "to is not one valid email address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := testenv.StartSMTP(t, c.server)
			s := newSMTP(t, srv, c.cfg)
			err := s.Send(context.Background(), verifyMessage(c.to))
			if err == nil {
				t.Fatal("sent")
			}
			if errors.Is(err, notify.ErrRejected) != c.rejected {
				t.Errorf("errors.Is(%q, ErrRejected) = %v, want %v", err, !c.rejected, c.rejected)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			for _, secret := range []string{c.to, strings.ToLower(c.to), "739214", "Bestätigung"} {
				if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(secret)) {
					t.Errorf("error %q quotes %q", err, secret)
				}
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server received %d messages", n)
			}
		})
	}
}

// silentServer accepts connections and never says a word, until the test
// ends.
func silentServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr)
}

func TestSMTPGivesUp(t *testing.T) {
	cases := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // after which the caller cancels; 0: never
		want    error
	}{
		{name: "caller cancels", timeout: time.Minute, cancel: 200 * time.Millisecond, want: context.Canceled},
		{name: "timeout passes", timeout: 300 * time.Millisecond, want: context.DeadlineExceeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := silentServer(t)
			s, err := notify.NewSMTP(notify.SMTPConfig{Host: "127.0.0.1", Port: addr.Port, From: sender, TLS: notify.TLSNone, Timeout: c.timeout})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if c.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				timer := time.AfterFunc(c.cancel, cancel)
				t.Cleanup(func() { timer.Stop(); cancel() })
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- s.Send(ctx, verifyMessage(ada)) }()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Send has not given up after 5s") // leaks the goroutine: the test failed anyway
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Send took %s to give up", took)
			}
			if !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
			if errors.Is(err, notify.ErrRejected) {
				t.Errorf("giving up is not a refusal: %v", err)
			}
		})
	}
}

func TestSMTPCancelledBeforeSend(t *testing.T) {
	srv := testenv.StartSMTP(t, testenv.SMTPOptions{})
	s := newSMTP(t, srv, notify.SMTPConfig{TLS: notify.TLSNone})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, verifyMessage(ada)); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("server received %d messages", n)
	}
}

func TestNewSMTPValidates(t *testing.T) {
	good := notify.SMTPConfig{Host: "mail.example.com", Port: 587, From: "Privacy <privacy@example.com>"}
	if _, err := notify.NewSMTP(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	cases := []struct {
		name string
		edit func(*notify.SMTPConfig)
		want []string
	}{
		{"no host", func(c *notify.SMTPConfig) { c.Host = "" }, []string{"host"}},
		{"port 0", func(c *notify.SMTPConfig) { c.Port = 0 }, []string{"port 0"}},
		{"port too big", func(c *notify.SMTPConfig) { c.Port = 65536 }, []string{"port 65536"}},
		{"from not an address", func(c *notify.SMTPConfig) { c.From = "privacy" }, []string{"from"}},
		{"unknown TLS mode", func(c *notify.SMTPConfig) { c.TLS = "ssl" }, []string{`tls mode "ssl"`}},
		{"password without user", func(c *notify.SMTPConfig) { c.Password = "x" }, []string{"password"}},
		{"all at once", func(c *notify.SMTPConfig) { c.Host, c.Port, c.TLS = "", -1, "tls" }, []string{"host", "port -1", "tls mode"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			_, err := notify.NewSMTP(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
