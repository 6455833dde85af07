package handlers_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/opendsr"
	"github.com/dsar-project/dsar/workers"
)

// raw sends a controller's call past the validating client (a hostile
// controller sends what the OpenAPI document does not allow).
func (p *processorAPI) raw(method, path, secret, body string) (int, []byte) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestOpenDSRAttackNumberIdentity: a controller that sends an identity as a
// JSON number (a customer id, a phone number) is refused without the value
// in the answer or the logs: encoding/json's type error quotes the number.
func TestOpenDSRAttackNumberIdentity(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	const secret = "4930123456789"
	body := opendsrRequest("0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c201", "erasure",
		`{"identity_type":"controller_customer_id","identity_value":`+secret+`,"identity_format":"raw"}`)
	code, b := p.raw("POST", "/opendsr/v2/requests", acmeSecret, body)
	if code != http.StatusBadRequest || !strings.Contains(string(b), "Validation") {
		t.Errorf("a number identity: %d %s; want 400 Validation", code, b)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the answer quotes the identity: %s", b)
	}
	if strings.Contains(p.logs.String(), secret) {
		t.Errorf("the logs quote the identity:\n%s", p.logs)
	}
}

// TestOpenDSRAttackCallbackFanout: a request names at most a few
// status_callback_urls: each status change POSTs to every one in turn on
// the work queue, for up to the client's timeout each, so a request naming
// thousands (they fit in the 256 KiB message) holds a worker for hours on
// every change.
func TestOpenDSRAttackCallbackFanout(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	urls := make([]string, 2000)
	for i := range urls {
		urls[i] = `"https://controller.example/cb/` + strings.Repeat("x", 20) + `"`
	}
	body := `{"regulation":"gdpr","subject_request_id":"0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c202","subject_request_type":"erasure","submitted_time":"2026-11-30T12:00:00Z",
		"subject_identities":[{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}],"status_callback_urls":[` + strings.Join(urls, ",") + `]}`
	code, b := p.raw("POST", "/opendsr/v2/requests", acmeSecret, body)
	if code != http.StatusBadRequest {
		t.Errorf("2000 callback URLs: %d %.300s; want 400", code, b)
	}
}

// TestOpenDSRAttackSameIDOtherType: the same subject_request_id asking
// portability after access (both an access request here) is a request for
// something else, which the documentation promises is a 400 Conflict; it
// was answered 201 with the first request, whose type stays access.
func TestOpenDSRAttackSameIDOtherType(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	const id = "0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c203"
	ident := `{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}`
	if code, b := p.call("POST", "/opendsr/v2/requests", acmeSecret, opendsrRequest(id, "access", ident)); code != http.StatusCreated {
		t.Fatalf("access: %d %s", code, b)
	}
	code, b := p.call("POST", "/opendsr/v2/requests", acmeSecret, opendsrRequest(id, "portability", ident))
	if code != http.StatusBadRequest || !strings.Contains(string(b), "Conflict") {
		t.Errorf("the same id asking portability: %d %s; want 400 Conflict", code, b)
	}
}

// TestOpenDSRAttackIsolation holds: two controllers using the same
// subject_request_id get two requests; neither reads nor cancels the
// other's; ids differing in case or with white space are not ids.
func TestOpenDSRAttackIsolation(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	ctx := context.Background()
	const id = "0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c204"
	ident := `{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}`
	for _, s := range []string{acmeSecret, otherControllerSecret} {
		if code, b := p.call("POST", "/opendsr/v2/requests", s, opendsrRequest(id, "erasure", ident)); code != http.StatusCreated {
			t.Fatalf("create: %d %s", code, b)
		}
	}
	all, _, _ := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Limit: 10})
	if len(all) != 2 {
		t.Fatalf("%d requests; want one per controller", len(all))
	}
	if code, _ := p.call("DELETE", "/opendsr/v2/requests/"+id, acmeSecret, ""); code != http.StatusAccepted {
		t.Fatalf("cancel: %d", code)
	}
	code, b := p.call("GET", "/opendsr/v2/requests/"+id, otherControllerSecret, "")
	var st opendsr.StatusResponse
	if code != http.StatusOK || json.Unmarshal(b, &st) != nil || st.RequestStatus != opendsr.StatusPending || st.ControllerID != "other" {
		t.Errorf("the other controller's request after acme cancelled its own: %d %s", code, b)
	}
	for _, bad := range []string{strings.ToUpper(id), "%20" + id, id + "%20"} {
		if code, _ := p.raw("GET", "/opendsr/v2/requests/"+bad, acmeSecret, ""); code != http.StatusNotFound {
			t.Errorf("GET %q: %d; want 404", bad, code)
		}
		if code, _ := p.raw("POST", "/opendsr/v2/requests", acmeSecret, opendsrRequest(strings.ToUpper(id), "erasure", ident)); code != http.StatusBadRequest {
			t.Errorf("POST an upper-case id: %d; want 400", code)
		}
	}
}

// TestOpenDSRAttackDeadFirstCallback: a controller's first
// status_callback_url that never answers 2xx does not keep the status from
// the others: each attempt stopped at the first failure, so the URLs after
// it were never called, however often it was retried.
func TestOpenDSRAttackDeadFirstCallback(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	ctx := context.Background()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/dead" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	const id = "0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c205"
	body := `{"regulation":"gdpr","subject_request_id":"` + id + `","subject_request_type":"erasure","submitted_time":"2026-11-30T12:00:00Z",
		"subject_identities":[{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}],
		"status_callback_urls":["` + srv.URL + `/dead","` + srv.URL + `/live"]}`
	if code, b := p.call("POST", "/opendsr/v2/requests", acmeSecret, body); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	notices := workers.NewNoticeHandler(workers.NoticeDeps{Store: p.store, CallbackClient: &http.Client{Timeout: 10 * time.Second},
		OpenDSR: &opendsr.Signer{Domain: "processor.test", Key: p.pki.key}, Log: slog.New(slog.DiscardHandler)}, workers.NoticeOptions{}, nil)
	all, _, _ := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Limit: 10})
	if len(all) != 1 {
		t.Fatalf("%d requests", len(all))
	}
	if err := notices.SendNotice(ctx, all[0].ID, dsr.NoticeProtocolStatus); err == nil {
		t.Error("a URL answered 503: want an error, the status still owed")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, "/live") {
		t.Errorf("callbacks %v: the second URL was not called", seen)
	}
}

// TestOpenDSRAttackRetryAcrossKeyRotation: a controller's retry of the
// very request it filed before the blind index key changed is the same
// request, as a retried API filing is (its fingerprint was stored under
// the previous key); it was refused 400 Conflict.
func TestOpenDSRAttackRetryAcrossKeyRotation(t *testing.T) {
	t.Parallel()
	var deps handlers.Deps
	p := newProcessorPKI(t, "processor.test")
	a := setupWith(t, false, func(d *handlers.Deps) {
		d.OpenDSR = app.OpenDSROptions{Domain: "processor.test", Signer: &opendsr.Signer{Domain: "processor.test", Key: p.key},
			Controllers: map[string][32]byte{"acme": sha256.Sum256([]byte(acmeSecret))}, AllowInternalCallbacks: true}
		deps = *d
	})
	const id = "0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c206"
	body := opendsrRequest(id, "erasure", `{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}`)
	first := &processorAPI{api: a, pki: p}
	if code, b := first.raw("POST", "/opendsr/v2/requests", acmeSecret, body); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	rotated, err := dsr.NewBlindIndex([]byte("fedcba9876543210fedcba9876543210"), []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	deps.Index = rotated
	srv := httptest.NewServer(handlers.New(deps))
	t.Cleanup(srv.Close)
	after := &processorAPI{api: &api{t: t, url: srv.URL, store: a.store, logs: a.logs}, pki: p}
	if code, b := after.raw("POST", "/opendsr/v2/requests", acmeSecret, body); code != http.StatusCreated || !strings.Contains(string(b), id) {
		t.Errorf("the same request again after the key changed: %d %s; want 201", code, b)
	}
}

// TestOpenDSRAttackRemovedController: a controller removed from
// DSAR_OPENDSR_CONTROLLERS (its secret refused) is told nothing more of
// the requests it passed, as an agent removed from the DRP directory is:
// the workers called it back with every change of status.
func TestOpenDSRAttackRemovedController(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	ctx := context.Background()
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	const id = "0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c207"
	body := `{"regulation":"gdpr","subject_request_id":"` + id + `","subject_request_type":"erasure","submitted_time":"2026-11-30T12:00:00Z",
		"subject_identities":[{"identity_type":"email","identity_value":"ada@example.com","identity_format":"raw"}],
		"status_callback_urls":["` + srv.URL + `/cb"]}`
	if code, b := p.call("POST", "/opendsr/v2/requests", acmeSecret, body); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	// The workers restarted with acme no longer a controller.
	notices := workers.NewNoticeHandler(workers.NoticeDeps{Store: p.store, CallbackClient: &http.Client{Timeout: 10 * time.Second},
		OpenDSR: &opendsr.Signer{Domain: "processor.test", Key: p.pki.key}, OpenDSRControllers: map[string][32]byte{"other": sha256.Sum256([]byte(otherControllerSecret))},
		Log: slog.New(slog.DiscardHandler)}, workers.NoticeOptions{}, nil)
	all, _, _ := p.store.ListRequests(ctx, dsr.ListFilter{Source: dsr.SourceOpenDSR, Limit: 10})
	if len(all) != 1 {
		t.Fatalf("%d requests", len(all))
	}
	if err := notices.SendNotice(ctx, all[0].ID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Errorf("a removed controller was called back %d times", calls)
	}
	if r, _ := p.store.Request(ctx, all[0].ID); slices.Contains(r.PendingNotices, dsr.NoticeProtocolStatus) {
		t.Error("the status is still owed to a removed controller")
	}
}

// TestOpenDSRAttackSignedErrors: an error answered to a controller is
// signed like a success (section 3: the processor MUST provide a signed
// response; a controller does not parse an unsigned one); those to callers
// without credentials are not, so that nobody makes the processor sign
// without end.
func TestOpenDSRAttackSignedErrors(t *testing.T) {
	t.Parallel()
	p := setupProcessor(t)
	check := func(name, method, path, secret, body string, code int, signed bool) {
		req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != code {
			t.Errorf("%s: %d %s; want %d", name, resp.StatusCode, b, code)
		}
		domain, sig, err := opendsr.Signature(resp.Header)
		switch {
		case !signed && err == nil:
			t.Errorf("%s: signed for a caller without credentials", name)
		case signed && (err != nil || domain != "processor.test"):
			t.Errorf("%s: not signed: %v", name, err)
		case signed:
			if err := opendsr.Verify(p.pki.leaf, b, sig); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	check("malformed", "POST", "/opendsr/v2/requests", acmeSecret, `{"subject_request_id":"x"}`, http.StatusBadRequest, true)
	check("unknown", "GET", "/opendsr/v2/requests/0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c2ff", acmeSecret, "", http.StatusNotFound, true)
	check("too large", "POST", "/opendsr/v2/requests", acmeSecret, strings.Repeat(" ", opendsr.MaxMessage+1), http.StatusBadRequest, true)
	check("no credentials", "GET", "/opendsr/v2/requests/0b1e4bd0-6a9a-4c61-8f2a-38d6d6a1c2ff", "", "", http.StatusUnauthorized, false)
}

// countingSigner counts the signatures its key makes.
type countingSigner struct {
	crypto.Signer
	n atomic.Int64
}

func (s *countingSigner) Sign(r io.Reader, digest []byte, o crypto.SignerOpts) ([]byte, error) {
	s.n.Add(1)
	return s.Signer.Sign(r, digest, o)
}

// TestOpenDSRAttackDiscoverySignedOnce: anyone may ask for discovery, and
// a private-key signature (an RSA-4096 one takes milliseconds) was made for
// each ask; the document never changes, so it is signed once.
func TestOpenDSRAttackDiscoverySignedOnce(t *testing.T) {
	t.Parallel()
	pki := newProcessorPKI(t, "processor.test")
	key := &countingSigner{Signer: pki.key}
	a := setupWith(t, false, func(d *handlers.Deps) {
		d.OpenDSR = app.OpenDSROptions{Domain: "processor.test", Signer: &opendsr.Signer{Domain: "processor.test", Key: key},
			Controllers: map[string][32]byte{"acme": sha256.Sum256([]byte(acmeSecret))}}
	})
	p := &processorAPI{api: a, pki: pki}
	for range 20 {
		if code, _ := p.call("GET", "/opendsr/v2/discovery", "", ""); code != http.StatusOK {
			t.Fatalf("discovery: %d", code)
		}
	}
	if n := key.n.Load(); n != 1 {
		t.Errorf("20 discoveries made %d signatures; want 1", n)
	}
}
