package opendsr

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The headers that sign a processor's answers and callbacks (sections 8.3,
// 8.6), and their OpenGDPR names, which section 10.1 requires honouring.
const (
	HeaderDomain          = "X-OpenDSR-Processor-Domain"
	HeaderSignature       = "X-OpenDSR-Signature"
	LegacyHeaderDomain    = "X-OpenGDPR-Processor-Domain"
	LegacyHeaderSignature = "X-OpenGDPR-Signature"
)

// The ways a signature is refused; errors of [Verify] and
// [VerifyCertificate] wrap one.
var (
	ErrUnsigned  = errors.New("opendsr: no signature or processor domain")
	ErrSignature = errors.New("opendsr: the signature does not verify under the processor's certificate")
	ErrCert      = errors.New("opendsr: the processor's certificate is not trusted for its domain")
)

// Signer signs a processor's answers and callbacks with the private key of
// its certificate, issued for Domain.
type Signer struct {
	Domain string
	Key    crypto.Signer
}

// Sign returns the signature of body: base64 of the key's signature of the
// body's SHA-256 digest (RSA PKCS #1 v1.5, or ECDSA ASN.1, FIPS 186-4).
func (s Signer) Sign(body []byte) (string, error) {
	digest := sha256.Sum256(body)
	sig, err := s.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("opendsr: sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// SignHeaders signs body and sets the two headers on h.
func (s Signer) SignHeaders(h http.Header, body []byte) error {
	sig, err := s.Sign(body)
	if err != nil {
		return err
	}
	h.Set(HeaderDomain, s.Domain)
	h.Set(HeaderSignature, sig)
	return nil
}

// Signature returns the processor domain and signature of h, from the
// OpenDSR headers or else the OpenGDPR ones; ErrUnsigned when either is
// missing.
func Signature(h http.Header) (domain, sig string, err error) {
	domain, sig = h.Get(HeaderDomain), h.Get(HeaderSignature)
	if domain == "" && sig == "" {
		domain, sig = h.Get(LegacyHeaderDomain), h.Get(LegacyHeaderSignature)
	}
	if domain == "" || sig == "" {
		return "", "", ErrUnsigned
	}
	return domain, sig, nil
}

// Verify checks that sig (base64; white space, as in the specification's
// folded examples, is ignored) signs body under cert's public key, RSA
// (PKCS #1 v1.5 or PSS) or ECDSA, over the body's SHA-256 digest. It is to
// be called before body is parsed.
func Verify(cert *x509.Certificate, body []byte, sig string) error {
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(sig), ""))
	if err != nil {
		return fmt.Errorf("%w: not base64", ErrSignature)
	}
	digest := sha256.Sum256(body)
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], raw) == nil || rsa.VerifyPSS(pub, crypto.SHA256, digest[:], raw, nil) == nil {
			return nil
		}
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(pub, digest[:], raw) {
			return nil
		}
	default:
		return fmt.Errorf("%w: a %T key is not one FIPS 186-4 signs with", ErrSignature, pub)
	}
	return ErrSignature
}

// VerifyCertificate checks that cert (with the intermediates its
// processor sent) chains to one of roots (nil: the system's) and is valid
// for domain at now: a self-signed certificate is refused, as section 4.1
// says, unless it is itself one of roots.
func VerifyCertificate(cert *x509.Certificate, intermediates []*x509.Certificate, domain string, roots *x509.CertPool, now time.Time) error {
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: domain, Roots: roots, Intermediates: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w: %v", ErrCert, err)
	}
	return nil
}

// ParseChain reads the CERTIFICATE blocks of chainPEM, leaf first (other
// blocks, such as a key, are skipped); none is an empty chain, not an
// error.
func ParseChain(chainPEM []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return chain, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
}
