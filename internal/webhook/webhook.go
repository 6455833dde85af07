// Package webhook sends and checks signed JSON webhooks in the Standard
// Webhooks scheme (standardwebhooks.com): dsar's escalation alerts, the
// webhook connector's calls and the callbacks it accepts.
//
// Every message carries three headers: webhook-id, a unique id of the
// message that stays the same when it is sent again; webhook-timestamp, the
// Unix time of the send in seconds; and webhook-signature, "v1," followed by
// the base64 HMAC-SHA256 under the shared secret of "<id>.<timestamp>.<body>"
// (several space-separated signatures while a secret rotates). A receiver
// recomputes it with [Verify], which also rejects timestamps outside its
// tolerance.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
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
	client *http.Client
	secret Secret
	// previous also sign each message while the secret changes.
	previous []Secret
	timeout  time.Duration
	now      func() time.Time
}

// Option tunes a Sender.
type Option func(*Sender)

// WithTimeout bounds each send (DefaultTimeout otherwise).
func WithTimeout(d time.Duration) Option { return func(s *Sender) { s.timeout = d } }

// WithClock sets the clock that stamps each send (time.Now otherwise).
func WithClock(now func() time.Time) Option { return func(s *Sender) { s.now = now } }

// WithPrevious also signs each message with previous (nil ones skipped),
// while the secret changes: the webhook-signature header then holds one
// signature per secret, space-separated, as Standard Webhooks lets a
// sender do, and a receiver holding either secret accepts the message.
func WithPrevious(previous ...Secret) Option {
	return func(s *Sender) {
		for _, p := range previous {
			if len(p) > 0 {
				s.previous = append(s.previous, p)
			}
		}
	}
}

// New returns a Sender that signs with secret and posts through client (nil:
// a client of its own). The Sender never follows a redirect, whatever the
// client's CheckRedirect: a 3xx is an answer like any other non-2xx (a
// *StatusError that may go away), so a signed body, which may carry
// personal data, only ever reaches the URL it was sent to.
func New(client *http.Client, secret Secret, opts ...Option) *Sender {
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client = &c
	s := &Sender{client: client, secret: secret, timeout: DefaultTimeout, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Send POSTs body, a JSON document, to url, signed as message id, within
// the Sender's timeout. A message sent again (a retry) keeps its id, so the
// receiver can drop the copy. It returns nil when the receiver answered
// 2xx, a *StatusError (see ErrRejected) when it answered otherwise, or the
// transport's error. Errors never quote the body.
func (s *Sender) Send(ctx context.Context, url, id string, body []byte) error {
	_, _, err := s.Call(ctx, url, id, body, 0)
	return err
}

// ErrAnswerTooLarge: a receiver's answer is longer than the caller reads.
var ErrAnswerTooLarge = errors.New("webhook answer too large")

// Call is Send that also returns the receiver's 2xx status and up to
// maxAnswer bytes of its answer (0: none is read). An answer longer than
// maxAnswer is ErrAnswerTooLarge, with the status.
func (s *Sender) Call(ctx context.Context, url, id string, body []byte, maxAnswer int64) (status int, answer []byte, err error) {
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	s.secret.SignHeaders(req.Header, id, s.now(), body, s.previous...)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		return resp.StatusCode, nil, &StatusError{Code: resp.StatusCode}
	}
	if maxAnswer > 0 {
		answer, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
		if err != nil {
			return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
		}
		if int64(len(answer)) > maxAnswer {
			return resp.StatusCode, nil, fmt.Errorf("%w: more than %d bytes", ErrAnswerTooLarge, maxAnswer)
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, answer, nil
}
