package opendsr_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	spec "github.com/dsar-project/dsar/internal/opendsr"
)

// leaks reports whether msg holds Ada's email, whole or in part (a reason
// code with its @ taken out is still her address, and no longer one the
// worker's redaction finds).
func leaks(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "ada") || strings.Contains(m, "example.com") || strings.Contains(m, "lovelace")
}

// TestHostileProcessorQuotesNoPersonalData: what a processor says is never
// quoted into an error (a job's error is shown to agents and logged) unless
// it is a short code: an error object whose reason or message, or a status
// whose request_status or subject_request_id, is the subject's email
// leaves no part of it in the error.
func TestHostileProcessorQuotesNoPersonalData(t *testing.T) {
	t.Parallel()
	email := "Ada.Lovelace@Example.com"
	for _, reason := range []string{email, "ada@example.com", "Validation: ada@example.com"} {
		p := newProcessor(t)
		p.fail = http.StatusBadRequest
		p.failBody = spec.ErrorBody{Error: spec.ErrorObject{Code: 400, Message: "unknown subject " + email,
			Errors: []spec.ErrorDetail{{Domain: "OpenDSR", Reason: reason, Message: "no user " + email}}}}
		_, err := connectors.Do(jobCtx(t, "req-1:vendor:erase", connectors.ActionErase), p.connector(t, nil), connectors.ActionErase, ada, "", nil, nil)
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "400") {
			t.Fatalf("reason %q: %v; want a permanent 400", reason, err)
		}
		if leaks(err.Error()) {
			t.Errorf("reason %q: the error quotes the subject: %v", reason, err)
		}
	}
	// A reason code that is one is still given.
	p := newProcessor(t)
	p.fail = http.StatusBadRequest
	p.failBody = spec.ErrorBody{Error: spec.ErrorObject{Code: 400, Errors: []spec.ErrorDetail{{Domain: "OpenDSR", Reason: "UnsupportedIdentity"}}}}
	if _, err := connectors.Do(jobCtx(t, "req-1:vendor:erase", connectors.ActionErase), p.connector(t, nil), connectors.ActionErase, ada, "", nil, nil); err == nil || !strings.Contains(err.Error(), "(UnsupportedIdentity)") {
		t.Errorf("a reason code: %v; want it named", err)
	}

	// Signed status reads naming the subject where a code or an id goes.
	for _, tt := range []struct {
		name string
		mod  func(p *processor, srid string)
	}{
		{"request_status", func(p *processor, srid string) { p.set(srid, email, nil) }},
		{"subject_request_id", func(p *processor, srid string) {
			p.set(srid, spec.StatusCompleted, nil)
			p.mu.Lock()
			p.renamed = email
			p.mu.Unlock()
		}},
	} {
		p := newProcessor(t)
		c := p.connector(t, nil)
		ctx := jobCtx(t, "req-2:vendor:erase", connectors.ActionErase)
		res, err := connectors.Do(ctx, c, connectors.ActionErase, ada, "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		tt.mod(p, res.Pending.Handle)
		_, err = connectors.Do(ctx, c, connectors.ActionErase, ada, res.Pending.Handle, nil, nil)
		if !errors.Is(err, connectors.ErrPermanent) {
			t.Fatalf("%s: %v; want a permanent error", tt.name, err)
		}
		if leaks(err.Error()) {
			t.Errorf("%s: the error quotes the subject: %v", tt.name, err)
		}
	}
}

// TestForgedCallbacksWhileProcessorDown: a callback claiming the
// processor's domain makes the connector read the processor's discovery
// document when it holds none (or an outdated one); while that read fails,
// a stream of such callbacks (anyone can send them: the route takes no
// key) must not make one read each, at once and in turn: the connector
// tries once a minute, and says meanwhile what the last try said.
func TestForgedCallbacksWhileProcessorDown(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	p.discoveryFail = http.StatusInternalServerError
	c := p.connector(t, nil)
	job := "req-1:vendor:erase"
	// A callback of the right shape, signed by a key of no authority.
	_, forger := issue(t, nil, domain)
	h, b := p.callback(t, spec.Signer{Domain: domain, Key: forger}, "6f1c3e0a-52b7-4c1d-9a8e-2d4b6f8a0c11", spec.StatusCompleted, callbackPrefix+url.PathEscape(job))
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, b, time.Now()); err == nil {
				t.Error("a forged callback was taken")
			}
		}()
	}
	wg.Wait()
	if n := p.discoveries.Load(); n != 1 {
		t.Errorf("20 forged callbacks while the processor fails made %d discovery reads; want 1", n)
	}
	// The worker's own calls are not held back by the callbacks': a job
	// tries the processor at once.
	_, err := connectors.Do(jobCtx(t, job, connectors.ActionErase), c, connectors.ActionErase, ada, "", nil, nil)
	if err == nil || errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("a job while discovery fails: %v; want a transient error", err)
	}
	if n := p.discoveries.Load(); n != 2 {
		t.Errorf("%d discovery reads after a job's attempt; want 2", n)
	}
	p.mu.Lock()
	p.discoveryFail = 0
	p.mu.Unlock()
	if _, err := connectors.Do(jobCtx(t, job, connectors.ActionErase), c, connectors.ActionErase, ada, "", nil, nil); err != nil {
		t.Errorf("the processor back: %v", err)
	}
}

// TestUnbelievableResultsCount: a results_count no erasure of one person
// reaches (the largest int64) is not counted: counted, it would overflow
// the request's totals once summed with its other jobs' records.
func TestUnbelievableResultsCount(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	c := p.connector(t, nil)
	ctx := jobCtx(t, "req-1:vendor:erase", connectors.ActionErase)
	res, err := connectors.Do(ctx, c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		count int64
		want  int64
	}{{math.MaxInt64, 0}, {1e12 + 1, 0}, {1e12, 1e12}, {3, 3}} {
		n := tt.count
		p.set(res.Pending.Handle, spec.StatusCompleted, &n)
		got, err := connectors.Do(ctx, c, connectors.ActionErase, ada, res.Pending.Handle, nil, nil)
		if err != nil || got.Records != tt.want {
			t.Errorf("results_count %d: %d records, %v; want %d", tt.count, got.Records, err, tt.want)
		}
		if tt.want == 0 && (len(got.Collections) != 1 || !strings.Contains(got.Collections[0].Note, "not believable")) {
			t.Errorf("results_count %d: %+v; want a note saying it was not counted", tt.count, got.Collections)
		}
	}
}

// TestForgedCallbackHangingUp: the discovery read a callback asks for is
// not the caller's to cut short: a forged callback whose sender hangs up
// at once (its context ends) must not leave a failed read behind that the
// processor's own callbacks are then refused with for a minute.
func TestForgedCallbackHangingUp(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	c := p.connector(t, nil)
	job := "req-1:vendor:erase"
	res, err := connectors.Do(jobCtx(t, job, connectors.ActionErase), c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A new connector (a restarted controller) holds no discovery yet.
	c = p.connector(t, nil)
	_, forger := issue(t, nil, domain)
	h, b := p.callback(t, spec.Signer{Domain: domain, Key: forger}, res.Pending.Handle, spec.StatusCompleted, callbackPrefix+url.PathEscape(job))
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.VerifyCallback(gone, connectors.ActionErase, h, b, time.Now()); err == nil {
		t.Fatal("a forged callback was taken")
	}
	h, b = p.callback(t, spec.Signer{}, res.Pending.Handle, spec.StatusCompleted, callbackPrefix+url.PathEscape(job))
	if handle, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, b, time.Now()); err != nil || handle != res.Pending.Handle {
		t.Errorf("the processor's callback after a forged one hung up: %q, %v", handle, err)
	}
}

// TestHostileCertificateURL: the certificate a discovery document names is
// read only from the processor's API host or its domain, over https
// (http when allow_insecure), and at most 64 KiB of it: a URL elsewhere
// (the cloud's metadata address, another host) is refused before any call,
// and a certificate URL serving megabytes fails without being read whole.
func TestHostileCertificateURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, url, want string
	}{
		{"metadata address", "http://169.254.169.254/latest/meta-data/cert.pem", "neither the processor's API nor its domain"},
		{"another host", "https://attacker.test/cert.pem", "neither the processor's API nor its domain"},
		{"not http", "file:///etc/passwd", "not an https URL"},
		{"javascript", "javascript:alert(1)", "not an https URL"},
	} {
		p := newProcessor(t)
		p.certURL = tt.url
		_, err := connectors.Do(jobCtx(t, "req-1:vendor:erase", connectors.ActionErase), p.connector(t, nil), connectors.ActionErase, ada, "", nil, nil)
		if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want a permanent error saying %q", tt.name, err, tt.want)
		}
		if p.sent() != 0 {
			t.Errorf("%s: a request was sent", tt.name)
		}
	}
	p := newProcessor(t)
	p.certPEM = bytes.Repeat([]byte("A"), 8<<20)
	_, err := connectors.Do(jobCtx(t, "req-1:vendor:erase", connectors.ActionErase), p.connector(t, nil), connectors.ActionErase, ada, "", nil, nil)
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "longer than 65536 bytes") {
		t.Errorf("a certificate of 8 MiB: %v; want refused at 64 KiB", err)
	}
}
