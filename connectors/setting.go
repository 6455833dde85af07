package connectors

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsar-project/dsar/internal/netguard"
)

// SettingError is a problem with one setting of a connector's entry. A
// type's constructor returns it (SettingErrorf) so that its factory can
// point at the setting's line in the connectors file (AtSetting).
type SettingError struct {
	// Key is the setting, dotted for a nested one ("opt_out.lists").
	Key string
	// Msg is the whole message, starting with the key.
	Msg string
}

func (e *SettingError) Error() string { return e.Msg }

// SettingErrorf returns a *SettingError for key: "key: " and the message.
func SettingErrorf(key, format string, args ...any) error {
	return &SettingError{Key: key, Msg: key + ": " + fmt.Sprintf(format, args...)}
}

// AtSetting returns err at the line of its setting in the entry node (the
// line of the top-level key of a dotted one) when err is a *SettingError,
// else at the entry's line.
func AtSetting(node *yaml.Node, err error) error {
	var se *SettingError
	if !errors.As(err, &se) {
		return Errorf(node, "%v", err)
	}
	top, _, _ := strings.Cut(se.Key, ".")
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == top {
			return Errorf(node.Content[i], "%s", se.Msg)
		}
	}
	return Errorf(node, "%s", se.Msg)
}

// EndpointURL checks the setting key, the URL of a system's web API that
// a connector calls (what says why it is needed, for the message when it
// is empty): absolute, http(s), with a host and no user info; https
// unless insecure; and not a loopback, private,
// link-local or otherwise internal address given literally unless
// private (netguard checks each address dialled, names included).
func EndpointURL(key, raw, what string, insecure, private bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return nil, SettingErrorf(key, "required (%s)", what)
	case err != nil || u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, SettingErrorf(key, "want an https:// URL with a host and no user info")
	case u.Scheme == "http" && !insecure:
		return nil, SettingErrorf(key, "must be https (allow_insecure: true allows plain http, for tests and private networks)")
	}
	if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && netguard.Internal(a) && !private {
		return nil, SettingErrorf(key, "%s is a loopback, private, link-local or otherwise internal address: allow_private: true allows it", a)
	}
	return u, nil
}

// CallbackBase checks the setting callback_url, the base URL at which a
// system reaches dsar's API to call back (empty: none), and returns it
// without a trailing slash.
func CallbackBase(raw string) (string, error) {
	base := strings.TrimSuffix(raw, "/")
	if base == "" {
		return "", nil
	}
	if u, err := url.Parse(base); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" {
		return "", SettingErrorf("callback_url", "want the http(s) base URL of dsar's API, with no query")
	}
	return base, nil
}
