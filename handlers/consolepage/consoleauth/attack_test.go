package consoleauth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/handlers/consolepage/consoleauth"
)

// The sign-in and sign-out forms, which anyone may post, are read up to a
// small cap: a padded form (here a valid one with 1 MiB more) is refused
// with nothing done, not held in memory whole.
func TestSignInFormIsCapped(t *testing.T) {
	e := setup(t)
	b := e.browser()
	b.addr = newAddr()
	form := url.Values{"key": {"desk-secret"}, "csrf": {b.csrf(consoleauth.SignInPath)}, "pad": {strings.Repeat("a", 1<<20)}}
	w := b.do(http.MethodPost, consoleauth.SignInPath, form)
	if w.Code == http.StatusSeeOther || b.session() != "" {
		t.Fatalf("a 1 MiB sign-in form was read whole: %d, session %q", w.Code, b.session())
	}
	wantStatus(t, w, http.StatusForbidden)
}
