package consoleauth

import (
	"net/url"
	"path"
	"strings"
)

// home is where a sign-in lands without (or with a refused) next.
const home = "/console"

// safeNext returns next when it is a console page of this service to go
// to after signing in, else home. It must be a path (no scheme, no host,
// not "//host" nor "/\host", which browsers read as another host) under
// /console, with no dot segments or empty segments even percent-encoded
// (no "/console/../x"), no control characters, and not the sign-in pages
// themselves. The redirect is never to another site.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return home
	}
	if !printable(next) {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return home
	}
	p := u.Path // decoded: %2e%2e and %2f count as what they stand for
	if p != home && !strings.HasPrefix(p, home+"/") {
		return home
	}
	if !printable(p) || strings.Contains(p, "//") || path.Clean(p) != strings.TrimSuffix(p, "/") && path.Clean(p) != p {
		return home
	}
	for _, own := range []string{"/console/sign-in", "/console/sign-out", "/console/oidc"} {
		if p == own || strings.HasPrefix(p, own+"/") {
			return home
		}
	}
	return next
}

// printable reports whether s has no control character, space or
// backslash.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
