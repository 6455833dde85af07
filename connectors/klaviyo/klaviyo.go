// Package klaviyo is the connector type for profiles in a Klaviyo account,
// found by email or phone number, through Klaviyo's REST API with a
// private API key ("Authorization: Klaviyo-API-Key <key>") and a pinned
// API revision (the revision header, a setting; default DefaultRevision):
//
//   - access: the profiles (GET /api/profiles?filter=equals(email,"...") or
//     equals(phone_number,"...")) and every event of each (GET
//     /api/events?filter=equals(profile_id,"...")), JSON:API collections
//     followed page by page through links.next (only on Klaviyo's host);
//   - erasure: a data-privacy deletion job per identifier that matched
//     profiles (POST /api/data-privacy-deletion-jobs, by email or
//     phone_number: Klaviyo deletes all profiles matching it), so any
//     number of profiles costs one or two jobs. Klaviyo deletes
//     asynchronously and documents no endpoint that reads such a job, so
//     the action returns connectors.Pending (its handle the profile ids
//     that fit in 512 bytes) and every poll looks each up (GET
//     /api/profiles/{id}) until Klaviyo answers 404 for all of them; the
//     job's wait deadline bounds the wait, and its error then says which
//     deletion was not confirmed;
//   - opt-out: the profiles' emails suppressed (POST
//     /api/profile-suppression-bulk-create-jobs: no email marketing is sent
//     to them) and unsubscribed from each list the file names (POST
//     /api/profile-subscription-bulk-delete-jobs). Both are bulk jobs that
//     Klaviyo applies within moments of the 202; they are not polled.
//
// Every call is paced through connectors.Deps.Limiter at its endpoint's
// documented limits (burst per second, steady per minute; see client.go
// and docs/connectors/klaviyo.md); Klaviyo's 429 (Retry-After in seconds;
// the errors body) becomes connectors.RetryAfter. Redirects are not
// followed, nor a links.next off the listing. No error or log quotes an
// email, a phone number or an error body's detail.
//
// Klaviyo's documentation:
//   - https://developers.klaviyo.com/en/reference/api_overview (authentication, revisions, JSON:API, errors, rate limits)
//   - https://developers.klaviyo.com/en/reference/get_profiles
//   - https://developers.klaviyo.com/en/reference/get_events
//   - https://developers.klaviyo.com/en/reference/request_profile_deletion (data-privacy:write; burst 3/s, steady 60/m)
//   - https://developers.klaviyo.com/en/reference/data_privacy_api_overview (deletion is permanent)
//   - https://developers.klaviyo.com/en/reference/bulk_suppress_profiles
//   - https://developers.klaviyo.com/en/reference/bulk_unsubscribe_profiles
package klaviyo

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// Connector is a configured klaviyo connector. Its methods are safe for
// concurrent use.
type Connector struct {
	name      string
	lists     []string
	actions   map[connectors.Action]bool
	pollEvery time.Duration
	client    *Client
	log       *slog.Logger
}

var (
	_ connectors.Exporter = (*Connector)(nil)
	_ connectors.Eraser   = (*Connector)(nil)
	_ connectors.OptOuter = (*Connector)(nil)
	_ connectors.Poller   = (*Connector)(nil)
	_ connectors.Scoped   = (*Connector)(nil)
	_ connectors.Checker  = (*Connector)(nil)
)

// The collections results and exports name.
const (
	CollProfiles     = "profiles"
	CollEvents       = "events"
	CollSuppressions = "suppressions"
	// collList prefixes a list's id in an opt-out's result.
	collList = "list:"
)

// kinds are the identity kinds a profile is found by, and the profile
// attribute each matches.
var kinds = []struct{ kind, field string }{{"email", "email"}, {"phone", "phone_number"}}

// phonePattern is an E.164 number, the only form Klaviyo stores.
var phonePattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the file lets the connector do a.
func (c *Connector) Handles(a connectors.Action) bool { return c.actions[a] }

// Client returns the connector's API client.
func (c *Connector) Client() *Client { return c.client }

// Check reads one profile: Klaviyo is reachable, the key accepted and
// allowed to read profiles. Whether it may delete or suppress is not
// checked: that would change data.
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	err := c.client.do(ctx, epProfiles, "GET", c.client.url("/api/profiles?page%5Bsize%5D=1"), nil, nil)
	if err != nil {
		err = fmt.Errorf("klaviyo %s: %w", c.name, err)
	}
	return []connectors.Check{{What: "API reachable, key allowed to read profiles (profiles:read)", Err: err}}
}

// profile is the part of a profile the connector reads.
type profile struct {
	ID         string `json:"id"`
	Attributes struct {
		Email         string `json:"email"`
		Subscriptions struct {
			Email struct {
				Marketing struct {
					Suppression []json.RawMessage `json:"suppression"`
				} `json:"marketing"`
			} `json:"email"`
		} `json:"subscriptions"`
	} `json:"attributes"`
	raw json.RawMessage
	// field and value are the identity the profile was found by.
	field, value string
}

// suppressed reports whether the profile's email is already suppressed.
func (p profile) suppressed() bool {
	return len(p.Attributes.Subscriptions.Email.Marketing.Suppression) > 0
}

// eventRecord is an exported event: the event as Klaviyo holds it, and
// the profile it belongs to, by id and by the identity it was found by.
type eventRecord struct {
	ProfileID string            `json:"profile_id"`
	MatchedBy map[string]string `json:"matched_by"`
	Event     json.RawMessage   `json:"event"`
}

// found is one identifier of the subject that matched profiles: the
// field it matched (email, phone_number) and its value, and the ids of the
// profiles it matched.
type found struct {
	field, value string
	ids          []string
}

// profiles returns the subject's profiles, each once, however many there
// are (every page of every look-up), the identifiers that matched them,
// and whether the subject has a value Klaviyo can be searched by.
func (c *Connector) profiles(ctx context.Context, s connectors.Subject) ([]profile, []found, bool, error) {
	var out []profile
	var matched []found
	seen := map[string]bool{}
	searched := false
	for _, k := range kinds {
		for _, v := range s.Values(k.kind) {
			if k.kind == "email" {
				v = strings.TrimSpace(v)
			} else if v = strings.ReplaceAll(v, " ", ""); !phonePattern.MatchString(v) {
				continue
			}
			if !filterValue(v) {
				continue
			}
			searched = true
			f := found{field: k.field, value: v}
			err := c.client.Profiles(ctx, k.field, v, func(r json.RawMessage) error {
				var p profile
				if err := json.Unmarshal(r, &p); err != nil || !idPattern.MatchString(p.ID) {
					return connectors.Permanent(fmt.Errorf("GET /api/profiles: a profile without a valid id"))
				}
				f.ids = append(f.ids, p.ID)
				if !seen[p.ID] {
					seen[p.ID] = true
					p.raw, p.field, p.value = r, k.field, v
					out = append(out, p)
				}
				return nil
			})
			if err != nil {
				return nil, nil, true, err
			}
			if len(f.ids) > 0 {
				matched = append(matched, f)
			}
		}
	}
	return out, matched, searched, nil
}

func (c *Connector) fail(a connectors.Action, err error) error {
	return fmt.Errorf("klaviyo %s: %s: %w", c.name, a, err)
}

// searchKinds are the identity kinds that name a profile.
var searchKinds = []string{"email", "phone"}

// Export writes the subject's profiles and every event of each.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	ps, _, searched, err := c.profiles(ctx, s)
	if err != nil {
		return res, c.fail(connectors.ActionExport, err)
	}
	if !searched {
		res.NotSearched(CollProfiles, searchKinds)
		return res, nil
	}
	var events int64
	for _, p := range ps {
		if err := out.WriteRecord(ctx, CollProfiles, p.raw); err != nil {
			return connectors.Result{}, err
		}
		err := c.client.Events(ctx, p.ID, func(r json.RawMessage) error {
			events++
			return out.WriteRecord(ctx, CollEvents, eventRecord{ProfileID: p.ID, MatchedBy: map[string]string{p.field: p.value}, Event: r})
		})
		if err != nil {
			return connectors.Result{}, c.fail(connectors.ActionExport, err)
		}
	}
	res.Add(CollProfiles, "exported", int64(len(ps)))
	res.Add(CollEvents, "exported", events)
	c.log.InfoContext(ctx, "klaviyo export", "profiles", len(ps), "events", events)
	return res, nil
}

// Erase files Klaviyo's data-privacy deletion for every profile of the
// subject, however many: one deletion job per identifier (email, phone
// number) that matched profiles, which Klaviyo applies to "all profiles
// that match" it, so the number of jobs does not grow with the number of
// profiles (the endpoint allows 60 a minute). An identifier whose profiles
// were all matched by an earlier one files no job of its own. It answers
// Pending until the profiles are gone.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	ps, matched, searched, err := c.profiles(ctx, s)
	if err != nil {
		return res, c.fail(connectors.ActionErase, err)
	}
	if !searched {
		res.NotSearched(CollProfiles, searchKinds)
		return res, nil
	}
	if len(ps) == 0 {
		res.Add(CollProfiles, "deleted", 0)
		return res, nil
	}
	covered := map[string]bool{}
	jobs := 0
	for _, f := range matched {
		if !slices.ContainsFunc(f.ids, func(id string) bool { return !covered[id] }) {
			continue
		}
		if err := c.client.RequestDeletion(ctx, f.field, f.value); err != nil {
			return connectors.Result{}, c.fail(connectors.ActionErase, err)
		}
		jobs++
		for _, id := range f.ids {
			covered[id] = true
		}
	}
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	h := newErasure(ids)
	handle := h.String()
	c.log.InfoContext(ctx, "klaviyo deletion jobs filed", "jobs", jobs, "profiles", len(ids))
	return connectors.Result{Pending: &connectors.Pending{Handle: handle, PollAfter: c.pollEvery,
		Unanswered: fmt.Sprintf("Klaviyo did not delete profile(s) %s before the job's wait deadline: check Deleted Profiles in Klaviyo", strings.Join(h.ids, ", "))}}, nil
}

// An erasure's handle names no one. When the ids of every profile the
// deletion jobs were filed for fit in maxHandle bytes (the worker stores
// at most 512), it is "erase:" and those ids, and every poll looks them
// up until none is left. When more profiles matched than fit, it is
// "erase:", their number, "*:", and the ids that fit; each poll drops the
// ids Klaviyo no longer holds. The ids left out are not looked up one by
// one: they were deleted by the same identifier-wide jobs, and the
// result's note says so.
const (
	erasePrefix = "erase:"
	maxHandle   = 500
)

// erasure is a parsed handle.
type erasure struct {
	total   int
	partial bool // some profiles' ids did not fit in the handle
	ids     []string
}

// newErasure is the erasure of the profiles ids.
func newErasure(ids []string) erasure {
	n := len(erasePrefix) - 1
	for _, id := range ids {
		n += len(id) + 1
	}
	if n <= maxHandle {
		return erasure{total: len(ids), ids: ids}
	}
	e := erasure{total: len(ids), partial: true}
	n = len(erasePrefix) + len(strconv.Itoa(e.total)) + 2 - 1
	for _, id := range ids {
		if n += len(id) + 1; n > maxHandle {
			break
		}
		e.ids = append(e.ids, id)
	}
	return e
}

func (e erasure) String() string {
	if !e.partial {
		return erasePrefix + strings.Join(e.ids, ",")
	}
	return erasePrefix + strconv.Itoa(e.total) + "*:" + strings.Join(e.ids, ",")
}

var (
	idPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
)

// parseHandle reads an erasure's handle. The form of earlier versions,
// "erase:" and the ids, is still read.
func parseHandle(h string) (erasure, bool) {
	rest, ok := strings.CutPrefix(h, erasePrefix)
	if !ok || len(h) > 512 {
		return erasure{}, false
	}
	var e erasure
	if n, list, ok := strings.Cut(rest, "*:"); ok {
		total, err := strconv.Atoi(n)
		if err != nil || total < 1 || strconv.Itoa(total) != n {
			return erasure{}, false
		}
		e.total, e.partial, rest = total, true, list
	}
	if rest != "" {
		e.ids = strings.Split(rest, ",")
	}
	if !e.partial {
		e.total = len(e.ids)
	}
	if e.total < len(e.ids) || e.total == 0 {
		return erasure{}, false
	}
	for _, id := range e.ids {
		if !idPattern.MatchString(id) {
			return erasure{}, false
		}
	}
	return e, true
}

// Poll confirms an erasure: it looks up every profile of the handle and
// answers Pending while Klaviyo still holds one, the result once each
// answers 404. Klaviyo documents no endpoint that reads a deletion job.
func (c *Connector) Poll(ctx context.Context, a connectors.Action, handle string, _ connectors.RecordWriter) (connectors.Result, error) {
	if a != connectors.ActionErase {
		return connectors.Result{}, connectors.Permanent(c.fail(a, fmt.Errorf("nothing of this action waits in Klaviyo")))
	}
	e, ok := parseHandle(handle)
	if !ok {
		return connectors.Result{}, connectors.Permanent(c.fail(a, fmt.Errorf("%q is not an erasure handle", handle)))
	}
	var left []string
	for _, id := range e.ids {
		ok, err := c.client.ProfileExists(ctx, id)
		if err != nil {
			return connectors.Result{}, c.fail(a, err)
		}
		if ok {
			left = append(left, id)
		}
	}
	if len(left) > 0 {
		next := e
		if e.partial {
			next.ids = left // those confirmed gone are not asked again
		}
		c.log.DebugContext(ctx, "klaviyo deletion not done", "profiles_left", len(left))
		return connectors.Result{Pending: &connectors.Pending{Handle: next.String(), PollAfter: c.pollEvery,
			Unanswered: fmt.Sprintf("Klaviyo still held profile(s) %s at the job's wait deadline: its deletion job did not finish; check Deleted Profiles in Klaviyo", strings.Join(left, ", "))}}, nil
	}
	c.log.InfoContext(ctx, "klaviyo deletion confirmed", "profiles", e.total)
	note := "data-privacy deletion confirmed: GET /api/profiles/{id} answers 404; the profiles' events went with them"
	if e.partial {
		note = "data-privacy deletion confirmed by look-up for the profiles the job could track; all were deleted by the same identifier-wide deletion job(s); the profiles' events went with them"
	}
	var res connectors.Result
	res.Searched(connectors.CollectionResult{Name: CollProfiles, Outcome: "deleted", Records: int64(e.total), Note: note})
	return res, nil
}

// OptOut suppresses the emails of the subject's profiles and unsubscribes
// them from the lists the file names.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	ps, _, searched, err := c.profiles(ctx, s)
	if err != nil {
		return res, c.fail(connectors.ActionOptOut, err)
	}
	if !searched {
		res.NotSearched(CollProfiles, searchKinds)
		return res, nil
	}
	var suppress []string
	unsub := map[string][]string{} // by list id
	seen := map[string]bool{}
	for _, p := range ps {
		e := p.Attributes.Email
		if e == "" || seen[e] {
			continue
		}
		seen[e] = true
		if !p.suppressed() {
			suppress = append(suppress, e)
		}
		if len(c.lists) == 0 {
			continue
		}
		in, err := c.client.ProfileLists(ctx, p.ID)
		if err != nil {
			return connectors.Result{}, c.fail(connectors.ActionOptOut, err)
		}
		for _, l := range c.lists {
			if in[l] {
				unsub[l] = append(unsub[l], e)
			}
		}
	}
	if len(suppress) > 0 {
		if err := c.client.Suppress(ctx, suppress); err != nil {
			return connectors.Result{}, c.fail(connectors.ActionOptOut, err)
		}
	}
	res.Add(CollSuppressions, "suppressed", int64(len(suppress)))
	for _, l := range c.lists {
		if len(unsub[l]) > 0 {
			if err := c.client.Unsubscribe(ctx, unsub[l], l); err != nil {
				return connectors.Result{}, c.fail(connectors.ActionOptOut, err)
			}
		}
		res.Add(collList+l, "unsubscribed", int64(len(unsub[l])))
	}
	c.log.InfoContext(ctx, "klaviyo opt-out", "suppressed", len(suppress), "lists", len(unsub))
	return res, nil
}
