// Package netguard keeps outbound HTTP calls that a configuration file
// points somewhere (the webhook connector's url) away from the service's own
// network: loopback, private, link-local (cloud metadata at 169.254.169.254
// included), carrier-grade NAT and unspecified addresses are refused unless
// the file allows them. The check runs when the connection is dialled, on
// the address actually dialled, so neither a name that resolves to such an
// address (DNS rebinding included) nor a redirect gets past it; and the
// client it builds follows no redirect and uses no proxy.
package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrRefused marks a connection refused because of the address it would
// reach.
var ErrRefused = errors.New("address not allowed")

// ErrRedirect is the error of a call answered with a redirect: the client
// does not follow it.
var ErrRedirect = errors.New("redirect not followed")

// special are the ranges netip's methods do not name: carrier-grade NAT
// (RFC 6598), "this network" (RFC 791), benchmarking (RFC 2544), and the
// IPv4/IPv6 translation prefixes, which may embed any IPv4 address.
var special = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("fec0::/10"),
}

// Internal reports whether a is an address of the service's own network or
// host, which a file must allow explicitly: loopback, private (RFC 1918,
// RFC 4193), link-local, carrier-grade NAT, unspecified, multicast or
// broadcast, or a translation prefix that may embed one of them.
func Internal(a netip.Addr) bool {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsLoopback(), a.IsPrivate(), a.IsLinkLocalUnicast(), a.IsUnspecified(), a.IsMulticast(),
		a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return true
	}
	for _, p := range special {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Options say what a guarded client may reach.
type Options struct {
	// AllowInternal lets it reach internal addresses (see Internal).
	AllowInternal bool
	// Timeout bounds each call, the reading of the answer included (0:
	// none beyond the caller's context).
	Timeout time.Duration
	// exempt, in tests, lets one address through as if it were public.
	exempt func(netip.AddrPort) bool
}

// Client returns an HTTP client whose every connection is checked, when it
// is dialled, against o; it follows no redirect (a 3xx is returned as the
// answer, see CheckRedirect) and ignores the proxy settings of the
// environment, which would make the check see the proxy's address.
func Client(o Options) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: o.control}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t, Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// control refuses a connection to an address o does not allow; it runs
// after name resolution, on the address about to be dialled.
func (o Options) control(network, address string, _ syscall.RawConn) error {
	if o.AllowInternal {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %q", ErrRefused, address)
	}
	if o.exempt != nil && o.exempt(ap) {
		return nil
	}
	if Internal(ap.Addr()) {
		return fmt.Errorf("%w: %s is a loopback, private, link-local or otherwise internal address (allow_private: true allows it)", ErrRefused, ap.Addr())
	}
	return nil
}
