package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/embedded"
	"github.com/dsar-project/dsar/internal/testenv"
)

const testBlindIndexKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// testMasterKeys is DSAR_MASTER_KEYS for the processes the tests start.
const testMasterKeys = "t1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// tlsClient trusts certs' authority alone and makes a new connection,
// hence a new handshake, for every request.
func tlsClient(certs *testenv.TLS) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: certs.Pool, MinVersion: tls.VersionTLS12}}}
}

// exitOf runs `dsar args...` until it exits (within a minute) and returns
// its output and exit code.
func exitOf(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestServeOverTLS: `dsar serve` with a certificate and key answers over
// TLS only, with HSTS, and serves a renewed certificate after SIGHUP
// without a restart.
func TestServeOverTLS(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLS(t)
	r := testenv.RedisServer(t)
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_BLIND_INDEX_KEY="+testBlindIndexKey, "DSAR_MASTER_KEYS="+testMasterKeys, "DSAR_API_KEYS=ops:admin:"+apiKey,
		"DSAR_TLS_CERT_FILE="+certs.CertFile, "DSAR_TLS_KEY_FILE="+certs.KeyFile)
	p := startDSAR(t, env, "serve")
	if !strings.HasPrefix(p.base, "https://") {
		t.Fatalf("serve with a certificate prints %s, want an https URL", p.base)
	}
	client := tlsClient(certs)
	get := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", p.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/healthz", "/v1/requests"} {
		resp := get(path)
		if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, TLS %v, headers %v", path, resp.StatusCode, resp.TLS != nil, resp.Header)
		}
		if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(certs.Serial) != 0 {
			t.Errorf("GET %s: certificate %s, want %s", path, got, certs.Serial)
		}
	}
	if resp := get("/v1/requests"); resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /v1/requests: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	// Plain HTTP on the TLS port gets no answer from the API. The failed
	// handshake is logged, as a JSON line, without the client's address
	// (an address can identify a person).
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.base, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	clientAddr := conn.LocalAddr().String()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	plain, _ := io.ReadAll(conn)
	conn.Close()
	if strings.Contains(string(plain), "200 OK") {
		t.Errorf("plain HTTP on the TLS port was answered: %q", plain)
	}
	logged := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "TLS handshake error") && time.Now().Before(logged) {
		time.Sleep(50 * time.Millisecond)
	}
	if logs := p.stderr.String(); !strings.Contains(logs, `"msg":"http server","error":"http: TLS handshake error from [address]`) || strings.Contains(logs, clientAddr) {
		t.Errorf("the failed handshake of %s is not logged as a JSON line without the client's address:\n%s", clientAddr, logs)
	}

	// A renewed certificate, then SIGHUP: the next handshake shows it.
	first := certs.Serial
	certs.Reissue(t)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get("/healthz").TLS.PeerCertificates[0].SerialNumber
		if got.Cmp(certs.Serial) == 0 {
			break
		}
		if got.Cmp(first) != 0 || time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the server shows certificate %s, want %s\n%s", got, certs.Serial, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(p.stderr.String(), "TLS certificate reloaded") {
		t.Errorf("no log line of the reload:\n%s", p.stderr)
	}
}

// TestServeRefusesPlainHTTPBeyondLoopback: serve on every interface
// without TLS stops at start naming the settings that fix it; declared
// behind a TLS proxy it starts, and its answers carry HSTS.
func TestServeRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	t.Parallel()
	r := testenv.RedisServer(t)
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_BLIND_INDEX_KEY="+testBlindIndexKey, "DSAR_MASTER_KEYS="+testMasterKeys, "DSAR_API_KEYS=ops:admin:"+apiKey, "DSAR_HTTP_ADDR=0.0.0.0:0")
	out, code := exitOf(t, env, "serve")
	if code != 1 {
		t.Fatalf("serve on 0.0.0.0 without TLS: exit %d, want 1\n%s", code, out)
	}
	for _, w := range []string{"DSAR_HTTP_ADDR: 0.0.0.0:0 is not a loopback address", "DSAR_TLS_CERT_FILE and DSAR_TLS_KEY_FILE", "DSAR_BEHIND_TLS_PROXY=true"} {
		if !strings.Contains(out, w) {
			t.Errorf("the refusal lacks %q:\n%s", w, out)
		}
	}
	p := startDSAR(t, append(env, "DSAR_BEHIND_TLS_PROXY=true"), "serve")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Errorf("behind a TLS proxy: %d, Strict-Transport-Security %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
}

// TestRedisAndSMTPOverTLS: dev runs its queue on a redis-server that
// speaks only TLS (trusting its authority through DSAR_REDIS_TLS_CA_FILE)
// and mails through STARTTLS required, trusting the mail server's
// authority through DSAR_SMTP_TLS_CA_FILE: a portal filing is queued,
// worked and its code mailed over TLS. Without DSAR_REDIS_TLS, or without
// the authority, dev stops at start.
func TestRedisAndSMTPOverTLS(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLS(t)
	addr := testenv.StartRedisTLS(t, certs) // skips when redis-server has no TLS
	mailbox := testenv.StartSMTP(t, testenv.SMTPOptions{StartTLS: true, Certs: certs})
	base := baseEnv(t, t.TempDir(), addr, testenv.Name("dsar_tls"), testenv.Name("e2e"))

	out, code := exitOf(t, base, "dev")
	if code != 1 || !strings.Contains(out, "cannot reach Redis (DSAR_REDIS_ADDR)") {
		t.Errorf("plain TCP to a TLS-only Redis: exit %d, want 1 and the Redis named\n%s", code, out)
	}
	out, code = exitOf(t, append(base, "DSAR_REDIS_TLS=true"), "dev")
	if code != 1 || !strings.Contains(out, "certificate") {
		t.Errorf("TLS without the Redis's authority: exit %d, want 1 and a certificate error\n%s", code, out)
	}

	env := append(base, "DSAR_REDIS_TLS=true", "DSAR_REDIS_TLS_CA_FILE="+certs.CAFile,
		"DSAR_SMTP_HOST="+mailbox.Host, fmt.Sprintf("DSAR_SMTP_PORT=%d", mailbox.Port), "DSAR_SMTP_TLS=starttls",
		"DSAR_SMTP_TLS_CA_FILE="+certs.CAFile, "DSAR_SMTP_USERNAME="+mailbox.Username, "DSAR_SMTP_PASSWORD="+mailbox.Password)
	p := startDSAR(t, env, "dev")
	req, _ := http.NewRequest("POST", p.base+"/v1/portal/requests", strings.NewReader(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("portal filing: %d\n%s", resp.StatusCode, p.stderr)
	}
	m := mailbox.WaitMessage(t, "ada@example.com", nil, time.Minute)
	if !m.TLS || m.User != mailbox.Username {
		t.Errorf("the code was mailed with TLS %v, user %q; want TLS and AUTH", m.TLS, m.User)
	}
}

// TestMongoOverTLS: the MongoDB driver's own TLS path, as an operator
// configures it: DSAR_MONGO_URI with tls=true and tlsCAFile reaches a
// server that accepts TLS only (FerretDB here; dev accepts it as a store)
// and the store works through it. Without tlsCAFile the server's
// certificate is not trusted and dev stops at start; a tlsCAFile that
// does not exist is a configuration error naming the setting.
func TestMongoOverTLS(t *testing.T) {
	t.Parallel()
	certs := testenv.NewTLS(t)
	m, err := embedded.StartMongoWith(context.Background(), t.TempDir(), slog.New(slog.DiscardHandler),
		embedded.MongoOptions{TLSCertFile: certs.CertFile, TLSKeyFile: certs.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if !strings.Contains(m.URI(), "tls=true") {
		t.Fatalf("FerretDB's URI %s does not ask for TLS", m.URI())
	}
	r := testenv.RedisServer(t)
	base := baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), "")
	db := "DSAR_MONGO_DB=" + testenv.Name("tls")

	out, code := exitOf(t, append(base, "DSAR_MONGO_URI="+m.URI()+"&tlsCAFile="+filepath.Join(t.TempDir(), "missing.pem"), db), "dev")
	if code != 1 || !strings.Contains(out, "DSAR_MONGO_URI: open ") {
		t.Errorf("a missing tlsCAFile: exit %d, want 1 naming DSAR_MONGO_URI\n%s", code, out)
	}
	out, code = exitOf(t, append(base, "DSAR_MONGO_URI="+m.URI()+"&serverSelectionTimeoutMS=2000", db), "dev")
	if code != 1 || !strings.Contains(out, "cannot reach the store (DSAR_MONGO_URI)") || !strings.Contains(out, "certificate") {
		t.Errorf("TLS without the server's authority: exit %d, want 1 and a certificate error\n%s", code, out)
	}

	p := startDSAR(t, append(base, "DSAR_MONGO_URI="+m.URI()+"&tlsCAFile="+certs.CAFile, db), "dev")
	var got request
	if code := p.call("POST", "/v1/requests", `{"type":"opt_out","regulation":"ccpa","subject":{"email":"ada@example.com"}}`, &got); code != http.StatusAccepted {
		t.Fatalf("file over a TLS store: %d\n%s", code, p.stderr)
	}
	if code := p.call("GET", "/v1/requests/"+got.ID, "", &got); code != http.StatusOK {
		t.Fatalf("read back over a TLS store: %d", code)
	}
}

// TestServerLogHidesAddresses: the lines net/http writes to its ErrorLog
// reach the service's log with every network address taken out, IPv4 and
// IPv6 (with a zone), and nothing else changed.
func TestServerLogHidesAddresses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"http: TLS handshake error from 203.0.113.7:51234: EOF\n", "http: TLS handshake error from [address]: EOF"},
		{"http: TLS handshake error from [2001:db8::1]:443: read tcp [2001:db8::2]:8443->[2001:db8::1]:443: read: connection reset by peer",
			"http: TLS handshake error from [address]: read tcp [address]->[address]: read: connection reset by peer"},
		{"http: panic serving [fe80::1%eth0]:5555: boom", "http: panic serving [address]: boom"},
		{"http: Accept error: too many open files; retrying in 5ms [redacted]", "http: Accept error: too many open files; retrying in 5ms [redacted]"},
	} {
		var buf strings.Builder
		w := serverLog{slog.New(slog.NewJSONHandler(&buf, nil))}
		if n, err := w.Write([]byte(tt.in)); n != len(tt.in) || err != nil {
			t.Errorf("Write(%q) = %d, %v", tt.in, n, err)
		}
		var line struct{ Level, Msg, Error string }
		if err := json.Unmarshal([]byte(buf.String()), &line); err != nil {
			t.Fatalf("%q: %v", buf.String(), err)
		}
		if line.Level != "WARN" || line.Msg != "http server" || line.Error != tt.want {
			t.Errorf("%q logged as %+v, want error %q", tt.in, line, tt.want)
		}
	}
}
