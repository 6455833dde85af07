package segment

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the connector type's name in the connectors file.
const Type = "segment"

// Spec is a segment connector's settings in the connectors file.
type Spec struct {
	// Token is the Public API token, sent as a Bearer token: ${VAR} (the
	// file refuses a literal one). It needs the Workspace Owner role, or a
	// role that may create and read regulations (see
	// docs/connectors/segment.md).
	Token string `yaml:"token"`
	// Region is where the workspace lives: us (api.segmentapis.com, the
	// default) or eu (eu1.api.segmentapis.com).
	Region string `yaml:"region"`
	// UserID lists the identity kinds that the workspace uses as Segment's
	// userId; every value of them is regulated. Empty: customer_id.
	UserID []string `yaml:"user_id"`
	// Erase is the regulation an erasure files: suppress_with_delete (the
	// default: delete, and block the userId from being collected again)
	// or delete_only.
	Erase string `yaml:"erase"`
	// Actions are those the connector does: erase, opt_out, opt_in (an
	// UNSUPPRESS when the person consents again). Empty: all three.
	Actions []string `yaml:"actions"`
	// PollEvery is how long the worker waits between two reads of a
	// regulation's status (a Go duration from 1m to 24h). Empty: 1h.
	PollEvery string `yaml:"poll_every"`
}

// The Public API's base URLs, by region.
var baseURLs = map[string]string{
	"us": "https://api.segmentapis.com",
	"eu": "https://eu1.api.segmentapis.com",
}

// Defaults and bounds of the settings.
const (
	DefaultPollEvery = time.Hour
	MinPollEvery     = time.Minute
	MaxPollEvery     = 24 * time.Hour
)

// The erase settings and the regulation each files.
var eraseTypes = map[string]RegulationType{
	"suppress_with_delete": SuppressWithDelete,
	"delete_only":          DeleteOnly,
}

// Factory returns the factory of segment connectors: their HTTP client is
// d.HTTP (http.DefaultClient when nil), their logger d.Log. Building one
// makes no call to Segment.
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
		return c, nil
	}
}

// New returns the segment connector called name with settings s, checked,
// calling the Public API with client and logging to log (nil: discard).
func New(name string, s Spec, client *http.Client, log *slog.Logger) (*Connector, error) {
	if s.Token == "" {
		return nil, connectors.SettingErrorf("token", "required: ${VAR}, the Public API token (a Bearer token)")
	}
	if strings.ContainsAny(s.Token, " \t\r\n") {
		return nil, connectors.SettingErrorf("token", "holds white space: not a Public API token")
	}
	region := s.Region
	if region == "" {
		region = "us"
	}
	base, ok := baseURLs[region]
	if !ok {
		return nil, connectors.SettingErrorf("region", "want us or eu, not %q", s.Region)
	}
	kinds := []string{"customer_id"}
	if len(s.UserID) > 0 {
		kinds = nil
		for _, k := range s.UserID {
			if !connectors.ValidKind(k) {
				return nil, connectors.SettingErrorf("user_id", "unknown identity kind %q (known: %s)", k, connectors.KindList())
			}
			if slices.Contains(kinds, k) {
				return nil, connectors.SettingErrorf("user_id", "%q given twice", k)
			}
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
	}
	erase := SuppressWithDelete
	if s.Erase != "" {
		if erase, ok = eraseTypes[s.Erase]; !ok {
			return nil, connectors.SettingErrorf("erase", "want suppress_with_delete or delete_only, not %q", s.Erase)
		}
	}
	actions := map[connectors.Action]bool{}
	for _, a := range s.Actions {
		act := connectors.Action(a)
		if _, ok := outcomes[act]; !ok {
			return nil, connectors.SettingErrorf("actions", "unknown action %q (segment does erase, opt_out and opt_in; it cannot export: the Public API reads no person's data)", a)
		}
		if actions[act] {
			return nil, connectors.SettingErrorf("actions", "%q given twice", a)
		}
		actions[act] = true
	}
	if len(actions) == 0 {
		for act := range outcomes {
			actions[act] = true
		}
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
		name: name, token: s.Token, base: base, kinds: kinds, erase: erase, actions: actions, pollEvery: every,
		client: client, log: log.With("connector", name),
	}, nil
}
