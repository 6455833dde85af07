package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	dsarapp "github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/internal/opendsr"
)

// openDSROptions returns the OpenDSR processor's settings and the
// certificate chain it serves: off (zero values) without
// DSAR_OPENDSR_DOMAIN. The certificate must be for the domain and its key
// must sign (RSA or ECDSA), or the start is refused. The chain served is
// its certificates only, whatever else the file holds.
func openDSROptions(cfg config.Config) (dsarapp.OpenDSROptions, []byte, error) {
	if cfg.OpenDSRDomain == "" {
		return dsarapp.OpenDSROptions{}, nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cfg.OpenDSRCertFile, cfg.OpenDSRKeyFile)
	if err != nil {
		return dsarapp.OpenDSROptions{}, nil, fmt.Errorf("DSAR_OPENDSR_CERT_FILE, DSAR_OPENDSR_KEY_FILE: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return dsarapp.OpenDSROptions{}, nil, fmt.Errorf("DSAR_OPENDSR_CERT_FILE: %w", err)
	}
	if err := leaf.VerifyHostname(cfg.OpenDSRDomain); err != nil {
		return dsarapp.OpenDSROptions{}, nil, fmt.Errorf("DSAR_OPENDSR_CERT_FILE: not issued for DSAR_OPENDSR_DOMAIN: %w", err)
	}
	// FIPS 186-4 signatures of a SHA-256 digest: RSA or ECDSA (an Ed25519
	// key would load, then fail every signature).
	var key crypto.Signer
	switch k := pair.PrivateKey.(type) {
	case *rsa.PrivateKey:
		key = k
	case *ecdsa.PrivateKey:
		key = k
	default:
		return dsarapp.OpenDSROptions{}, nil, fmt.Errorf("DSAR_OPENDSR_KEY_FILE: a %T key: want RSA or ECDSA", pair.PrivateKey)
	}
	// The chain served is made of the certificates the pair was loaded
	// with, never the file: a file that holds the key as well (one PEM for
	// both settings) would publish the key.
	var chain []byte
	for _, der := range pair.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return dsarapp.OpenDSROptions{Domain: cfg.OpenDSRDomain, Signer: &opendsr.Signer{Domain: cfg.OpenDSRDomain, Key: key},
		CertificateURL: cfg.PublicURL + cfg.OpenDSRPrefix + "/certificate.pem", Base: cfg.PublicURL + cfg.OpenDSRPrefix, Controllers: cfg.OpenDSRControllers,
		AllowInternalCallbacks: cfg.AllowInternalCallbacks}, chain, nil
}

// untrustedChain reports why the certificate chain of chainPEM (leaf
// first) does not verify for domain against the system's authorities; nil
// when it does, or when there is no chain (OpenDSR off). Section 4.1 wants
// a certificate from an authority; a private one is the operator's choice,
// so it is said at start, not refused.
func untrustedChain(chainPEM []byte, domain string, now time.Time) error {
	certs, err := opendsr.ParseChain(chainPEM)
	if err != nil {
		return err
	}
	if len(certs) == 0 {
		return nil
	}
	return opendsr.VerifyCertificate(certs[0], certs[1:], domain, nil, now)
}
