package hubspot

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the connector type's name in the connectors file.
const Type = "hubspot"

// Spec is a hubspot connector's settings in the connectors file.
type Spec struct {
	// Token is the private app's access token, sent as a Bearer token:
	// ${VAR} (the file refuses a literal one).
	Token string `yaml:"token"`
	// BaseURL is the API's root. Empty: https://api.hubapi.com. Plain http
	// only to a loopback address (tests).
	BaseURL string `yaml:"base_url"`
	// Properties are the contact properties an export reads (email is
	// always read). Empty: DefaultProperties.
	Properties []string `yaml:"properties"`
	// Associations are the object types whose ids associated with the
	// contact an export lists. Empty: DefaultAssociations.
	Associations []string `yaml:"associations"`
	// Engagements are the engagement (activity) types associated with
	// the contact whose records an export writes: emails, notes, calls,
	// meetings, tasks. Absent: all five; [] none.
	Engagements *[]string `yaml:"engagements"`
	// OptOut, when set, makes the connector handle opt-outs.
	OptOut *OptOutSpec `yaml:"opt_out"`
	// Limits are the app's rate limits, which the connector keeps to.
	Limits LimitsSpec `yaml:"limits"`
}

// OptOutSpec says what an opt-out does.
type OptOutSpec struct {
	// UnsubscribeAll opts the contact out of all email (communication
	// preferences v4, channel EMAIL). Absent: true.
	UnsubscribeAll *bool `yaml:"unsubscribe_all"`
	// Lists are the ids (ILS list ids) of manual or snapshot lists the
	// contact is removed from.
	Lists []string `yaml:"lists"`
	// BusinessUnitID, with the Brands add-on, is the brand whose email the
	// contact is opted out of (0: the account's default brand). Absent:
	// the account's (no businessUnitId is sent).
	BusinessUnitID *int64 `yaml:"business_unit_id"`
}

// LimitsSpec are the request limits of the private app (HubSpot's API usage
// guidelines: per 10 seconds and per day, by the account's subscription).
type LimitsSpec struct {
	// Per10s is the most requests sent in any 10 seconds. 0: 100 (Free
	// and Starter; Professional and Enterprise allow 190).
	Per10s int `yaml:"per_10s"`
	// Daily is the most requests sent a day. 0: 250,000 (Free and
	// Starter; Professional 625,000, Enterprise 1,000,000).
	Daily int `yaml:"daily"`
}

// Defaults of the settings.
const (
	DefaultBaseURL = "https://api.hubapi.com"
	DefaultPer10s  = 100
	DefaultDaily   = 250_000
	// maxPer10s and maxDaily bound the limits: HubSpot's highest tiers
	// with the API limit increase.
	maxPer10s = 250
	maxDaily  = 2_000_000
)

// DefaultProperties are the contact properties an export reads when the
// file names none (email and hs_additional_emails are always read).
var DefaultProperties = []string{
	"email", "hs_additional_emails", "firstname", "lastname", "phone", "mobilephone", "company", "jobtitle",
	"address", "city", "state", "zip", "country", "website", "lifecyclestage",
	"hs_lead_status", "createdate", "lastmodifieddate",
}

// DefaultAssociations are the object types whose associated ids an export
// lists when the file names none.
var DefaultAssociations = []string{"companies", "deals", "tickets"}

var (
	propertyPattern = regexp.MustCompile(`^[a-z0-9_]{1,100}$`)
	// objectPattern: a type name (deals, p_custom) or an object type id (2-123).
	objectPattern = regexp.MustCompile(`^([a-z][a-z0-9_]{0,99}|[0-9]{1,3}-[0-9]{1,12})$`)
	listIDPattern = regexp.MustCompile(`^[0-9]{1,19}$`)
)

// Factory returns the factory of hubspot connectors. d.HTTP is their client
// when set; d.Limiter, when set, counts their requests across every worker
// process (else each process counts its own); d.Log is their logger.
func Factory(d connectors.Deps) connectors.Factory {
	return func(_ context.Context, name string, node *yaml.Node) (connectors.Connector, error) {
		var s Spec
		if err := connectors.DecodeStrict(node, &s); err != nil {
			return nil, err
		}
		c, err := New(name, s)
		if err != nil {
			return nil, connectors.AtSetting(node, err)
		}
		if d.HTTP != nil {
			c.client = connectors.NoRedirects(d.HTTP)
		}
		if d.Limiter != nil {
			c.limiter = d.Limiter
		}
		c.log = d.Logger().With("connector", name)
		return c, nil
	}
}

// New returns the hubspot connector called name with settings s, checked.
func New(name string, s Spec) (*Connector, error) {
	if s.Token == "" {
		return nil, connectors.SettingErrorf("token", "required: ${VAR}, the private app's access token")
	}
	if strings.ContainsAny(s.Token, " \t\r\n") {
		return nil, connectors.SettingErrorf("token", "holds white space: not an access token")
	}
	base := strings.TrimSuffix(s.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, connectors.SettingErrorf("base_url", "want an https:// URL with a host, no user info and no query")
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, connectors.SettingErrorf("base_url", "must be https (plain http only to a loopback address)")
	}
	props := []string{"email", propAdditionalEmails}
	for _, p := range s.Properties {
		if !propertyPattern.MatchString(p) {
			return nil, connectors.SettingErrorf("properties", "%q is not a property's internal name (a-z, 0-9 and _)", p)
		}
		if !contains(props, p) {
			props = append(props, p)
		}
	}
	if len(s.Properties) == 0 {
		props = append([]string(nil), DefaultProperties...)
	}
	assocs := s.Associations
	if len(assocs) == 0 {
		assocs = DefaultAssociations
	}
	for _, a := range assocs {
		if !objectPattern.MatchString(a) {
			return nil, connectors.SettingErrorf("associations", "%q is not an object type (deals, companies, p_custom, 2-123)", a)
		}
	}
	engagements := slices.Clone(EngagementTypes)
	if s.Engagements != nil {
		engagements = nil
		for _, e := range *s.Engagements {
			if !slices.Contains(EngagementTypes, e) {
				return nil, connectors.SettingErrorf("engagements", "%q is not an engagement type (%s)", e, strings.Join(EngagementTypes, ", "))
			}
			if !slices.Contains(engagements, e) {
				engagements = append(engagements, e)
			}
		}
	}
	c := &Connector{
		name: name, base: base, token: s.Token, properties: props, associations: append([]string(nil), assocs...),
		client:  connectors.NoRedirects(&http.Client{Timeout: 30 * time.Second}),
		per10s:  DefaultPer10s,
		daily:   DefaultDaily,
		limiter: newLocalLimiter(time.Now),
		now:     time.Now,
		sleep:   connectors.Sleep,
	}
	c.engagements = engagements
	if o := s.OptOut; o != nil {
		c.optOut = true
		c.unsubscribeAll = o.UnsubscribeAll == nil || *o.UnsubscribeAll
		for _, id := range o.Lists {
			if !listIDPattern.MatchString(id) {
				return nil, connectors.SettingErrorf("opt_out.lists", "%q is not a list id (digits, as HubSpot's lists API v3 gives them)", id)
			}
			if !contains(c.optOutLists, id) {
				c.optOutLists = append(c.optOutLists, id)
			}
		}
		if b := o.BusinessUnitID; b != nil {
			if *b < 0 {
				return nil, connectors.SettingErrorf("opt_out.business_unit_id", "want a brand's id (0 or more), not %d", *b)
			}
			c.businessUnit = fmt.Sprint(*b)
		}
		if !c.unsubscribeAll && len(c.optOutLists) == 0 {
			return nil, connectors.SettingErrorf("opt_out", "does nothing: set unsubscribe_all: true or name lists")
		}
	}
	if n := s.Limits.Per10s; n != 0 {
		if n < 1 || n > maxPer10s {
			return nil, connectors.SettingErrorf("limits.per_10s", "want 1 to %d requests per 10 seconds, not %d", maxPer10s, n)
		}
		c.per10s = n
	}
	if n := s.Limits.Daily; n != 0 {
		if n < 1 || n > maxDaily {
			return nil, connectors.SettingErrorf("limits.daily", "want 1 to %d requests a day, not %d", maxDaily, n)
		}
		c.daily = n
	}
	return c, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
