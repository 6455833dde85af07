// Package braze is the connector type for Braze, the customer engagement
// platform, through its REST API (https://www.braze.com/docs/api/basics/):
//
//   - access: the subject's user profiles, found with POST /users/export/ids
//     (https://www.braze.com/docs/api/endpoints/export/user_data/post_users_identifier/),
//     by up to 50 external_ids or user_aliases a call, or one braze_id,
//     email_address or phone a call;
//   - erasure: those profiles deleted with POST /users/delete
//     (https://www.braze.com/docs/api/endpoints/user_data/post_user_delete/)
//     by their braze_ids, up to 50 a call. Braze's deletion cannot be
//     undone. Braze also deletes by email_addresses or phone_numbers, but
//     only with a prioritization that picks one profile, and deletes none
//     when several match it; looking the profiles up first deletes every
//     profile that holds the address, and lets a second erasure find
//     nothing and report 0;
//   - opt-out: the email subscription state of the subject's addresses set
//     to unsubscribed with POST /email/status
//     (https://www.braze.com/docs/api/endpoints/email/post_email_subscription_status/),
//     and their profiles unsubscribed from the subscription groups the file
//     names, GET /subscription/status/get then POST
//     /v2/subscription/status/set
//     (https://www.braze.com/docs/api/endpoints/subscription_groups/post_update_user_subscription_group_status_v2/).
//
// Calls carry the REST API key as a Bearer token. A 429 is answered with
// connectors.RetryAfter, as long as Retry-After says, or else until
// X-RateLimit-Reset (https://www.braze.com/docs/api/api_limits/); 401, 403
// and other 4xx are permanent; 5xx and network failures are retried. Error
// bodies are {"message": ..., "errors": [...]}
// (https://www.braze.com/docs/api/errors/); their message is quoted with
// the subject's identifiers blanked out. docs/connectors/braze.md describes
// the settings and the API key's permissions.
package braze

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// Connector is a configured braze connector. Its methods are safe for
// concurrent use.
type Connector struct {
	name       string
	base       string
	key        string
	match      []rule
	matchKinds map[string]string
	actions    map[connectors.Action]bool
	fields     []string
	optEmail   bool
	groups     []string
	exportRate connectors.Rate
	timeout    time.Duration

	client  *http.Client
	limiter connectors.Limiter
	log     *slog.Logger
	now     func() time.Time
}

// rule says that identities of kind are Braze identifiers id.
type rule struct{ kind, id string }

var (
	_ connectors.Exporter = (*Connector)(nil)
	_ connectors.Eraser   = (*Connector)(nil)
	_ connectors.OptOuter = (*Connector)(nil)
	_ connectors.Scoped   = (*Connector)(nil)
)

var groupPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,127}$`)

// BatchSize is the most identifiers Braze takes in one call of
// /users/export/ids (external_ids, user_aliases), /users/delete,
// /email/status and the subscription endpoints.
const BatchSize = 50

// The collections the actions report.
const (
	CollectionUsers = "users"
	CollectionEmail = "email_subscribe"
	// GroupPrefix and a subscription group's id name that group.
	GroupPrefix = "subscription_group:"
)

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the connector does a.
func (c *Connector) Handles(a connectors.Action) bool { return c.actions[a] }

// Export writes the subject's profiles, as /users/export/ids returns them,
// to collection users.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	users, searched, err := c.lookup(ctx, s, c.fields)
	if err != nil {
		return res, err
	}
	if !searched {
		res.NotSearched(CollectionUsers, c.kinds())
		return res, nil
	}
	for _, u := range users {
		if err := out.WriteRecord(ctx, CollectionUsers, u.raw); err != nil {
			return connectors.Result{}, fmt.Errorf("braze %s: write record: %w", c.name, err)
		}
	}
	res.Searched(c.searched(s, CollectionUsers, "exported", int64(len(users))))
	return res, nil
}

// lookupFields are what erasure and opt-out need of a profile.
var lookupFields = []string{"braze_id", "external_id", "email", "email_subscribe"}

// Erase deletes the subject's profiles by their braze_ids, at most
// BatchSize a call. Braze queues the deletion and cannot undo it.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	users, searched, err := c.lookup(ctx, s, lookupFields)
	if err != nil {
		return res, err
	}
	if !searched {
		res.NotSearched(CollectionUsers, c.kinds())
		return res, nil
	}
	s = withFound(s, users) // Braze's messages about them are redacted
	var ids []string
	for _, u := range users {
		if u.BrazeID != "" {
			ids = append(ids, u.BrazeID)
		}
	}
	var deleted int64
	for batch := range slices.Chunk(ids, BatchSize) {
		var ans struct {
			Deleted *int64 `json:"deleted"`
		}
		if err := c.call(ctx, s, http.MethodPost, "/users/delete", nil, map[string]any{"braze_ids": batch}, &ans); err != nil {
			return connectors.Result{}, err
		}
		n := int64(len(batch)) // no count: Braze queued the call itself (202, during maintenance)
		if ans.Deleted != nil {
			n = min(max(*ans.Deleted, 0), n)
		}
		deleted += n
	}
	c.logger().InfoContext(ctx, "braze erased", "profiles", deleted)
	res.Searched(c.searched(s, CollectionUsers, "deleted", deleted))
	return res, nil
}

// OptOut unsubscribes the subject: their email addresses (Braze keeps the
// state of an address no profile holds yet, and applies it to the profile
// that gets it) and their profiles' subscription groups. It reports the
// profiles whose state it changed.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	users, _, err := c.lookup(ctx, s, lookupFields)
	if err != nil {
		return res, err
	}
	// The profiles' own addresses and ids are the subject's too: Braze's
	// messages about them are redacted like the subject's identities.
	s = withFound(s, users)
	if c.optEmail {
		emails := s.Values("email")
		var changed int64
		for _, u := range users {
			if u.Email != "" && !slices.Contains(emails, u.Email) {
				emails = append(emails, u.Email)
			}
			if u.Email != "" && u.EmailSubscribe != "unsubscribed" {
				changed++
			}
		}
		for batch := range slices.Chunk(emails, BatchSize) {
			body := map[string]any{"email": batch, "subscription_state": "unsubscribed"}
			if err := c.call(ctx, s, http.MethodPost, "/email/status", nil, body, nil); err != nil {
				return connectors.Result{}, err
			}
		}
		res.Add(CollectionEmail, "set", changed)
	}
	var external []string
	for _, u := range users {
		if u.ExternalID != "" && !slices.Contains(external, u.ExternalID) {
			external = append(external, u.ExternalID)
		}
	}
	for _, g := range c.groups {
		n, err := c.unsubscribe(ctx, s, g, external)
		if err != nil {
			return connectors.Result{}, err
		}
		res.Add(GroupPrefix+g, "set", n)
	}
	return res, nil
}

// withFound returns s with, as extra identities, the emails, external ids
// and braze_ids of the profiles found for it, so that errors that quote
// them are redacted (see redact).
func withFound(s connectors.Subject, users []user) connectors.Subject {
	ids := slices.Clone(s.Identities)
	for _, u := range users {
		for _, v := range []string{u.Email, u.ExternalID, u.BrazeID} {
			if v != "" {
				ids = append(ids, connectors.Identity{Kind: "braze_profile", Value: v})
			}
		}
	}
	s.Identities = ids
	return s
}

// unsubscribe unsubscribes the profiles of external ids from group g, those
// not unsubscribed already, and returns how many it changed.
func (c *Connector) unsubscribe(ctx context.Context, s connectors.Subject, g string, external []string) (int64, error) {
	var n int64
	for batch := range slices.Chunk(external, BatchSize) {
		q := url.Values{"subscription_group_id": {g}, "external_id[]": batch}
		var ans struct {
			Status map[string]string `json:"status"`
		}
		if err := c.call(ctx, s, http.MethodGet, "/subscription/status/get", q, nil, &ans); err != nil {
			return 0, err
		}
		var set []string
		for _, id := range batch {
			if !strings.EqualFold(ans.Status[id], "unsubscribed") {
				set = append(set, id)
			}
		}
		if len(set) == 0 {
			continue
		}
		body := map[string]any{"subscription_groups": []map[string]any{{
			"subscription_group_id": g, "subscription_state": "unsubscribed", "external_ids": set,
		}}}
		if err := c.call(ctx, s, http.MethodPost, "/v2/subscription/status/set", nil, body, nil); err != nil {
			return 0, err
		}
		n += int64(len(set))
	}
	return n, nil
}

// kinds are the identity kinds the connector matches on, sorted.
func (c *Connector) kinds() []string {
	kinds, _ := connectors.MatchKinds(c.matchKinds, connectors.Subject{})
	return kinds
}

func (c *Connector) searched(s connectors.Subject, name, outcome string, n int64) connectors.CollectionResult {
	kinds, known := connectors.MatchKinds(c.matchKinds, s)
	return connectors.CollectionResult{Name: name, Outcome: outcome, Records: n, MatchKinds: kinds, KindsKnown: known}
}

// user is one profile /users/export/ids returned.
type user struct {
	BrazeID        string `json:"braze_id"`
	ExternalID     string `json:"external_id"`
	Email          string `json:"email"`
	EmailSubscribe string `json:"email_subscribe"`
	raw            json.RawMessage
}

// lookup finds the subject's profiles with /users/export/ids, asking for
// fields, each profile once, sorted by braze_id. searched is false when the
// subject has no identity of a kind the connector matches on.
func (c *Connector) lookup(ctx context.Context, s connectors.Subject, fields []string) (users []user, searched bool, err error) {
	var bodies []map[string]any
	for _, r := range c.match {
		vals := s.Values(r.kind)
		if len(vals) == 0 {
			continue
		}
		searched = true
		switch {
		case r.id == IDExternal:
			for batch := range slices.Chunk(vals, BatchSize) {
				bodies = append(bodies, map[string]any{"external_ids": batch})
			}
		case strings.HasPrefix(r.id, IDAliasPrefix):
			label := strings.TrimPrefix(r.id, IDAliasPrefix)
			for batch := range slices.Chunk(vals, BatchSize) {
				aliases := make([]map[string]string, len(batch))
				for i, v := range batch {
					aliases[i] = map[string]string{"alias_name": v, "alias_label": label}
				}
				bodies = append(bodies, map[string]any{"user_aliases": aliases})
			}
		default: // one identifier a call
			key := map[string]string{IDEmail: "email_address", IDPhone: "phone", IDBraze: "braze_id"}[r.id]
			for _, v := range vals {
				bodies = append(bodies, map[string]any{key: v})
			}
		}
	}
	seen := map[string]bool{}
	for _, body := range bodies {
		body["fields_to_export"] = fields
		if err := c.pace(ctx); err != nil {
			return nil, searched, err
		}
		var ans struct {
			Message string            `json:"message"`
			Users   []json.RawMessage `json:"users"`
		}
		if err := c.call(ctx, s, http.MethodPost, "/users/export/ids", nil, body, &ans); err != nil {
			return nil, searched, err
		}
		if ans.Message != "success" {
			return nil, searched, fmt.Errorf("braze %s: /users/export/ids answered %q, not success (Braze queues calls during maintenance): try again", c.name, redact(ans.Message, s))
		}
		for _, raw := range ans.Users {
			var u user
			if err := json.Unmarshal(raw, &u); err != nil {
				return nil, searched, connectors.Permanent(fmt.Errorf("braze %s: /users/export/ids: a user is not the JSON object expected", c.name))
			}
			id := u.BrazeID
			if id == "" {
				id = "raw:" + string(raw)
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			u.raw = raw
			users = append(users, u)
		}
	}
	sort.Slice(users, func(i, j int) bool { return users[i].BrazeID < users[j].BrazeID })
	return users, searched, nil
}

// pace counts one call to /users/export/ids against export_rate, shared by
// every worker process through the limiter.
func (c *Connector) pace(ctx context.Context) error {
	if c.limiter == nil || c.exportRate.IsZero() {
		return nil
	}
	wait, err := c.limiter.Take(ctx, c.name+"/users/export/ids", c.exportRate)
	if err != nil {
		return fmt.Errorf("braze %s: pacing /users/export/ids: %w", c.name, err)
	}
	if wait > 0 {
		return connectors.RetryAfter(wait, fmt.Errorf("braze %s: export_rate (%s) of /users/export/ids spent", c.name, c.exportRate))
	}
	return nil
}

// maxAnswer bounds the body of an answer (an export of 50 full profiles).
const maxAnswer = 64 << 20

// call sends one request and decodes a 2xx answer's JSON into out (when
// not nil). Its errors name the path and status, never the identifiers of
// s, and are as the worker needs them (see statusError).
func (c *Connector) call(ctx context.Context, s connectors.Subject, method, path string, q url.Values, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("braze %s: %s: %w", c.name, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("braze %s: %s: %w", c.name, path, unwrapURLError(err)))
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dsar-braze/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("braze %s: %s %s: %w", c.name, method, path, unwrapURLError(err)) // the network: transient
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		c.logger().WarnContext(ctx, "braze refused", "path", path, "status", resp.StatusCode)
		return c.statusError(path, resp, s)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fmt.Errorf("braze %s: %s: reading the answer: %w", c.name, path, err)
	}
	if len(data) > maxAnswer {
		return connectors.Permanent(fmt.Errorf("braze %s: %s: the answer is over %d bytes", c.name, path, maxAnswer))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return connectors.Permanent(fmt.Errorf("braze %s: %s: the answer is not the JSON expected", c.name, path))
	}
	return nil
}

// apiError is Braze's error body.
type apiError struct {
	Message string `json:"message"`
	Errors  []any  `json:"errors"`
}

// statusError is the error of an answer that is not 2xx: RetryAfter for a
// 429, transient for 408 and 5xx, permanent for the rest (401: the key is
// unknown; 403: it lacks the endpoint's permission, or the plan does not
// include it; 400, 404, redirects).
func (c *Connector) statusError(path string, resp *http.Response, s connectors.Subject) error {
	code := resp.StatusCode
	var e apiError
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(data, &e)
	msg := fmt.Sprintf("braze %s: %s: Braze answered %d %s", c.name, path, code, http.StatusText(code))
	if m := redact(e.Message, s); m != "" {
		msg += ": " + m
	}
	if len(e.Errors) > 0 {
		msg += fmt.Sprintf(" (errors listed: %d)", len(e.Errors))
	}
	err := errors.New(msg)
	switch {
	case code == http.StatusTooManyRequests:
		return connectors.RetryAfter(retryDelay(resp.Header, c.now()), err)
	case code == http.StatusServiceUnavailable:
		if d, ok := connectors.RetryAfterHeader(resp.Header.Get("Retry-After"), c.now()); ok {
			return connectors.RetryAfter(d, err)
		}
		return err
	case code == http.StatusRequestTimeout || code >= 500:
		return err
	default:
		return connectors.Permanent(err)
	}
}

// retryDelay is how long a 429 asks to wait: Retry-After, else until
// X-RateLimit-Reset (UTC epoch seconds), else a minute (Braze's limits are
// mostly per minute).
func retryDelay(h http.Header, now time.Time) time.Duration {
	if d, ok := connectors.RetryAfterHeader(h.Get("Retry-After"), now); ok {
		return d
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64); err == nil && n > 0 {
		return min(max(time.Unix(n, 0).Sub(now), connectors.MinRetryAfter), connectors.MaxRetryAfter)
	}
	return time.Minute
}

// maxMessage bounds the part of Braze's message an error quotes.
const maxMessage = 200

// redact returns Braze's message m, shortened, with every identifier of s
// blanked out: messages may quote what the call sent.
func redact(m string, s connectors.Subject) string {
	for _, id := range s.Identities {
		if id.Value != "" { // case-insensitively: Braze may quote an address lower-cased
			m = regexp.MustCompile("(?i)"+regexp.QuoteMeta(id.Value)).ReplaceAllLiteralString(m, "[redacted]")
		}
	}
	if len(m) > maxMessage {
		m = m[:maxMessage] + "..."
	}
	return strings.ToValidUTF8(m, "")
}

// unwrapURLError drops the *url.Error's own wording: its URL may carry
// identifiers in the query.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (c *Connector) logger() *slog.Logger {
	if c.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.log
}
