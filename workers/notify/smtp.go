package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLSMode says how the SMTP client protects the connection.
type TLSMode string

// The TLS modes.
const (
	TLSOpportunistic TLSMode = "opportunistic" // STARTTLS when the server offers it (default)
	TLSStartTLS      TLSMode = "starttls"      // STARTTLS required; fail if not offered
	TLSImplicit      TLSMode = "implicit"      // TLS from the first byte (port 465)
	TLSNone          TLSMode = "none"          // plain text (tests, local relays)
)

// SMTPConfig configures an SMTP sender.
type SMTPConfig struct {
	Host     string
	Port     int
	Username string // empty: no AUTH
	Password string
	From     string // envelope and header sender, e.g. "Privacy <privacy@example.com>" or a bare address
	TLS      TLSMode
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (tests pass a
	// config trusting their server's certificate); ServerName defaults to Host.
	TLSConfig *tls.Config
	Timeout   time.Duration // per message; default 30s
}

// DefaultTimeout bounds one message when SMTPConfig.Timeout is not set.
const DefaultTimeout = 30 * time.Second

// SMTP sends messages through an SMTP server, one connection per message.
// It is safe for concurrent use.
type SMTP struct {
	cfg  SMTPConfig
	from *mail.Address
	// dial opens the TCP connection; tests replace it to reach their
	// server under another host name.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewSMTP returns a sender for cfg. It checks that Host is set, Port is in
// 1..65535, From is one address (net/mail), the TLS mode is known (empty
// means TLSOpportunistic) and a Password comes with a Username, and reports
// every problem at once.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	var errs []error
	if cfg.Host == "" || strings.ContainsAny(cfg.Host, " \t\r\n/") {
		errs = append(errs, errors.New("host must be a host name or IP address"))
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is not in 1..65535", cfg.Port))
	}
	from, err := parseFrom(cfg.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("from %q: not one email address", cfg.From))
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSOpportunistic
	case TLSOpportunistic, TLSStartTLS, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("tls mode %q: want opportunistic, starttls, implicit or none", cfg.TLS))
	}
	if cfg.Username == "" && cfg.Password != "" {
		errs = append(errs, errors.New("password set without a username"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("timeout must not be negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("smtp config: %w", errors.Join(errs...))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	d := &net.Dialer{}
	return &SMTP{cfg: cfg, from: from, dial: d.DialContext}, nil
}

// Send delivers m: it connects, says EHLO, protects the connection as the
// TLS mode says, authenticates with AUTH PLAIN when a Username is set (only
// over TLS or to a loopback host), then MAIL FROM the bare From address,
// RCPT TO, DATA with Render's bytes and QUIT. It gives up when ctx is done or
// Timeout has passed, closing the connection.
//
// A 5xx reply to MAIL, RCPT or DATA, and a message Render refuses, give an
// error wrapping ErrRejected. Everything else (4xx replies, network and TLS
// failures, a refused AUTH, which is a configuration problem) is worth
// retrying and does not. Errors carry the server's reply codes, never its
// reply text, nor the recipient or the content.
func (s *SMTP) Send(ctx context.Context, m Message) (err error) {
	data, err := Render(s.cfg.From, m, time.Now())
	if err != nil {
		return fmt.Errorf("smtp: %w: %w", err, ErrRejected)
	}
	to, _ := mail.ParseAddress(m.To) // Render checked it
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	defer func() {
		switch {
		case err == nil:
		case parent.Err() != nil:
			err = fmt.Errorf("smtp: %w", parent.Err())
		case ctx.Err() != nil:
			err = fmt.Errorf("smtp: no answer within %s: %w", s.cfg.Timeout, ctx.Err())
		}
	}()

	c, secure, closeConn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	c.CommandTimeout = s.cfg.Timeout
	c.SubmissionTimeout = s.cfg.Timeout

	if s.cfg.Username != "" {
		if !secure && !isLoopback(s.cfg.Host) {
			return fmt.Errorf("smtp: refusing AUTH PLAIN: the connection to %s is not encrypted (use TLS mode starttls or implicit, or a loopback host)", s.cfg.Host)
		}
		if !c.SupportsAuth(sasl.Plain) {
			return errors.New("smtp: the server does not offer AUTH PLAIN")
		}
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
			return fmt.Errorf("%w (check the SMTP username and password)", replyError("AUTH", err, to.Address, false))
		}
	}
	var opts *smtp.MailOptions
	if !isASCII(s.from.Address) || !isASCII(to.Address) {
		opts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(s.from.Address, opts); err != nil {
		return replyError("MAIL FROM", err, to.Address, true)
	}
	if err := c.Rcpt(to.Address, nil); err != nil {
		return replyError("RCPT TO", err, to.Address, true)
	}
	w, err := c.Data()
	if err != nil {
		return replyError("DATA", err, to.Address, true)
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return replyError("DATA", err, to.Address, true)
	}
	if err := w.Close(); err != nil {
		return replyError("DATA", err, to.Address, true)
	}
	// The server took the message: a failed QUIT must not make the caller
	// send it again.
	_ = c.Quit()
	return nil
}

// errNoStartTLS is the text of go-smtp's error when STARTTLS is not offered
// (TestSMTPDelivers' opportunistic case without STARTTLS pins it).
const errNoStartTLS = "smtp: server doesn't support STARTTLS"

// connect dials the server, greets it and sets up TLS per the mode. It
// returns the client, whether the connection is TLS, and a function that
// closes it. The connection is closed as soon as ctx is done.
func (s *SMTP) connect(ctx context.Context) (*smtp.Client, bool, func(), error) {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	dial := func() (net.Conn, func(), error) {
		conn, err := s.dial(ctx, "tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("smtp: connect: %w", err)
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, func() { stop(); _ = conn.Close() }, nil
	}
	conn, closeConn, err := dial()
	if err != nil {
		return nil, false, nil, err
	}
	fail := func(err error) (*smtp.Client, bool, func(), error) {
		closeConn()
		return nil, false, nil, err
	}
	var c *smtp.Client
	switch s.cfg.TLS {
	case TLSImplicit:
		tc := tls.Client(conn, s.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("smtp: implicit TLS handshake: %w", err))
		}
		c = smtp.NewClient(tc)
	case TLSStartTLS, TLSOpportunistic:
		c, err = smtp.NewClientStartTLS(conn, s.tlsConfig())
		if err != nil && s.cfg.TLS == TLSOpportunistic && err.Error() == errNoStartTLS {
			// go-smtp closed the connection: start again in plain text.
			closeConn()
			if conn, closeConn, err = dial(); err != nil {
				return nil, false, nil, err
			}
			c, err = smtp.NewClient(conn), nil
		}
		if err != nil && err.Error() == errNoStartTLS {
			return fail(errors.New("smtp: the server does not offer STARTTLS, which TLS mode starttls requires"))
		}
		if err != nil {
			return fail(replyError("STARTTLS", err, "", false))
		}
	default:
		c = smtp.NewClient(conn)
	}
	// After STARTTLS go-smtp says EHLO again, under this name.
	if err := c.Hello(helloName()); err != nil {
		return fail(replyError("EHLO", err, "", false))
	}
	state, secure := c.TLSConnectionState()
	return c, secure && state.HandshakeComplete, func() { _ = c.Close(); closeConn() }, nil
}

// tlsConfig is the configured TLS settings, ServerName defaulting to Host.
func (s *SMTP) tlsConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		cfg = s.cfg.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.cfg.Host
	}
	return cfg
}

// replyError describes a failed step. A server reply is reported by its
// codes alone, as its text may quote the recipient; a 5xx reply to a step
// that is about the message (final) wraps ErrRejected. Other errors have
// the recipient, if they quote it, replaced.
func replyError(step string, err error, to string, final bool) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		msg := fmt.Sprintf("smtp: %s: server replied %d", step, se.Code)
		if e := se.EnhancedCode; e != smtp.EnhancedCodeNotSet && e != smtp.NoEnhancedCode {
			msg += fmt.Sprintf(" %d.%d.%d", e[0], e[1], e[2])
		}
		if final && se.Code >= 500 && se.Code <= 599 {
			return fmt.Errorf("%s: %w", msg, ErrRejected)
		}
		return errors.New(msg)
	}
	if to != "" && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(to)) {
		return fmt.Errorf("smtp: %s: %s", step, regexp.MustCompile("(?i)"+regexp.QuoteMeta(to)).ReplaceAllLiteralString(err.Error(), "[redacted]"))
	}
	return fmt.Errorf("smtp: %s: %w", step, err)
}

// helloName is the name dsar gives in EHLO: the machine's host name when it
// looks like a domain, else "localhost".
func helloName() string {
	h, err := os.Hostname()
	if err != nil || !strings.Contains(h, ".") || strings.ContainsAny(h, " \t\r\n") {
		return "localhost"
	}
	return h
}

// isLoopback reports whether host names this machine, where a password
// sent in plain text does not cross a network.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
