package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPServer is a real SMTP server (github.com/emersion/go-smtp) running in the
// test process, capturing what it receives.
type SMTPServer struct {
	Host               string // "127.0.0.1"
	Port               int
	Username, Password string      // accepted AUTH PLAIN credentials
	TLSConfig          *tls.Config // for clients: trusts the server's self-signed certificate (ServerName "127.0.0.1")

	opts SMTPOptions

	mu      sync.Mutex
	msgs    []Received
	arrived chan struct{} // closed, and replaced, when a message arrives
}

// SMTPOptions shapes a test SMTP server.
type SMTPOptions struct {
	StartTLS bool // offer STARTTLS
	Implicit bool // listen with TLS from the first byte instead
	// RejectRecipients maps an address (any case) to the SMTP code replied
	// to its RCPT (e.g. 550, 451), with enhanced code X.1.1 and a text that
	// quotes the address, as real servers' do.
	RejectRecipients map[string]int
	// Certs, when set, is the certificate the server shows (NewTLS), so
	// a client may trust it through a CA file; else a self-signed one.
	Certs *TLS
}

// Received is one message the server accepted.
type Received struct {
	From string
	To   []string
	Data []byte
	// TLS says the message came over TLS (implicit or after STARTTLS); User
	// is the AUTH PLAIN user name, empty when the client did not
	// authenticate.
	TLS  bool
	User string
}

// StartSMTP starts a server for one test and stops it when the test ends.
// AUTH PLAIN is offered over TLS, and also in plain text when the server has
// no TLS at all; MAIL does not require it.
func StartSMTP(t testing.TB, o SMTPOptions) *SMTPServer {
	t.Helper()
	if o.StartTLS && o.Implicit {
		t.Fatal("testenv: SMTPOptions: StartTLS and Implicit exclude each other")
	}
	o.RejectRecipients = maps.Clone(o.RejectRecipients) // read by the server's goroutines
	serverTLS, clientTLS, err := selfSigned()
	if err != nil {
		t.Fatalf("testenv: smtp certificate: %v", err)
	}
	if o.Certs != nil {
		pair, err := tls.LoadX509KeyPair(o.Certs.CertFile, o.Certs.KeyFile)
		if err != nil {
			t.Fatalf("testenv: smtp certificate: %v", err)
		}
		serverTLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		clientTLS = &tls.Config{RootCAs: o.Certs.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	}
	s := &SMTPServer{
		Host: "127.0.0.1", Username: "dsar", Password: Name("pw"), TLSConfig: clientTLS,
		opts: o, arrived: make(chan struct{}),
	}

	raw, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: smtp listen: %v", err)
	}
	s.Port = raw.Addr().(*net.TCPAddr).Port
	tracked := &trackingListener{Listener: raw}
	var ln net.Listener = tracked
	if o.Implicit {
		ln = tls.NewListener(tracked, serverTLS)
	}

	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = !o.StartTLS && !o.Implicit
	if o.StartTLS {
		srv.TLSConfig = serverTLS
	}
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0) // client hang-ups are part of the tests

	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = raw.Close() // in case Serve had not registered it yet
		<-served
		tracked.closeAll()
	})
	return s
}

// Messages returns the messages accepted so far, oldest first.
func (s *SMTPServer) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// WaitMessage waits (up to timeout) for a message to `to` (any case) whose data satisfies
// match (nil matches any), and returns it; it fails the test on timeout.
func (s *SMTPServer) WaitMessage(t testing.TB, to string, match func(Received) bool, timeout time.Duration) Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			if slices.ContainsFunc(m.To, func(a string) bool { return strings.EqualFold(a, to) }) && (match == nil || match(m)) {
				s.mu.Unlock()
				return m
			}
		}
		arrived, n := s.arrived, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("testenv: no matching message to %s within %s (%d received)", to, timeout, n)
		}
	}
}

func (s *SMTPServer) deliver(m Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// smtpSession is one client's session: it collects the envelope and stores
// the message on DATA.
type smtpSession struct {
	srv  *SMTPServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if (identity != "" && identity != user) || user != ss.srv.Username || pass != ss.srv.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	for addr, code := range ss.srv.opts.RejectRecipients {
		if strings.EqualFold(addr, to) {
			return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: "<" + to + ">: recipient rejected"}
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.srv.deliver(Received{From: ss.from, To: slices.Clone(ss.to), Data: data, TLS: isTLS, User: ss.user})
	return nil
}

func (ss *smtpSession) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *smtpSession) Logout() error { return nil }

// selfSigned makes an ECDSA certificate for 127.0.0.1 (and localhost), valid
// for an hour, and returns the server's TLS config and a client config that
// trusts it.
func selfSigned() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "dsar test SMTP server"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return server, client, nil
}

// trackingListener keeps the connections it accepted until each is
// closed, so the server's end can close those go-smtp has not registered
// yet and wait for every connection's goroutine.
type trackingListener struct {
	net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	if l.conns == nil {
		l.conns = map[*trackedConn]struct{}{}
	}
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	l.wg.Add(1)
	return tc, nil
}

// closeAll closes the connections still open and waits until all are.
func (l *trackingListener) closeAll() {
	l.mu.Lock()
	open := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		open = append(open, c)
	}
	l.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
	l.wg.Wait()
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.wg.Done()
	})
	return err
}
