package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/config"
)

// TestOpenDSROptions: the processor starts only with a certificate issued
// for its domain and the key that goes with it.
func TestOpenDSROptions(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, block *pem.Block) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "processor.test"}, DNSNames: []string{"processor.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert := write("cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der})
	der, _ = x509.MarshalECPrivateKey(key)
	keyFile := write("key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	der, _ = x509.MarshalECPrivateKey(other)
	otherKey := write("other.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})

	// An Ed25519 pair loads, but cannot make the FIPS 186-4 signatures of a
	// digest that OpenDSR asks for.
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, edPub, edPriv)
	if err != nil {
		t.Fatal(err)
	}
	edCert := write("ed-cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der})
	der, _ = x509.MarshalPKCS8PrivateKey(edPriv)
	edKey := write("ed-key.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: der})

	cfg := config.Config{OpenDSRDomain: "processor.test", OpenDSRCertFile: cert, OpenDSRKeyFile: keyFile, OpenDSRPrefix: "/opendsr/v2",
		PublicURL: "https://processor.test", OpenDSRControllers: map[string][32]byte{"acme": {1}}}
	o, pemBytes, err := openDSROptions(cfg)
	if err != nil || o.Signer == nil || o.CertificateURL != "https://processor.test/opendsr/v2/certificate.pem" || len(pemBytes) == 0 {
		t.Fatalf("a good pair: %+v, %v", o, err)
	}
	for _, tt := range []struct {
		name string
		mod  func(*config.Config)
		want string
	}{
		{"another domain", func(c *config.Config) { c.OpenDSRDomain = "attacker.test" }, "not issued for DSAR_OPENDSR_DOMAIN"},
		{"another key", func(c *config.Config) { c.OpenDSRKeyFile = otherKey }, "DSAR_OPENDSR_KEY_FILE"},
		{"an Ed25519 pair", func(c *config.Config) { c.OpenDSRCertFile, c.OpenDSRKeyFile = edCert, edKey }, "want RSA or ECDSA"},
		{"no certificate", func(c *config.Config) { c.OpenDSRCertFile = filepath.Join(dir, "missing.pem") }, "DSAR_OPENDSR_CERT_FILE"},
	} {
		c := cfg
		tt.mod(&c)
		if _, _, err := openDSROptions(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want an error naming %s", tt.name, err, tt.want)
		}
	}
	// A file holding the chain and the key (one PEM for both settings, as
	// many servers take it): only the certificates are served.
	both := filepath.Join(dir, "both.pem")
	certPEM, _ := os.ReadFile(cert)
	keyPEM, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(both, append(append(certPEM, keyPEM...), []byte("a comment\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	c := cfg
	c.OpenDSRCertFile, c.OpenDSRKeyFile = both, both
	if o, served, err := openDSROptions(c); err != nil || o.Signer == nil || strings.Contains(string(served), "PRIVATE KEY") ||
		strings.Contains(string(served), "comment") || !strings.Contains(string(served), "BEGIN CERTIFICATE") {
		t.Errorf("one file for the chain and the key: %v; served:\n%s", err, served)
	}
	if o, _, err := openDSROptions(config.Config{}); err != nil || o.Signer != nil {
		t.Errorf("off: %+v, %v", o, err)
	}
}

// TestUntrustedChain: a chain from an authority this machine does not
// trust is reported (the start then warns), as is one for another domain;
// no chain (OpenDSR off) is not.
func TestUntrustedChain(t *testing.T) {
	dir := t.TempDir()
	_, cert, _ := processorPKI(t, dir, "processor.test")
	chain, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	if err := untrustedChain(chain, "processor.test", time.Now()); err == nil {
		t.Error("a chain from the test's authority passed as trusted by the system")
	}
	if err := untrustedChain(nil, "", time.Now()); err != nil {
		t.Errorf("no chain: %v", err)
	}
}
