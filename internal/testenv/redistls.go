package testenv

import (
	"context"
	"crypto/tls"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartRedisTLS starts a redis-server of the test's own that speaks only
// TLS, with the server certificate of certs, and returns its address; it
// is stopped when the test ends. The test is skipped when no redis-server
// is installed or it was built without TLS (redis-server --tls-port).
func StartRedisTLS(t testing.TB, certs *TLS) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("testenv: no redis-server installed: Redis over TLS is not tested")
	}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	out := &Buffer{}
	cmd := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", certs.CertFile, "--tls-key-file", certs.KeyFile, "--tls-ca-cert-file", certs.CAFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			if strings.Contains(out.String(), "tls") || strings.Contains(out.String(), "TLS") {
				t.Skipf("testenv: redis-server has no TLS support: %s", out.String())
			}
			t.Fatalf("testenv: redis-server exited: %s", out.String())
		default:
		}
		d := tls.Dialer{Config: &tls.Config{RootCAs: certs.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
		if c, err := d.DialContext(context.Background(), "tcp", addr); err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: redis-server over TLS did not answer within 10s: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
