// Package webhook sends signed JSON webhooks: dsar's escalation alerts
// today, and whatever else posts to a receiver that must check the sender
// (a webhook connector, protocol callbacks).
//
// Every POST carries two headers: X-DSAR-Timestamp, the Unix time of the
// send, and X-DSAR-Signature, "sha256=" followed by the hex HMAC-SHA256
// under the shared secret of "<timestamp>.<body>". A receiver recomputes it
// and rejects old timestamps.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The headers a signed webhook carries.
const (
	HeaderTimestamp = "X-DSAR-Timestamp"
	HeaderSignature = "X-DSAR-Signature"
)

// DefaultTimeout bounds one send when the Sender is given none.
const DefaultTimeout = 10 * time.Second

// ErrRejected classifies an answer that retrying the same body cannot
// change: a 4xx status other than 408 (timeout), 425 (too early) and 429
// (too many requests). Any other error (the network, a 5xx, a redirect) may
// go away: the caller may retry.
var ErrRejected = errors.New("webhook rejected")

// StatusError is a receiver's answer that was not a success (2xx).
type StatusError struct {
	Code int
}

func (e *StatusError) Error() string { return fmt.Sprintf("answered %d", e.Code) }

// Is makes errors.Is(err, ErrRejected) true for an answer retrying cannot
// change.
func (e *StatusError) Is(target error) bool {
	return target == ErrRejected && e.Code >= 400 && e.Code < 500 &&
		e.Code != http.StatusRequestTimeout && e.Code != http.StatusTooEarly && e.Code != http.StatusTooManyRequests
}

// Sender posts signed JSON bodies. The zero value is not usable: make one
// with New.
type Sender struct {
	client  *http.Client
	secret  string
	timeout time.Duration
	now     func() time.Time
}

// Option tunes a Sender.
type Option func(*Sender)

// WithTimeout bounds each send (DefaultTimeout otherwise).
func WithTimeout(d time.Duration) Option { return func(s *Sender) { s.timeout = d } }

// WithClock sets the clock that stamps each send (time.Now otherwise).
func WithClock(now func() time.Time) Option { return func(s *Sender) { s.now = now } }

// New returns a Sender that signs with secret and posts through client (nil:
// a client of its own).
func New(client *http.Client, secret string, opts ...Option) *Sender {
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	s := &Sender{client: client, secret: secret, timeout: DefaultTimeout, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Send POSTs body, a JSON document, to url, signed, within the Sender's
// timeout. It returns nil when the receiver answered 2xx, a *StatusError
// (see ErrRejected) when it answered otherwise, or the transport's error.
// Errors never quote the body.
func (s *Sender) Send(ctx context.Context, url string, body []byte) error {
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, "sha256="+Sign(s.secret, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}

// Sign returns the hex HMAC-SHA256 of timestamp + "." + body under secret:
// the signature a receiver recomputes (without its "sha256=" prefix).
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
