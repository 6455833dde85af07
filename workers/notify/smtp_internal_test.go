package notify

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
)

// TestAUTHNeedsTLSOffLoopback reaches the test server under a host name that
// is not loopback, so the sender must not send its password in plain text.
func TestAUTHNeedsTLSOffLoopback(t *testing.T) {
	cases := []struct {
		name    string
		server  testenv.SMTPOptions
		mode    TLSMode
		refused bool
	}{
		{name: "plain text", mode: TLSNone, refused: true},
		{name: "opportunistic, STARTTLS not offered", mode: TLSOpportunistic, refused: true},
		{name: "starttls", server: testenv.SMTPOptions{StartTLS: true}, mode: TLSStartTLS},
		{name: "implicit", server: testenv.SMTPOptions{Implicit: true}, mode: TLSImplicit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := testenv.StartSMTP(t, c.server)
			s, err := NewSMTP(SMTPConfig{
				Host: "mail.example.com", Port: 587, Username: srv.Username, Password: srv.Password,
				From: "privacy@example.com", TLS: c.mode, TLSConfig: srv.TLSConfig, Timeout: 10 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			addr := net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port))
			s.dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}
			err = s.Send(context.Background(), Message{To: "ada@example.com", Subject: "s", Text: "t", RequestID: "r1", Kind: "verify"})
			if !c.refused {
				if err != nil {
					t.Fatal(err)
				}
				if got := srv.WaitMessage(t, "ada@example.com", nil, 5*time.Second); got.User != srv.Username || !got.TLS {
					t.Errorf("user %q, TLS %v", got.User, got.TLS)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "refusing AUTH PLAIN") || errors.Is(err, ErrRejected) {
				t.Errorf("error %v, want a refusal to authenticate that is not ErrRejected", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server received %d messages", n)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.0.0.53": true, "::1": true,
		"mail.example.com": false, "10.0.0.1": false, "::ffff:10.0.0.1": false, "localhost.example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
