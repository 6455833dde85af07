package hubspot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dsar-project/dsar/connectors"
)

var _ connectors.Checker = (*Connector)(nil)

// Check reports whether HubSpot answers, accepts the token, grants the
// private app the scopes each configured action needs (read from HubSpot's
// token information, POST /oauth/v2/private-apps/get/access-token-info),
// and whether each list of opt_out.lists exists and can be edited (manual
// or snapshot: HubSpot refuses to remove members from a dynamic list).
func (c *Connector) Check(ctx context.Context) []connectors.Check {
	var out []connectors.Check
	add := func(what string, err error) { out = append(out, connectors.Check{What: what, Err: err}) }

	var info struct {
		HubID  int64    `json:"hubId"`
		Scopes []string `json:"scopes"`
	}
	err := c.call(ctx, http.MethodPost, "read the token's scopes", "/oauth/v2/private-apps/get/access-token-info", map[string]string{"tokenKey": c.token}, &info)
	var unknown error
	switch {
	case err == nil:
		add("reachable", nil)
		add("token accepted", nil)
	case isStatus(err, http.StatusUnauthorized, http.StatusBadRequest):
		add("reachable", nil)
		add("token accepted", err)
		return out
	case errors.Is(err, connectors.ErrPermanent) || errors.Is(err, errNotFound):
		add("reachable", nil)
		unknown = fmt.Errorf("%w: HubSpot does not say (%v)", connectors.ErrNotChecked, err)
	default:
		if _, limited := connectors.RetryDelay(err); limited {
			add("reachable", nil)
			unknown = fmt.Errorf("%w: rate limited (%v)", connectors.ErrNotChecked, err)
			break
		}
		add("reachable", err)
		return out
	}
	for _, need := range c.scopes() {
		what := "scope " + strings.Join(need.anyOf, " or ") + " (" + need.why + ")"
		switch {
		case unknown != nil:
			add(what, unknown)
		case !slices.ContainsFunc(need.anyOf, func(s string) bool { return slices.Contains(info.Scopes, s) }):
			add(what, fmt.Errorf("the private app lacks it: add it to the app in HubSpot (a new scope gives the app a new token)"))
		default:
			add(what, nil)
		}
	}
	for _, id := range c.optOutLists {
		add("list "+id+" (opt_out.lists) exists and is manual or snapshot", c.checkList(ctx, id))
	}
	return out
}

// scope is a scope an action needs: any of anyOf.
type scope struct {
	anyOf []string
	why   string
}

// scopes returns the scopes the configured actions need.
func (c *Connector) scopes() []scope {
	out := []scope{
		{[]string{"crm.objects.contacts.read"}, "reading contacts"},
		{[]string{"crm.lists.read"}, "reading list memberships"},
		{[]string{"communication_preferences.read", "communication_preferences.read_write"}, "reading subscription statuses"},
	}
	for _, a := range c.associations {
		switch a {
		case "companies", "deals", "quotes", "line_items":
			out = append(out, scope{[]string{"crm.objects." + a + ".read"}, "reading associated " + a})
		case "tickets":
			out = append(out, scope{[]string{"tickets"}, "reading associated tickets"})
		}
	}
	if len(c.engagements) > 0 {
		out = append(out, scope{[]string{"crm.objects.contacts.read"}, "reading associated " + strings.Join(c.engagements, ", ")})
	}
	if contains(c.engagements, "emails") {
		out = append(out, scope{[]string{"sales-email-read"}, "reading the content of logged emails"})
	}
	out = append(out, scope{[]string{"crm.objects.contacts.write"}, "erasure"})
	if c.optOut && c.unsubscribeAll {
		out = append(out, scope{[]string{"communication_preferences.write", "communication_preferences.read_write"}, "opting out of all email"})
	}
	if c.optOut && len(c.optOutLists) > 0 {
		out = append(out, scope{[]string{"crm.lists.write"}, "removing from lists"})
	}
	return out
}

// checkList checks that list id exists and its members can be removed.
func (c *Connector) checkList(ctx context.Context, id string) error {
	var ans struct {
		List struct {
			ProcessingType string `json:"processingType"`
			ObjectTypeID   string `json:"objectTypeId"`
		} `json:"list"`
	}
	err := c.call(ctx, http.MethodGet, "read list", "/crm/v3/lists/"+url.PathEscape(id), nil, &ans)
	switch {
	case errors.Is(err, errNotFound):
		return fmt.Errorf("HubSpot has no list %s", id)
	case err != nil:
		return err
	case ans.List.ObjectTypeID != "" && ans.List.ObjectTypeID != contactObjectType:
		return fmt.Errorf("list %s holds objects of type %s, not contacts (0-1)", id, ans.List.ObjectTypeID)
	case ans.List.ProcessingType == "MANUAL" || ans.List.ProcessingType == "SNAPSHOT":
		return nil
	case ans.List.ProcessingType == "DYNAMIC":
		return fmt.Errorf("list %s is dynamic (active): HubSpot refuses to remove members; exclude opted-out contacts in its filters and leave it out of opt_out.lists", id)
	}
	return fmt.Errorf("list %s has processing type %q; want MANUAL or SNAPSHOT", id, ans.List.ProcessingType)
}

// isStatus reports whether err is HubSpot's answer with one of codes.
func isStatus(err error, codes ...int) bool {
	var se *statusErr
	return errors.As(err, &se) && slices.Contains(codes, se.code)
}
