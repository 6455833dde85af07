// Package hubspot is the connector type for contacts in HubSpot's CRM,
// found by email, through HubSpot's public REST APIs with a private app's
// access token (Authorization: Bearer):
//
//   - access: the contact's properties and associated object ids (CRM v3
//     objects, GET /crm/v3/objects/contacts/{email}?idProperty=email; 404:
//     nothing held; further associations paged with after cursors), the
//     lists it is a member of (lists v3, GET
//     /crm/v3/lists/records/0-1/{id}/memberships) and its email
//     subscription statuses (communication preferences v4, GET
//     /communication-preferences/v4/statuses/{email}?channel=EMAIL);
//   - erasure: POST /crm/v3/objects/contacts/gdpr-delete with idProperty
//     email, which deletes the contact permanently and blocks its email
//     from being used again (a plain DELETE only archives it, restorable
//     for 90 days, and is not used);
//   - opt-out: "opted out of all email" (POST
//     /communication-preferences/v4/statuses/{email}/unsubscribe-all) and
//     removal from the lists the file names (PUT
//     /crm/v3/lists/{listId}/memberships/remove).
//
// It keeps to the app's documented limits (a number of requests per 10
// seconds and per day), counting in process or through Deps.Limiter, and
// turns HubSpot's 429 ({"status":"error","errorType":"RATE_LIMIT",
// "policyName":...}, X-HubSpot-RateLimit-* headers) into
// connectors.RetryAfter. No error or log quotes an email or a response's
// message.
//
// HubSpot's documentation:
//   - https://developers.hubspot.com/docs/guides/apps/private-apps/overview (tokens, scopes)
//   - https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details (limits, 429 body, headers)
//   - https://developers.hubspot.com/docs/guides/api/crm/objects/contacts (read by email)
//   - https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact
//   - https://developers.hubspot.com/docs/api-reference/legacy/communication-preferences/guide (v4 statuses, unsubscribe-all)
//   - https://developers.hubspot.com/docs/guides/api/crm/lists/overview (lists v3 memberships)
//
// docs/connectors/hubspot.md describes the settings and the scopes.
package hubspot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// Connector is a configured hubspot connector. Its methods are safe for
// concurrent use.
type Connector struct {
	name           string
	base           string
	token          string
	properties     []string
	associations   []string
	optOut         bool
	unsubscribeAll bool
	optOutLists    []string
	businessUnit   string // the brand's id, or ""
	per10s, daily  int
	client         *http.Client
	limiter        connectors.Limiter
	now            func() time.Time
	sleep          func(context.Context, time.Duration) error
	log            *slog.Logger

	mu         sync.Mutex
	pauseUntil time.Time // no request before, as HubSpot's headers said
	pauseDaily bool      // the pause is the daily limit's
}

var (
	_ connectors.Exporter = (*Connector)(nil)
	_ connectors.Eraser   = (*Connector)(nil)
	_ connectors.OptOuter = (*Connector)(nil)
	_ connectors.Scoped   = (*Connector)(nil)
)

// The collections results and exports name.
const (
	collContacts      = "contacts"
	collLists         = "lists"
	collSubscriptions = "subscriptions"
	// contactObjectType is the object type id of contacts (lists API).
	contactObjectType = "0-1"
	// assocPage is the page size of association reads.
	assocPage = 500
)

// Name is the connector's name.
func (c *Connector) Name() string { return c.name }

// Handles reports whether the connector does a: export and erase always,
// opt-out when the file sets opt_out.
func (c *Connector) Handles(a connectors.Action) bool {
	switch a {
	case connectors.ActionExport, connectors.ActionErase:
		return true
	case connectors.ActionOptOut:
		return c.optOut
	}
	return false
}

func (c *Connector) logger() *slog.Logger {
	if c.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.log
}

// contact is a contact as CRM v3 answers it.
type contact struct {
	ID           string                  `json:"id"`
	Properties   map[string]*string      `json:"properties"`
	CreatedAt    string                  `json:"createdAt,omitempty"`
	UpdatedAt    string                  `json:"updatedAt,omitempty"`
	Archived     bool                    `json:"archived"`
	Associations map[string]assocPageDoc `json:"associations,omitempty"`
}

type assocPageDoc struct {
	Results []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"results"`
	Paging *paging `json:"paging,omitempty"`
}

type paging struct {
	Next *struct {
		After string `json:"after"`
	} `json:"next,omitempty"`
}

// emails returns the subject's emails, without duplicates (HubSpot
// compares emails case-insensitively).
func emails(s connectors.Subject) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range s.Values("email") {
		k := strings.ToLower(strings.TrimSpace(e))
		if k != "" && !seen[k] {
			seen[k] = true
			out = append(out, strings.TrimSpace(e))
		}
	}
	return out
}

// getContact reads the contact with email e and the given properties and
// associations; nil when HubSpot holds none.
func (c *Connector) getContact(ctx context.Context, e string, props, assocs []string) (*contact, error) {
	q := url.Values{"idProperty": {"email"}}
	if len(props) > 0 {
		q.Set("properties", strings.Join(props, ","))
	}
	if len(assocs) > 0 {
		q.Set("associations", strings.Join(assocs, ","))
	}
	var ct contact
	err := c.call(ctx, http.MethodGet, "read contact", "/crm/v3/objects/contacts/"+url.PathEscape(e)+"?"+q.Encode(), nil, &ct)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ct.ID == "" {
		return nil, connectors.Permanent(fmt.Errorf("hubspot %s: read contact: the answer has no id", c.name))
	}
	return &ct, nil
}

// Export writes, per email of the subject that HubSpot holds a contact
// for, the contact (collection contacts), its list memberships (lists) and
// its email subscription statuses other than NOT_SPECIFIED
// (subscriptions).
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	es := emails(s)
	if len(es) == 0 {
		for _, coll := range []string{collContacts, collLists, collSubscriptions} {
			res.NotSearched(coll, []string{"email"})
		}
		return res, nil
	}
	var nContacts, nLists, nSubs int64
	type rec struct {
		coll string
		doc  any
	}
	var recs []rec // a contact's records: a few, written after every read succeeded
	seen := map[string]bool{}
	for _, e := range es {
		ct, err := c.getContact(ctx, e, c.properties, c.associations)
		if err != nil {
			return connectors.Result{}, err
		}
		if ct == nil || seen[ct.ID] {
			continue
		}
		seen[ct.ID] = true
		assocs, err := c.allAssociations(ctx, ct)
		if err != nil {
			return connectors.Result{}, err
		}
		recs = append(recs[:0], rec{collContacts, map[string]any{
			"id": ct.ID, "properties": ct.Properties, "createdAt": ct.CreatedAt, "updatedAt": ct.UpdatedAt,
			"archived": ct.Archived, "associations": assocs,
		}})
		lists, err := c.memberships(ctx, ct.ID)
		if err != nil {
			return connectors.Result{}, err
		}
		for _, m := range lists {
			recs = append(recs, rec{collLists, map[string]any{
				"email": e, "contactId": ct.ID, "listId": m.ListID,
				"firstAddedTimestamp": m.FirstAdded, "lastAddedTimestamp": m.LastAdded,
			}})
		}
		subs, err := c.statuses(ctx, e)
		if err != nil {
			return connectors.Result{}, err
		}
		for _, st := range subs {
			if st.Status == "NOT_SPECIFIED" {
				continue
			}
			recs = append(recs, rec{collSubscriptions, st})
		}
		for _, r := range recs {
			if err := out.WriteRecord(ctx, r.coll, r.doc); err != nil {
				return connectors.Result{}, fmt.Errorf("hubspot %s: writing the export: %w", c.name, err)
			}
			switch r.coll {
			case collContacts:
				nContacts++
			case collLists:
				nLists++
			default:
				nSubs++
			}
		}
	}
	res.Add(collContacts, "exported", nContacts)
	res.Add(collLists, "exported", nLists)
	res.Add(collSubscriptions, "exported", nSubs)
	return res, nil
}

// allAssociations returns the ids associated with ct per object type, the
// pages after the first read with their after cursors.
func (c *Connector) allAssociations(ctx context.Context, ct *contact) (map[string][]string, error) {
	out := map[string][]string{}
	keys := make([]string, 0, len(ct.Associations))
	for k := range ct.Associations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, typ := range keys {
		page := ct.Associations[typ]
		ids := []string{}
		cursors := map[string]bool{}
		for {
			for _, r := range page.Results {
				if !contains(ids, r.ID) { // one id per association label
					ids = append(ids, r.ID)
				}
			}
			if page.Paging == nil || page.Paging.Next == nil || page.Paging.Next.After == "" {
				break
			}
			if cursors[page.Paging.Next.After] { // it would read the same pages forever
				return nil, connectors.Permanent(fmt.Errorf("hubspot %s: read associations: HubSpot gave an after cursor of %s twice", c.name, typ))
			}
			cursors[page.Paging.Next.After] = true
			q := url.Values{"after": {page.Paging.Next.After}, "limit": {fmt.Sprint(assocPage)}}
			page = assocPageDoc{}
			path := "/crm/v3/objects/contacts/" + url.PathEscape(ct.ID) + "/associations/" + url.PathEscape(typ) + "?" + q.Encode()
			if err := c.call(ctx, http.MethodGet, "read associations", path, nil, &page); err != nil {
				return nil, err
			}
		}
		out[typ] = ids
	}
	return out, nil
}

// membership is one list a record is in (lists v3).
type membership struct {
	ListID     string `json:"listId"`
	FirstAdded string `json:"firstAddedTimestamp,omitempty"`
	LastAdded  string `json:"lastAddedTimestamp,omitempty"`
}

// memberships returns the lists the contact id is a member of, every page
// of them (the answer is paged with after cursors).
func (c *Connector) memberships(ctx context.Context, id string) ([]membership, error) {
	var out []membership
	cursors := map[string]bool{}
	path := "/crm/v3/lists/records/" + contactObjectType + "/" + url.PathEscape(id) + "/memberships"
	for after := ""; ; {
		p := path
		if after != "" {
			p += "?" + url.Values{"after": {after}}.Encode()
		}
		var ans struct {
			Results []membership `json:"results"`
			Paging  *paging      `json:"paging,omitempty"`
		}
		err := c.call(ctx, http.MethodGet, "read list memberships", p, nil, &ans)
		if errors.Is(err, errNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ans.Results...)
		if ans.Paging == nil || ans.Paging.Next == nil || ans.Paging.Next.After == "" {
			return out, nil
		}
		after = ans.Paging.Next.After
		if cursors[after] { // it would read the same pages forever
			return nil, connectors.Permanent(fmt.Errorf("hubspot %s: read list memberships: HubSpot gave an after cursor twice", c.name))
		}
		cursors[after] = true
	}
}

// status is one subscription status (communication preferences v4).
type status struct {
	SubscriberIDString    string  `json:"subscriberIdString"`
	Channel               string  `json:"channel"`
	SubscriptionID        int64   `json:"subscriptionId"`
	BusinessUnitID        int64   `json:"businessUnitId"`
	Status                string  `json:"status"`
	Source                string  `json:"source,omitempty"`
	LegalBasis            *string `json:"legalBasis"`
	LegalBasisExplanation *string `json:"legalBasisExplanation"`
	Timestamp             string  `json:"timestamp,omitempty"`
}

// statuses returns the email subscription statuses of e.
func (c *Connector) statuses(ctx context.Context, e string) ([]status, error) {
	var ans struct {
		Results []status `json:"results"`
	}
	err := c.call(ctx, http.MethodGet, "read subscription statuses", "/communication-preferences/v4/statuses/"+url.PathEscape(e)+"?channel=EMAIL", nil, &ans)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	return ans.Results, err
}

// Erase GDPR-deletes the contact of each email of the subject that HubSpot
// holds: permanently, its email blocked from re-creation. An email HubSpot
// holds no contact for is left alone (not blocked): nothing is held, and
// blocking would record the address.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	es := emails(s)
	if len(es) == 0 {
		res.NotSearched(collContacts, []string{"email"})
		return res, nil
	}
	var n int64
	seen := map[string]bool{}
	for _, e := range es {
		ct, err := c.getContact(ctx, e, []string{"email"}, nil)
		if err != nil {
			return connectors.Result{}, err
		}
		if ct == nil || seen[ct.ID] {
			continue
		}
		seen[ct.ID] = true
		body := map[string]string{"objectId": e, "idProperty": "email"}
		err = c.call(ctx, http.MethodPost, "gdpr-delete contact", "/crm/v3/objects/contacts/gdpr-delete", body, nil, http.StatusNoContent)
		if errors.Is(err, errNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return connectors.Result{}, err
		}
		c.logger().InfoContext(ctx, "hubspot contact gdpr-deleted")
		n++
	}
	res.Add(collContacts, "deleted", n)
	return res, nil
}

// OptOut opts each contact the subject's emails name out of all email
// (when unsubscribe_all) and removes it from the lists of opt_out.lists.
// Emails HubSpot holds no contact for are left alone.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	es := emails(s)
	if len(es) == 0 {
		res.NotSearched(collContacts, []string{"email"})
		return res, nil
	}
	var nSet, nPulled int64
	seen := map[string]bool{}
	for _, e := range es {
		ct, err := c.getContact(ctx, e, []string{"email"}, nil)
		if err != nil {
			return connectors.Result{}, err
		}
		if ct == nil {
			continue
		}
		if c.unsubscribeAll { // per email: HubSpot keeps subscriptions by address
			set, err := c.unsubscribe(ctx, e)
			if err != nil {
				return connectors.Result{}, err
			}
			if set {
				nSet++
			}
		}
		if len(c.optOutLists) > 0 && !seen[ct.ID] {
			seen[ct.ID] = true
			n, err := c.leaveLists(ctx, ct.ID)
			if err != nil {
				return connectors.Result{}, err
			}
			nPulled += n
		}
	}
	if c.unsubscribeAll {
		res.Add(collSubscriptions, "set", nSet)
	}
	if len(c.optOutLists) > 0 {
		res.Add(collLists, "pulled", nPulled)
	}
	return res, nil
}

// unsubscribe opts e out of all email unless it is already; it reports
// whether it did.
func (c *Connector) unsubscribe(ctx context.Context, e string) (bool, error) {
	q := url.Values{"channel": {"EMAIL"}}
	if c.businessUnit != "" {
		q.Set("businessUnitId", c.businessUnit)
	}
	path := "/communication-preferences/v4/statuses/" + url.PathEscape(e) + "/unsubscribe-all?" + q.Encode()
	var ans struct {
		Results []struct {
			Status         string `json:"status"`
			WideStatusType string `json:"wideStatusType"`
			BusinessUnitID int64  `json:"businessUnitId"`
		} `json:"results"`
	}
	if err := c.call(ctx, http.MethodGet, "read opted out of all", path, nil, &ans); err != nil && !errors.Is(err, errNotFound) {
		return false, err
	}
	for _, r := range ans.Results {
		if r.Status != "UNSUBSCRIBED" {
			continue
		}
		if (c.businessUnit == "" && r.WideStatusType != "BUSINESS_UNIT_WIDE") || (c.businessUnit != "" && fmt.Sprint(r.BusinessUnitID) == c.businessUnit) {
			return false, nil
		}
	}
	var done struct { // the documented answer: JSON, empty unless verbose
		Status string `json:"status"`
	}
	if err := c.call(ctx, http.MethodPost, "unsubscribe from all email", path, nil, &done, http.StatusOK); err != nil {
		return false, err
	}
	c.logger().InfoContext(ctx, "hubspot contact opted out of all email")
	return true, nil
}

// leaveLists removes contact id from the opt-out lists it is in and
// returns from how many.
func (c *Connector) leaveLists(ctx context.Context, id string) (int64, error) {
	ms, err := c.memberships(ctx, id)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, m := range ms {
		if !contains(c.optOutLists, m.ListID) {
			continue
		}
		var ans struct {
			Removed []string `json:"recordIdsRemoved"`
		}
		err := c.call(ctx, http.MethodPut, "remove from list", "/crm/v3/lists/"+url.PathEscape(m.ListID)+"/memberships/remove", []string{id}, &ans, http.StatusOK)
		if errors.Is(err, errNotFound) {
			continue // the list was deleted meanwhile
		}
		if err != nil {
			return 0, err
		}
		if contains(ans.Removed, id) {
			n++
		}
	}
	return n, nil
}
