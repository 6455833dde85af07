package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dsar-project/dsar/connectors"
)

var _ connectors.SegmentLister = (*Connector)(nil)

// memberPage is the page size of a list's memberships: the most one
// contacts batch read takes, so a page is read in one more request.
const memberPage = batchRead

// Segments names what an opt-out removes contacts from, as its results
// name it: "lists" (the lists of opt_out.lists), when there are any. An
// opt-out of all email alone removes no one from anything listed.
func (c *Connector) Segments() []string {
	if !c.optOut || len(c.optOutLists) == 0 {
		return nil
	}
	return []string{collLists}
}

// EachSegmentMember calls fn with segment "lists" for every contact in each
// list of opt_out.lists, with its primary and additional emails as HubSpot
// holds them: the list's memberships a page of memberPage at a time
// (GET /crm/v3/lists/{listId}/memberships, ordered by record id, paged
// with after cursors, so an opt-out fn makes meanwhile, which takes the
// contact off the list, moves no one past the cursor), and the page's
// contacts in one batch read (POST /crm/v3/objects/contacts/batch/read).
// A contact without an email is not listed: an opt-out finds contacts by
// email. Every contact in one of these lists is one an opt-out has not
// dealt with: an opt-out takes it off them. A list HubSpot does not hold
// is a permanent error, not an empty list.
func (c *Connector) EachSegmentMember(ctx context.Context, fn func(segment string, member connectors.Subject) error) error {
	if !c.optOut {
		return nil
	}
	for _, list := range c.optOutLists {
		if err := c.eachListMember(ctx, list, fn); err != nil {
			return err
		}
	}
	return nil
}

// eachListMember lists the members of one list.
func (c *Connector) eachListMember(ctx context.Context, list string, fn func(string, connectors.Subject) error) error {
	cursors := map[string]bool{}
	for after := ""; ; {
		q := url.Values{"limit": {strconv.Itoa(memberPage)}}
		if after != "" {
			q.Set("after", after)
		}
		var ans struct {
			Results []struct {
				RecordID string `json:"recordId"`
			} `json:"results"`
			Paging *paging `json:"paging,omitempty"`
		}
		err := c.call(ctx, http.MethodGet, "read list members", "/crm/v3/lists/"+url.PathEscape(list)+"/memberships?"+q.Encode(), nil, &ans)
		if errors.Is(err, errNotFound) {
			return connectors.Permanent(fmt.Errorf("hubspot %s: list %s (opt_out.lists): HubSpot has no such list: %w", c.name, list, err))
		}
		if err != nil {
			return err
		}
		if len(ans.Results) > memberPage {
			return connectors.Permanent(fmt.Errorf("hubspot %s: list %s: HubSpot answered %d members for a page of %d", c.name, list, len(ans.Results), memberPage))
		}
		ids := make([]string, 0, len(ans.Results))
		for _, r := range ans.Results {
			if err := c.checkID("read list members", r.RecordID); err != nil {
				return err
			}
			if !contains(ids, r.RecordID) {
				ids = append(ids, r.RecordID)
			}
		}
		if len(ids) > 0 {
			cts, err := c.batchRead(ctx, "contacts", ids, []string{"email", propAdditionalEmails})
			if err != nil {
				return err
			}
			for _, r := range cts {
				ct := &contact{ID: r.ID, Properties: r.Properties}
				var m connectors.Subject
				for _, e := range append([]string{primaryEmail(ct)}, additionalEmails(ct)...) {
					if e != "" {
						m.Identities = append(m.Identities, connectors.Identity{Kind: "email", Value: e})
					}
				}
				if len(m.Identities) == 0 {
					continue
				}
				if err := fn(collLists, m); err != nil {
					return fmt.Errorf("hubspot %s: list %s: %w", c.name, list, err)
				}
			}
		}
		if ans.Paging == nil || ans.Paging.Next == nil || ans.Paging.Next.After == "" {
			return nil
		}
		after = ans.Paging.Next.After
		if cursors[after] { // it would read the same pages forever
			return connectors.Permanent(fmt.Errorf("hubspot %s: list %s: read list members: HubSpot gave an after cursor twice", c.name, list))
		}
		cursors[after] = true
	}
}
