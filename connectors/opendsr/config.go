package opendsr

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/internal/netguard"
	spec "github.com/dsar-project/dsar/internal/opendsr"
)

// Type is the connector type's name in the connectors file.
const Type = "opendsr"

// Spec is an opendsr connector's settings in the connectors file.
type Spec struct {
	// URL is the base URL of the processor's OpenDSR API: its discovery
	// document is URL/discovery, its requests URL/requests. https, unless
	// AllowInsecure.
	URL string `yaml:"url"`
	// Token is the credential the processor gave this controller, sent as
	// Authorization: Bearer: ${VAR} (the file refuses a literal one).
	Token string `yaml:"token"`
	// Domain is the processor domain whose certificate signs its answers
	// and callbacks (X-OpenDSR-Processor-Domain). Empty: URL's host.
	Domain string `yaml:"domain"`
	// CAFile is a PEM file of the certificate authorities the processor's
	// certificate must chain to. Empty: the system's.
	CAFile string `yaml:"ca_file"`
	// Regulation is the regulation every request names: gdpr or ccpa (the
	// two the specification knows). Empty: gdpr.
	Regulation string `yaml:"regulation"`
	// Actions are those passed to the processor: export (an access
	// request), erase (an erasure request). Empty: both.
	Actions []string `yaml:"actions"`
	// PollEvery is how long the worker waits between two reads of a
	// request's status when no callback came (a Go duration from 1m to
	// 24h). Empty: 1h.
	PollEvery string `yaml:"poll_every"`
	// Timeout bounds one call, the answer included (a Go duration from 1s
	// to 5m). Empty: 30s.
	Timeout string `yaml:"timeout"`
	// CallbackURL is the base URL at which the processor reaches dsar's
	// API (status_callback_urls: CallbackURL/v1/callbacks/{job}). Empty:
	// the service's DSAR_PUBLIC_URL; with neither, the job is polled only.
	CallbackURL string `yaml:"callback_url"`
	// AllowInsecure lets URL (and the certificate's URL) be plain http.
	AllowInsecure bool `yaml:"allow_insecure"`
	// AllowPrivate lets the calls reach loopback, private, link-local and
	// other internal addresses (see netguard).
	AllowPrivate bool `yaml:"allow_private"`
}

// Defaults and bounds of the settings.
const (
	DefaultPollEvery = time.Hour
	MinPollEvery     = time.Minute
	MaxPollEvery     = 24 * time.Hour
	DefaultTimeout   = 30 * time.Second
	MaxTimeout       = 5 * time.Minute
)

// Factory returns the factory of opendsr connectors: PublicURL from d is
// their default callback base, Log their logger, Now their clock. They
// make their own HTTP client (d.HTTP is not used), one that checks every
// address it dials. Building one makes no call: the processor's discovery
// document and certificate are fetched at the first action or callback.
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
		c.now = d.Clock()
		return c, nil
	}
}

// New returns the opendsr connector called name with settings s, checked.
func New(name string, s Spec) (*Connector, error) {
	u, err := connectors.EndpointURL("url", s.URL, "the base URL of the processor's OpenDSR API, where /discovery is", s.AllowInsecure, s.AllowPrivate)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, connectors.SettingErrorf("url", "want a base URL, with no query or fragment: the routes are appended to it")
	}
	if s.Token == "" {
		return nil, connectors.SettingErrorf("token", "required: ${VAR}, the credential the processor gave this controller (sent as Authorization: Bearer)")
	}
	if strings.ContainsAny(s.Token, " \t\r\n") {
		return nil, connectors.SettingErrorf("token", "must not hold white space")
	}
	domain := strings.ToLower(strings.TrimSuffix(s.Domain, "."))
	if domain == "" {
		domain = strings.ToLower(u.Hostname())
	}
	if strings.ContainsAny(domain, "/:@ ") {
		return nil, connectors.SettingErrorf("domain", "want a host name (processor.example.com), not %q", s.Domain)
	}
	var roots *x509.CertPool
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, connectors.SettingErrorf("ca_file", "%v", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, connectors.SettingErrorf("ca_file", "%s holds no PEM certificate", s.CAFile)
		}
	}
	regulation := s.Regulation
	switch regulation {
	case "":
		regulation = "gdpr"
	case "gdpr", "ccpa":
	default:
		return nil, connectors.SettingErrorf("regulation", "want gdpr or ccpa (the regulations OpenDSR 2.0 knows), not %q", s.Regulation)
	}
	actions := map[connectors.Action]string{}
	for _, a := range s.Actions {
		t, ok := requestTypes[connectors.Action(a)]
		if !ok {
			return nil, connectors.SettingErrorf("actions", "unknown action %q (known: export, erase)", a)
		}
		actions[connectors.Action(a)] = t
	}
	if len(actions) == 0 {
		actions = requestTypes
	}
	poll, err := duration(s.PollEvery, DefaultPollEvery, MinPollEvery, MaxPollEvery)
	if err != nil {
		return nil, connectors.SettingErrorf("poll_every", "%v", err)
	}
	timeout, err := duration(s.Timeout, DefaultTimeout, time.Second, MaxTimeout)
	if err != nil {
		return nil, connectors.SettingErrorf("timeout", "%v", err)
	}
	base, err := connectors.CallbackBase(s.CallbackURL)
	if err != nil {
		return nil, err
	}
	return &Connector{
		name: name, base: strings.TrimSuffix(s.URL, "/"), token: s.Token, domain: domain, roots: roots,
		regulation: regulation, actions: actions, pollEvery: poll, callbackBase: base, insecure: s.AllowInsecure,
		client: netguard.Client(netguard.Options{AllowInternal: s.AllowPrivate, Timeout: timeout}),
		now:    time.Now,
	}, nil
}

// requestTypes maps the actions the type does to OpenDSR request types.
var requestTypes = map[connectors.Action]string{
	connectors.ActionExport: spec.TypeAccess,
	connectors.ActionErase:  spec.TypeErasure,
}

// duration reads a setting's duration: def when empty, else within
// [lo, hi].
func duration(v string, def, lo, hi time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("want a duration from %s to %s, not %q", lo, hi, v)
	}
	return d, nil
}
