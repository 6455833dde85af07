package braze

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the connector type's name in the connectors file.
const Type = "braze"

// Spec is a braze connector's settings in the connectors file.
type Spec struct {
	// URL is the REST endpoint of the Braze instance the workspace lives
	// on (https://rest.iad-01.braze.com, https://rest.fra-01.braze.eu...):
	// https, unless AllowInsecure.
	URL string `yaml:"url"`
	// APIKey is the workspace's REST API key, ${VAR}: the file refuses a
	// literal one. It is sent as a Bearer token.
	APIKey string `yaml:"api_key"`
	// Match maps an identity kind (connectors.IdentityKinds) to the Braze
	// identifier it is: external_id, email, phone, braze_id, or
	// alias:LABEL (a user alias with that alias_label). Empty:
	// DefaultMatch.
	Match map[string]string `yaml:"match"`
	// Actions are those the connector does: export, erase, opt_out.
	// Empty: export and erase, and opt_out when OptOut is set.
	Actions []string `yaml:"actions"`
	// FieldsToExport are the profile fields an export asks for
	// (fields_to_export of /users/export/ids). Empty: DefaultFields.
	FieldsToExport []string `yaml:"fields_to_export"`
	// OptOut says what an opt-out changes.
	OptOut *OptOutSpec `yaml:"opt_out"`
	// ExportRate paces the connector's calls to /users/export/ids across
	// every worker process (N/s, N/m or N/h). Empty: DefaultExportRate.
	ExportRate string `yaml:"export_rate"`
	// Timeout bounds one call, the answer included (a Go duration, at
	// most 5m). Empty: DefaultTimeout.
	Timeout string `yaml:"timeout"`
	// AllowInsecure lets URL be plain http (tests).
	AllowInsecure bool `yaml:"allow_insecure"`
}

// OptOutSpec is what an opt-out changes in Braze.
type OptOutSpec struct {
	// Email sets the email subscription state of every address of the
	// subject (their own and their profiles') to unsubscribed
	// (POST /email/status).
	Email bool `yaml:"email"`
	// SubscriptionGroups are the ids of subscription groups the subject's
	// profiles are unsubscribed from (POST /v2/subscription/status/set).
	SubscriptionGroups []string `yaml:"subscription_groups"`
}

// Defaults and bounds of the settings.
const (
	DefaultTimeout = 30 * time.Second
	MaxTimeout     = 5 * time.Minute
	// DefaultExportRate is the documented limit of /users/export/ids for
	// workspaces onboarded on or after 22 August 2024 (older ones: 2,500/m).
	DefaultExportRate = "250/m"
)

// DefaultMatch is how identities are matched when the file gives no match.
var DefaultMatch = map[string]string{"customer_id": IDExternal, "email": IDEmail, "phone": IDPhone}

// The Braze identifiers an identity kind can be.
const (
	IDExternal = "external_id"
	IDEmail    = "email"
	IDPhone    = "phone"
	IDBraze    = "braze_id"
	// IDAliasPrefix starts alias:LABEL, a user alias with that label
	// whose alias_name is the identity's value.
	IDAliasPrefix = "alias:"
)

// DefaultFields are the fields_to_export of an export when the file gives
// none: every field /users/export/ids documents.
var DefaultFields = []string{
	"apps", "attributed_ad", "attributed_adgroup", "attributed_campaign", "attributed_source",
	"braze_id", "campaigns_received", "canvases_received", "cards_clicked", "country", "created_at",
	"custom_attributes", "custom_events", "devices", "dob", "email", "email_subscribe", "external_id",
	"first_name", "gender", "home_city", "language", "last_coordinates", "last_name", "phone",
	"purchases", "push_subscribe", "push_tokens", "random_bucket", "time_zone", "total_revenue",
	"uninstalled_at", "user_aliases",
}

// Factory returns the factory of braze connectors: d.HTTP is their client
// (each call bounded by the timeout setting), d.Limiter paces their calls
// to /users/export/ids, d.Log is their logger.
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
		c.client = connectors.NoRedirects(d.HTTP)
		c.limiter = d.Limiter
		c.log = d.Logger().With("connector", name)
		c.now = d.Clock()
		return c, nil
	}
}

// New returns the braze connector called name with settings s, checked. It
// uses http.DefaultClient and no limiter until Factory sets them.
func New(name string, s Spec) (*Connector, error) {
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		return nil, connectors.SettingErrorf("url", "required: the REST endpoint of your Braze instance, e.g. https://rest.iad-01.braze.com")
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, connectors.SettingErrorf("url", "want the https:// REST endpoint of your Braze instance, with a host and no user info or query")
	case u.Scheme == "http" && !s.AllowInsecure:
		return nil, connectors.SettingErrorf("url", "must be https (allow_insecure: true allows plain http, for tests)")
	}
	if s.APIKey == "" {
		return nil, connectors.SettingErrorf("api_key", "required: ${VAR}, a REST API key of the workspace")
	}
	c := &Connector{
		name: name, base: strings.TrimSuffix(s.URL, "/"), key: s.APIKey,
		actions: map[connectors.Action]bool{}, timeout: DefaultTimeout, now: time.Now,
		client: connectors.NoRedirects(nil),
	}
	match := s.Match
	if len(match) == 0 {
		match = DefaultMatch
	}
	for _, kind := range connectors.SortedKeys(match) {
		id := match[kind]
		if !connectors.ValidKind(kind) {
			return nil, connectors.SettingErrorf("match", "unknown identity kind %q (known: %s)", kind, connectors.KindList())
		}
		switch {
		case id == IDExternal, id == IDEmail, id == IDPhone, id == IDBraze:
		case strings.HasPrefix(id, IDAliasPrefix) && len(id) > len(IDAliasPrefix):
		default:
			return nil, connectors.SettingErrorf("match", "%s: want external_id, email, phone, braze_id or alias:LABEL, not %q", kind, id)
		}
		c.match = append(c.match, rule{kind: kind, id: id})
	}
	c.matchKinds = map[string]string{}
	for _, r := range c.match {
		c.matchKinds[r.kind] = r.id
	}
	c.fields = DefaultFields
	if len(s.FieldsToExport) > 0 {
		c.fields = slices.Clone(s.FieldsToExport)
		for _, f := range c.fields {
			if !slices.Contains(DefaultFields, f) {
				return nil, connectors.SettingErrorf("fields_to_export", "unknown field %q (known: %s)", f, strings.Join(DefaultFields, ", "))
			}
		}
		if !slices.Contains(c.fields, "braze_id") {
			c.fields = append(c.fields, "braze_id") // how the profiles found are told apart
		}
	}
	if s.OptOut != nil {
		c.optEmail = s.OptOut.Email
		for _, g := range s.OptOut.SubscriptionGroups {
			if !groupPattern.MatchString(g) {
				return nil, connectors.SettingErrorf("opt_out.subscription_groups", "want the id of a subscription group (letters, digits and -), not %q", g)
			}
			if !slices.Contains(c.groups, g) {
				c.groups = append(c.groups, g)
			}
		}
		if !c.optEmail && len(c.groups) == 0 {
			return nil, connectors.SettingErrorf("opt_out", "set email: true, or list subscription_groups, or leave opt_out out")
		}
	}
	for _, a := range s.Actions {
		act := connectors.Action(a)
		switch act {
		case connectors.ActionExport, connectors.ActionErase:
		case connectors.ActionOptOut:
			if s.OptOut == nil {
				return nil, connectors.SettingErrorf("actions", "opt_out needs the opt_out setting (email: true, or subscription_groups)")
			}
		default:
			return nil, connectors.SettingErrorf("actions", "unknown action %q (known: export, erase, opt_out)", a)
		}
		c.actions[act] = true
	}
	if len(s.Actions) == 0 {
		c.actions[connectors.ActionExport] = true
		c.actions[connectors.ActionErase] = true
		c.actions[connectors.ActionOptOut] = s.OptOut != nil
	}
	rate := DefaultExportRate
	if s.ExportRate != "" {
		rate = s.ExportRate
	}
	if c.exportRate, err = connectors.ParseRate(rate); err != nil {
		return nil, connectors.SettingErrorf("export_rate", "%v", err)
	}
	if s.Timeout != "" {
		if c.timeout, err = time.ParseDuration(s.Timeout); err != nil || c.timeout < time.Second || c.timeout > MaxTimeout {
			return nil, connectors.SettingErrorf("timeout", "want a duration from 1s to %s, not %q", MaxTimeout, s.Timeout)
		}
	}
	return c, nil
}
