package opendsr_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/opendsr"
	spec "github.com/dsar-project/dsar/internal/opendsr"
)

// TestCallbackAttacks: a callback is taken only when signed for the
// processor's domain under its trusted certificate, and names the URL
// given with the request it reports on; everything else is refused, the
// signature before anything is parsed.
func TestCallbackAttacks(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	c := p.connector(t, nil)
	job := "req-1:vendor:erase"
	res, err := connectors.Do(jobCtx(t, job, connectors.ActionErase), c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srid, cbURL := res.Pending.Handle, callbackPrefix+url.PathEscape(job)
	other, _ := connectors.Do(jobCtx(t, "req-2:vendor:erase", connectors.ActionErase), c, connectors.ActionErase, ada, "", nil, nil)

	_, selfKey := issue(t, nil, domain) // a certificate for the domain from no trusted authority
	otherCA := newAuthority(t)
	_, strayKey := issue(t, &otherCA, domain)
	_, wrongDomainKey := issue(t, &p.ca, "attacker.test")

	good := func() (http.Header, []byte) { return p.callback(t, spec.Signer{}, srid, spec.StatusCompleted, cbURL) }
	for _, tt := range []struct {
		name string
		make func() (http.Header, []byte)
		want error
	}{
		{"unsigned", func() (http.Header, []byte) { _, b := good(); return http.Header{}, b }, connectors.ErrCallbackForbidden},
		{"tampered body", func() (http.Header, []byte) {
			h, b := good()
			return h, []byte(strings.Replace(string(b), "completed", "cancelled", 1))
		}, connectors.ErrCallbackForbidden},
		{"tampered signature", func() (http.Header, []byte) {
			h, b := good()
			h.Set(spec.HeaderSignature, "A"+h.Get(spec.HeaderSignature)[1:])
			return h, b
		}, connectors.ErrCallbackForbidden},
		{"signed for another domain", func() (http.Header, []byte) {
			return p.callback(t, spec.Signer{Domain: "attacker.test", Key: wrongDomainKey}, srid, spec.StatusCompleted, cbURL)
		}, connectors.ErrCallbackForbidden},
		{"another key claiming the domain", func() (http.Header, []byte) {
			return p.callback(t, spec.Signer{Domain: domain, Key: selfKey}, srid, spec.StatusCompleted, cbURL)
		}, connectors.ErrCallbackForbidden},
		{"a key from another authority", func() (http.Header, []byte) {
			return p.callback(t, spec.Signer{Domain: domain, Key: strayKey}, srid, spec.StatusCompleted, cbURL)
		}, connectors.ErrCallbackForbidden},
		{"another job's URL", func() (http.Header, []byte) {
			return p.callback(t, spec.Signer{}, srid, spec.StatusCompleted, callbackPrefix+url.PathEscape("req-2:vendor:erase"))
		}, connectors.ErrCallbackInvalid},
		{"another request's id", func() (http.Header, []byte) {
			return p.callback(t, spec.Signer{}, other.Pending.Handle, spec.StatusCompleted, cbURL)
		}, connectors.ErrCallbackInvalid},
		{"another controller's URL", func() (http.Header, []byte) {
			return p.callback(t, spec.Signer{}, srid, spec.StatusCompleted, "https://attacker.test/v1/callbacks/"+url.PathEscape(job))
		}, connectors.ErrCallbackInvalid},
		{"unknown status", func() (http.Header, []byte) { return p.callback(t, spec.Signer{}, srid, "done", cbURL) }, connectors.ErrCallbackInvalid},
		{"not JSON, signed", func() (http.Header, []byte) {
			b := []byte("{not json")
			h := http.Header{}
			_ = p.signer.SignHeaders(h, b)
			return h, b
		}, connectors.ErrCallbackInvalid},
	} {
		h, b := tt.make()
		_, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, b, time.Now())
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v; want %v", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "ada@") {
			t.Errorf("%s: the error quotes the body: %v", tt.name, err)
		}
	}
	if h, b := good(); true {
		if handle, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, b, time.Now()); err != nil || handle != srid {
			t.Fatalf("the good callback: %q, %v", handle, err)
		}
	}
	// Forged callbacks made the connector read the certificate again at
	// most once a minute: twice in all (the first read, one refresh).
	if n := p.discoveries.Load(); n > 2 {
		t.Errorf("%d discovery reads; a stream of forged callbacks must not make one each", n)
	}
}

// TestKeyRotation: a processor that changes its key (a new certificate
// from the same authority) is followed: the first callback under the new
// key makes the connector read the certificate again.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	p := newProcessor(t)
	now := time.Now()
	c := p.connector(t, nil)
	opendsr.SetClock(c, func() time.Time { return now })
	job := "req-1:vendor:erase"
	res, err := connectors.Do(jobCtx(t, job, connectors.ActionErase), c, connectors.ActionErase, ada, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.certPEM, p.signer.Key = issue(t, &p.ca, domain)
	p.mu.Unlock()
	h, b := p.callback(t, spec.Signer{}, res.Pending.Handle, spec.StatusInProgress, callbackPrefix+url.PathEscape(job))
	if _, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, b, now); !errors.Is(err, connectors.ErrCallbackForbidden) {
		t.Fatalf("within a minute of the last read: %v; want refused (no read again yet)", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := c.VerifyCallback(t.Context(), connectors.ActionErase, h, b, now); err != nil {
		t.Fatalf("after the rotation: %v", err)
	}
}

// TestUntrustedProcessor: a processor whose certificate is not trusted,
// or not for its domain, or served from another host, is refused for good
// before any request is sent.
func TestUntrustedProcessor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		mod  func(p *processor)
		want string
	}{
		{"self-signed", func(p *processor) { p.certPEM, p.signer.Key = issue(t, nil, domain) }, "not trusted"},
		{"another authority", func(p *processor) { ca := newAuthority(t); p.certPEM, p.signer.Key = issue(t, &ca, domain) }, "not trusted"},
		{"issued for another domain", func(p *processor) {
			p.certPEM, p.signer.Key = issue(t, &p.ca, "attacker.test")
			p.signer.Domain = "attacker.test"
		}, "not trusted"},
		{"discovery signed by another key", func(p *processor) { _, p.signer.Key = issue(t, &p.ca, domain) }, "discovery document's signature"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProcessor(t)
			tt.mod(p)
			_, err := connectors.Do(jobCtx(t, "req-1:vendor:erase", connectors.ActionErase), p.connector(t, nil), connectors.ActionErase, ada, "", nil, nil)
			if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v; want a permanent error saying %q", err, tt.want)
			}
			if p.sent() != 0 {
				t.Error("a request was sent to an untrusted processor")
			}
		})
	}
}
