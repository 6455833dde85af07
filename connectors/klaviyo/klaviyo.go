// Package klaviyo is the connector type for profiles in a Klaviyo account,
// found by email or phone number, through Klaviyo's REST API with a
// private API key ("Authorization: Klaviyo-API-Key <key>") and a pinned
// API revision (the revision header, a setting; default DefaultRevision):
//
//   - access: the profiles (GET /api/profiles?filter=equals(email,"...") or
//     equals(phone_number,"...")) and every event of each (GET
//     /api/events?filter=equals(profile_id,"...")), JSON:API collections
//     followed page by page through links.next (only on Klaviyo's host);
//   - erasure: a data-privacy deletion job per profile found (POST
//     /api/data-privacy-deletion-jobs, the profile by id). Klaviyo deletes
//     asynchronously and documents no endpoint that reads such a job, so
//     the action returns connectors.Pending (its handle the profile ids)
//     and every poll looks each profile up (GET /api/profiles/{id}) until
//     Klaviyo answers 404 for all of them; the job's wait deadline bounds
//     the wait, and its error then says which deletion was not confirmed;
//   - opt-out: the profiles' emails suppressed (POST
//     /api/profile-suppression-bulk-create-jobs: no email marketing is sent
//     to them) and unsubscribed from each list the file names (POST
//     /api/profile-subscription-bulk-delete-jobs). Both are bulk jobs that
//     Klaviyo applies within moments of the 202; they are not polled.
//
// Klaviyo's 429 (Retry-After in seconds; the errors body) becomes
// connectors.RetryAfter. Its per-endpoint limits (burst/steady) are in
// docs/connectors/klaviyo.md. No error or log quotes an email, a phone
// number or an error body's detail.
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
	err := c.client.do(ctx, "GET", c.client.url("/api/profiles?page%5Bsize%5D=1"), nil, nil)
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

// profiles returns the subject's profiles, each once, and whether the
// subject has a value Klaviyo can be searched by.
func (c *Connector) profiles(ctx context.Context, s connectors.Subject) ([]profile, bool, error) {
	var out []profile
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
			raws, err := c.client.Profiles(ctx, k.field, v)
			if err != nil {
				return nil, true, err
			}
			for _, r := range raws {
				var p profile
				if err := json.Unmarshal(r, &p); err != nil || !idPattern.MatchString(p.ID) {
					return nil, true, connectors.Permanent(fmt.Errorf("GET /api/profiles: a profile without a valid id"))
				}
				if !seen[p.ID] {
					seen[p.ID] = true
					p.raw, p.field, p.value = r, k.field, v
					out = append(out, p)
				}
			}
		}
	}
	return out, searched, nil
}

func (c *Connector) fail(a connectors.Action, err error) error {
	return fmt.Errorf("klaviyo %s: %s: %w", c.name, a, err)
}

// searchKinds are the identity kinds that name a profile.
var searchKinds = []string{"email", "phone"}

// Export writes the subject's profiles and every event of each.
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	ps, searched, err := c.profiles(ctx, s)
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

// Erase files a data-privacy deletion job for every profile of the
// subject and answers Pending until each is gone.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	ps, searched, err := c.profiles(ctx, s)
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
	if len(ps) > maxHandleIDs {
		return res, c.fail(connectors.ActionErase, connectors.Permanent(fmt.Errorf("%d profiles match; at most %d are erased by one job: erase them in Klaviyo", len(ps), maxHandleIDs)))
	}
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		if err := c.client.RequestDeletion(ctx, p.ID); err != nil {
			return connectors.Result{}, c.fail(connectors.ActionErase, err)
		}
		ids = append(ids, p.ID)
	}
	handle := erasePrefix + strings.Join(ids, ",")
	c.log.InfoContext(ctx, "klaviyo deletion jobs filed", "profiles", len(ids))
	return connectors.Result{Pending: &connectors.Pending{Handle: handle, PollAfter: c.pollEvery,
		Unanswered: fmt.Sprintf("Klaviyo did not delete profile(s) %s before the job's wait deadline: check Deleted Profiles in Klaviyo", strings.Join(ids, ", "))}}, nil
}

// The form of an erasure's handle: "erase:" and the profile ids.
const (
	erasePrefix  = "erase:"
	maxHandleIDs = 20
)

var (
	idPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
)

// parseHandle returns the profile ids of an erasure's handle.
func parseHandle(h string) ([]string, bool) {
	rest, ok := strings.CutPrefix(h, erasePrefix)
	if !ok {
		return nil, false
	}
	ids := strings.Split(rest, ",")
	if len(ids) > maxHandleIDs {
		return nil, false
	}
	for _, id := range ids {
		if !idPattern.MatchString(id) {
			return nil, false
		}
	}
	return ids, true
}

// Poll confirms an erasure: it looks up every profile of the handle and
// answers Pending while Klaviyo still holds one, the result once each
// answers 404. Klaviyo documents no endpoint that reads a deletion job.
func (c *Connector) Poll(ctx context.Context, a connectors.Action, handle string, _ connectors.RecordWriter) (connectors.Result, error) {
	if a != connectors.ActionErase {
		return connectors.Result{}, connectors.Permanent(c.fail(a, fmt.Errorf("nothing of this action waits in Klaviyo")))
	}
	ids, ok := parseHandle(handle)
	if !ok {
		return connectors.Result{}, connectors.Permanent(c.fail(a, fmt.Errorf("%q is not an erasure handle", handle)))
	}
	var left []string
	for _, id := range ids {
		ok, err := c.client.ProfileExists(ctx, id)
		if err != nil {
			return connectors.Result{}, c.fail(a, err)
		}
		if ok {
			left = append(left, id)
		}
	}
	if len(left) > 0 {
		c.log.DebugContext(ctx, "klaviyo deletion not done", "profiles_left", len(left))
		return connectors.Result{Pending: &connectors.Pending{Handle: handle, PollAfter: c.pollEvery,
			Unanswered: fmt.Sprintf("Klaviyo still held profile(s) %s at the job's wait deadline: its deletion job did not finish; check Deleted Profiles in Klaviyo", strings.Join(left, ", "))}}, nil
	}
	c.log.InfoContext(ctx, "klaviyo deletion confirmed", "profiles", len(ids))
	var res connectors.Result
	res.Searched(connectors.CollectionResult{Name: CollProfiles, Outcome: "deleted", Records: int64(len(ids)),
		Note: "data-privacy deletion confirmed: GET /api/profiles/{id} answers 404; the profiles' events went with them"})
	return res, nil
}

// OptOut suppresses the emails of the subject's profiles and unsubscribes
// them from the lists the file names.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	ps, searched, err := c.profiles(ctx, s)
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
