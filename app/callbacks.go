package app

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"

	"github.com/dsar-project/dsar/internal/netguard"
)

// checkCallback checks a status callback URL a privacy protocol names (a
// DRP agent's status_callback, an OpenDSR controller's
// status_callback_urls): an absolute https URL without credentials (http
// only to a loopback address, when internal callbacks are allowed) whose
// host, when an address, is public unless internal callbacks are allowed.
// The address a name resolves to is checked again when it is called
// (internal/netguard). Its errors name no part of the URL.
func checkCallback(raw string, allowInternal bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || len(raw) > 2048 {
		return errors.New("is not an absolute URL without credentials")
	}
	host := strings.Trim(u.Hostname(), "[]")
	addr, addrErr := netip.ParseAddr(host)
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowInternal && (host == "localhost" || (addrErr == nil && addr.IsLoopback())):
	default:
		return errors.New("must be an https URL")
	}
	if addrErr == nil && netguard.Internal(addr) && !allowInternal {
		return errors.New("names a private address")
	}
	return nil
}
