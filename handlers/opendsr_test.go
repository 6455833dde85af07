package handlers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/opendsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers"
)

// processorPKI is a CA made in the test and the processor's certificate
// and key it issued.
type processorPKI struct {
	roots *x509.CertPool
	leaf  *x509.Certificate
	key   *ecdsa.PrivateKey
	pem   []byte
}

func newProcessorPKI(t *testing.T, domain string) processorPKI {
	ca := testenv.NewTLS(t)
	certPEM, key := ca.Issue(t, domain)
	b, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return processorPKI{roots: ca.Pool, leaf: leaf, key: key, pem: certPEM}
}

type processorAPI struct {
	*api
	pki processorPKI
}

const (
	acmeSecret            = "acme-controller-secret-0123"
	otherControllerSecret = "other-controller-secret-0123"
)

func setupProcessor(t *testing.T) *processorAPI {
	p := newProcessorPKI(t, "processor.test")
	a := setupWith(t, false, func(d *handlers.Deps) {
		d.OpenDSR = app.OpenDSROptions{Domain: "processor.test", Signer: &opendsr.Signer{Domain: "processor.test", Key: p.key},
			CertificateURL: "https://processor.test/opendsr/v2/certificate.pem", Base: "https://processor.test/opendsr/v2",
			Controllers: map[string][32]byte{"acme": sha256.Sum256([]byte(acmeSecret)), "other": sha256.Sum256([]byte(otherControllerSecret))},
			// The callbacks of the tests listen on 127.0.0.1.
			AllowInternalCallbacks: true}
		d.OpenDSRCertPEM = p.pem
	})
	return &processorAPI{api: a, pki: p}
}

// call sends a controller's call and checks the answer's signature when it
// is a success; it returns the status and the body.
func (p *processorAPI) call(method, path, secret, body string) (int, []byte) {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 && !strings.HasSuffix(path, ".pem") {
		domain, sig, err := opendsr.Signature(resp.Header)
		if err != nil || domain != "processor.test" {
			p.t.Errorf("%s %s: answer signed for %q: %v", method, path, domain, err)
		} else if err := opendsr.Verify(p.pki.leaf, b, sig); err != nil {
			p.t.Errorf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, b
}

func opendsrRequest(id, typ, identities string) string {
	return `{"regulation":"gdpr","subject_request_id":"` + id + `","subject_request_type":"` + typ + `","submitted_time":"2026-11-30T12:00:00Z",
		"subject_identities":[` + identities + `],"status_callback_urls":["https://controller.example/cb"]}`
}

// TestOpenDSRProcessor: a controller passes an erasure and an access to
// this service as its processor, reads their status and cancels one; every
// answer is signed by the processor's certificate, which chains to the CA;
// what is malformed, unauthenticated or another controller's is refused in
// the specification's error format.
func TestOpenDSRProcessor(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	ctx := context.Background()
	if err := opendsr.VerifyCertificate(p.pki.leaf, nil, "processor.test", p.pki.roots, time.Now()); err != nil {
		t.Fatal(err)
	}

	code, body := p.call("GET", "/opendsr/v2/discovery", "", "")
	var disc opendsr.Discovery
	if code != http.StatusOK || json.Unmarshal(body, &disc) != nil || disc.APIVersion != "2.0" || len(disc.SupportedIdentities) != len(opendsr.IdentityTypes) ||
		disc.ProcessorCertificate != "https://processor.test/opendsr/v2/certificate.pem" {
		t.Fatalf("discovery: %d %s", code, body)
	}
	for _, id := range disc.SupportedIdentities {
		if id.Format != opendsr.FormatRaw {
			t.Errorf("discovery offers %s in format %s; only raw identities are acted on", id.Type, id.Format)
		}
	}
	if code, body := p.call("GET", "/opendsr/v2/certificate.pem", "", ""); code != http.StatusOK || string(body) != string(p.pki.pem) {
		t.Errorf("certificate: %d", code)
	}

	const erasureID = "3f0c1a52-9b7e-4d2a-8c41-0e5b7a9d6f21"
	erasure := opendsrRequest(erasureID, "erasure", `{"identity_type":"email","identity_value":"Ada@Example.com","identity_format":"raw"},
		{"identity_type":"email","identity_value":"`+strings.Repeat("ab", 32)+`","identity_format":"sha256"}`)
	for _, tt := range []struct{ name, secret string }{{"no credentials", ""}, {"a wrong secret", "not-a-controller-secret"}} {
		code, body := p.call("POST", "/opendsr/v2/requests", tt.secret, erasure)
		var e opendsr.ErrorBody
		if code != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e.Error.Code != 401 {
			t.Errorf("%s: %d %s; want 401 with the error object", tt.name, code, body)
		}
	}
	before := p.countRequests()
	code, body = p.call("POST", "/opendsr/v2/requests", acmeSecret, erasure)
	var created opendsr.CreateResponse
	if code != http.StatusCreated || json.Unmarshal(body, &created) != nil || created.SubjectRequestID != erasureID || created.ControllerID != "acme" ||
		created.ExpectedCompletionTime == "" || created.ReceivedTime == "" {
		t.Fatalf("create: %d %s", code, body)
	}
	if raw, _ := base64.StdEncoding.DecodeString(created.EncodedRequest); string(raw) != erasure {
		t.Error("encoded_request is not the request as sent")
	}
	if code, again := p.call("POST", "/opendsr/v2/requests", acmeSecret, erasure); code != http.StatusCreated || !strings.Contains(string(again), erasureID) || p.countRequests() != before+1 {
		t.Errorf("the same request again: %d, %d requests filed; want 201 and one", code, p.countRequests()-before)
	}
	all, _, err := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Limit: 10})
	if err != nil || len(all) != 1 {
		t.Fatalf("stored: %d, %v", len(all), err)
	}
	req := all[0]
	if req.Type != dsr.TypeDeletion || req.Status != dsr.StatusVerified || req.OpenDSR == nil || req.OpenDSR.SubjectRequestID != erasureID ||
		len(req.Identities) != 1 || req.Identities[0].Value != "ada@example.com" || req.Regulation != dsr.RegulationGDPR {
		t.Errorf("stored erasure: %+v; want a verified GDPR deletion of the raw email only", req)
	}

	// The specification's own example, as printed, is taken.
	example, err := os.ReadFile("../internal/opendsr/testdata/request.json")
	if err != nil {
		t.Fatal(err)
	}
	// Sent past the validating client: the example is not JSON (a trailing
	// comma), which the OpenAPI document cannot allow.
	exReq, _ := http.NewRequest("POST", p.url+"/opendsr/v2/requests", strings.NewReader(string(example)))
	exReq.Header.Set("Authorization", "Bearer "+otherControllerSecret)
	exReq.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(exReq); err != nil || resp.StatusCode != http.StatusCreated {
		t.Errorf("the specification's example request: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	for _, tt := range []struct {
		name, body, reason string
	}{
		{"the same id asking something else", opendsrRequest(erasureID, "access", `{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}`), "Conflict"},
		{"only a hashed identity", opendsrRequest("0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c001", "erasure", `{"identity_type":"email","identity_value":"`+strings.Repeat("cd", 32)+`","identity_format":"sha256"}`), "UnsupportedIdentity"},
		{"a hashed advertising id only", opendsrRequest("0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c002", "erasure", `{"identity_type":"ios_advertising_id","identity_value":"`+strings.Repeat("ef", 32)+`","identity_format":"sha256"}`), "UnsupportedIdentity"},
		// What iOS and Android give when ad tracking is limited: it names
		// every such user, so acting on it would erase strangers.
		{"the all-zero advertising id", opendsrRequest("0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c004", "erasure", `{"identity_type":"android_advertising_id","identity_value":"00000000-0000-0000-0000-000000000000","identity_format":"raw"}`), "Validation"},
		{"an advertising id that is no UUID", opendsrRequest("0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c005", "erasure", `{"identity_type":"roku_advertising_id","identity_value":"not-a-uuid","identity_format":"raw"}`), "Validation"},
		{"the Android ID many devices share", opendsrRequest("0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c006", "erasure", `{"identity_type":"android_id","identity_value":"9774D56D682E549C","identity_format":"raw"}`), "Validation"},
		{"a bad email", opendsrRequest("0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c003", "erasure", `{"identity_type":"email","identity_value":"not-an-address","identity_format":"raw"}`), "Validation"},
		{"no id", strings.Replace(erasure, erasureID, "", 1), "Validation"},
	} {
		code, body := p.call("POST", "/opendsr/v2/requests", acmeSecret, tt.body)
		var e opendsr.ErrorBody
		if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error.Code != 400 || len(e.Error.Errors) != 1 || e.Error.Errors[0].Reason != tt.reason {
			t.Errorf("%s: %d %s; want 400 %s", tt.name, code, body, tt.reason)
		}
		if strings.Contains(string(body), "not-an-address") || strings.Contains(string(body), "ada@") {
			t.Errorf("%s: the error quotes an identity: %s", tt.name, body)
		}
	}

	// A request whose only identities are device ids is filed, each
	// under its kind, normalised.
	const adID = "0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c007"
	if code, body := p.call("POST", "/opendsr/v2/requests", acmeSecret, opendsrRequest(adID, "erasure",
		`{"identity_type":"ios_advertising_id","identity_value":"6D92078A-8246-4BA4-AE5B-76104861E7DC","identity_format":"raw"},
		{"identity_type":"android_id","identity_value":"A1B2C3D4E5F60718","identity_format":"raw"},
		{"identity_type":"android_advertising_id","identity_value":"`+strings.Repeat("ab", 32)+`","identity_format":"sha256"}`)); code != http.StatusCreated {
		t.Fatalf("an advertising id only: %d %s; want 201", code, body)
	}
	deletions, _, err := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Type: dsr.TypeDeletion, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var adReq dsr.Request
	for _, r := range deletions {
		if r.OpenDSR.SubjectRequestID == adID {
			adReq = r
		}
	}
	wantIDs := []dsr.Identity{{Kind: dsr.KindAdvertisingID, Value: "6d92078a-8246-4ba4-ae5b-76104861e7dc", Source: dsr.SourceSubject},
		{Kind: dsr.KindDeviceID, Value: "a1b2c3d4e5f60718", Source: dsr.SourceSubject}}
	if adReq.Type != dsr.TypeDeletion || !slices.Equal(adReq.Identities, wantIDs) {
		t.Errorf("the advertising id's request: %s with %+v; want a deletion by %+v", adReq.Type, adReq.Identities, wantIDs)
	}

	status := func(secret, id string) (int, opendsr.StatusResponse) {
		code, body := p.call("GET", "/opendsr/v2/requests/"+id, secret, "")
		var st opendsr.StatusResponse
		if code == http.StatusOK {
			_ = json.Unmarshal(body, &st)
		}
		return code, st
	}
	if code, st := status(acmeSecret, erasureID); code != http.StatusOK || st.RequestStatus != opendsr.StatusPending || st.ControllerID != "acme" {
		t.Errorf("status: %d %+v; want pending", code, st)
	}
	if code, _ := status(otherControllerSecret, erasureID); code != http.StatusNotFound {
		t.Errorf("another controller's request: %d; want 404", code)
	}
	if code, _ := status(acmeSecret, "0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c0ff"); code != http.StatusNotFound {
		t.Errorf("no such request: %d; want 404", code)
	}

	// Cancelled while pending, again the same; once acted on, refused.
	for range 2 {
		code, body := p.call("DELETE", "/opendsr/v2/requests/"+erasureID, acmeSecret, "")
		var c opendsr.CancelResponse
		if code != http.StatusAccepted || json.Unmarshal(body, &c) != nil || c.SubjectRequestID != erasureID {
			t.Errorf("cancel: %d %s; want 202", code, body)
		}
	}
	if _, st := status(acmeSecret, erasureID); st.RequestStatus != opendsr.StatusCancelled {
		t.Errorf("after the cancellation: %q; want cancelled", st.RequestStatus)
	}
	accessID := "0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c010"
	if code, _ := p.call("POST", "/opendsr/v2/requests", acmeSecret, opendsrRequest(accessID, "portability", `{"identity_type":"controller_customer_id","identity_value":"cus_42","identity_format":"raw"}`)); code != http.StatusCreated {
		t.Fatalf("portability: %d", code)
	}
	filed, _, _ := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Type: dsr.TypeAccess, Limit: 10})
	var accessReq *dsr.Request
	for i := range filed {
		if filed[i].OpenDSR.SubjectRequestID == accessID {
			accessReq = &filed[i]
		}
	}
	if accessReq == nil || accessReq.Identities[0].Kind != dsr.KindCustomerID {
		t.Fatalf("portability stored as %+v", accessReq)
	}
	if _, err := p.store.Transition(ctx, accessReq.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if code, body := p.call("DELETE", "/opendsr/v2/requests/"+accessID, acmeSecret, ""); code != http.StatusBadRequest || !strings.Contains(string(body), "NotPending") {
		t.Errorf("cancel a request in progress: %d %s; want 400 NotPending", code, body)
	}
	if _, st := status(acmeSecret, accessID); st.RequestStatus != opendsr.StatusInProgress {
		t.Errorf("status in progress: %q", st.RequestStatus)
	}
}

// TestOpenDSROff: without the settings every route answers 404 with the
// specification's error object.
func TestOpenDSROff(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	for _, path := range []string{"/opendsr/v2/discovery", "/opendsr/v2/requests/a7551968-d5d6-44b2-9831-815ac9017798"} {
		resp, body := a.send("GET", path, "", "", "")
		var e opendsr.ErrorBody
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error.Code != 404 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// TestOpenDSRCallbacks: a controller's request with status_callback_urls is
// owed its status at filing and after every change, POSTed to each URL and
// signed with the processor's certificate, until each answers 2xx.
func TestOpenDSRCallbacks(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	ctx := context.Background()
	type got struct {
		url string
		cb  opendsr.Callback
	}
	var mu sync.Mutex
	var calls []got
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		domain, sig, err := opendsr.Signature(r.Header)
		if err != nil || domain != "processor.test" || opendsr.Verify(p.pki.leaf, body, sig) != nil {
			t.Errorf("a callback not signed by the processor: %q %v", domain, err)
		}
		var cb opendsr.Callback
		_ = json.Unmarshal(body, &cb)
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, got{r.URL.Path, cb})
		if fail && r.URL.Path == "/two" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	const id = "5d6f1b2a-0c3e-4a7b-9f11-2b3c4d5e6f70"
	body := `{"regulation":"ccpa","subject_request_id":"` + id + `","subject_request_type":"erasure","submitted_time":"2026-11-30T12:00:00Z",
		"subject_identities":[{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}],
		"status_callback_urls":["` + srv.URL + `/one","` + srv.URL + `/two"]}`
	if code, b := p.call("POST", "/opendsr/v2/requests", acmeSecret, body); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	notices := workers.NewNoticeHandler(workers.NoticeDeps{Store: p.store, CallbackClient: &http.Client{Timeout: 10 * time.Second},
		OpenDSR: &opendsr.Signer{Domain: "processor.test", Key: p.pki.key}, Log: slog.New(slog.DiscardHandler)}, workers.NoticeOptions{}, nil)
	all, _, err := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Limit: 10})
	if err != nil || len(all) != 1 {
		t.Fatalf("stored: %d %v", len(all), err)
	}
	reqID := all[0].ID
	if err := notices.SendNotice(ctx, reqID, dsr.NoticeProtocolStatus); err == nil {
		t.Error("one URL answered 503: want an error, and the status still owed")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := notices.SendNotice(ctx, reqID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	if code, _ := p.call("DELETE", "/opendsr/v2/requests/"+id, acmeSecret, ""); code != http.StatusAccepted {
		t.Fatalf("cancel: %d", code)
	}
	if err := notices.SendNotice(ctx, reqID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	if r, _ := p.store.Request(ctx, reqID); slices.Contains(r.PendingNotices, dsr.NoticeProtocolStatus) {
		t.Error("the status is still owed after every URL took it")
	}
	mu.Lock()
	defer mu.Unlock()
	var seen []string
	for _, c := range calls {
		if c.cb.SubjectRequestID != id || c.cb.ControllerID != "acme" || c.cb.StatusCallbackURL != srv.URL+c.url || c.cb.ExpectedCompletionTime == "" {
			t.Errorf("callback to %s: %+v", c.url, c.cb)
		}
		seen = append(seen, c.url+":"+c.cb.RequestStatus)
	}
	want := []string{"/one:pending", "/two:pending", "/one:pending", "/two:pending", "/one:cancelled", "/two:cancelled"}
	if !slices.Equal(seen, want) {
		t.Errorf("callbacks %v; want %v", seen, want)
	}
}

// TestOpenDSRExtendedWhileCalledBack: an extension that lands while the
// controller is being called back (same status, a new due date) is sent
// right after, in the same delivery: comparing the status alone missed it.
func TestOpenDSRExtendedWhileCalledBack(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	ctx := context.Background()
	var mu sync.Mutex
	var dates []string
	var reqID string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cb opendsr.Callback
		_ = json.NewDecoder(r.Body).Decode(&cb)
		mu.Lock()
		dates = append(dates, cb.RequestStatus+" "+cb.ExpectedCompletionTime)
		first, id := len(dates) == 1, reqID
		mu.Unlock()
		if first {
			if _, err := p.store.Extend(context.Background(), id, "desk", "archives to search"); err != nil {
				t.Errorf("extend: %v", err)
			}
		}
	}))
	t.Cleanup(srv.Close)
	const id = "5d6f1b2a-0c3e-4a7b-9f11-2b3c4d5e6f71"
	body := `{"regulation":"ccpa","subject_request_id":"` + id + `","subject_request_type":"access","submitted_time":"2026-11-30T12:00:00Z",
		"subject_identities":[{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}],"status_callback_urls":["` + srv.URL + `/cb"]}`
	if code, b := p.call("POST", "/opendsr/v2/requests", acmeSecret, body); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	all, _, err := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Limit: 10})
	if err != nil || len(all) != 1 {
		t.Fatalf("stored: %d %v", len(all), err)
	}
	mu.Lock()
	reqID = all[0].ID
	mu.Unlock()
	notices := workers.NewNoticeHandler(workers.NoticeDeps{Store: p.store, CallbackClient: &http.Client{Timeout: 10 * time.Second},
		OpenDSR: &opendsr.Signer{Domain: "processor.test", Key: p.pki.key}, Log: slog.New(slog.DiscardHandler)}, workers.NoticeOptions{}, nil)
	if err := notices.SendNotice(ctx, reqID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dates) != 2 || dates[0] == dates[1] || !strings.HasPrefix(dates[1], opendsr.StatusPending) {
		t.Errorf("callbacks %v; want the status, then the same status with the extended date", dates)
	}
}

// TestOpenDSRResults: a completed access request's status names its
// results_url and results_count, and the results are served, signed, to
// the controller that passed it alone; a request not completed, or not an
// access, has none.
func TestOpenDSRResults(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	ctx := context.Background()
	const accessID, erasureID = "0b7c2d4e-6f81-4a93-8b05-c1d2e3f40516", "1c8d3e5f-7a92-4ba4-9c16-d2e3f4051627"
	email := `{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}`
	for _, r := range []string{opendsrRequest(accessID, "access", email), opendsrRequest(erasureID, "erasure", email)} {
		if code, b := p.call("POST", "/opendsr/v2/requests", acmeSecret, r); code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, b)
		}
	}
	if code, b := p.call("GET", "/opendsr/v2/requests/"+accessID+"/results", acmeSecret, ""); code != http.StatusNotFound || !strings.Contains(string(b), "NoResults") {
		t.Errorf("results of a pending access: %d %s; want 404 NoResults", code, b)
	}
	all, _, err := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Limit: 10})
	if err != nil || len(all) != 2 {
		t.Fatalf("stored: %d, %v", len(all), err)
	}
	for _, r := range all {
		p.move(r.ID, r.Status, dsr.StatusInProgress)
		p.move(r.ID, dsr.StatusInProgress, dsr.StatusCompleted)
	}
	var st opendsr.StatusResponse
	code, b := p.call("GET", "/opendsr/v2/requests/"+accessID, acmeSecret, "")
	if code != http.StatusOK || json.Unmarshal(b, &st) != nil || st.RequestStatus != "completed" ||
		st.ResultsURL != "https://processor.test/opendsr/v2/requests/"+accessID+"/results" || st.ResultsCount == nil || *st.ResultsCount != 0 {
		t.Errorf("status of the completed access: %d %s", code, b)
	}
	st = opendsr.StatusResponse{}
	if code, b := p.call("GET", "/opendsr/v2/requests/"+erasureID, acmeSecret, ""); code != http.StatusOK || json.Unmarshal(b, &st) != nil ||
		st.ResultsURL != "" || st.ResultsCount == nil {
		t.Errorf("status of the completed erasure: %d %s; want a count and no results_url", code, b)
	}
	code, b = p.call("GET", "/opendsr/v2/requests/"+accessID+"/results", acmeSecret, "")
	var doc struct {
		SubjectRequestID string            `json:"subject_request_id"`
		ResultsCount     *int64            `json:"results_count"`
		Results          []json.RawMessage `json:"results"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &doc) != nil || doc.SubjectRequestID != accessID || doc.ResultsCount == nil || doc.Results == nil {
		t.Errorf("results: %d %s", code, b)
	}
	for _, tt := range []struct {
		name, id, secret string
		want             int
	}{
		{"another controller's", accessID, otherControllerSecret, http.StatusNotFound},
		{"no credentials", accessID, "", http.StatusUnauthorized},
		{"an erasure's", erasureID, acmeSecret, http.StatusNotFound},
		{"an unknown id", "9e9e9e9e-0000-4000-8000-000000000000", acmeSecret, http.StatusNotFound},
	} {
		if code, b := p.call("GET", "/opendsr/v2/requests/"+tt.id+"/results", tt.secret, ""); code != tt.want {
			t.Errorf("%s results: %d %s; want %d", tt.name, code, b, tt.want)
		}
	}
}

// TestOpenGDPRRoutes: the OpenGDPR names of the routes (section 10.1)
// answer as the OpenDSR ones, signed, for the same requests.
func TestOpenGDPRRoutes(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	const id = "2d9e4f60-8ba3-4cb5-8d27-e3f405162738"
	body := opendsrRequest(id, "erasure", `{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}`)
	if code, b := p.call("POST", "/opendsr/v2/opengdpr_requests", acmeSecret, body); code != http.StatusCreated || !strings.Contains(string(b), id) {
		t.Fatalf("create under the OpenGDPR name: %d %s", code, b)
	}
	var st opendsr.StatusResponse
	if code, b := p.call("GET", "/opendsr/v2/requests/"+id, acmeSecret, ""); code != http.StatusOK || json.Unmarshal(b, &st) != nil || st.RequestStatus != "pending" {
		t.Errorf("its status under the OpenDSR name: %d %s", code, b)
	}
	if code, b := p.call("GET", "/opendsr/v2/opengdpr_requests/"+id, otherControllerSecret, ""); code != http.StatusNotFound {
		t.Errorf("another controller's status: %d %s", code, b)
	}
	if code, b := p.call("DELETE", "/opendsr/v2/opengdpr_requests/"+id, acmeSecret, ""); code != http.StatusAccepted {
		t.Errorf("cancel under the OpenGDPR name: %d %s", code, b)
	}
	if code, b := p.call("GET", "/opendsr/v2/opengdpr_requests/"+id, acmeSecret, ""); code != http.StatusOK || !strings.Contains(string(b), `"request_status":"cancelled"`) {
		t.Errorf("status after the cancellation: %d %s", code, b)
	}
}
