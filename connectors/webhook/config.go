package webhook

import (
	"context"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/netguard"
	sw "github.com/dsar-project/dsar/internal/webhook"
)

// Type is the connector type's name in the connectors file.
const Type = "webhook"

// Spec is a webhook connector's settings in the connectors file.
type Spec struct {
	// URL receives the signed POSTs: https, unless AllowInsecure.
	URL string `yaml:"url"`
	// Secret signs the calls and verifies the callbacks: ${VAR} (the file
	// refuses a literal one), "whsec_" and base64 as Standard Webhooks
	// providers print them, or any text of at least 16 bytes.
	Secret string `yaml:"secret"`
	// Actions are those the receiver handles: export, erase, opt_out.
	// Empty: all three.
	Actions []string `yaml:"actions"`
	// Timeout bounds one call, the answer included (a Go duration, at
	// most 5m). Empty: 30s.
	Timeout string `yaml:"timeout"`
	// CallbackURL is the base URL at which the receiver reaches dsar's
	// API to call back (POST CallbackURL/v1/callbacks/{job}). Empty: the
	// service's DSAR_PUBLIC_URL.
	CallbackURL string `yaml:"callback_url"`
	// AllowInsecure lets URL be plain http.
	AllowInsecure bool `yaml:"allow_insecure"`
	// AllowPrivate lets URL reach loopback, private, link-local,
	// carrier-grade NAT and unspecified addresses (see netguard).
	AllowPrivate bool `yaml:"allow_private"`
}

// Defaults and bounds of the settings.
const (
	DefaultTimeout = 30 * time.Second
	MaxTimeout     = 5 * time.Minute
)

// Factory returns the factory of webhook connectors: PublicURL from d is
// their default callback base, Log their logger. They make their own HTTP
// client (d.HTTP is not used): one that checks every address it dials.
func Factory(d connectors.Deps) connectors.Factory {
	return func(_ context.Context, name string, node *yaml.Node) (connectors.Connector, error) {
		var s Spec
		if err := connectors.DecodeStrict(node, &s); err != nil {
			return nil, err
		}
		if s.CallbackURL == "" {
			s.CallbackURL = d.PublicURL
		}
		c, err := New(name, s)
		if err != nil {
			return nil, connectors.AtSetting(node, err)
		}
		c.log = d.Logger().With("connector", name)
		return c, nil
	}
}

// New returns the webhook connector called name with settings s, checked.
func New(name string, s Spec) (*Connector, error) {
	if _, err := connectors.EndpointURL("url", s.URL, "where the signed calls go", s.AllowInsecure, s.AllowPrivate); err != nil {
		return nil, err
	}
	if s.Secret == "" {
		return nil, connectors.SettingErrorf("secret", "required: ${VAR}, the secret the receiver verifies the calls with")
	}
	secret, err := sw.ParseSecret(s.Secret)
	if err != nil {
		return nil, connectors.SettingErrorf("secret", "%v", err)
	}
	actions := map[connectors.Action]bool{}
	for _, a := range s.Actions {
		act := connectors.Action(a)
		if !containsAction(act) {
			return nil, connectors.SettingErrorf("actions", "unknown action %q (known: export, erase, opt_out)", a)
		}
		actions[act] = true
	}
	if len(actions) == 0 {
		for _, a := range connectors.Actions() {
			actions[a] = true
		}
	}
	timeout := DefaultTimeout
	if s.Timeout != "" {
		if timeout, err = time.ParseDuration(s.Timeout); err != nil || timeout <= 0 || timeout > MaxTimeout {
			return nil, connectors.SettingErrorf("timeout", "want a duration from 1s to %s, not %q", MaxTimeout, s.Timeout)
		}
	}
	base, err := connectors.CallbackBase(s.CallbackURL)
	if err != nil {
		return nil, err
	}
	return &Connector{
		name: name, url: s.URL, secret: secret, actions: actions, callbackBase: base, now: time.Now,
		client: netguard.Client(netguard.Options{AllowInternal: s.AllowPrivate, Timeout: timeout}),
	}, nil
}

func containsAction(a connectors.Action) bool {
	for _, x := range connectors.Actions() {
		if x == a {
			return true
		}
	}
	return false
}
