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
	// HTTP makes the calls, following no redirect (a 3xx is an error:
	// see connectors.NoRedirects); nil: http.DefaultClient.
	HTTP *http.Client
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
			if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
				return connectors.Permanent(fmt.Errorf("GET %s: a listed object has no id", path))
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

// CustomerIDs returns the ids of the customers whose email is email
// (Stripe compares it exactly, case included).
func (c *Client) CustomerIDs(ctx context.Context, email string) ([]string, error) {
	var ids []string
	err := c.Each(ctx, "/v1/customers", url.Values{"email": {email}}, func(_ json.RawMessage, id string) error {
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// DeleteCustomer deletes the customer called id, permanently. It reports
// false when Stripe has no such customer (deleted already).
func (c *Client) DeleteCustomer(ctx context.Context, id string) (bool, error) {
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
// (https://docs.stripe.com/api/privacy/redaction-job/object).
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
	if err := c.do(ctx, http.MethodPost, "/v1/privacy/redaction_jobs", form, key, &j); err != nil {
		return RedactionJob{}, fmt.Errorf("create redaction job: %w", err)
	}
	if !handlePattern.MatchString(j.ID) {
		return RedactionJob{}, connectors.Permanent(errors.New("create redaction job: Stripe answered without a job id"))
	}
	return j, nil
}

// RedactionJob reads the redaction job called id.
func (c *Client) RedactionJob(ctx context.Context, id string) (RedactionJob, error) {
	var j RedactionJob
	if err := c.do(ctx, http.MethodGet, "/v1/privacy/redaction_jobs/"+url.PathEscape(id), nil, "", &j); err != nil {
		return RedactionJob{}, fmt.Errorf("get redaction job %s: %w", id, err)
	}
	return j, nil
}

// RunRedactionJob starts the redaction job called id, which is ready.
func (c *Client) RunRedactionJob(ctx context.Context, id string) (RedactionJob, error) {
	var j RedactionJob
	if err := c.do(ctx, http.MethodPost, "/v1/privacy/redaction_jobs/"+url.PathEscape(id)+"/run", url.Values{}, "run-"+id, &j); err != nil {
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
		m := e.Message
		if len(m) > 300 {
			m = m[:300] + "..."
		}
		msg += ": " + m
	}
	return msg
}

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
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, method, path, form, key, out)
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

func (c *Client) once(ctx context.Context, method, path string, form url.Values, key string, out any) error {
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
	req.Header.Set("Stripe-Version", c.Version)
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
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s: reading the answer: %w", what, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			return connectors.Permanent(fmt.Errorf("%s: the answer is not the documented JSON: %w", what, err))
		}
		return nil
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
