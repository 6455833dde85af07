package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// Client calls the Stripe API of one account (the key's).
type Client struct {
	// Base is the API's base URL, https://api.stripe.com.
	Base string
	// Key is the secret or restricted key, sent as a Bearer token.
	Key string
	// Version is sent as Stripe-Version.
	Version string
	// PreviewVersion is sent as Stripe-Version on the calls to privacy
	// redaction jobs, a public-preview resource that Stripe serves only
	// under a preview API version (YYYY-MM-DD.preview).
	PreviewVersion string
	// HTTP makes the calls, following no redirect (a 3xx is an error:
	// see connectors.NoRedirects); nil: http.DefaultClient.
	HTTP *http.Client
	// Limiter, when set, paces the calls to Stripe's documented limits
	// (see pace), counted under keys that start with LimitKey; nil: no
	// pacing, and Stripe's 429 is the only brake.
	Limiter connectors.Limiter
	// LimitKey prefixes the limiter's keys: the connector's name.
	LimitKey string

	// sleep waits in process for the limiter; nil: a timer.
	sleep func(context.Context, time.Duration) error
}

// Stripe's documented limits: 100 read and 100 write operations a second
// in live mode, 25 in test mode
// (https://support.stripe.com/questions/rate-limit-error-when-creating-bulk-api-requests,
// https://docs.stripe.com/rate-limits), and 20 read operations a second
// across the search endpoints (https://docs.stripe.com/search#rate-limits).
const (
	liveRate   = 100
	testRate   = 25
	searchRate = 20
)

// maxLocalWait is the longest the client sleeps in process for the
// limiter; a longer wait goes back to the queue as a RetryAfter.
const maxLocalWait = 2 * time.Second

// testMode reports whether the key is a test-mode key, whose account has
// the lower limit.
func (c *Client) testMode() bool {
	return strings.HasPrefix(c.Key, "sk_test_") || strings.HasPrefix(c.Key, "rk_test_")
}

// pace waits until the call may go: the search limit for a search, the
// read or write limit of the key's mode for the others.
func (c *Client) pace(ctx context.Context, method, path string) error {
	if c.Limiter == nil {
		return nil
	}
	n := liveRate
	if c.testMode() {
		n = testRate
	}
	kind := "write"
	switch {
	case strings.HasPrefix(path, "/v1/customers/search"):
		kind, n = "search", searchRate
	case method == http.MethodGet:
		kind = "read"
	}
	p := connectors.Pacer{Limiter: c.Limiter, MaxWait: maxLocalWait, Sleep: c.sleep}
	return p.Take(ctx, c.LimitKey+"/"+kind, connectors.Rate{N: n, Per: time.Second}, "Stripe's documented "+kind+" limit")
}

// callTimeout bounds one call, unless the caller's deadline is sooner.
const callTimeout = 30 * time.Second

// pageSize is the limit asked of every list (Stripe's largest).
const pageSize = 100

// maxBody bounds what is read of an answer.
const maxBody = 4 << 20

// list is Stripe's list object.
type list struct {
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
}

// object is what this package reads of any Stripe object.
type object struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// Each calls fn with every object of the list at path (a path such as
// /v1/charges) filtered by query, a page of 100 at a time, following
// has_more with starting_after. Objects are passed as Stripe wrote them.
func (c *Client) Each(ctx context.Context, path string, query url.Values, fn func(raw json.RawMessage, id string) error) error {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", fmt.Sprint(pageSize))
	for {
		var page list
		if err := c.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, "", &page); err != nil {
			return err
		}
		last := ""
		for _, raw := range page.Data {
			var o object
			if err := json.Unmarshal(raw, &o); err != nil || !idPattern.MatchString(o.ID) {
				return connectors.Permanent(fmt.Errorf("GET %s: a listed object has no valid id", path))
			}
			if err := fn(raw, o.ID); err != nil {
				return err
			}
			last = o.ID
		}
		if !page.HasMore || last == "" {
			return nil
		}
		q.Set("starting_after", last)
	}
}

// idPattern is the form of a Stripe object id this package puts in a
// path or a query (cus_..., prj_...): an id Stripe answers with
// anything else (a "/", "..", "?") is refused, never sent on.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,255}$`)

// searchPageSize is the limit of a search: Stripe's largest.
const searchPageSize = 100

// searchResult is Stripe's search_result object
// (https://docs.stripe.com/api/customers/search): has_more and the
// next_page cursor, passed back as page.
type searchResult struct {
	Data     []json.RawMessage `json:"data"`
	HasMore  bool              `json:"has_more"`
	NextPage string            `json:"next_page"`
}

// maxSearchPages bounds how many pages one search follows.
const maxSearchPages = 1000

// SearchCustomers calls fn with every customer whose email Stripe's
// search matches q (GET /v1/customers/search?query=..., every page
// through next_page). The search's exact match is case-insensitive and
// word-based ("contains all of the words from the query in the same
// order", https://docs.stripe.com/search#search-query-language), and
// eventually consistent ("searchable in under 1 minute"), so a caller
// compares what it gets and does not rely on it alone.
func (c *Client) SearchCustomers(ctx context.Context, query string, fn func(raw json.RawMessage, id string) error) error {
	q := url.Values{"query": {query}, "limit": {fmt.Sprint(searchPageSize)}}
	for n := 0; ; n++ {
		if n == maxSearchPages {
			return connectors.Permanent(fmt.Errorf("GET /v1/customers/search: more than %d pages", maxSearchPages))
		}
		var page searchResult
		if err := c.do(ctx, http.MethodGet, "/v1/customers/search?"+q.Encode(), nil, "", &page); err != nil {
			return err
		}
		for _, raw := range page.Data {
			var o object
			if err := json.Unmarshal(raw, &o); err != nil || !idPattern.MatchString(o.ID) {
				return connectors.Permanent(errors.New("GET /v1/customers/search: a customer has no valid id"))
			}
			if err := fn(raw, o.ID); err != nil {
				return err
			}
		}
		if !page.HasMore || page.NextPage == "" {
			return nil
		}
		if page.NextPage == q.Get("page") {
			return connectors.Permanent(errors.New("GET /v1/customers/search: next_page repeats the page just read"))
		}
		q.Set("page", page.NextPage)
	}
}

// EmailQuery is the search query that matches email exactly:
// email:"...", the value's double quotes escaped with a backslash, the
// one escape Stripe's search query language documents. It reports false
// for a value that cannot be quoted safely (a backslash, which the
// language gives no escape of its own, or a control character): such an
// email is not searched.
func EmailQuery(email string) (string, bool) {
	if email == "" || len(email) > 512 {
		return "", false
	}
	for _, r := range email {
		if r == '\\' || r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	return `email:"` + strings.ReplaceAll(email, `"`, `\"`) + `"`, true
}

// DeleteCustomer deletes the customer called id, permanently. It reports
// false when Stripe has no such customer (deleted already).
func (c *Client) DeleteCustomer(ctx context.Context, id string) (bool, error) {
	if !idPattern.MatchString(id) {
		return false, connectors.Permanent(errors.New("DELETE /v1/customers/{id}: not a customer id"))
	}
	var o object
	err := c.do(ctx, http.MethodDelete, "/v1/customers/"+url.PathEscape(id), nil, "", &o)
	var se *Error
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !o.Deleted {
		return false, connectors.Permanent(fmt.Errorf("DELETE customer %s: Stripe answered without deleted: true", id))
	}
	return true, nil
}

// RedactionJob is a privacy redaction job as Stripe shows it.
type RedactionJob struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Status  string `json:"status"`
	Objects struct {
		Customers []string `json:"customers"`
	} `json:"objects"`
}

// The statuses of a redaction job
// (https://docs.stripe.com/api/privacy/redaction-job/object; the same
// eight in stripe-go's public-preview SDK, branch beta,
// privacy_redactionjob.go).
const (
	JobCreated    = "created"
	JobValidating = "validating"
	JobReady      = "ready"
	JobRedacting  = "redacting"
	JobSucceeded  = "succeeded"
	JobFailed     = "failed"
	JobCanceling  = "canceling"
	JobCanceled   = "canceled"
)

// CreateRedactionJob files a redaction job for the customers (their
// related objects are redacted with them) and returns it. key is the
// Idempotency-Key: the same key within 24 hours returns the same job.
func (c *Client) CreateRedactionJob(ctx context.Context, customers []string, key string) (RedactionJob, error) {
	form := url.Values{}
	for i, id := range customers {
		form.Set(fmt.Sprintf("objects[customers][%d]", i), id)
	}
	var j RedactionJob
	form.Set("validation_behavior", "error")
	if err := c.doVersion(ctx, c.PreviewVersion, http.MethodPost, "/v1/privacy/redaction_jobs", form, key, &j); err != nil {
		return RedactionJob{}, fmt.Errorf("create redaction job: %w", err)
	}
	if !handlePattern.MatchString(j.ID) {
		return RedactionJob{}, connectors.Permanent(errors.New("create redaction job: Stripe answered without a job id"))
	}
	return j, nil
}

// RedactionJob reads the redaction job called id, with its objects
// (an expandable field: https://docs.stripe.com/api/privacy/redaction-job/object).
func (c *Client) RedactionJob(ctx context.Context, id string) (RedactionJob, error) {
	var j RedactionJob
	if !handlePattern.MatchString(id) {
		return RedactionJob{}, connectors.Permanent(errors.New("get redaction job: not a job id"))
	}
	if err := c.doVersion(ctx, c.PreviewVersion, http.MethodGet, "/v1/privacy/redaction_jobs/"+url.PathEscape(id)+"?expand%5B%5D=objects", nil, "", &j); err != nil {
		return RedactionJob{}, fmt.Errorf("get redaction job %s: %w", id, err)
	}
	return j, nil
}

// RunRedactionJob starts the redaction job called id, which is ready.
func (c *Client) RunRedactionJob(ctx context.Context, id string) (RedactionJob, error) {
	var j RedactionJob
	if !handlePattern.MatchString(id) {
		return RedactionJob{}, connectors.Permanent(errors.New("run redaction job: not a job id"))
	}
	if err := c.doVersion(ctx, c.PreviewVersion, http.MethodPost, "/v1/privacy/redaction_jobs/"+url.PathEscape(id)+"/run", url.Values{}, "run-"+id, &j); err != nil {
		return RedactionJob{}, fmt.Errorf("run redaction job %s: %w", id, err)
	}
	return j, nil
}

// Error is Stripe's answer to a call that failed: its HTTP status and
// the {"error": {...}} body.
type Error struct {
	Status  int
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param"`
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("Stripe answered %d %s", e.Status, http.StatusText(e.Status))
	if s := strings.TrimSpace(strings.Join(nonEmpty(e.Type, e.Code), "/")); s != "" {
		msg += " (" + s + ")"
	}
	if e.Message != "" {
		m := emailLike.ReplaceAllString(e.Message, "[email]")
		if len(m) > 300 {
			m = m[:300] + "..."
		}
		msg += ": " + m
	}
	return msg
}

// emailLike is anything in Stripe's message that looks like an email
// address: the message is quoted, and Stripe may quote the customer's
// email in it in any case or form.
var emailLike = regexp.MustCompile(`[^\s'"<>()\[\],;:]+@[^\s'"<>()\[\],;:]+`)

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Rate limits: Stripe sends no Retry-After and asks clients to back off
// exponentially with jitter (https://docs.stripe.com/rate-limits). A 429
// is tried again here up to rateRetries times, from rateBackoff doubling,
// while the caller's deadline allows; then the job is backed off through
// the queue for rateRequeue.
const (
	rateRetries = 2
	rateBackoff = 500 * time.Millisecond
	rateRequeue = 30 * time.Second
)

// do makes one call (a form body for POST, an Idempotency-Key when key is
// set) and decodes a 200's body into out. Its errors are as the worker
// needs them: a 429 is a connectors.RetryAfter, 5xx, 409 (a concurrent
// use of an idempotency key) and the network transient, other answers
// permanent.
func (c *Client) do(ctx context.Context, method, path string, form url.Values, key string, out any) error {
	return c.doVersion(ctx, c.Version, method, path, form, key, out)
}

// doVersion is do with Stripe-Version version.
func (c *Client) doVersion(ctx context.Context, version, method, path string, form url.Values, key string, out any) error {
	for attempt := 0; ; attempt++ {
		if err := c.pace(ctx, method, path); err != nil {
			return err
		}
		err := c.once(ctx, version, method, path, form, key, out)
		var se *Error
		if !errors.As(err, &se) || se.Status != http.StatusTooManyRequests {
			return err
		}
		wait := rateBackoff<<attempt + rand.N(rateBackoff)
		if dl, ok := ctx.Deadline(); attempt >= rateRetries || (ok && time.Until(dl) < wait+time.Second) {
			return connectors.RetryAfter(rateRequeue, err)
		}
		select {
		case <-ctx.Done():
			return connectors.RetryAfter(rateRequeue, err)
		case <-time.After(wait):
		}
	}
}

func (c *Client) once(ctx context.Context, version, method, path string, form url.Values, key string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+path, body)
	if err != nil {
		return connectors.Permanent(errors.New("bad request URL"))
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	req.Header.Set("Stripe-Version", version)
	req.Header.Set("User-Agent", "dsar-stripe/1")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	hc := connectors.NoRedirects(c.HTTP) // a 3xx is an error, never followed
	// The path is left out of errors: a query holds the subject's email.
	what := method + " " + strings.SplitN(path, "?", 2)[0]
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, and so the query
		}
		return fmt.Errorf("%s: %w", what, err) // the network: transient
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%s: reading the answer: %w", what, err)
	}
	if len(data) > maxBody {
		if resp.StatusCode == http.StatusOK {
			return connectors.Permanent(fmt.Errorf("%s: Stripe answered %d with a body over %d bytes", what, resp.StatusCode, maxBody))
		}
		data = nil // an error's status says enough
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			return connectors.Permanent(fmt.Errorf("%s: the answer is not the documented JSON", what))
		}
		return nil
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return connectors.Permanent(fmt.Errorf("%s: Stripe answered %d %s: redirect refused", what, resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	var body2 struct {
		Error Error `json:"error"`
	}
	_ = json.Unmarshal(data, &body2)
	se := body2.Error
	se.Status = resp.StatusCode
	err = fmt.Errorf("%s: %w", what, &se)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests:
		return err // do backs it off
	case code == http.StatusConflict || code >= 500:
		return err
	default: // 400, 401, 402, 403, 404
		return connectors.Permanent(err)
	}
}
