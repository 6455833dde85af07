// Package webhook is the generic connector for any system dsar has no
// type for: it POSTs the action and the subject's identities as JSON to a
// URL, signed in the Standard Webhooks scheme (internal/webhook) with a
// secret of the connector's own, and takes the receiver's answer either at
// once (200 and the result) or later (202, then a signed callback to POST
// /v1/callbacks/{job}, which the API checks with VerifyCallback and stores
// as the job's answer, and the worker hands to Answer). Its calls reach
// only public addresses unless the file allows private ones, checked when
// each connection is dialled (internal/netguard), and follow no redirect.
// docs/connectors/webhook.md describes the messages.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/netguard"
	sw "github.com/dsar-project/dsar/internal/webhook"
)

// Connector is a configured webhook connector. Its methods are safe for
// concurrent use.
type Connector struct {
	name         string
	url          string
	secret       sw.Secret
	actions      map[connectors.Action]bool
	callbackBase string
	client       *http.Client
	now          func() time.Time
	log          *slog.Logger
}

var (
	_ connectors.Exporter         = (*Connector)(nil)
	_ connectors.Eraser           = (*Connector)(nil)
	_ connectors.OptOuter         = (*Connector)(nil)
	_ connectors.Scoped           = (*Connector)(nil)
	_ connectors.Answerer         = (*Connector)(nil)
	_ connectors.CallbackVerifier = (*Connector)(nil)
)

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the file lists a among the receiver's actions.
func (c *Connector) Handles(a connectors.Action) bool { return c.actions[a] }

// Export asks the receiver for the subject's records.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	return c.call(ctx, connectors.ActionExport, s, out)
}

// Erase asks the receiver to erase the subject.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	return c.call(ctx, connectors.ActionErase, s, nil)
}

// OptOut asks the receiver to opt the subject out.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	return c.call(ctx, connectors.ActionOptOut, s, nil)
}

// Request is the body of every call (version 1).
type Request struct {
	Version int `json:"version"`
	// ID is the call's webhook-id: the job's id, the same at every
	// attempt, so that the receiver can tell a retry from a new request.
	ID         string            `json:"id"`
	Connector  string            `json:"connector"`
	Action     connectors.Action `json:"action"`
	Identities []Identity        `json:"identities"`
	// CallbackURL is where the receiver POSTs its answer when it answers
	// 202; absent when dsar can take none (no public URL, or no job).
	CallbackURL string `json:"callback_url,omitempty"`
}

// Identity is one identifier of the subject.
type Identity struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// maxAccepted bounds the body of a 202.
const maxAccepted = 4 << 10

// call POSTs action a for s and reads the answer.
func (c *Connector) call(ctx context.Context, a connectors.Action, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	ref, _ := connectors.JobOf(ctx)
	job := ref.ID
	id := job
	if id == "" {
		id = c.messageID(a, s)
	}
	body := Request{Version: 1, ID: id, Connector: c.name, Action: a, Identities: make([]Identity, 0, len(s.Identities))}
	for _, i := range s.Identities {
		body.Identities = append(body.Identities, Identity{Kind: i.Kind, Value: i.Value})
	}
	if job != "" && c.callbackBase != "" {
		body.CallbackURL = c.callbackBase + "/v1/callbacks/" + url.PathEscape(job)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return connectors.Result{}, fmt.Errorf("webhook %s: %w", c.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(b))
	if err != nil {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("webhook %s: %w", c.name, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dsar-webhook/1")
	c.secret.SignHeaders(req.Header, id, c.now(), b)
	resp, err := c.client.Do(req)
	if err != nil {
		err = fmt.Errorf("webhook %s: %s %s: %w", c.name, a, c.url, unwrapURLError(err))
		if errors.Is(err, netguard.ErrRefused) {
			return connectors.Result{}, connectors.Permanent(err)
		}
		return connectors.Result{}, err // the network: transient
	}
	defer resp.Body.Close()
	log := c.logger().With("action", a, "status", resp.StatusCode)
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		data, err := readBounded(resp.Body, dsr.MaxAnswer)
		if err != nil {
			return connectors.Result{}, fmt.Errorf("webhook %s: %s: reading the answer: %w", c.name, a, err)
		}
		ans, err := parseAnswer(a, data)
		if err != nil {
			return connectors.Result{}, connectors.Permanent(fmt.Errorf("webhook %s: %s: the receiver's answer: %w", c.name, a, err))
		}
		log.InfoContext(ctx, "webhook answered")
		return ans.apply(ctx, out)
	case code == http.StatusAccepted:
		data, err := readBounded(resp.Body, maxAccepted)
		if err != nil {
			return connectors.Result{}, fmt.Errorf("webhook %s: %s: reading the answer: %w", c.name, a, err)
		}
		handle, err := parseAccepted(data, id)
		if err != nil {
			return connectors.Result{}, connectors.Permanent(fmt.Errorf("webhook %s: %s: the receiver's 202: %w", c.name, a, err))
		}
		if body.CallbackURL == "" {
			return connectors.Result{}, connectors.Permanent(fmt.Errorf("webhook %s: %s: the receiver answered 202 (it calls back later), but dsar offered no callback URL (set DSAR_PUBLIC_URL or the connector's callback_url)", c.name, a))
		}
		log.InfoContext(ctx, "webhook accepted; waiting for its callback")
		return connectors.Result{Pending: &connectors.Pending{Handle: handle, PollAfter: connectors.NoPoll}}, nil
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		log.WarnContext(ctx, "webhook refused")
		return connectors.Result{}, statusError(c.name, a, resp)
	}
}

// statusError is the error of an answer other than 200 and 202, as the
// worker needs it: permanent when retrying cannot help, RetryAfter when the
// receiver says when to come back, else transient.
func statusError(name string, a connectors.Action, resp *http.Response) error {
	code := resp.StatusCode
	err := fmt.Errorf("webhook %s: %s: the receiver answered %d %s", name, a, code, http.StatusText(code))
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := connectors.RetryAfterHeader(resp.Header.Get("Retry-After"), time.Now()); ok {
			return connectors.RetryAfter(d, err)
		}
		if code == http.StatusTooManyRequests {
			return connectors.RetryAfter(time.Minute, err)
		}
		return err
	case code == http.StatusRequestTimeout || code == http.StatusTooEarly || code >= 500:
		return err
	case code >= 300 && code < 400:
		return connectors.Permanent(fmt.Errorf("%w (%w: point url at the final address)", err, netguard.ErrRedirect))
	default: // 401, 403 (the secret refused), other 4xx, unexpected 2xx
		return connectors.Permanent(err)
	}
}

// readBounded reads r whole, refusing more than limit bytes.
func readBounded(r io.Reader, limit int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, connectors.Permanent(fmt.Errorf("longer than %d bytes", limit))
	}
	return data, nil
}

// unwrapURLError drops the *url.Error's own wording (method and URL,
// which the caller writes itself).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// messageID is the webhook-id of a call made for no job: stable for the
// same connector, action and identities, and naming none of them.
func (c *Connector) messageID(a connectors.Action, s connectors.Subject) string {
	ids := make([]string, 0, len(s.Identities))
	for _, i := range s.Identities {
		ids = append(ids, i.Kind+"="+i.Value)
	}
	sort.Strings(ids)
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(c.name + "\x00" + string(a)))
	for _, i := range ids {
		m.Write([]byte("\x00" + i))
	}
	return "dsar_" + hex.EncodeToString(m.Sum(nil)[:16])
}

func (c *Connector) logger() *slog.Logger {
	if c.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.log
}

// Answer takes up the receiver's callback, stored as the job's answer:
// the same schema as a 200's body, with the handle it answers.
func (c *Connector) Answer(ctx context.Context, a connectors.Action, handle string, answer []byte, out connectors.RecordWriter) (connectors.Result, error) {
	ans, err := parseAnswer(a, answer)
	if err == nil && ans.Handle != handle {
		err = errors.New("handle: not the one the job waits on")
	}
	if err != nil {
		return connectors.Result{}, connectors.Permanent(fmt.Errorf("webhook %s: %s: the receiver's callback: %w", c.name, a, err))
	}
	return ans.apply(ctx, out)
}

// CallbackTolerance is how far a callback's timestamp may be from dsar's
// clock: the Standard Webhooks libraries' five minutes.
const CallbackTolerance = sw.DefaultTolerance

// VerifyCallback checks a callback for a job of action a: signed with the
// connector's secret, stamped within CallbackTolerance of now, and a body
// Answer takes, naming the handle it answers.
func (c *Connector) VerifyCallback(_ context.Context, a connectors.Action, h http.Header, body []byte, now time.Time) (string, error) {
	if _, err := sw.Verify(h, body, now, CallbackTolerance, c.secret); err != nil {
		return "", fmt.Errorf("%w: %w", connectors.ErrCallbackUnauthenticated, err)
	}
	ans, err := parseAnswer(a, body)
	if err == nil && ans.Handle == "" {
		err = errors.New("handle: required in a callback (the handle of the 202, or the webhook-id of the call)")
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", connectors.ErrCallbackInvalid, err)
	}
	return ans.Handle, nil
}
