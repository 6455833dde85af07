// Package hubspot is the connector type for contacts in HubSpot's CRM,
// found by their primary email (GET .../contacts/{email}?idProperty=email)
// or one of their additional emails (the CRM search, POST
// /crm/v3/objects/contacts/search), through HubSpot's public REST APIs
// with a private app's access token (Authorization: Bearer):
//
//   - access: the contact's properties and associated object ids (CRM v3
//     objects, GET /crm/v3/objects/contacts/{email}?idProperty=email; 404:
//     nothing held; further associations paged with after cursors), the
//     lists it is a member of (lists v3, GET
//     /crm/v3/lists/records/0-1/{id}/memberships) and its email
//     subscription statuses (communication preferences v4, GET
//     /communication-preferences/v4/statuses/{email}?channel=EMAIL), and
//     the engagements associated with it (emails, notes, calls, meetings,
//     tasks: POST /crm/v3/objects/{type}/batch/read);
//   - erasure: POST /crm/v3/objects/contacts/gdpr-delete by contact id,
//     which deletes the contact permanently and blocks its email from
//     being used again (a plain DELETE only archives it, restorable for 90
//     days, and is not used);
//   - opt-out: "opted out of all email" (POST
//     /communication-preferences/v4/statuses/{email}/unsubscribe-all) and
//     removal from the lists the file names (PUT
//     /crm/v3/lists/{listId}/memberships/remove);
//   - re-application: the members of those lists (GET
//     /crm/v3/lists/{listId}/memberships), as a connectors.SegmentLister.
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
//   - https://developers.hubspot.com/docs/guides/api/crm/search (search: filterGroups ORed, CONTAINS_TOKEN, limits)
//   - https://developers.hubspot.com/docs/guides/api/crm/engagements/ (emails, notes, calls, meetings, tasks; sales-email-read)
//   - https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/objects/batch/get-objects (batch read)
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
	engagements    []string // engagement types an export writes
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

// Export writes the subject's contacts, those whose primary or additional
// email is one of the subject's (findContacts), collection by collection:
// contacts (each contact's properties, dates and associated ids),
// lists (its list memberships), subscriptions (the email subscription
// statuses of its primary email other than NOT_SPECIFIED), then
// engagements/<type> for each engagement type of the settings (the
// emails, notes, calls, meetings and tasks associated with it).
func (c *Connector) Export(ctx context.Context, s connectors.Subject, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	es := emails(s)
	colls := []string{collContacts, collLists, collSubscriptions}
	for _, typ := range c.engagements {
		colls = append(colls, engagementColl(typ))
	}
	if len(es) == 0 {
		for _, coll := range colls {
			res.NotSearched(coll, []string{"email"})
		}
		return res, nil
	}
	assocs := append([]string(nil), c.associations...)
	for _, typ := range c.engagements {
		if !contains(assocs, typ) {
			assocs = append(assocs, typ)
		}
	}
	cts, err := c.findContacts(ctx, es, c.properties, assocs, true)
	if err != nil {
		return connectors.Result{}, err
	}
	write := func(coll string, doc any) error {
		if err := out.WriteRecord(ctx, coll, doc); err != nil {
			return fmt.Errorf("hubspot %s: writing the export: %w", c.name, err)
		}
		return nil
	}
	// Each collection's records are written together (the export's
	// order); a contact's associations are read before its record.
	var nContacts, nLists, nSubs int64
	for _, ct := range cts {
		assocs, err := c.allAssociations(ctx, ct)
		if err != nil {
			return connectors.Result{}, err
		}
		if err := write(collContacts, map[string]any{
			"id": ct.ID, "properties": ct.Properties, "createdAt": ct.CreatedAt, "updatedAt": ct.UpdatedAt,
			"archived": ct.Archived, "associations": assocs,
		}); err != nil {
			return connectors.Result{}, err
		}
		nContacts++
	}
	for _, ct := range cts {
		lists, err := c.memberships(ctx, ct.ID)
		if err != nil {
			return connectors.Result{}, err
		}
		for _, m := range lists {
			if err := write(collLists, map[string]any{
				"email": primaryEmail(ct), "contactId": ct.ID, "listId": m.ListID,
				"firstAddedTimestamp": m.FirstAdded, "lastAddedTimestamp": m.LastAdded,
			}); err != nil {
				return connectors.Result{}, err
			}
			nLists++
		}
	}
	for _, e := range contactEmails(cts) {
		subs, err := c.statuses(ctx, e)
		if err != nil {
			return connectors.Result{}, err
		}
		for _, st := range subs {
			if st.Status == "NOT_SPECIFIED" {
				continue
			}
			if err := write(collSubscriptions, st); err != nil {
				return connectors.Result{}, err
			}
			nSubs++
		}
	}
	res.Add(collContacts, "exported", nContacts)
	res.Add(collLists, "exported", nLists)
	res.Add(collSubscriptions, "exported", nSubs)
	for _, typ := range c.engagements {
		n, capped, err := c.exportEngagements(ctx, cts, typ, out)
		if err != nil {
			return connectors.Result{}, err
		}
		cr := connectors.CollectionResult{Name: engagementColl(typ), Outcome: "exported", Records: n}
		if capped {
			cr.Note = fmt.Sprintf("a contact has more than %d %s: the first %d were exported", maxEngagements, typ, maxEngagements)
		}
		res.Searched(cr)
	}
	return res, nil
}

// contactEmails returns the primary emails of cts, each once (HubSpot
// keeps subscriptions by address, and sends to the primary one).
func contactEmails(cts []*contact) []string {
	var out []string
	seen := map[string]bool{}
	for _, ct := range cts {
		e := primaryEmail(ct)
		if k := strings.ToLower(e); e != "" && !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// allAssociations returns the ids associated with ct per object type of
// the associations setting, the pages after the first read with their
// after cursors.
func (c *Connector) allAssociations(ctx context.Context, ct *contact) (map[string][]string, error) {
	out := map[string][]string{}
	keys := make([]string, 0, len(ct.Associations))
	for k := range ct.Associations {
		if contains(c.associations, k) { // engagements are exported apart
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, typ := range keys {
		ids, _, err := c.associatedIDs(ctx, ct, typ, 0)
		if err != nil {
			return nil, err
		}
		if ids == nil {
			ids = []string{}
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

// Erase GDPR-deletes each contact whose primary or additional email is one
// of the subject's: permanently, its email blocked from re-creation; a
// subject's email held only as an additional email is then blocked by
// itself. An email HubSpot holds no contact for is left alone (not
// blocked): nothing is held, and blocking would record the address.
func (c *Connector) Erase(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	es := emails(s)
	if len(es) == 0 {
		res.NotSearched(collContacts, []string{"email"})
		return res, nil
	}
	cts, err := c.findContacts(ctx, es, nil, nil, false)
	if err != nil {
		return connectors.Result{}, err
	}
	var n int64
	for _, ct := range cts {
		// By id, not {"objectId": email, "idProperty": "email"}: the id
		// names exactly the contact found. With idProperty email HubSpot
		// looks the address up itself, and for an address it does not
		// hold as a primary email (one found among the additional emails,
		// or one changed since the read) the gdpr-delete reference says it
		// only adds the address to its blocklist, deleting nothing, and
		// still succeeds. A GDPR delete of the record blocks its email as
		// one by email does (HubSpot's GDPR deletion: the record, its
		// associations, and the email blocked from re-creation).
		body := map[string]string{"objectId": ct.ID}
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
	// A subject's email that HubSpot held only among a contact's
	// additional emails is not the one the record's deletion blocks: it is
	// blocked by itself, by email. HubSpot now holds no contact for it, so
	// the gdpr-delete reference's "an email not found is added to the
	// blocklist" applies: it deletes nothing more.
	for _, e := range additionalOnly(cts, es) {
		body := map[string]string{"objectId": e, "idProperty": "email"}
		err := c.call(ctx, http.MethodPost, "gdpr-delete additional email", "/crm/v3/objects/contacts/gdpr-delete", body, nil, http.StatusNoContent)
		if err != nil && !errors.Is(err, errNotFound) {
			return connectors.Result{}, err
		}
		c.logger().InfoContext(ctx, "hubspot additional email blocked")
	}
	res.Add(collContacts, "deleted", n)
	return res, nil
}

// additionalOnly returns the emails of es that some contact of cts holds
// among its additional emails and none as its primary one.
func additionalOnly(cts []*contact, es []string) []string {
	var out []string
	for _, e := range es {
		primary, additional := false, false
		for _, ct := range cts {
			if strings.EqualFold(primaryEmail(ct), e) {
				primary = true
			} else if holds(ct, e) {
				additional = true
			}
		}
		if additional && !primary {
			out = append(out, e)
		}
	}
	return out
}

// OptOut opts the primary email of each contact whose primary or
// additional email is one of the subject's out of all email (when
// unsubscribe_all) and removes the contact from the lists of
// opt_out.lists. Emails HubSpot holds no contact for are left alone.
func (c *Connector) OptOut(ctx context.Context, s connectors.Subject) (connectors.Result, error) {
	var res connectors.Result
	es := emails(s)
	if len(es) == 0 {
		res.NotSearched(collContacts, []string{"email"})
		return res, nil
	}
	cts, err := c.findContacts(ctx, es, nil, nil, false)
	if err != nil {
		return connectors.Result{}, err
	}
	var nSet, nPulled int64
	if c.unsubscribeAll { // per address: HubSpot keeps subscriptions by address
		for _, e := range contactEmails(cts) {
			set, err := c.unsubscribe(ctx, e)
			if err != nil {
				return connectors.Result{}, err
			}
			if set {
				nSet++
			}
		}
		res.Add(collSubscriptions, "set", nSet)
	}
	if len(c.optOutLists) > 0 {
		for _, ct := range cts {
			n, err := c.leaveLists(ctx, ct.ID)
			if err != nil {
				return connectors.Result{}, err
			}
			nPulled += n
		}
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
