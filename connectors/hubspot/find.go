package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// propAdditionalEmails is the contact property that holds a contact's
// additional (secondary) email addresses, separated by semicolons.
const propAdditionalEmails = "hs_additional_emails"

// Bounds of finding a subject's contacts.
const (
	// maxContacts is the most contacts one subject's emails may find. An
	// address shared by more (an info@ on many records) is an error for a
	// person to look at, not something to erase or export blindly.
	maxContacts = 100
	// searchPage is the page size of a CRM search (its documented most).
	searchPage = 200
	// searchEmailsPerCall is how many emails one search asks about: two
	// filter groups each, and a search takes at most five groups.
	searchEmailsPerCall = 2
	// searchPerSecond is the CRM search endpoints' own limit (API usage
	// guidelines and the search guide: 5 requests a second per account);
	// one is left for the account's other integrations.
	searchPerSecond = 4
)

// idPattern is a CRM record id: HubSpot's ids are decimal numbers. Ids from
// HubSpot's answers go into paths and bodies only when they match, so an
// answer cannot steer a request elsewhere (a "../" or "?" in an id).
var idPattern = regexp.MustCompile(`^[0-9]{1,20}$`)

// checkID returns a permanent error unless id is a record id.
func (c *Connector) checkID(what, id string) error {
	if idPattern.MatchString(id) {
		return nil
	}
	return connectors.Permanent(fmt.Errorf("hubspot %s: %s: HubSpot gave a record id that is not a number", c.name, what))
}

// additionalEmails splits a contact's hs_additional_emails.
func additionalEmails(ct *contact) []string {
	p := ct.Properties[propAdditionalEmails]
	if p == nil {
		return nil
	}
	var out []string
	for _, e := range strings.FieldsFunc(*p, func(r rune) bool { return r == ';' || r == ',' }) {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// primaryEmail is a contact's email property, or "".
func primaryEmail(ct *contact) string {
	if p := ct.Properties["email"]; p != nil {
		return strings.TrimSpace(*p)
	}
	return ""
}

// holds reports whether e is ct's primary or one of its additional emails
// (case-insensitively, as HubSpot compares emails).
func holds(ct *contact, e string) bool {
	if strings.EqualFold(primaryEmail(ct), e) {
		return true
	}
	for _, a := range additionalEmails(ct) {
		if strings.EqualFold(a, e) {
			return true
		}
	}
	return false
}

// findContacts returns the contacts whose primary or additional email is
// one of es, each once (by id), in the order found, with the properties
// props (email and hs_additional_emails always) and the first page of the
// associations of assocs.
//
// The primary email is read directly (GET .../contacts/{email}?idProperty=email),
// which sees a contact the moment it exists. Additional emails are found
// with the CRM search (POST /crm/v3/objects/contacts/search): per email one
// filter group "email EQ e" and one "hs_additional_emails CONTAINS_TOKEN e"
// (filter groups are ORed; CONTAINS_TOKEN matches one token of a
// multi-value string such as the semicolon-separated additional emails,
// where EQ would compare the whole value). The search reads an index that
// lags writes by seconds, and leaves out archived contacts; what it
// returns is checked here (a contact counts only when e is its primary or
// one of its additional emails), so a token match wider than the address
// finds nothing more. An email with a "*" is not searched by token:
// CONTAINS_TOKEN reads "*" as a wildcard.
//
// A contact found only by the search is read again by id when full is set
// (an export needs its properties and associations); else the search's
// answer (id, email, additional emails) is what is returned.
func (c *Connector) findContacts(ctx context.Context, es []string, props, assocs []string, full bool) ([]*contact, error) {
	props = withEmailProps(props)
	var out []*contact
	seen := map[string]bool{}
	add := func(ct *contact) error {
		if seen[ct.ID] {
			return nil
		}
		if len(out) >= maxContacts {
			return connectors.Permanent(fmt.Errorf("hubspot %s: the subject's emails find more than %d contacts: look at them in HubSpot", c.name, maxContacts))
		}
		seen[ct.ID] = true
		out = append(out, ct)
		return nil
	}
	for _, e := range es {
		ct, err := c.getContact(ctx, e, true, props, assocs)
		if err != nil {
			return nil, err
		}
		if ct != nil {
			if err := add(ct); err != nil {
				return nil, err
			}
		}
	}
	for i := 0; i < len(es); i += searchEmailsPerCall {
		chunk := es[i:min(i+searchEmailsPerCall, len(es))]
		hits, err := c.search(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for _, h := range hits {
			if seen[h.ID] {
				continue
			}
			ct := h
			if full {
				if ct, err = c.getContact(ctx, h.ID, false, props, assocs); err != nil {
					return nil, err
				}
				if ct == nil || !holdsAny(ct, chunk) {
					continue // gone, or changed, since the search
				}
			}
			if err := add(ct); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func holdsAny(ct *contact, es []string) bool {
	for _, e := range es {
		if holds(ct, e) {
			return true
		}
	}
	return false
}

// withEmailProps returns props with email and hs_additional_emails.
func withEmailProps(props []string) []string {
	out := append([]string(nil), props...)
	for _, p := range []string{"email", propAdditionalEmails} {
		if !contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// getContact reads the contact whose email (byEmail) or id is key, with
// the given properties and associations; nil when HubSpot holds none.
func (c *Connector) getContact(ctx context.Context, key string, byEmail bool, props, assocs []string) (*contact, error) {
	q := url.Values{}
	if byEmail {
		q.Set("idProperty", "email")
	} else if err := c.checkID("read contact", key); err != nil {
		return nil, err
	}
	if len(props) > 0 {
		q.Set("properties", strings.Join(props, ","))
	}
	if len(assocs) > 0 {
		q.Set("associations", strings.Join(assocs, ","))
	}
	var ct contact
	err := c.call(ctx, http.MethodGet, "read contact", "/crm/v3/objects/contacts/"+url.PathEscape(key)+"?"+q.Encode(), nil, &ct)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if ct.ID == "" {
		return nil, connectors.Permanent(fmt.Errorf("hubspot %s: read contact: the answer has no id", c.name))
	}
	if err := c.checkID("read contact", ct.ID); err != nil {
		return nil, err
	}
	return &ct, nil
}

// searchFilter and searchGroup are the CRM search's filters.
type searchFilter struct {
	PropertyName string `json:"propertyName"`
	Operator     string `json:"operator"`
	Value        string `json:"value"`
}

type searchGroup struct {
	Filters []searchFilter `json:"filters"`
}

// search returns the contacts (id, email, additional emails) whose primary
// or additional email is one of es, as checked here; every page.
func (c *Connector) search(ctx context.Context, es []string) ([]*contact, error) {
	var groups []searchGroup
	for _, e := range es {
		groups = append(groups, searchGroup{Filters: []searchFilter{{PropertyName: "email", Operator: "EQ", Value: e}}})
		if !strings.Contains(e, "*") {
			groups = append(groups, searchGroup{Filters: []searchFilter{{PropertyName: propAdditionalEmails, Operator: "CONTAINS_TOKEN", Value: e}}})
		}
	}
	var out []*contact
	cursors := map[string]bool{}
	for after := ""; ; {
		if err := c.paceSearch(ctx); err != nil {
			return nil, err
		}
		body := map[string]any{
			"filterGroups": groups, "properties": []string{"email", propAdditionalEmails}, "limit": searchPage,
		}
		if after != "" {
			body["after"] = after
		}
		var ans struct {
			Total   int        `json:"total"`
			Results []*contact `json:"results"`
			Paging  *paging    `json:"paging,omitempty"`
		}
		if err := c.call(ctx, http.MethodPost, "search contacts", "/crm/v3/objects/contacts/search", body, &ans); err != nil {
			return nil, err
		}
		for _, ct := range ans.Results {
			if ct == nil || !holdsAny(ct, es) {
				continue // a token match wider than the address
			}
			if err := c.checkID("search contacts", ct.ID); err != nil {
				return nil, err
			}
			if len(out) >= maxContacts {
				return nil, connectors.Permanent(fmt.Errorf("hubspot %s: the subject's emails find more than %d contacts: look at them in HubSpot", c.name, maxContacts))
			}
			out = append(out, ct)
		}
		if ans.Paging == nil || ans.Paging.Next == nil || ans.Paging.Next.After == "" || len(ans.Results) == 0 {
			return out, nil
		}
		after = ans.Paging.Next.After
		if cursors[after] {
			return nil, connectors.Permanent(fmt.Errorf("hubspot %s: search contacts: HubSpot gave an after cursor twice", c.name))
		}
		cursors[after] = true
	}
}

// paceSearch keeps to the search endpoints' own limit (per second), then
// to the app's (pace).
func (c *Connector) paceSearch(ctx context.Context) error {
	for {
		wait, err := c.limiter.Take(ctx, c.name+"/search", connectors.Rate{N: searchPerSecond, Per: time.Second})
		if err != nil {
			return fmt.Errorf("hubspot %s: rate limiter: %w", c.name, err)
		}
		if wait == 0 {
			return nil
		}
		if !fits(ctx, c.now(), wait) {
			return connectors.RetryAfter(wait, fmt.Errorf("hubspot %s: %d searches a second spent", c.name, searchPerSecond))
		}
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("hubspot %s: waiting for the search limit: %w", c.name, err)
		}
	}
}
