package opendsr_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors/opendsr"
	spec "github.com/dsar-project/dsar/internal/opendsr"
)

// authority is a certificate authority made in the test.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newAuthority(t testing.TB) authority {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return authority{cert: cert, key: key}
}

// issue returns a certificate for domain signed by a (self-signed when a
// is nil) and its key.
func issue(t testing.TB, a *authority, domain string) ([]byte, crypto.Signer) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	parent, signer := tmpl, crypto.Signer(key)
	if a != nil {
		parent, signer = a.cert, a.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key
}

// processor is an OpenDSR 2.0 processor written from the specification, to
// test the connector against misbehaviour the service as processor never
// shows (cmd/dsar's TestOpenDSRInterop runs it against the service).
type processor struct {
	t      testing.TB
	srv    *httptest.Server
	ca     authority
	caFile string
	token  string

	mu        sync.Mutex
	signer    spec.Signer
	certPEM   []byte
	types     []string
	supported []spec.Identity
	requests  map[string]spec.Request
	status    map[string]string
	count     map[string]*int64
	// fail, when set, answers every call to /requests with it.
	fail       int
	retryAfter string
	// failBody, with fail, is the (signed) body of the failures.
	failBody any
	// discoveryFail, when set, answers the discovery document with it.
	discoveryFail int
	// renamed, when set, is the subject_request_id status reads name.
	renamed string
	// certURL, when set, is the discovery's processor_certificate.
	certURL string

	discoveries atomic.Int32
}

const (
	domain = "processor.test"
	token  = "controller-secret-0123456789"
)

func newProcessor(t testing.TB) *processor {
	p := &processor{t: t, ca: newAuthority(t), token: token, types: []string{spec.TypeAccess, spec.TypeErasure},
		supported: []spec.Identity{{Type: "email", Format: spec.FormatRaw}, {Type: "controller_customer_id", Format: spec.FormatRaw}},
		requests:  map[string]spec.Request{}, status: map[string]string{}, count: map[string]*int64{}}
	p.certPEM, p.signer.Key = issue(t, &p.ca, domain)
	p.signer.Domain = domain
	p.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/discovery", func(w http.ResponseWriter, _ *http.Request) {
		p.discoveries.Add(1)
		p.mu.Lock()
		if p.discoveryFail != 0 {
			code := p.discoveryFail
			p.mu.Unlock()
			w.WriteHeader(code)
			return
		}
		d := spec.Discovery{APIVersion: "2.0", SupportedIdentities: p.supported, SupportedSubjectRequestTypes: p.types,
			ProcessorCertificate: p.srv.URL + "/v2/cert.pem"}
		if p.certURL != "" {
			d.ProcessorCertificate = p.certURL
		}
		p.mu.Unlock()
		p.answer(w, http.StatusOK, d)
	})
	mux.HandleFunc("GET /v2/cert.pem", func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		_, _ = w.Write(p.certPEM)
	})
	mux.HandleFunc("POST /v2/requests", func(w http.ResponseWriter, r *http.Request) {
		if !p.allowed(w, r) {
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := spec.ParseRequest(body)
		if err != nil {
			p.answer(w, http.StatusBadRequest, spec.ErrorBody{Error: spec.ErrorObject{Code: 400, Message: err.Error(),
				Errors: []spec.ErrorDetail{{Domain: "OpenDSR", Reason: "Validation", Message: err.Error()}}}})
			return
		}
		p.mu.Lock()
		p.requests[req.SubjectRequestID] = *req
		if p.status[req.SubjectRequestID] == "" {
			p.status[req.SubjectRequestID] = spec.StatusPending
		}
		p.mu.Unlock()
		p.answer(w, http.StatusCreated, spec.CreateResponse{ControllerID: "acme", ExpectedCompletionTime: "2026-12-31T00:00:00Z",
			ReceivedTime: time.Now().UTC().Format(time.RFC3339), SubjectRequestID: req.SubjectRequestID})
	})
	mux.HandleFunc("GET /v2/requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !p.allowed(w, r) {
			return
		}
		id := r.PathValue("id")
		p.mu.Lock()
		st, ok := p.status[id]
		n := p.count[id]
		named := id
		if p.renamed != "" {
			named = p.renamed
		}
		p.mu.Unlock()
		if !ok {
			p.answer(w, http.StatusNotFound, spec.ErrorBody{Error: spec.ErrorObject{Code: 404, Errors: []spec.ErrorDetail{{Domain: "OpenDSR", Reason: "NotFound"}}}})
			return
		}
		p.answer(w, http.StatusOK, spec.StatusResponse{ControllerID: "acme", ExpectedCompletionTime: "2026-12-31T00:00:00Z",
			SubjectRequestID: named, RequestStatus: st, ResultsCount: n})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// allowed answers a call without the token 401, and any call p.fail.
func (p *processor) allowed(w http.ResponseWriter, r *http.Request) bool {
	p.mu.Lock()
	fail, ra, body := p.fail, p.retryAfter, p.failBody
	p.mu.Unlock()
	if fail != 0 {
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		if body != nil {
			p.answer(w, fail, body)
			return false
		}
		w.WriteHeader(fail)
		return false
	}
	if r.Header.Get("Authorization") != "Bearer "+p.token {
		p.answer(w, http.StatusUnauthorized, spec.ErrorBody{Error: spec.ErrorObject{Code: 401, Errors: []spec.ErrorDetail{{Domain: "OpenDSR", Reason: "Unauthenticated"}}}})
		return false
	}
	return true
}

// answer writes v signed.
func (p *processor) answer(w http.ResponseWriter, code int, v any) {
	body, _ := json.Marshal(v)
	p.mu.Lock()
	s := p.signer
	p.mu.Unlock()
	if err := s.SignHeaders(w.Header(), body); err != nil {
		p.t.Error(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// set changes the status of request id (and its results_count).
func (p *processor) set(id, status string, count *int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status[id], p.count[id] = status, count
}

// request returns what the controller sent as id.
func (p *processor) request(id string) (spec.Request, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.requests[id]
	return r, ok
}

// sent counts the requests the controller sent.
func (p *processor) sent() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.requests)
}

// callback returns the headers and body of a callback for request id
// naming url, signed by s (p's signer when zero).
func (p *processor) callback(t testing.TB, s spec.Signer, id, status, url string) (http.Header, []byte) {
	t.Helper()
	if s.Key == nil {
		p.mu.Lock()
		s = p.signer
		p.mu.Unlock()
	}
	body, _ := json.Marshal(spec.Callback{ControllerID: "acme", ExpectedCompletionTime: "2026-12-31T00:00:00Z", StatusCallbackURL: url,
		SubjectRequestID: id, RequestStatus: status})
	h := http.Header{}
	if err := s.SignHeaders(h, body); err != nil {
		t.Fatal(err)
	}
	return h, body
}

// connector returns an opendsr connector for p, changed by mod.
func (p *processor) connector(t testing.TB, mod func(*opendsr.Spec)) *opendsr.Connector {
	t.Helper()
	s := opendsr.Spec{URL: p.srv.URL + "/v2", Token: p.token, Domain: domain, CAFile: p.caFile, AllowInsecure: true, AllowPrivate: true,
		CallbackURL: "https://controller.example"}
	if mod != nil {
		mod(&s)
	}
	c, err := opendsr.New("vendor", s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callbackPrefix is where the connectors of the tests are called back.
const callbackPrefix = "https://controller.example/v1/callbacks/"

func hasPrefix(s, prefix string) bool { return strings.HasPrefix(s, prefix) }
