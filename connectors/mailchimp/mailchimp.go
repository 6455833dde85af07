// Package mailchimp is the connector for Mailchimp audiences, through the
// Marketing API 3.0. It finds a person in every configured audience (list)
// by the subscriber hash of their email (the MD5 of its lower-case form),
// and:
//
//   - export: the member, their tags and their activity feed;
//   - erase: POST /lists/{list}/members/{hash}/actions/delete-permanent (a
//     DELETE only archives the member; a permanent deletion cannot be
//     undone, and Mailchimp then refuses to re-import the address);
//   - opt_out: the member unsubscribed (PATCH status) and the tags the
//     segments are built on removed (POST …/tags, status inactive).
//
// A 404 for a member means Mailchimp holds nothing of them in that
// audience: every action then reports 0 records, so a second erasure is a
// no-op. The key is sent as HTTP basic auth (any user, the key as
// password) or as a bearer token, to https://<dc>.api.mailchimp.com/3.0,
// <dc> being the key's suffix (…-us21). Mailchimp allows an account 10
// simultaneous connections: the connectors of one process that share a key
// make at most MaxConcurrent calls at once; across processes, the jobs'
// max_concurrency bounds them (a job makes one call at a time; see
// docs/connectors/mailchimp.md). Errors are problem documents
// ({type, title, status, detail, instance}); a 429 is a
// connectors.RetryAfter. Lists are paged with count and offset.
//
// The vendor's documentation:
//
//   - https://mailchimp.com/developer/marketing/docs/fundamentals/ (authentication, data centers, pagination, throttling)
//   - https://mailchimp.com/developer/marketing/docs/errors/ (error bodies and codes)
//   - https://mailchimp.com/developer/marketing/docs/methods-parameters/ (subscriber hash, count and offset)
//   - https://mailchimp.com/developer/marketing/api/list-members/ (get, update, delete-permanent)
//   - https://mailchimp.com/developer/marketing/api/list-member-tags/
//   - https://mailchimp.com/developer/marketing/api/list-member-activity-feed/
//
// docs/connectors/mailchimp.md describes the settings and what each action
// does in Mailchimp.
package mailchimp

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// MaxConcurrent is the most calls the connectors of one process sharing an
// API key (and base URL) make at once: Mailchimp's limit of simultaneous
// connections per account. It is counted per process only: the shared
// connectors.Limiter counts calls per period, not calls in flight.
const MaxConcurrent = 10

// PageSize is the count asked for per page; Mailchimp's maximum is 1000.
const PageSize = 1000

// maxBody bounds one answer's body.
const maxBody = 16 << 20

// Connector is a configured mailchimp connector. Its methods are safe for
// concurrent use.
type Connector struct {
	name        string
	base        string
	authHeader  string
	lists       []string
	segmentTags []string
	actions     map[connectors.Action]bool
	timeout     time.Duration
	client      *http.Client
	sem         chan struct{}
	log         *slog.Logger
}

var (
	_ connectors.Exporter      = (*Connector)(nil)
	_ connectors.Eraser        = (*Connector)(nil)
	_ connectors.OptOuter      = (*Connector)(nil)
	_ connectors.Scoped        = (*Connector)(nil)
	_ connectors.Checker       = (*Connector)(nil)
	_ connectors.SegmentLister = (*Connector)(nil)
)

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the file lets the connector do a.
func (c *Connector) Handles(a connectors.Action) bool { return c.actions[a] }

// SubscriberHash is Mailchimp's id of a member: the hex MD5 of the
// lower-case email address.
func SubscriberHash(email string) string {
	sum := md5.Sum([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// semaphores holds one semaphore per account (base URL and credentials),
// shared by every connector of the process that uses it.
var semaphores sync.Map

func semaphore(base, authHeader string) chan struct{} {
	k := sha256.Sum256([]byte(base + "\x00" + authHeader))
	s, _ := semaphores.LoadOrStore(hex.EncodeToString(k[:]), make(chan struct{}, MaxConcurrent))
	return s.(chan struct{})
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// Collection names: "<list>/members", "<list>/tags", "<list>/activity".
func members(list string) string  { return list + "/members" }
func tags(list string) string     { return list + "/tags" }
func activity(list string) string { return list + "/activity" }

// emails returns the subject's distinct emails, as Mailchimp matches them
// (case-insensitively).
func emails(s connectors.Subject) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range s.Values("email") {
		h := SubscriberHash(e)
		if e != "" && !seen[h] {
			seen[h] = true
			out = append(out, e)
		}
	}
	return out
}

// notSearched lists every collection as not searched (no email known).
func (c *Connector) notSearched(colls ...func(string) string) connectors.Result {
	var r connectors.Result
	for _, l := range c.lists {
		for _, coll := range colls {
			r.NotSearched(coll(l), []string{"email"})
		}
	}
	return r
}

// Export writes, per audience, the subject's member record, then their
// tags, then their activity feed.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	es := emails(s)
	if len(es) == 0 {
		return c.notSearched(members, tags, activity), nil
	}
	var res connectors.Result
	for _, list := range c.lists {
		var found []string // the emails of the members found, as Mailchimp holds them
		var n int64
		for _, e := range es {
			var m map[string]any
			ok, err := c.member(ctx, list, e, &m)
			if err != nil {
				return connectors.Result{}, err
			}
			if !ok {
				continue
			}
			delete(m, "_links")
			if err := out.WriteRecord(ctx, members(list), m); err != nil {
				return connectors.Result{}, err
			}
			n++
			addr, _ := m["email_address"].(string)
			if addr == "" {
				addr = e
			}
			found = append(found, addr)
		}
		res.Searched(searched(members(list), n))
		for _, f := range []struct {
			coll, path, key string
		}{{tags(list), "/tags", "tags"}, {activity(list), "/activity-feed", "activity"}} {
			var n int64
			for _, e := range found {
				err := c.pages(ctx, memberPath(list, e)+f.path, nil, f.key, func(item map[string]any) error {
					item["email_address"] = e
					item["list_id"] = list
					delete(item, "_links")
					n++
					return out.WriteRecord(ctx, f.coll, item)
				})
				if err != nil && !notFound(err) { // 404: erased meanwhile
					return connectors.Result{}, err
				}
			}
			res.Searched(searched(f.coll, n))
		}
	}
	return res, nil
}

func searched(coll string, n int64) connectors.CollectionResult {
	return connectors.CollectionResult{Name: coll, Outcome: "exported", Records: n, MatchKinds: []string{"email"}, KindsKnown: []string{"email"}}
}

// Erase deletes the subject's member permanently from every audience, with
// their tags, activity and merge fields; an audience that holds no member
// by their email counts 0.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	es := emails(s)
	if len(es) == 0 {
		return c.notSearched(members), nil
	}
	var res connectors.Result
	for _, list := range c.lists {
		var n int64
		for _, e := range es {
			err := c.call(ctx, http.MethodPost, memberPath(list, e)+"/actions/delete-permanent", nil, nil, nil, http.StatusNoContent)
			switch {
			case notFound(err):
			case err != nil:
				return connectors.Result{}, err
			default:
				n++
			}
		}
		c.logger().InfoContext(ctx, "mailchimp erase", "list", list, "deleted", n)
		res.Searched(connectors.CollectionResult{Name: members(list), Outcome: "deleted", Records: n, MatchKinds: []string{"email"}, KindsKnown: []string{"email"}})
	}
	return res, nil
}

// OptOut unsubscribes the subject's member (subscribed or pending) in
// every audience and removes their segment tags (all their tags when the
// file names none). A member already unsubscribed and without such tags
// counts 0.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	es := emails(s)
	if len(es) == 0 {
		return c.notSearched(members, tags), nil
	}
	var res connectors.Result
	for _, list := range c.lists {
		var unsubscribed, removed int64
		for _, e := range es {
			var m struct {
				Status string `json:"status"`
				Tags   []struct {
					Name string `json:"name"`
				} `json:"tags"`
			}
			ok, err := c.member(ctx, list, e, &m)
			if err != nil {
				return connectors.Result{}, err
			}
			if !ok {
				continue
			}
			if m.Status == "subscribed" || m.Status == "pending" {
				var after struct {
					Status string `json:"status"`
				}
				err := c.call(ctx, http.MethodPatch, memberPath(list, e), nil, map[string]string{"status": "unsubscribed"}, &after, http.StatusOK)
				if notFound(err) {
					continue // deleted meanwhile
				}
				if err != nil {
					return connectors.Result{}, err
				}
				if after.Status != "unsubscribed" { // the answer is the member as it now is
					return connectors.Result{}, connectors.Permanent(fmt.Errorf("mailchimp %s: audience %s: the answer to the unsubscribe shows the member %q, not unsubscribed", c.name, list, after.Status))
				}
				unsubscribed++
			}
			type tagStatus struct {
				Name   string `json:"name"`
				Status string `json:"status"`
			}
			var drop []tagStatus
			for _, t := range m.Tags {
				if len(c.segmentTags) == 0 || slices.Contains(c.segmentTags, t.Name) {
					drop = append(drop, tagStatus{t.Name, "inactive"})
				}
			}
			if len(drop) == 0 {
				continue
			}
			err = c.call(ctx, http.MethodPost, memberPath(list, e)+"/tags", nil, map[string]any{"tags": drop}, nil, http.StatusNoContent)
			if notFound(err) {
				continue
			}
			if err != nil {
				return connectors.Result{}, err
			}
			removed += int64(len(drop))
		}
		c.logger().InfoContext(ctx, "mailchimp opt-out", "list", list, "unsubscribed", unsubscribed, "tags_removed", removed)
		known := []string{"email"}
		res.Searched(connectors.CollectionResult{Name: members(list), Outcome: "set", Records: unsubscribed, MatchKinds: known, KindsKnown: known})
		res.Searched(connectors.CollectionResult{Name: tags(list), Outcome: "pulled", Records: removed, MatchKinds: known, KindsKnown: known})
	}
	return res, nil
}

// Segments names the audiences: what an opt-out removes people from.
func (c *Connector) Segments() []string { return slices.Clone(c.lists) }

// EachSegmentMember calls fn for every subscribed or pending member of
// every audience, PageSize at a time, with their email. Members
// unsubscribed, cleaned or archived are not listed.
func (c *Connector) EachSegmentMember(ctx context.Context, fn func(segment string, member connectors.Subject) error) error {
	for _, list := range c.lists {
		for _, status := range []string{"subscribed", "pending"} {
			q := url.Values{"status": {status}, "fields": {"members.email_address,total_items"}}
			err := c.pages(ctx, "/lists/"+url.PathEscape(list)+"/members", q, "members", func(m map[string]any) error {
				e, _ := m["email_address"].(string)
				if e == "" {
					return nil
				}
				if err := fn(list, connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: e}}}); err != nil {
					return fmt.Errorf("mailchimp %s: audience %s: %w", c.name, list, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Check calls /ping (the key is accepted) and reads each audience (it
// exists and the key reaches it).
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	out := []connectors.Check{{What: "API key accepted (GET /ping)", Err: c.call(ctx, http.MethodGet, "/ping", nil, nil, nil)}}
	for _, l := range c.lists {
		q := url.Values{"fields": {"id,name"}}
		out = append(out, connectors.Check{What: "audience " + l, Err: c.call(ctx, http.MethodGet, "/lists/"+url.PathEscape(l), q, nil, nil)})
	}
	return out
}

func memberPath(list, email string) string {
	return "/lists/" + url.PathEscape(list) + "/members/" + SubscriberHash(email)
}

// member reads the member of list with email into out; false when
// Mailchimp holds none.
func (c *Connector) member(ctx context.Context, list, email string, out any) (bool, error) {
	err := c.call(ctx, http.MethodGet, memberPath(list, email), nil, nil, out)
	if notFound(err) {
		return false, nil
	}
	return err == nil, err
}

// pages reads a collection count and offset at a time and calls fn with
// each item of the array under key.
func (c *Connector) pages(ctx context.Context, path string, q url.Values, key string, fn func(map[string]any) error) error {
	for offset := 0; ; {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		qq.Set("count", strconv.Itoa(PageSize))
		qq.Set("offset", strconv.Itoa(offset))
		var page map[string]json.RawMessage
		if err := c.call(ctx, http.MethodGet, path, qq, nil, &page); err != nil {
			return err
		}
		var items []map[string]any
		if raw, ok := page[key]; ok {
			if err := json.Unmarshal(raw, &items); err != nil {
				return fmt.Errorf("mailchimp %s: reading %s: %w", c.name, key, err)
			}
		}
		var total int
		_ = json.Unmarshal(page["total_items"], &total)
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		offset += len(items)
		if len(items) == 0 || offset >= total {
			return nil
		}
	}
}

// Problem is Mailchimp's error body (a problem document); Detail may name
// the member and is never put in an error.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance"`
}

// apiError is an answer other than 2xx.
type apiError struct {
	op     string
	status int
	title  string
	id     string // Mailchimp's instance id, for its support
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%s: Mailchimp answered %d", e.op, e.status)
	if e.title != "" {
		msg += " " + e.title
	}
	if e.id != "" {
		msg += " (instance " + e.id + ")"
	}
	return msg
}

func notFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == http.StatusNotFound
}

// DefaultRetryAfter is the pause asked for after a 429 without
// Retry-After.
const DefaultRetryAfter = 30 * time.Second

// call makes one API call, at most MaxConcurrent at once per account, and
// decodes a 2xx answer's body into out (when not nil). want, when given,
// are the only codes Mailchimp documents for the call's success (a write's:
// 204 for delete-permanent): another 2xx, such as a proxy's HTML page, is
// then a permanent error naming it, for whether the write took effect is
// unknown. Its errors are as the worker needs them: 401 and 403 and other
// 4xx connectors.Permanent (a 404 too: callers that expect it test
// notFound), 429 a connectors.RetryAfter, network errors and 5xx
// transient. They name the audience, never the member.
func (c *Connector) call(ctx context.Context, method, path string, q url.Values, body, out any, want ...int) error {
	op := "mailchimp " + c.name + ": " + method + " " + redact(path)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for a connection slot: %w", op, ctx.Err())
	}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout) // the call itself, not the wait for a slot
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return connectors.Permanent(fmt.Errorf("%s: %w", op, err))
	}
	req.Header.Set("Authorization", c.authHeader)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dsar-mailchimp/1")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text quotes the URL, and so the member's hash
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%s: reading the answer: %w", op, err)
	}
	if len(data) > maxBody {
		return connectors.Permanent(fmt.Errorf("%s: answer longer than %d bytes", op, maxBody))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if len(want) > 0 && !slices.Contains(want, resp.StatusCode) {
			c.logger().WarnContext(ctx, "mailchimp answered an undocumented status", "method", method, "status", resp.StatusCode)
			return connectors.Permanent(fmt.Errorf("%s: Mailchimp answered %d %s, not the documented %d %s: whether it took effect is unknown",
				op, resp.StatusCode, http.StatusText(resp.StatusCode), want[0], http.StatusText(want[0])))
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s: reading the answer: %w", op, err)
			}
		}
		return nil
	}
	var p Problem
	_ = json.Unmarshal(data, &p)
	ae := &apiError{op: op, status: resp.StatusCode, title: p.Title, id: p.Instance}
	c.logger().WarnContext(ctx, "mailchimp refused", "method", method, "status", resp.StatusCode, "title", p.Title, "instance", p.Instance)
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests:
		return connectors.RetryAfter(retryAfter(resp.Header.Get("Retry-After"), time.Now()), ae)
	case code == http.StatusServiceUnavailable:
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return connectors.RetryAfter(d, ae)
		}
		return ae
	case code == http.StatusRequestTimeout || code >= 500:
		return ae
	default: // 400, 401 (API key invalid), 403, 404, 405, 414, 422...
		return connectors.Permanent(ae)
	}
}

// redact replaces a subscriber hash in path with "{hash}".
func redact(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if i > 0 && parts[i-1] == "members" && len(p) == 32 {
			parts[i] = "{hash}"
		}
	}
	return strings.Join(parts, "/")
}

// maxRetryAfter bounds the pause Mailchimp may ask for.
const maxRetryAfter = time.Hour

// retryAfter is the pause a 429 asks for: its Retry-After, else
// DefaultRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	if d, ok := parseRetryAfter(v, now); ok {
		return d
	}
	return DefaultRetryAfter
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, maxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

func (c *Connector) logger() *slog.Logger {
	if c.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.log
}
