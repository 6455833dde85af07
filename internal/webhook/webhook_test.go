package webhook_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/webhook"
)

// TestSign pins the signature: hex HMAC-SHA256 of "<timestamp>.<body>".
func TestSign(t *testing.T) {
	t.Parallel()
	// printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
	const want = "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
	if got := webhook.Sign("s3cret", "1700000000", []byte(`{"a":1}`)); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	got := want
	if webhook.Sign("s3cret", "1700000001", []byte(`{"a":1}`)) == got || webhook.Sign("other", "1700000000", []byte(`{"a":1}`)) == got {
		t.Error("the signature does not depend on the timestamp and the secret")
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
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
				if got, want := r.Header.Get(webhook.HeaderSignature), "sha256="+webhook.Sign("s3cret", "1700000000", body); got != want {
					t.Errorf("signature %q, want %q", got, want)
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			s := webhook.New(srv.Client(), "s3cret", webhook.WithClock(func() time.Time { return now }))
			err := s.Send(context.Background(), srv.URL, []byte(`{"event":"overdue"}`))
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
	s := webhook.New(srv.Client(), "s3cret", webhook.WithTimeout(50*time.Millisecond))
	start := time.Now()
	err := s.Send(context.Background(), srv.URL, []byte(`{}`))
	if err == nil || errors.Is(err, webhook.ErrRejected) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send to a silent receiver = %v; want a deadline error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Send took %s", time.Since(start))
	}
}
