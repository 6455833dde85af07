package hubspot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// rateWindow is the period of HubSpot's burst limit.
const rateWindow = 10 * time.Second

// maxLocalWait is the longest the connector waits in process for its own
// limiter; a longer wait is handed to the queue as a RetryAfter.
const maxLocalWait = rateWindow

// maxBody bounds an answer's body.
const maxBody = 4 << 20

// errNotFound is a 404: the contact (or what the path names) is not held.
var errNotFound = errors.New("not found")

// errTooLong is a 2xx answer longer than maxBody (always permanent too): a
// batch read asks again for fewer records.
var errTooLong = errors.New("answer too long")

// apiError is what HubSpot's error bodies hold that may be repeated: never
// the message, which can quote the contact.
type apiError struct {
	Status        string `json:"status"`
	Category      string `json:"category"`
	ErrorType     string `json:"errorType"`
	PolicyName    string `json:"policyName"`
	CorrelationID string `json:"correlationId"`
}

// pace waits until the app's limits let one more request go: the 10-second
// limit in process for up to maxLocalWait, the daily one never. Beyond that
// it returns a RetryAfter error, so the job backs off through the queue.
func (c *Connector) pace(ctx context.Context) error {
	for {
		c.mu.Lock()
		until, daily := c.pauseUntil, c.pauseDaily
		c.mu.Unlock()
		wait := until.Sub(c.now())
		if wait <= 0 {
			break
		}
		if daily || wait > maxLocalWait || !fits(ctx, c.now(), wait) {
			return connectors.RetryAfter(wait, fmt.Errorf("hubspot %s: HubSpot's rate limit headers said the limit is spent", c.name))
		}
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("hubspot %s: waiting for the rate limit: %w", c.name, err)
		}
	}
	burst := connectors.Rate{N: c.per10s, Per: rateWindow}
	for {
		wait, err := c.limiter.Take(ctx, c.name+"/10s", burst)
		if err != nil {
			return fmt.Errorf("hubspot %s: rate limiter: %w", c.name, err)
		}
		if wait == 0 {
			break
		}
		if wait > maxLocalWait || !fits(ctx, c.now(), wait) {
			return connectors.RetryAfter(wait, fmt.Errorf("hubspot %s: %d requests per 10 seconds spent", c.name, c.per10s))
		}
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("hubspot %s: waiting for the rate limit: %w", c.name, err)
		}
	}
	wait, err := c.limiter.Take(ctx, c.name+"/daily", connectors.Rate{N: c.daily, Per: 24 * time.Hour})
	if err != nil {
		return fmt.Errorf("hubspot %s: rate limiter: %w", c.name, err)
	}
	if wait > 0 {
		return connectors.RetryAfter(wait, fmt.Errorf("hubspot %s: %d requests a day spent", c.name, c.daily))
	}
	return nil
}

// heed reads the X-HubSpot-RateLimit-* headers of an answer: when one
// says a limit is spent, no request goes until the 10-second interval has
// passed, or, for the daily limit, an hour (it resets at midnight in the
// account's time zone, which the API does not give).
func (c *Connector) heed(h http.Header) {
	var d time.Duration
	daily := false
	switch {
	case h.Get("X-HubSpot-RateLimit-Daily-Remaining") == "0":
		d, daily = time.Hour, true
	case h.Get("X-HubSpot-RateLimit-Remaining") == "0":
		d = rateWindow
		if ms, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Interval-Milliseconds")); err == nil && ms > 0 && ms <= 60_000 {
			d = time.Duration(ms) * time.Millisecond
		}
	default:
		return
	}
	until := c.now().Add(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.pauseUntil) {
		c.pauseUntil, c.pauseDaily = until, daily
	}
}

// fits reports whether waiting d from now ends before ctx's deadline.
func fits(ctx context.Context, now time.Time, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || now.Add(d).Before(dl)
}

// call sends one request (path already escaped, with its query) and decodes
// a 2xx answer's JSON into out (nil: the body is discarded). want, when
// given, are the only codes HubSpot documents for the call's success (a
// write's: 204 for gdpr-delete): another 2xx, such as a proxy's HTML page,
// is then a permanent error naming it, for whether the write took effect
// is unknown. A 404 is errNotFound. Errors never quote the path or the
// body: both can hold the subject's email.
func (c *Connector) call(ctx context.Context, method, what, path string, body, out any, want ...int) error {
	if err := c.pace(ctx); err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("hubspot %s: %s: %w", c.name, what, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("hubspot %s: %s: a request could not be made", c.name, what))
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dsar-hubspot/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text quotes the URL, which holds the email
		}
		return fmt.Errorf("hubspot %s: %s: %w", c.name, what, err) // the network: transient
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("hubspot %s: %s: reading the answer: %w", c.name, what, err)
	}
	c.logger().DebugContext(ctx, "hubspot answered", "call", what, "status", resp.StatusCode)
	c.heed(resp.Header)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if len(want) > 0 && !slices.Contains(want, resp.StatusCode) {
			return connectors.Permanent(fmt.Errorf("hubspot %s: %s: HubSpot answered %d %s, not the documented %d %s: whether it took effect is unknown",
				c.name, what, resp.StatusCode, http.StatusText(resp.StatusCode), want[0], http.StatusText(want[0])))
		}
		if len(data) > maxBody {
			return connectors.Permanent(fmt.Errorf("hubspot %s: %s: %w: longer than %d bytes", c.name, what, errTooLong, maxBody))
		}
		if out == nil || len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return connectors.Permanent(fmt.Errorf("hubspot %s: %s: the answer is not the documented JSON: %v", c.name, what, jsonProblem(err)))
		}
		return nil
	}
	return c.statusError(what, resp, data)
}

// jsonProblem drops what a JSON error could quote of the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + te.Field + " holds a " + te.Value
	}
	return "cannot decode"
}

// statusError is the error of a non-2xx answer, as the worker needs it:
// 404 errNotFound; 429 a RetryAfter (the 10-second limit: the interval the
// headers give, else 10s; the daily one: an hour); 401 and 403 permanent
// (the token refused, or a scope missing); other 4xx permanent; 408 and
// 5xx transient.
func (c *Connector) statusError(what string, resp *http.Response, data []byte) error {
	code := resp.StatusCode
	var ae apiError
	_ = json.Unmarshal(data, &ae)
	detail := ""
	if ae.Category != "" || ae.ErrorType != "" {
		detail = " (" + ae.Category + ae.ErrorType
		if ae.PolicyName != "" {
			detail += ", " + ae.PolicyName
		}
		if ae.CorrelationID != "" {
			detail += ", correlation id " + ae.CorrelationID
		}
		detail += ")"
	}
	err := &statusErr{code: code, msg: fmt.Sprintf("hubspot %s: %s: HubSpot answered %d %s%s", c.name, what, code, http.StatusText(code), detail)}
	switch {
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: %w", errNotFound, err)
	case code == http.StatusTooManyRequests:
		return connectors.RetryAfter(retryDelay(resp.Header, ae.PolicyName, c.now()), err)
	case code == http.StatusUnauthorized:
		return connectors.Permanent(fmt.Errorf("%w: the access token is refused (revoked, rotated or mistyped)", err))
	case code == http.StatusForbidden:
		return connectors.Permanent(fmt.Errorf("%w: the private app lacks a scope this call needs (docs/connectors/hubspot.md lists them)", err))
	case code == http.StatusRequestTimeout || code >= 500:
		return err
	default:
		return connectors.Permanent(err)
	}
}

// statusErr is HubSpot's answer with an error status.
type statusErr struct {
	code int
	msg  string
}

func (e *statusErr) Error() string { return e.msg }

// retryDelay reads how long a 429 asks to wait: Retry-After when sent; the
// daily limit until an hour later (it resets at midnight in the account's
// time zone, which the API does not give); else the interval of the
// 10-second limit.
func retryDelay(h http.Header, policy string, now time.Time) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return min(time.Duration(n)*time.Second, 24*time.Hour)
		}
		if t, err := http.ParseTime(v); err == nil {
			return min(max(t.Sub(now), 0), 24*time.Hour)
		}
	}
	if policy == "DAILY" || h.Get("X-HubSpot-RateLimit-Daily-Remaining") == "0" {
		return time.Hour
	}
	if ms, err := strconv.Atoi(h.Get("X-HubSpot-RateLimit-Interval-Milliseconds")); err == nil && ms > 0 && ms <= 60_000 {
		return time.Duration(ms) * time.Millisecond
	}
	return rateWindow
}

// localLimiter is the limiter of a connector whose Deps give none: it
// counts one process's requests. Rates of up to maxSliding events are kept
// exactly (a sliding window: no more than N in any Per); larger ones (the
// daily limit) by fixed windows starting at the first event.
type localLimiter struct {
	mu   sync.Mutex
	now  func() time.Time
	logs map[string][]time.Time
	wins map[string]*fixedWindow
}

type fixedWindow struct {
	start time.Time
	n     int
}

const maxSliding = 10_000

func newLocalLimiter(now func() time.Time) *localLimiter {
	return &localLimiter{now: now, logs: map[string][]time.Time{}, wins: map[string]*fixedWindow{}}
}

// Take implements connectors.Limiter.
func (l *localLimiter) Take(_ context.Context, key string, r connectors.Rate) (time.Duration, error) {
	if r.IsZero() {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if r.N > maxSliding {
		w := l.wins[key]
		if w == nil || !now.Before(w.start.Add(r.Per)) {
			w = &fixedWindow{start: now}
			l.wins[key] = w
		}
		if w.n >= r.N {
			return w.start.Add(r.Per).Sub(now), nil
		}
		w.n++
		return 0, nil
	}
	log := l.logs[key]
	i := 0
	for i < len(log) && !log[i].After(now.Add(-r.Per)) {
		i++
	}
	log = log[i:]
	if len(log) >= r.N {
		l.logs[key] = log
		return log[0].Add(r.Per).Sub(now), nil
	}
	l.logs[key] = append(log, now)
	return 0, nil
}
