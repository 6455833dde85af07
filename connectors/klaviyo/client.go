package klaviyo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// Client calls Klaviyo's REST API (https://a.klaviyo.com/api) with a
// private API key, pinned to one API revision.
type Client struct {
	// Base is the API's host: DefaultBase.
	Base string
	// Key is the private API key, sent as "Klaviyo-API-Key <key>".
	Key string
	// Revision is sent as the revision header on every call.
	Revision string
	// HTTP makes the calls, following no redirect (a 3xx is an error:
	// see connectors.NoRedirects); nil: http.DefaultClient.
	HTTP *http.Client
}

// Resource is a JSON:API resource object as Klaviyo answers it.
type Resource struct {
	Type       string         `json:"type"`
	ID         string         `json:"id"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// page is one page of a JSON:API collection.
type page struct {
	Data  []json.RawMessage `json:"data"`
	Links struct {
		Next string `json:"next"`
	} `json:"links"`
}

// errNotFound is a 404: the resource does not exist (any more).
var errNotFound = errors.New("not found")

// callTimeout bounds one call, unless the caller's deadline is sooner.
const callTimeout = 30 * time.Second

// maxPages bounds how many pages one listing follows.
const maxPages = 10000

// filterValue reports whether v can be quoted in a filter string: Klaviyo
// documents no escape for a double quote or backslash inside one.
func filterValue(v string) bool {
	return v != "" && !strings.ContainsAny(v, "\"\\\r\n")
}

// List calls GET path?query and every page after it (links.next), handing
// each resource's JSON to fn.
func (c *Client) List(ctx context.Context, path string, query url.Values, fn func(json.RawMessage) error) error {
	next := strings.TrimSuffix(c.Base, "/") + path
	if len(query) > 0 {
		next += "?" + query.Encode()
	}
	for n := 0; next != ""; n++ {
		if n == maxPages {
			return connectors.Permanent(fmt.Errorf("GET %s: more than %d pages", path, maxPages))
		}
		if !c.sameHost(next) {
			return connectors.Permanent(fmt.Errorf("GET %s: links.next points away from %s", path, c.Base))
		}
		var p page
		if err := c.do(ctx, http.MethodGet, next, nil, &p); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		for _, d := range p.Data {
			if err := fn(d); err != nil {
				return err
			}
		}
		next = p.Links.Next
	}
	return nil
}

// sameHost reports whether u is on the API's host, so that the key is
// never sent elsewhere by a links.next.
func (c *Client) sameHost(u string) bool {
	a, err1 := url.Parse(u)
	b, err2 := url.Parse(c.Base)
	return err1 == nil && err2 == nil && a.Scheme == b.Scheme && a.Host == b.Host
}

// Profiles returns the profiles whose field (email or phone_number) equals
// value: GET /api/profiles?filter=equals(field,"value").
func (c *Client) Profiles(ctx context.Context, field, value string) ([]json.RawMessage, error) {
	if !filterValue(value) {
		return nil, nil
	}
	var out []json.RawMessage
	q := url.Values{"filter": {fmt.Sprintf("equals(%s,%q)", field, value)}, "additional-fields[profile]": {"subscriptions"}}
	err := c.List(ctx, "/api/profiles", q, func(r json.RawMessage) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// Events hands every event of the profile to fn: GET
// /api/events?filter=equals(profile_id,"id").
func (c *Client) Events(ctx context.Context, profileID string, fn func(json.RawMessage) error) error {
	q := url.Values{"filter": {fmt.Sprintf("equals(profile_id,%q)", profileID)}}
	return c.List(ctx, "/api/events", q, fn)
}

// ProfileExists reads GET /api/profiles/{id}: false once Klaviyo answers
// 404.
func (c *Client) ProfileExists(ctx context.Context, id string) (bool, error) {
	var out struct{ Data Resource }
	err := c.do(ctx, http.MethodGet, c.url("/api/profiles/"+url.PathEscape(id)), nil, &out)
	switch {
	case errors.Is(err, errNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("GET /api/profiles/{id}: %w", err)
	}
	return true, nil
}

// ProfileLists returns the ids of the lists the profile is a member of:
// GET /api/profiles/{id}/relationships/lists.
func (c *Client) ProfileLists(ctx context.Context, profileID string) (map[string]bool, error) {
	in := map[string]bool{}
	err := c.List(ctx, "/api/profiles/"+url.PathEscape(profileID)+"/relationships/lists", nil, func(r json.RawMessage) error {
		var l Resource
		if err := json.Unmarshal(r, &l); err != nil {
			return connectors.Permanent(fmt.Errorf("a list relationship is not JSON:API: %w", err))
		}
		in[l.ID] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}

// RequestDeletion files a data-privacy deletion job for the profile id:
// POST /api/data-privacy-deletion-jobs. Klaviyo answers 202 and deletes
// the profile later; it documents no way to read the job.
func (c *Client) RequestDeletion(ctx context.Context, profileID string) error {
	body := map[string]any{"data": map[string]any{
		"type": "data-privacy-deletion-job",
		"attributes": map[string]any{"profile": map[string]any{
			// attributes is required by the schema even when the id names the profile
			"data": map[string]any{"type": "profile", "id": profileID, "attributes": map[string]any{}},
		}},
	}}
	if err := c.post(ctx, "/api/data-privacy-deletion-jobs", body); err != nil {
		return fmt.Errorf("POST /api/data-privacy-deletion-jobs: %w", err)
	}
	return nil
}

// Suppress files a bulk suppression job for the emails: POST
// /api/profile-suppression-bulk-create-jobs.
func (c *Client) Suppress(ctx context.Context, emails []string) error {
	profiles := make([]any, 0, len(emails))
	for _, e := range emails {
		profiles = append(profiles, map[string]any{"type": "profile", "attributes": map[string]any{"email": e}})
	}
	body := map[string]any{"data": map[string]any{
		"type":       "profile-suppression-bulk-create-job",
		"attributes": map[string]any{"profiles": map[string]any{"data": profiles}},
	}}
	if err := c.post(ctx, "/api/profile-suppression-bulk-create-jobs", body); err != nil {
		return fmt.Errorf("POST /api/profile-suppression-bulk-create-jobs: %w", err)
	}
	return nil
}

// Unsubscribe files a bulk unsubscribe job that withdraws the emails'
// email-marketing consent on list listID: POST
// /api/profile-subscription-bulk-delete-jobs.
func (c *Client) Unsubscribe(ctx context.Context, emails []string, listID string) error {
	profiles := make([]any, 0, len(emails))
	for _, e := range emails {
		profiles = append(profiles, map[string]any{"type": "profile", "attributes": map[string]any{
			"email":         e,
			"subscriptions": map[string]any{"email": map[string]any{"marketing": map[string]any{"consent": "UNSUBSCRIBED"}}},
		}})
	}
	body := map[string]any{"data": map[string]any{
		"type":       "profile-subscription-bulk-delete-job",
		"attributes": map[string]any{"profiles": map[string]any{"data": profiles}},
		"relationships": map[string]any{"list": map[string]any{
			"data": map[string]any{"type": "list", "id": listID},
		}},
	}}
	if err := c.post(ctx, "/api/profile-subscription-bulk-delete-jobs", body); err != nil {
		return fmt.Errorf("POST /api/profile-subscription-bulk-delete-jobs (list %s): %w", listID, err)
	}
	return nil
}

func (c *Client) url(path string) string { return strings.TrimSuffix(c.Base, "/") + path }

func (c *Client) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return connectors.Permanent(err)
	}
	return c.do(ctx, http.MethodPost, c.url(path), b, nil)
}

// maxBody bounds what is read of an answer.
const maxBody = 8 << 20

// do makes one call to u and decodes a 2xx body into out (when not nil
// and the body is not empty). Its errors are as the worker needs them: a
// 429 is a connectors.RetryAfter, 5xx and the network transient, a 404
// errNotFound, other answers permanent. No error quotes the body's
// detail, which may quote the profile.
func (c *Client) do(ctx context.Context, method, u string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return connectors.Permanent(errors.New("bad request URL"))
	}
	req.Header.Set("Authorization", "Klaviyo-API-Key "+c.Key)
	req.Header.Set("revision", c.Revision)
	req.Header.Set("Accept", "application/vnd.api+json")
	req.Header.Set("User-Agent", "dsar-klaviyo/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	hc := connectors.NoRedirects(c.HTTP) // a 3xx is an error, never followed
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, whose filter quotes the subject
		}
		return fmt.Errorf("%s %s: %w", method, c.Base, err) // the network: transient
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil && len(bytes.TrimSpace(data)) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return connectors.Permanent(fmt.Errorf("the answer is not the documented JSON:API: %w", err))
			}
		}
		return nil
	}
	return statusError(resp, data, time.Now())
}

// apiError is Klaviyo's error body.
type apiError struct {
	Errors []struct {
		ID     string `json:"id"`
		Status int    `json:"status"`
		Code   string `json:"code"`
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Source struct {
			Pointer   string `json:"pointer"`
			Parameter string `json:"parameter"`
		} `json:"source"`
	} `json:"errors"`
}

// maxRetryAfter bounds the pause Klaviyo may ask for.
const maxRetryAfter = time.Hour

// statusError is the error of an answer other than 2xx: the status, and
// the first error's code, title and id (never its detail, which may quote
// the profile's email).
func statusError(resp *http.Response, body []byte, now time.Time) error {
	code := resp.StatusCode
	var ae apiError
	_ = json.Unmarshal(body, &ae)
	msg := fmt.Sprintf("Klaviyo answered %d %s", code, http.StatusText(code))
	if len(ae.Errors) > 0 {
		e := ae.Errors[0]
		if len(e.Title) > 200 {
			e.Title = e.Title[:200] + "..."
		}
		msg += ": " + strings.TrimSpace(e.Code+" "+e.Title)
		if e.ID != "" {
			msg += " (error id " + e.ID + ")"
		}
	}
	err := errors.New(msg)
	switch {
	case code == http.StatusTooManyRequests:
		d := time.Second
		if v := resp.Header.Get("Retry-After"); v != "" {
			if n, perr := strconv.Atoi(strings.TrimSpace(v)); perr == nil && n >= 0 {
				d = time.Duration(n) * time.Second
			} else if t, perr := http.ParseTime(v); perr == nil {
				d = t.Sub(now)
			}
		}
		return connectors.RetryAfter(min(max(d, 0), maxRetryAfter), err)
	case code == http.StatusNotFound:
		return connectors.Permanent(fmt.Errorf("%w: %w", errNotFound, err))
	case code == http.StatusRequestTimeout || code >= 500:
		return err
	default: // 400 (a bad request), 401 (the key), 403 (the key's scopes)
		return connectors.Permanent(err)
	}
}
