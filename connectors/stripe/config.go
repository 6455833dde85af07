package stripe

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/connectors"
)

// Type is the connector type's name in the connectors file.
const Type = "stripe"

// Spec is a stripe connector's settings in the connectors file.
type Spec struct {
	// SecretKey is the account's secret key (sk_live_..., sk_test_...) or
	// a restricted key (rk_...), sent as a Bearer token: ${VAR} (the file
	// refuses a literal one).
	SecretKey string `yaml:"secret_key"`
	// StripeVersion is the API version every call pins in the
	// Stripe-Version header. Empty: DefaultStripeVersion.
	StripeVersion string `yaml:"stripe_version"`
	// Erase is how an erasure is done: delete (the default: DELETE the
	// customer) or redact (a privacy redaction job, polled).
	Erase string `yaml:"erase"`
	// Actions are those the connector does: export, erase. Empty: both.
	Actions []string `yaml:"actions"`
	// PollEvery is how long the worker waits between two reads of a
	// redaction job (a Go duration from 1m to 24h). Empty: 1h.
	PollEvery string `yaml:"poll_every"`
	// RedactionVersion is the preview API version (YYYY-MM-DD.preview)
	// sent as Stripe-Version on the redaction job calls. Empty:
	// DefaultRedactionVersion.
	RedactionVersion string `yaml:"redaction_version"`
	// Search, when false, finds customers only by GET
	// /v1/customers?email= (exact, case-sensitive), for an account
	// without the Search API (Stripe: not available to merchants in
	// India). Empty: true.
	Search *bool `yaml:"search"`
}

// BaseURL is the Stripe API's base URL.
const BaseURL = "https://api.stripe.com"

// DefaultStripeVersion is the API version pinned when the file names none.
const DefaultStripeVersion = "2025-05-28.basil"

// DefaultRedactionVersion is the preview API version redaction jobs are
// called with when the file names none: the preview of the default
// version's release (its API reference:
// https://docs.stripe.com/api/privacy/redaction-job/create?api-version=2025-05-28.preview).
const DefaultRedactionVersion = "2025-05-28.preview"

// previewPattern is the form of a preview API version.
var previewPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}\.preview$`)

// Defaults and bounds of the settings.
const (
	DefaultPollEvery = time.Hour
	MinPollEvery     = time.Minute
	MaxPollEvery     = 24 * time.Hour
)

// The erase settings.
const (
	EraseDelete = "delete"
	EraseRedact = "redact"
)

// versionPattern is the form of an API version: 2025-05-28 or
// 2025-05-28.basil.
var versionPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$`)

// Factory returns the factory of stripe connectors: their HTTP client is
// d.HTTP (http.DefaultClient when nil), their logger d.Log, and d.Limiter
// paces their calls to Stripe's documented limits across every worker
// process (nil: no pacing). Building one makes no call to Stripe.
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
		c.limiter = d.Limiter
		return c, nil
	}
}

// New returns the stripe connector called name with settings s, checked,
// calling Stripe with client and logging to log (nil: discard).
func New(name string, s Spec, client *http.Client, log *slog.Logger) (*Connector, error) {
	if s.SecretKey == "" {
		return nil, connectors.SettingErrorf("secret_key", "required: ${VAR}, a Stripe secret or restricted key")
	}
	if strings.ContainsAny(s.SecretKey, " \t\r\n") {
		return nil, connectors.SettingErrorf("secret_key", "holds white space: not a Stripe key")
	}
	version := s.StripeVersion
	if version == "" {
		version = DefaultStripeVersion
	}
	if !versionPattern.MatchString(version) {
		return nil, connectors.SettingErrorf("stripe_version", "want an API version such as %s, not %q", DefaultStripeVersion, s.StripeVersion)
	}
	preview := s.RedactionVersion
	if preview == "" {
		preview = DefaultRedactionVersion
	}
	if !previewPattern.MatchString(preview) {
		return nil, connectors.SettingErrorf("redaction_version", "want a preview API version such as %s, not %q", DefaultRedactionVersion, s.RedactionVersion)
	}
	erase := EraseDelete
	switch s.Erase {
	case "", EraseDelete:
	case EraseRedact:
		erase = EraseRedact
	default:
		return nil, connectors.SettingErrorf("erase", "want delete or redact, not %q", s.Erase)
	}
	actions := map[connectors.Action]bool{}
	for _, a := range s.Actions {
		act := connectors.Action(a)
		if act != connectors.ActionExport && act != connectors.ActionErase {
			return nil, connectors.SettingErrorf("actions", "unknown action %q (stripe does export and erase; it has no opt-out: Stripe holds no marketing segments)", a)
		}
		actions[act] = true
	}
	if len(actions) == 0 {
		actions[connectors.ActionExport], actions[connectors.ActionErase] = true, true
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
		name: name, key: s.SecretKey, version: version, base: BaseURL, erase: erase, actions: actions,
		pollEvery: every, preview: preview, search: s.Search == nil || *s.Search,
		client: client, log: log.With("connector", name),
	}, nil
}
