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
	"slices"
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
	// Limiter, when set, paces the calls to Klaviyo's documented
	// per-endpoint limits (see the endpoints below), counted under keys
	// that start with LimitKey; nil: no pacing, and Klaviyo's 429 is the
	// only brake.
	Limiter connectors.Limiter
	// LimitKey prefixes the limiter's keys: the connector's name.
	LimitKey string

	// sleep waits in process for the limiter; nil: a timer.
	sleep func(context.Context, time.Duration) error
	now   func() time.Time
}

// endpoint is one of Klaviyo's rate-limited endpoints and its documented
// limits: two fixed windows, burst (per second) and steady (per minute),
// per account (https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling;
// each endpoint's limits are its x-klaviyo-ratelimit in the OpenAPI
// document of revision 2024-10-15, github.com/klaviyo/openapi tag
// 2024-10-15, openapi/stable.json).
type endpoint struct {
	key           string
	burst, steady connectors.Rate
}

func limits(key string, perSecond, perMinute int) endpoint {
	return endpoint{key: key, burst: connectors.Rate{N: perSecond, Per: time.Second}, steady: connectors.Rate{N: perMinute, Per: time.Minute}}
}

// The endpoints the connector calls, with their documented limits.
var (
	epProfiles     = limits("profiles", 75, 700)    // GET /api/profiles, GET /api/profiles/{id}
	epEvents       = limits("events", 350, 3500)    // GET /api/events
	epProfileLists = limits("profile-lists", 3, 60) // GET /api/profiles/{id}/relationships/lists
	epDeletion     = limits("deletion", 3, 60)      // POST /api/data-privacy-deletion-jobs
	epSuppress     = limits("suppress", 75, 700)    // POST /api/profile-suppression-bulk-create-jobs
	epUnsubscribe  = limits("unsubscribe", 75, 700) // POST /api/profile-subscription-bulk-delete-jobs
)

// maxLocalWait is the longest the client sleeps in process for the
// limiter; a longer wait (the steady window) goes back to the queue as a
// connectors.RetryAfter.
const maxLocalWait = 5 * time.Second

// pace waits until ep's burst and steady windows let one more call go.
func (c *Client) pace(ctx context.Context, ep endpoint) error {
	p := connectors.Pacer{Limiter: c.Limiter, MaxWait: maxLocalWait, Now: c.now, Sleep: c.sleep}
	for _, w := range []struct {
		suffix string
		r      connectors.Rate
	}{{"/s", ep.burst}, {"/m", ep.steady}} {
		if err := p.Take(ctx, c.LimitKey+"/"+ep.key+w.suffix, w.r, "Klaviyo's documented limit for "+ep.key); err != nil {
			return err
		}
	}
	return nil
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
// documents no escape for a double quote or backslash inside one
// (https://developers.klaviyo.com/en/docs/filtering_), and a control
// character has no place in an email or E.164 number.
func filterValue(v string) bool {
	if v == "" || len(v) > 512 {
		return false
	}
	for _, r := range v {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// quoted is v as a filter's string argument; v passed filterValue. It is
// not Go's %q, whose escapes Klaviyo does not read.
func quoted(v string) string { return `"` + v + `"` }

// List calls GET path?query and every page after it (links.next), handing
// each resource's JSON to fn. A links.next is followed only when it names
// the same scheme, host and path as the listing (JSON:API cursor
// pagination: https://developers.klaviyo.com/en/docs/json_api_feature_guides),
// so that neither the key nor a call goes anywhere else.
func (c *Client) List(ctx context.Context, ep endpoint, path string, query url.Values, fn func(json.RawMessage) error) error {
	first := strings.TrimSuffix(c.Base, "/") + path
	if len(query) > 0 {
		first += "?" + query.Encode()
	}
	want, err := url.Parse(first)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("GET %s: bad request URL", path))
	}
	next := first
	for n := 0; next != ""; n++ {
		if n == maxPages {
			return connectors.Permanent(fmt.Errorf("GET %s: more than %d pages", path, maxPages))
		}
		u, err := url.Parse(next)
		if err != nil || u.Scheme != want.Scheme || u.Host != want.Host || u.EscapedPath() != want.EscapedPath() || u.User != nil {
			return connectors.Permanent(fmt.Errorf("GET %s: links.next points away from %s%s", path, c.Base, path))
		}
		var p page
		if err := c.do(ctx, ep, http.MethodGet, u.String(), nil, &p); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		for _, d := range p.Data {
			if err := fn(d); err != nil {
				return err
			}
		}
		if p.Links.Next == next {
			return connectors.Permanent(fmt.Errorf("GET %s: links.next repeats the page just read", path))
		}
		next = p.Links.Next
	}
	return nil
}

// profilePageSize is the page[size] of a profile look-up: Klaviyo's
// largest (get_profiles: default 20, max 100).
const profilePageSize = 100

// Profiles hands every profile whose field (email or phone_number) equals
// value to fn: GET /api/profiles?filter=equals(field,"value"), every page.
func (c *Client) Profiles(ctx context.Context, field, value string, fn func(json.RawMessage) error) error {
	if !filterValue(value) {
		return nil
	}
	q := url.Values{
		"filter":                     {"equals(" + field + "," + quoted(value) + ")"},
		"additional-fields[profile]": {"subscriptions"},
		"page[size]":                 {strconv.Itoa(profilePageSize)},
	}
	return c.List(ctx, epProfiles, "/api/profiles", q, fn)
}

// Events hands every event of the profile to fn: GET
// /api/events?filter=equals(profile_id,"id") (up to 200 a page, the
// documented maximum, which is also its default).
func (c *Client) Events(ctx context.Context, profileID string, fn func(json.RawMessage) error) error {
	if !idPattern.MatchString(profileID) {
		return connectors.Permanent(errors.New("GET /api/events: not a profile id"))
	}
	q := url.Values{"filter": {"equals(profile_id," + quoted(profileID) + ")"}}
	return c.List(ctx, epEvents, "/api/events", q, fn)
}

// ProfileExists reads GET /api/profiles/{id}: false once Klaviyo answers
// 404.
func (c *Client) ProfileExists(ctx context.Context, id string) (bool, error) {
	if !idPattern.MatchString(id) {
		return false, connectors.Permanent(errors.New("GET /api/profiles/{id}: not a profile id"))
	}
	var out struct{ Data Resource }
	err := c.do(ctx, epProfiles, http.MethodGet, c.url("/api/profiles/"+url.PathEscape(id)), nil, &out)
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
	if !idPattern.MatchString(profileID) {
		return nil, connectors.Permanent(errors.New("GET /api/profiles/{id}/relationships/lists: not a profile id"))
	}
	in := map[string]bool{}
	err := c.List(ctx, epProfileLists, "/api/profiles/"+url.PathEscape(profileID)+"/relationships/lists", nil, func(r json.RawMessage) error {
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

// RequestDeletion files a data-privacy deletion job for every profile
// whose field (email, phone_number or id) equals value: POST
// /api/data-privacy-deletion-jobs. Klaviyo takes exactly one identifier
// and deletes "all profiles that match" it; it answers 202 with no body
// and deletes later, and documents no way to read the job
// (https://developers.klaviyo.com/en/v2024-10-15/reference/request_profile_deletion;
// the body is DataPrivacyCreateDeletionJobQuery of revision 2024-10-15:
// data.attributes.profile.data is {type: profile, id?, attributes:
// {email?, phone_number?}}, attributes required).
func (c *Client) RequestDeletion(ctx context.Context, field, value string) error {
	pd := map[string]any{"type": "profile", "attributes": map[string]any{}}
	switch field {
	case "id":
		pd["id"] = value
	case "email", "phone_number":
		pd["attributes"] = map[string]any{field: value}
	default:
		return connectors.Permanent(fmt.Errorf("a deletion by %q: Klaviyo deletes by email, phone_number or id", field))
	}
	body := map[string]any{"data": map[string]any{
		"type":       "data-privacy-deletion-job",
		"attributes": map[string]any{"profile": map[string]any{"data": pd}},
	}}
	if err := c.post(ctx, epDeletion, "/api/data-privacy-deletion-jobs", body); err != nil {
		return fmt.Errorf("POST /api/data-privacy-deletion-jobs (by %s): %w", field, err)
	}
	return nil
}

// maxJobProfiles is the most profiles one bulk suppression or unsubscribe
// job takes (bulk_suppress_profiles: "Email address per request limit:
// 100"; bulk_unsubscribe_profiles: "Maximum number of profile can be
// submitted for unsubscription: 100").
const maxJobProfiles = 100

// Suppress files bulk suppression jobs for the emails, 100 a job: POST
// /api/profile-suppression-bulk-create-jobs (body: data.attributes.profiles.data[]
// of {type: profile, attributes: {email}}).
func (c *Client) Suppress(ctx context.Context, emails []string) error {
	for batch := range slices.Chunk(emails, maxJobProfiles) {
		profiles := make([]any, 0, len(batch))
		for _, e := range batch {
			profiles = append(profiles, map[string]any{"type": "profile", "attributes": map[string]any{"email": e}})
		}
		body := map[string]any{"data": map[string]any{
			"type":       "profile-suppression-bulk-create-job",
			"attributes": map[string]any{"profiles": map[string]any{"data": profiles}},
		}}
		if err := c.post(ctx, epSuppress, "/api/profile-suppression-bulk-create-jobs", body); err != nil {
			return fmt.Errorf("POST /api/profile-suppression-bulk-create-jobs: %w", err)
		}
	}
	return nil
}

// Unsubscribe files bulk unsubscribe jobs, 100 profiles a job, that
// withdraw the emails' email-marketing consent and take them off list
// listID: POST /api/profile-subscription-bulk-delete-jobs (body:
// data.attributes.profiles.data[] of {type: profile, attributes: {email,
// subscriptions.email.marketing.consent: UNSUBSCRIBED}}, and
// data.relationships.list).
func (c *Client) Unsubscribe(ctx context.Context, emails []string, listID string) error {
	for batch := range slices.Chunk(emails, maxJobProfiles) {
		profiles := make([]any, 0, len(batch))
		for _, e := range batch {
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
		if err := c.post(ctx, epUnsubscribe, "/api/profile-subscription-bulk-delete-jobs", body); err != nil {
			return fmt.Errorf("POST /api/profile-subscription-bulk-delete-jobs (list %s): %w", listID, err)
		}
	}
	return nil
}

func (c *Client) url(path string) string { return strings.TrimSuffix(c.Base, "/") + path }

func (c *Client) post(ctx context.Context, ep endpoint, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return connectors.Permanent(err)
	}
	return c.do(ctx, ep, http.MethodPost, c.url(path), b, nil)
}

// maxBody bounds what is read of an answer; a longer one is refused.
const maxBody = 8 << 20

// errRedirect refuses every redirect: the key is never sent on, and a
// write is never repeated elsewhere.
var errRedirect = errors.New("redirect refused")

// do makes one call to u, paced by ep's limits, and decodes a 2xx body
// into out (when not nil and the body is not empty). Its errors are as
// the worker needs them: a 429 is a connectors.RetryAfter, 5xx and the
// network transient, a 404 errNotFound, other answers (a 3xx included:
// redirects are not followed) permanent. No error quotes the URL (its
// filter quotes the subject) or the body's detail, which may quote the
// profile.
func (c *Client) do(ctx context.Context, ep endpoint, method, u string, body []byte, out any) error {
	if err := c.pace(ctx, ep); err != nil {
		return err
	}
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
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if len(data) > maxBody {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return connectors.Permanent(fmt.Errorf("Klaviyo answered %d with a body over %d bytes", resp.StatusCode, maxBody))
		}
		data = nil // an error's status says enough
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return connectors.Permanent(fmt.Errorf("Klaviyo answered %d %s: %w", resp.StatusCode, http.StatusText(resp.StatusCode), errRedirect))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil && len(bytes.TrimSpace(data)) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return connectors.Permanent(errors.New("the answer is not the documented JSON:API"))
			}
		}
		return nil
	}
	return statusError(resp, data, time.Now())
}

// apiError is Klaviyo's error body (components/responses ClientError
// and ServerError of the 2024-10-15 OpenAPI document).
type apiError struct {
	Errors []struct {
		ID     string `json:"id"`
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
