package klaviyo

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the connector type's name in the connectors file.
const Type = "klaviyo"

// Spec is a klaviyo connector's settings in the connectors file.
type Spec struct {
	// APIKey is a private API key, sent as "Authorization:
	// Klaviyo-API-Key <key>": ${VAR} (the file refuses a literal one).
	APIKey string `yaml:"api_key"`
	// Revision is the API revision every call pins in its revision
	// header (YYYY-MM-DD, optionally .suffix). Empty: DefaultRevision.
	Revision string `yaml:"revision"`
	// Lists are the ids of the lists an opt-out unsubscribes the profile
	// from, besides suppressing it.
	Lists []string `yaml:"lists"`
	// Actions are those the connector does: export, erase, opt_out.
	// Empty: all three.
	Actions []string `yaml:"actions"`
	// PollEvery is how long the worker waits between two look-ups of a
	// profile being deleted (a Go duration from 1m to 24h). Empty: 15m.
	PollEvery string `yaml:"poll_every"`
}

// DefaultBase is Klaviyo's API host.
const DefaultBase = "https://a.klaviyo.com"

// DefaultRevision is the API revision the connector was written against.
const DefaultRevision = "2024-10-15"

// Defaults and bounds of poll_every.
const (
	DefaultPollEvery = 15 * time.Minute
	MinPollEvery     = time.Minute
	MaxPollEvery     = 24 * time.Hour
)

var (
	revisionPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$`)
	listIDPattern   = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
)

// Factory returns the factory of klaviyo connectors: their HTTP client is
// d.HTTP (http.DefaultClient when nil), their logger d.Log, and d.Limiter
// paces their calls to Klaviyo's documented per-endpoint limits across
// every worker process (nil: no pacing). Building one makes no call to
// Klaviyo.
func Factory(d connectors.Deps) connectors.Factory {
	return func(_ context.Context, name string, node *yaml.Node) (connectors.Connector, error) {
		var s Spec
		if err := connectors.DecodeStrict(node, &s); err != nil {
			return nil, err
		}
		c, err := New(name, s, d.HTTPClient(), d.Logger())
		if err != nil {
			return nil, connectors.AtSetting(node, err)
		}
		c.client.Limiter = d.Limiter
		return c, nil
	}
}

// New returns the klaviyo connector called name with settings s, checked,
// calling Klaviyo with client and logging to log (nil: discard).
func New(name string, s Spec, client *http.Client, log *slog.Logger) (*Connector, error) {
	if s.APIKey == "" {
		return nil, connectors.SettingErrorf("api_key", "required: ${VAR}, a private API key (pk_...)")
	}
	if strings.ContainsAny(s.APIKey, " \t\r\n") {
		return nil, connectors.SettingErrorf("api_key", "holds white space: not a private API key")
	}
	rev := s.Revision
	if rev == "" {
		rev = DefaultRevision
	}
	if !revisionPattern.MatchString(rev) {
		return nil, connectors.SettingErrorf("revision", "want an API revision date YYYY-MM-DD (e.g. %s), not %q", DefaultRevision, s.Revision)
	}
	var lists []string
	for _, l := range s.Lists {
		if !listIDPattern.MatchString(l) {
			return nil, connectors.SettingErrorf("lists", "%q is not a Klaviyo list id (letters and digits, e.g. Y6nRLr)", l)
		}
		if slices.Contains(lists, l) {
			return nil, connectors.SettingErrorf("lists", "%q given twice", l)
		}
		lists = append(lists, l)
	}
	actions := map[connectors.Action]bool{}
	for _, a := range s.Actions {
		act := connectors.Action(a)
		if act != connectors.ActionExport && act != connectors.ActionErase && act != connectors.ActionOptOut {
			return nil, connectors.SettingErrorf("actions", "unknown action %q (klaviyo does export, erase and opt_out)", a)
		}
		actions[act] = true
	}
	if len(actions) == 0 {
		actions[connectors.ActionExport], actions[connectors.ActionErase], actions[connectors.ActionOptOut] = true, true, true
	}
	every := DefaultPollEvery
	if s.PollEvery != "" {
		d, err := time.ParseDuration(s.PollEvery)
		if err != nil || d < MinPollEvery || d > MaxPollEvery {
			return nil, connectors.SettingErrorf("poll_every", "want a duration from %s to %s, not %q", MinPollEvery, MaxPollEvery, s.PollEvery)
		}
		every = d
	}
	if client == nil {
		client = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Connector{
		name: name, lists: lists, actions: actions, pollEvery: every,
		client: &Client{Base: DefaultBase, Key: s.APIKey, Revision: rev, HTTP: client, LimitKey: name},
		log:    log.With("connector", name),
	}, nil
}
