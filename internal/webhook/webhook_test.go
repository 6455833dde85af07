package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/webhook"
)

// TestSign pins the signature to the Standard Webhooks test vector, which
// openssl reproduces:
//
//	printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' |
//	  openssl dgst -sha256 -mac HMAC -macopt hexkey:$(echo -n MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | xxd -p) -binary | base64
func TestSign(t *testing.T) {
	t.Parallel()
	k, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	const want = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	if got := k.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if k.Sign("msg_other", ts, body) == want || k.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts.Add(time.Second), body) == want {
		t.Error("the signature does not depend on the id and the timestamp")
	}
}

func TestParseSecret(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in      string
		wantLen int
		wantErr string
	}{
		{in: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wantLen: 24},
		{in: "a plain secret of 30 characters", wantLen: 31},
		{in: "short", wantErr: "at least 16 bytes, not 5"},
		{in: "whsec_c2hvcnQ=", wantErr: "at least 16 bytes, not 5"},
		{in: "whsec_not base64!", wantErr: "want base64"},
	} {
		k, err := webhook.ParseSecret(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSecret(%q) = %v, want error with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || len(k) != tt.wantLen {
			t.Errorf("ParseSecret(%q) = %d bytes, %v; want %d bytes", tt.in, len(k), err, tt.wantLen)
		}
	}
}

// TestVerify plays the sender's mistakes and an attacker's attempts: each
// is refused with the error that says why, and a rotated secret still
// verifies during the change.
func TestVerify(t *testing.T) {
	t.Parallel()
	k1, _ := webhook.ParseSecret("first secret, 16+ bytes")
	k2, _ := webhook.ParseSecret("second secret, 16+ bytes")
	now := time.Unix(1700000000, 0)
	body := []byte(`{"outcome":"erased"}`)
	signed := func(k webhook.Secret, id string, ts time.Time, b []byte) http.Header {
		h := http.Header{}
		k.SignHeaders(h, id, ts, b)
		return h
	}
	for _, tt := range []struct {
		name   string
		h      http.Header
		body   []byte
		keys   []webhook.Secret
		wantID string
		want   error
	}{
		{name: "good", h: signed(k1, "msg_1", now, body), body: body, keys: []webhook.Secret{k1}, wantID: "msg_1"},
		{name: "rotating: old key listed second", h: signed(k1, "msg_1", now, body), body: body, keys: []webhook.Secret{k2, k1}, wantID: "msg_1"},
		{name: "4 minutes late", h: signed(k1, "msg_1", now.Add(-4*time.Minute), body), body: body, keys: []webhook.Secret{k1}, wantID: "msg_1"},
		{name: "other key", h: signed(k2, "msg_1", now, body), body: body, keys: []webhook.Secret{k1}, want: webhook.ErrSignature},
		{name: "body changed", h: signed(k1, "msg_1", now, body), body: []byte(`{"outcome":"absent"}`), keys: []webhook.Secret{k1}, want: webhook.ErrSignature},
		{name: "id changed", h: func() http.Header { h := signed(k1, "msg_1", now, body); h.Set(webhook.HeaderID, "msg_2"); return h }(), body: body, keys: []webhook.Secret{k1}, want: webhook.ErrSignature},
		{name: "replayed after 6 minutes", h: signed(k1, "msg_1", now.Add(-6*time.Minute), body), body: body, keys: []webhook.Secret{k1}, want: webhook.ErrStale},
		{name: "from the future", h: signed(k1, "msg_1", now.Add(6*time.Minute), body), body: body, keys: []webhook.Secret{k1}, want: webhook.ErrStale},
		{name: "no headers", h: http.Header{}, body: body, keys: []webhook.Secret{k1}, want: webhook.ErrUnsigned},
		{name: "timestamp not a number", h: func() http.Header {
			h := signed(k1, "msg_1", now, body)
			h.Set(webhook.HeaderTimestamp, "soon")
			return h
		}(), body: body, keys: []webhook.Secret{k1}, want: webhook.ErrUnsigned},
		{name: "v2 only", h: func() http.Header {
			h := signed(k1, "msg_1", now, body)
			h.Set(webhook.HeaderSignature, "v2,"+h.Get(webhook.HeaderSignature)[3:])
			return h
		}(), body: body, keys: []webhook.Secret{k1}, want: webhook.ErrSignature},
		{name: "no keys", h: signed(k1, "msg_1", now, body), body: body, want: webhook.ErrSignature},
	} {
		id, err := webhook.Verify(tt.h, tt.body, now, 0, tt.keys...)
		if !errors.Is(err, tt.want) || (tt.want == nil && id != tt.wantID) {
			t.Errorf("%s: Verify = %q, %v; want %q, %v", tt.name, id, err, tt.wantID, tt.want)
		}
	}
	// Several signatures, one good: accepted (the sender rotates).
	h := signed(k1, "msg_1", now, body)
	h.Set(webhook.HeaderSignature, k2.Sign("msg_1", now, body)+" "+h.Get(webhook.HeaderSignature))
	if _, err := webhook.Verify(h, body, now, 0, k1); err != nil {
		t.Errorf("two signatures, the second good: %v", err)
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	secret, _ := webhook.ParseSecret("s3cret, long enough")
	tests := []struct {
		name     string
		status   int
		wantErr  string
		rejected bool
	}{
		{name: "ok", status: http.StatusNoContent},
		{name: "down", status: http.StatusServiceUnavailable, wantErr: "answered 503"},
		{name: "bad request", status: http.StatusBadRequest, wantErr: "answered 400", rejected: true},
		{name: "gone", status: http.StatusGone, wantErr: "answered 410", rejected: true},
		{name: "too many", status: http.StatusTooManyRequests, wantErr: "answered 429"},
		{name: "timeout", status: http.StatusRequestTimeout, wantErr: "answered 408"},
		{name: "redirect", status: http.StatusNotModified, wantErr: "answered 304"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
				}
				if ts := r.Header.Get(webhook.HeaderTimestamp); ts != "1700000000" {
					t.Errorf("timestamp %q", ts)
				}
				if id, err := webhook.Verify(r.Header, body, now, 0, secret); err != nil || id != "alert_1" {
					t.Errorf("Verify = %q, %v", id, err)
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			s := webhook.New(srv.Client(), secret, webhook.WithClock(func() time.Time { return now }))
			err := s.Send(context.Background(), srv.URL, "alert_1", []byte(`{"event":"overdue"}`))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Send = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Send = %v, want %q", err, tt.wantErr)
			}
			if errors.Is(err, webhook.ErrRejected) != tt.rejected {
				t.Errorf("rejected = %v, want %v", !tt.rejected, tt.rejected)
			}
		})
	}
}

// TestSendTimeout: a receiver that does not answer in time is an error that
// may go away, not a hang.
func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := webhook.New(srv.Client(), webhook.Secret("s3cret, long enough"), webhook.WithTimeout(50*time.Millisecond))
	start := time.Now()
	err := s.Send(context.Background(), srv.URL, "alert_1", []byte(`{}`))
	if err == nil || errors.Is(err, webhook.ErrRejected) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send to a silent receiver = %v; want a deadline error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Send took %s", time.Since(start))
	}
}

// TestSendDoesNotFollowRedirects: a receiver answering a redirect is
// answered like any other non-2xx; the signed body (the pre-fan-out hook's
// carries identities) is never re-sent to where the redirect points, be it
// another host or a metadata address.
func TestSendDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			var reached atomic.Int32
			elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
			}))
			defer elsewhere.Close()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+"/latest/meta-data/", status)
			}))
			defer srv.Close()
			for _, client := range []*http.Client{nil, srv.Client()} {
				s := webhook.New(client, webhook.Secret("s3cret, long enough"))
				_, _, err := s.Call(context.Background(), srv.URL, "pre_1", []byte(`{"identities":[{"kind":"email","value":"ada@example.com"}]}`), 1<<10)
				var se *webhook.StatusError
				if !errors.As(err, &se) || se.Code != status || errors.Is(err, webhook.ErrRejected) {
					t.Errorf("Call answered %d = %v; want a *StatusError %d that may go away", status, err, status)
				}
			}
			if n := reached.Load(); n != 0 {
				t.Errorf("the redirect's target was called %d times", n)
			}
		})
	}
}

// TestSendWhileSecretChanges: a sender given the previous secret signs
// each message with both, so a receiver holding either accepts it, and one
// holding neither does not.
func TestSendWhileSecretChanges(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	oldSecret, _ := webhook.ParseSecret("the old secret, long enough")
	newSecret, _ := webhook.ParseSecret("the new secret, long enough")
	other, _ := webhook.ParseSecret("someone else's secret......")
	got := make(chan http.Header, 1)
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		got <- r.Header.Clone()
	}))
	defer srv.Close()
	s := webhook.New(srv.Client(), newSecret, webhook.WithClock(func() time.Time { return now }), webhook.WithPrevious(oldSecret, nil))
	if err := s.Send(context.Background(), srv.URL, "alert_1", []byte(`{"event":"overdue"}`)); err != nil {
		t.Fatal(err)
	}
	h := <-got
	if n := len(strings.Fields(h.Get(webhook.HeaderSignature))); n != 2 {
		t.Errorf("webhook-signature %q holds %d signatures; want 2", h.Get(webhook.HeaderSignature), n)
	}
	for name, k := range map[string]webhook.Secret{"old": oldSecret, "new": newSecret} {
		if _, err := webhook.Verify(h, body, now, 0, k); err != nil {
			t.Errorf("a receiver holding the %s secret: %v", name, err)
		}
	}
	if _, err := webhook.Verify(h, body, now, 0, other); !errors.Is(err, webhook.ErrSignature) {
		t.Errorf("a receiver holding another secret: %v; want ErrSignature", err)
	}
}
