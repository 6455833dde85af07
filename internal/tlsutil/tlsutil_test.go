package tlsutil_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/tlsutil"
)

// serve accepts TLS connections on a loopback port with the reloader's
// configuration and finishes each handshake.
func serve(t *testing.T, r *tlsutil.CertReloader) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", r.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// peerSerial dials addr trusting certs' authority alone and returns the
// serial number of the certificate the server showed.
func peerSerial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestReloadServesTheNewCertificate: a server keeps its listener while the
// certificate files are replaced; the next handshake shows the new one,
// after an explicit Reload (SIGHUP) and after ReloadIfChanged (the
// watcher). A broken file keeps the old pair in service.
func TestReloadServesTheNewCertificate(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLS(t)
	r, err := tlsutil.NewCertReloader(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r)
	client, err := tlsutil.ClientConfig(certs.CAFile, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if got := peerSerial(t, addr, client); got != certs.Serial.String() {
		t.Fatalf("first certificate %s, want %s", got, certs.Serial)
	}

	first := certs.Serial.String()
	certs.Reissue(t)
	if got := peerSerial(t, addr, client); got != first {
		t.Errorf("before a reload the server shows %s, want the first, %s", got, first)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := peerSerial(t, addr, client); got != certs.Serial.String() {
		t.Errorf("after Reload the server shows %s, want %s", got, certs.Serial)
	}

	if changed, err := r.ReloadIfChanged(); err != nil || changed {
		t.Errorf("ReloadIfChanged with unchanged files = %v, %v; want false, nil", changed, err)
	}
	second := certs.Serial.String()
	certs.Reissue(t)
	// Make the change visible even on a file system with coarse times.
	later := time.Now().Add(time.Minute)
	_ = os.Chtimes(certs.CertFile, later, later)
	if changed, err := r.ReloadIfChanged(); err != nil || !changed {
		t.Fatalf("ReloadIfChanged after a reissue = %v, %v; want true, nil", changed, err)
	}
	if got := peerSerial(t, addr, client); got == second || got != certs.Serial.String() {
		t.Errorf("after ReloadIfChanged the server shows %s, want %s", got, certs.Serial)
	}

	served := certs.Serial.String()
	if err := os.WriteFile(certs.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), certs.KeyFile) {
		t.Errorf("Reload of a broken key: %v, want an error naming %s", err, certs.KeyFile)
	}
	if got := peerSerial(t, addr, client); got != served {
		t.Errorf("after a failed reload the server shows %s, want the last good %s", got, served)
	}
}

// TestClientConfigTrustsTheCAFileAlone: with a CA file, a server signed by
// that authority is accepted and one signed by another is refused; the
// server name is checked.
func TestClientConfigTrustsTheCAFileAlone(t *testing.T) {
	t.Parallel()
	ours, theirs := testenv.NewTLS(t), testenv.NewTLS(t)
	r, err := tlsutil.NewCertReloader(theirs.CertFile, theirs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r)
	tests := []struct {
		name    string
		ca      string
		server  string
		wantErr string
	}{
		{"the server's authority", theirs.CAFile, "", ""},
		{"the server's authority, its name", theirs.CAFile, "localhost", ""},
		{"another authority", ours.CAFile, "", "certificate signed by unknown authority"},
		{"a name the certificate lacks", theirs.CAFile, "redis.internal", "not redis.internal"},
	}
	for _, tt := range tests {
		cfg, err := tlsutil.ClientConfig(tt.ca, tt.server)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ServerName == "" {
			cfg.ServerName = "127.0.0.1" // what a dialler sets from the address
		}
		c, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			c.Close()
		}
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.wantErr)
		}
	}
	if _, err := tlsutil.ClientConfig(filepath.Join(t.TempDir(), "none.pem"), ""); err == nil {
		t.Error("a missing CA file was accepted")
	}
	if _, err := tlsutil.ClientConfig(ours.KeyFile, ""); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
}

// TestLoadKeyPairNamesTheFault: a missing file, a key of another
// certificate.
func TestLoadKeyPairNamesTheFault(t *testing.T) {
	t.Parallel()
	a, b := testenv.NewTLS(t), testenv.NewTLS(t)
	if _, err := tlsutil.LoadKeyPair(a.CertFile, b.KeyFile); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched pair: %v", err)
	}
	if _, err := tlsutil.LoadKeyPair(a.CertFile+".missing", a.KeyFile); err == nil || !strings.Contains(err.Error(), "certificate file") {
		t.Errorf("missing certificate: %v", err)
	}
	if _, err := tlsutil.LoadKeyPair(a.CertFile, a.CertFile); err == nil || !strings.Contains(err.Error(), a.CertFile) {
		t.Errorf("a certificate given as key: %v", err)
	}
}

// TestWatch: the watcher reloads on a signal, and by itself when the files
// change, and stops when its context ends.
func TestWatch(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLS(t)
	r, err := tlsutil.NewCertReloader(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r)
	client, err := tlsutil.ClientConfig(certs.CAFile, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	watch := func(every time.Duration) (chan<- os.Signal, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		hup := make(chan os.Signal, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.Watch(ctx, every, hup, slog.New(slog.DiscardHandler))
		}()
		return hup, func() { cancel(); <-done }
	}
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for peerSerial(t, addr, client) != certs.Serial.String() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the server still shows the old certificate", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	_, stop := watch(20 * time.Millisecond)
	certs.Reissue(t)
	later := time.Now().Add(time.Minute)
	_ = os.Chtimes(certs.CertFile, later, later)
	waitFor("a change of the files")
	stop()

	hup, stop := watch(time.Hour) // only the signal can reload
	defer stop()
	certs.Reissue(t)
	hup <- syscall.SIGHUP
	waitFor("a signal")
}
