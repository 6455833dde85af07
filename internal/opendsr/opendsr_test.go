package opendsr_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/opendsr"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSpecificationExamples parses every example message of the
// specification as it is printed (testdata/README.md).
func TestSpecificationExamples(t *testing.T) {
	req, err := opendsr.ParseRequest(read(t, "request.json"))
	if err != nil {
		t.Fatalf("the specification's request: %v", err)
	}
	if req.SubjectRequestID != "a7551968-d5d6-44b2-9831-815ac9017798" || req.SubjectRequestType != opendsr.TypeErasure || req.Regulation != "gdpr" ||
		len(req.SubjectIdentities) != 1 || req.SubjectIdentities[0] != (opendsr.Identity{Type: "email", Value: "johndoe@example.com", Format: "raw"}) ||
		len(req.StatusCallbackURLs) != 1 || len(req.Extensions) != 2 || req.APIVersion != "2.0" {
		t.Errorf("request: %+v", req)
	}
	var disc opendsr.Discovery
	if err := opendsr.Decode(read(t, "discovery.json"), &disc); err != nil || disc.APIVersion != "2.0" || len(disc.SupportedIdentities) != 2 ||
		disc.SupportedSubjectRequestTypes[0] != "erasure" || disc.ProcessorCertificate == "" {
		t.Errorf("discovery: %+v, %v", disc, err)
	}
	var created opendsr.CreateResponse
	if err := opendsr.Decode(read(t, "create-response.json"), &created); err != nil || created.ControllerID != "example_controller_id" || created.SubjectRequestID == "" {
		t.Errorf("create response: %+v, %v", created, err)
	}
	var e opendsr.ErrorBody
	if err := opendsr.Decode(read(t, "error.json"), &e); err != nil || e.Error.Code != 400 || len(e.Error.Errors) != 1 || e.Error.Errors[0].Domain != "Validation" {
		t.Errorf("error: %+v, %v", e, err)
	}
	var st opendsr.StatusResponse
	if err := opendsr.Decode(read(t, "status.json"), &st); err != nil || st.RequestStatus != opendsr.StatusPending || st.ResultsCount == nil || *st.ResultsCount != 103 {
		t.Errorf("status: %+v, %v", st, err)
	}
	var cb opendsr.Callback
	if err := opendsr.Decode(read(t, "callback.json"), &cb); err != nil || cb.StatusCallbackURL != "https://examplecontroller.com/opendsr/callbacks" || cb.ResultsCount == nil || *cb.ResultsCount != 340 {
		t.Errorf("callback: %+v, %v", cb, err)
	}
	var cancel opendsr.CancelResponse
	if err := opendsr.Decode(read(t, "cancel-response.json"), &cancel); err != nil || cancel.ReceivedTime != "2018-10-02T15:00:01Z" {
		t.Errorf("cancel response: %+v, %v", cancel, err)
	}
}

func TestParseRequest(t *testing.T) {
	body := func(mod string) string {
		return `{"regulation":"ccpa","subject_request_id":"a7551968-d5d6-44b2-9831-815ac9017798","subject_request_type":"access",
			"submitted_time":"2026-11-30T12:00:00Z","subject_identities":[` + mod + `]}`
	}
	email := `{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}`
	tests := []struct {
		name, body, problem string
	}{
		{"good", body(email), ""},
		{"a sha256 digest", body(`{"identity_type":"email","identity_value":"` + strings.Repeat("ab", 32) + `","identity_format":"sha256"}`), ""},
		{"an advertising id", body(`{"identity_type":"ios_advertising_id","identity_value":"6D92078A-8246-4BA4-AE5B-76104861E7DC","identity_format":"raw"}`), ""},
		{"a comma inside a string is kept", body(`{"identity_type":"controller_customer_id","identity_value":"a,}","identity_format":"raw"}`), ""},
		{"no identity", body(``), "at least one identity"},
		{"an unknown identity type", body(`{"identity_type":"ssn","identity_value":"078-05-1120","identity_format":"raw"}`), "identity_type"},
		{"an unknown format", body(`{"identity_type":"email","identity_value":"x","identity_format":"base64"}`), "identity_format"},
		{"a sha256 of the wrong length", body(`{"identity_type":"email","identity_value":"abc","identity_format":"sha256"}`), "64 hex digits"},
		{"an upper-case id", strings.Replace(body(email), "a7551968-d5d6", "A7551968-D5D6", 1), "subject_request_id"},
		{"a version 1 id", strings.Replace(body(email), "44b2", "14b2", 1), "subject_request_id"},
		{"a version 7 id", strings.Replace(body(email), "a7551968-d5d6-44b2", "a7551968-d5d6-74b2", 1), "subject_request_id"},
		{"an unknown type", strings.Replace(body(email), `"access"`, `"rectification"`, 1), "subject_request_type"},
		{"an unknown regulation", strings.Replace(body(email), `"ccpa"`, `"lgpd"`, 1), "regulation"},
		{"a time without offset", strings.Replace(body(email), "12:00:00Z", "12:00:00", 1), "submitted_time"},
		{"a callback with credentials", strings.Replace(body(email), `"access",`, `"access","status_callback_urls":["https://u:p@c.example/cb"],`, 1), "status_callback_urls[0]"},
		{"not JSON", `subject_request_id=x`, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := opendsr.ParseRequest([]byte(tt.body))
			switch {
			case tt.problem == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.problem != "" && (err == nil || !errors.Is(err, opendsr.ErrMalformed) || !strings.Contains(err.Error(), tt.problem)):
				t.Fatalf("%v; want an error naming %q", err, tt.problem)
			}
			if err != nil && strings.Contains(err.Error(), "ada@example.com") {
				t.Errorf("the error quotes an identity: %v", err)
			}
			if tt.name == "a comma inside a string is kept" && r.SubjectIdentities[0].Value != "a,}" {
				t.Errorf("value %q", r.SubjectIdentities[0].Value)
			}
		})
	}
}

// pki makes a CA and certificates it issues, in the test.
type pki struct {
	ca    *x509.Certificate
	caKey crypto.Signer
	roots *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return &pki{ca: ca, caKey: key, roots: roots}
}

// issue returns a certificate for domain with key, signed by the CA (or by
// key itself when selfSigned), valid until notAfter.
func (p *pki) issue(t *testing.T, domain string, key crypto.Signer, selfSigned bool, notAfter time.Time) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	parent, signer := p.ca, p.caKey
	if selfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestSignAndVerify(t *testing.T) {
	p := newPKI(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body := read(t, "status.json")
	now := time.Now()
	for name, key := range map[string]crypto.Signer{"RSA": rsaKey, "ECDSA": ecKey} {
		t.Run(name, func(t *testing.T) {
			cert := p.issue(t, "processor.example", key, false, now.Add(time.Hour))
			s := opendsr.Signer{Domain: "processor.example", Key: key}
			h := http.Header{}
			if err := s.SignHeaders(h, body); err != nil {
				t.Fatal(err)
			}
			domain, sig, err := opendsr.Signature(h)
			if err != nil || domain != "processor.example" {
				t.Fatalf("Signature = %q, %v", domain, err)
			}
			if err := opendsr.Verify(cert, body, sig); err != nil {
				t.Errorf("verify: %v", err)
			}
			folded := sig[:10] + "\n" + sig[10:20] + " " + sig[20:]
			if err := opendsr.Verify(cert, body, folded); err != nil {
				t.Errorf("a folded signature: %v", err)
			}
			tampered := []byte(strings.Replace(string(body), "pending", "completed", 1))
			if err := opendsr.Verify(cert, tampered, sig); !errors.Is(err, opendsr.ErrSignature) {
				t.Errorf("a tampered body: %v; want ErrSignature", err)
			}
			other := p.issue(t, "processor.example", ecKeyOrRSA(key), false, now.Add(time.Hour))
			if err := opendsr.Verify(other, body, sig); !errors.Is(err, opendsr.ErrSignature) {
				t.Errorf("another certificate: %v; want ErrSignature", err)
			}
			if err := opendsr.VerifyCertificate(cert, nil, "processor.example", p.roots, now); err != nil {
				t.Errorf("the certificate: %v", err)
			}
		})
	}
	for _, tt := range []struct {
		name   string
		cert   *x509.Certificate
		domain string
	}{
		{"another domain", p.issue(t, "processor.example", ecKey, false, now.Add(time.Hour)), "attacker.example"},
		{"self-signed", p.issue(t, "processor.example", ecKey, true, now.Add(time.Hour)), "processor.example"},
		{"expired", p.issue(t, "processor.example", ecKey, false, now.Add(-time.Minute)), "processor.example"},
	} {
		if err := opendsr.VerifyCertificate(tt.cert, nil, tt.domain, p.roots, now); !errors.Is(err, opendsr.ErrCert) {
			t.Errorf("%s: %v; want ErrCert", tt.name, err)
		}
	}

	// The specification's example signature (folded over lines) is read,
	// and does not verify: it signs nothing of this test.
	example := "kiGlog3PdQx+FQmB8wYwFC1fekbJG7Dm9WdqgmXc9uKkFRSM4uPzylLi7j083461xLZ+mUloo3tpsmyI\nZpt5eMfgo7ejXPh6lqB4ZgCnN6+1b6Q3NoNcn/+11UOrvmDj772wvg6uIAFzsSVSjMQxRs8LAmHqFO4c"
	if err := opendsr.Verify(p.issue(t, "processor.example", rsaKey, false, now.Add(time.Hour)), body, example); !errors.Is(err, opendsr.ErrSignature) {
		t.Errorf("the example signature: %v; want ErrSignature", err)
	}

	h := http.Header{}
	h.Set(opendsr.LegacyHeaderDomain, "processor.example")
	h.Set(opendsr.LegacyHeaderSignature, "c2ln")
	if d, s, err := opendsr.Signature(h); err != nil || d != "processor.example" || s != "c2ln" {
		t.Errorf("the OpenGDPR headers: %q %q %v", d, s, err)
	}
	if _, _, err := opendsr.Signature(http.Header{}); !errors.Is(err, opendsr.ErrUnsigned) {
		t.Errorf("no headers: %v; want ErrUnsigned", err)
	}
}

// ecKeyOrRSA returns a new key of key's kind.
func ecKeyOrRSA(key crypto.Signer) crypto.Signer {
	if _, ok := key.(*rsa.PrivateKey); ok {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		return k
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return k
}

// TestDecodeAttack: the trailing-comma tolerance reaches no further than a
// comma before } or ] outside strings: strings holding ",}" and escaped
// quotes are kept as sent, and what follows the object (even a stray } or
// ], which json.Decoder.More does not see) is refused.
func TestDecodeAttack(t *testing.T) {
	var v map[string]any
	if err := opendsr.Decode([]byte(`{"a":"x\",}\\",  "b":"\u0022,]",}`), &v); err != nil || v["a"] != `x",}\` || v["b"] != `",]` {
		t.Errorf("strings with commas and quotes: %v %q", err, v)
	}
	for _, bad := range []string{`{"a":1}}`, `{"a":1}]`, `{"a":1} {}`, `{"a":1}x`, `{"a":1,,}`, `{"a":1}]]]]`} {
		if err := opendsr.Decode([]byte(bad), &v); !errors.Is(err, opendsr.ErrMalformed) {
			t.Errorf("%s: %v; want ErrMalformed", bad, err)
		}
	}
	if err := opendsr.Decode([]byte("{\"a\":1}\n \t"), &v); err != nil {
		t.Errorf("white space after the object: %v", err)
	}
}
