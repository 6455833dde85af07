// Package tlsutil builds the TLS configurations of dsar's connections: the
// API's server side (a certificate and key from files, reloaded when they
// change or on demand, so a renewed certificate needs no restart) and the
// client side of its connections to Redis and SMTP (an optional CA file
// that replaces the system's roots, an optional server name).
package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// MinVersion is the oldest TLS version dsar speaks, as server and client.
const MinVersion = tls.VersionTLS12

// CertReloader holds the API's certificate, loaded from a certificate file
// (PEM, the leaf first, then its intermediates) and a key file (PEM). It
// keeps serving the last good pair when a reload fails. It is safe for
// concurrent use.
type CertReloader struct {
	certFile, keyFile string

	mu    sync.RWMutex
	cert  *tls.Certificate
	stamp fileStamp // of the files the current pair came from
}

// fileStamp identifies a version of the two files by size and time of
// change; os.Stat follows symbolic links, so a secret volume that swaps a
// link to a new directory counts as a change.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// NewCertReloader loads the pair once; its error names the file at fault.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the pair again. On failure the pair served so far stays.
func (r *CertReloader) Reload() error {
	stamp, err := stampOf(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	cert, err := LoadKeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.cert, r.stamp = cert, stamp
	r.mu.Unlock()
	return nil
}

// ReloadIfChanged reloads the pair when either file changed (size or
// modification time) since the pair in use was read, and reports whether
// it did.
func (r *CertReloader) ReloadIfChanged() (bool, error) {
	stamp, err := stampOf(r.certFile, r.keyFile)
	if err != nil {
		return false, err
	}
	r.mu.RLock()
	same := stamp == r.stamp
	r.mu.RUnlock()
	if same {
		return false, nil
	}
	if err := r.Reload(); err != nil {
		return false, err
	}
	return true, nil
}

// Watch keeps the pair fresh until ctx ends: every interval it reloads a
// pair whose files changed, and on each value from reload (SIGHUP, say; nil:
// none) it reloads unconditionally. It logs each reload, with the new
// certificate's expiry, and each failure, which keeps the old pair in
// service.
func (r *CertReloader) Watch(ctx context.Context, every time.Duration, reload <-chan os.Signal, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var changed bool
		var err error
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err = r.ReloadIfChanged()
		case <-reload:
			changed, err = true, r.Reload()
		}
		switch {
		case err != nil:
			log.Error("TLS certificate not reloaded; the previous one stays in service", "error", err)
		case changed:
			log.Info("TLS certificate reloaded", "cert_file", r.certFile, "not_after", r.NotAfter())
		}
	}
}

// GetCertificate serves the pair in use (tls.Config.GetCertificate).
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

// NotAfter is when the certificate in use expires.
func (r *CertReloader) NotAfter() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert.Leaf.NotAfter
}

// ServerConfig is the API's TLS configuration: TLS 1.2 or later, Go's
// default cipher suites (forward secret AEADs), HTTP/2 and HTTP/1.1, the
// certificate from r.
func (r *CertReloader) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     MinVersion,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// LoadKeyPair loads a certificate and its key, checks that they match and
// that the certificate has not expired, and names the file at fault.
func LoadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("certificate file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// Errors of tls.X509KeyPair say which half is wrong ("failed to
		// find any PEM data in key input", "private key does not match
		// public key") and never quote the key.
		return nil, fmt.Errorf("certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if now := time.Now(); now.After(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("certificate %s expired on %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

// ClientConfig is the TLS configuration of a connection dsar makes to a
// server: TLS 1.2 or later; with caFile, only the certificates in it are
// trusted (else the system's roots); with serverName, the server's
// certificate must name it (else the host dialled).
func ClientConfig(caFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: MinVersion, ServerName: serverName}
	if caFile == "" {
		return cfg, nil
	}
	pool, err := LoadCAFile(caFile)
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// LoadCAFile reads PEM certificates into a pool; a file without any is an
// error.
func LoadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

func stampOf(certFile, keyFile string) (fileStamp, error) {
	c, err := os.Stat(certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("certificate file: %w", err)
	}
	k, err := os.Stat(keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("key file: %w", err)
	}
	if c.IsDir() || k.IsDir() {
		return fileStamp{}, errors.New("certificate or key file is a directory")
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}
