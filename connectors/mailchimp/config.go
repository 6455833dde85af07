package mailchimp

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the connector type's name in the connectors file.
const Type = "mailchimp"

// Spec is a mailchimp connector's settings in the connectors file.
type Spec struct {
	// APIKey is ${VAR} (the file refuses a literal one): a Marketing API
	// key, "<hex>-<dc>" (…-us21), or, with Auth bearer, an OAuth access
	// token (then DataCenter is required).
	APIKey string `yaml:"api_key"`
	// Lists are the ids of the audiences (lists) searched and acted on;
	// at least one.
	Lists []string `yaml:"lists"`
	// SegmentTags are the tags an opt-out removes from the member (the
	// tags the account's segments are built on). Empty: every tag the
	// member has.
	SegmentTags []string `yaml:"segment_tags"`
	// Actions are those the connector does: export, erase, opt_out. Empty:
	// all three.
	Actions []string `yaml:"actions"`
	// Auth is how the key is sent: basic (the default: any user name, the
	// key as password) or bearer.
	Auth string `yaml:"auth"`
	// DataCenter is the data center of the account (us21); empty: the
	// suffix of APIKey.
	DataCenter string `yaml:"data_center"`
	// Timeout bounds one call (a Go duration, at most 5m). Empty: 30s.
	Timeout string `yaml:"timeout"`
	// BaseURL replaces https://<dc>.api.mailchimp.com/3.0 (a proxy, a
	// test server). https unless the host is a loopback address.
	BaseURL string `yaml:"base_url"`
}

// Defaults and bounds of the settings.
const (
	DefaultTimeout = 30 * time.Second
	MaxTimeout     = 5 * time.Minute
)

var (
	keyPattern  = regexp.MustCompile(`^[A-Za-z0-9]{8,}-([a-z]{2,4}[0-9]{1,3})$`)
	dcPattern   = regexp.MustCompile(`^[a-z]{2,4}[0-9]{1,3}$`)
	listPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
)

// Factory returns the factory of mailchimp connectors: they call the API
// with d.HTTP (http.DefaultClient when nil) and log to d.Log. Building one
// makes no call.
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
		c.log = d.Logger().With("connector", name)
		return c, nil
	}
}

// New returns the mailchimp connector called name with settings s,
// checked. It calls with http.DefaultClient and logs nothing; Factory sets
// both from the service's Deps. No message quotes the key.
func New(name string, s Spec) (*Connector, error) {
	auth := s.Auth
	switch auth {
	case "", "basic":
		auth = "basic"
	case "bearer":
	default:
		return nil, connectors.SettingErrorf("auth", "want basic or bearer, not %q", s.Auth)
	}
	if s.APIKey == "" {
		return nil, connectors.SettingErrorf("api_key", "required: ${VAR}, the environment variable holding the Marketing API key (…-us21)")
	}
	if strings.ContainsAny(s.APIKey, " \t\r\n:") {
		return nil, connectors.SettingErrorf("api_key", "holds a space, a line break or a colon: not a Mailchimp API key (check the variable's value)")
	}
	dc := s.DataCenter
	if dc != "" && !dcPattern.MatchString(dc) {
		return nil, connectors.SettingErrorf("data_center", "want a Mailchimp data center such as us21, not %q", dc)
	}
	if m := keyPattern.FindStringSubmatch(s.APIKey); m != nil {
		if dc == "" {
			dc = m[1]
		} else if dc != m[1] {
			return nil, connectors.SettingErrorf("data_center", "%s, but the API key is of data center %s", dc, m[1])
		}
	}
	base := strings.TrimSuffix(s.BaseURL, "/")
	if base != "" {
		u, err := url.Parse(base)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, connectors.SettingErrorf("base_url", "want an https:// URL with a host, and no user info or query")
		}
		if u.Scheme == "http" && !loopback(u.Hostname()) {
			return nil, connectors.SettingErrorf("base_url", "must be https (plain http only to a loopback address, for tests)")
		}
	} else {
		if dc == "" {
			if auth == "bearer" {
				return nil, connectors.SettingErrorf("data_center", "required with auth: bearer (an OAuth token names no data center): the account's, such as us21")
			}
			return nil, connectors.SettingErrorf("api_key", "not a Mailchimp API key: want <key>-<data center>, e.g. …-us21 (the data center names the API's host)")
		}
		base = "https://" + dc + ".api.mailchimp.com/3.0"
	}
	if len(s.Lists) == 0 {
		return nil, connectors.SettingErrorf("lists", "required: the ids of the audiences to search (Audience > Settings > Audience name and defaults > Audience ID)")
	}
	for i, l := range s.Lists {
		if !listPattern.MatchString(l) {
			return nil, connectors.SettingErrorf("lists", "entry %d: want an audience id (letters and digits, such as a1b2c3d4e5), not %q", i+1, l)
		}
		if slices.Contains(s.Lists[:i], l) {
			return nil, connectors.SettingErrorf("lists", "audience %s is listed twice", l)
		}
	}
	for i, tag := range s.SegmentTags {
		if strings.TrimSpace(tag) == "" || len(tag) > 100 {
			return nil, connectors.SettingErrorf("segment_tags", "entry %d: want a tag name of 1 to 100 characters", i+1)
		}
	}
	actions := map[connectors.Action]bool{}
	for _, a := range s.Actions {
		act := connectors.Action(a)
		if act != connectors.ActionExport && act != connectors.ActionErase && act != connectors.ActionOptOut {
			return nil, connectors.SettingErrorf("actions", "unknown action %q (known: export, erase, opt_out)", a)
		}
		actions[act] = true
	}
	if len(actions) == 0 {
		actions = map[connectors.Action]bool{connectors.ActionExport: true, connectors.ActionErase: true, connectors.ActionOptOut: true}
	}
	timeout := DefaultTimeout
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil || d < time.Second || d > MaxTimeout {
			return nil, connectors.SettingErrorf("timeout", "want a duration from 1s to %s, not %q", MaxTimeout, s.Timeout)
		}
		timeout = d
	}
	header := "Bearer " + s.APIKey
	if auth == "basic" {
		header = basicAuth("dsar", s.APIKey)
	}
	return &Connector{
		name: name, base: base, authHeader: header, lists: slices.Clone(s.Lists),
		segmentTags: slices.Clone(s.SegmentTags), actions: actions, timeout: timeout,
		client: connectors.NoRedirects(nil), sem: semaphore(base, header),
	}, nil
}

func loopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
