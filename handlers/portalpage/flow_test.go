package portalpage_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/portalpage"
)

// TestFlowWithoutJavaScript: the form files a request, the cookie follows
// it, a wrong code says the tries left, the right one verifies it, and the
// verified request opens the preferences and the consent history.
func TestFlowWithoutJavaScript(t *testing.T) {
	p := startPortal(t, nil)
	b := p.browser()
	_, home := b.get("/privacy")
	contains(t, home, `id="request-form"`, `name="type"`, `value="access"`, `value="deletion"`, `value="opt_out"`, `name="email"`,
		`name="phone"`, `name="regulation"`, `name="scope"`, `name="agent"`, `name="agent_name"`, `name="agent_email"`,
		`name="agent_permission"`, `name="gpc"`, `id="submit"`, `id="gpc-notice" class="notice" role="status" hidden`)
	lacks(t, home, `value="correction"`, `id="correction-fieldset"`)

	id := b.submit(access("ada@example.com"))
	ck := b.cookie()
	if ck == nil || !strings.HasPrefix(ck.Value, id+":") {
		t.Fatalf("portal cookie = %+v", ck)
	}
	token := strings.TrimPrefix(ck.Value, id+":")
	_, page := b.get("/privacy/requests/" + id + "?done=submitted")
	contains(t, page, "We emailed you a code", `id="verify-form"`, `name="code"`, `id="verify"`, `id="resend"`,
		`id="reference">`+token+`<`, `data-status="verifying"`, `id="due"`)
	lacks(t, page, `id="download"`, `id="preferences-link"`)

	p.issueCode(id, "123456", "linktoken")
	resp, page := b.post("/privacy/requests/"+id+"/verify", url.Values{"code": {"000000"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong code: %d", resp.StatusCode)
	}
	contains(t, page, "Tries left: 4", `id="code-error"`, `aria-describedby="code-hint code-error"`, `id="error-summary"`)

	resp, page = b.post("/privacy/requests/"+id+"/verify", url.Values{"code": {"123 456"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/privacy/requests/"+id+"?done=verified" {
		t.Fatalf("right code: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	_, page = b.get("/privacy/requests/" + id + "?done=verified")
	contains(t, page, `data-status="verified"`, "Confirmed", `id="preferences-link"`, `id="history-link"`)
	lacks(t, page, `id="verify-form"`)
	if got := p.request(id).Status; got != dsr.StatusVerified {
		t.Fatalf("request is %s", got)
	}

	// The preference centre: refusing marketing files an opt-out the same
	// token follows, and the history shows it.
	_, page = b.get("/privacy/requests/" + id + "/preferences")
	contains(t, page, `id="preferences-form"`, `name="refuse"`, `id="refuse-marketing"`, `id="save-preferences"`)
	resp, page = b.post("/privacy/requests/"+id+"/preferences", url.Values{"refuse": {"marketing"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save preferences: %d\n%s", resp.StatusCode, page)
	}
	_, page = b.get(resp.Header.Get("Location"))
	contains(t, page, "Your choices were saved", `value="marketing" id="refuse-marketing" aria-describedby="prefs-hint" checked`)
	if n := strings.Count(b.cookie().Value, ":"+token); n != 2 {
		t.Errorf("cookie follows %d requests with the token, want 2 (the opt-out too)", n)
	}
	_, page = b.get("/privacy/requests/" + id + "/consent-history")
	// The fan-out records the consent events (no workers here).
	contains(t, page, `id="history-empty"`, `id="back-to-request"`)

	// Resend is refused once verified, on the request's page.
	resp, page = b.post("/privacy/requests/"+id+"/resend", url.Values{})
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("resend after verification: %d", resp.StatusCode)
	}
	contains(t, page, "no longer waiting for a code")

	checkMarkup(t, *b.pages)
	for _, line := range strings.Split(p.logs.String(), "\n") {
		for _, secret := range []string{token, "ada@example.com", "123456"} {
			if strings.Contains(line, secret) {
				t.Errorf("log line holds a secret: %s", line)
			}
		}
	}
}

// TestVerifyByLinkAndCheck: the emailed link's page, then the request
// opened in another browser by its id and reference.
func TestVerifyByLinkAndCheck(t *testing.T) {
	p := startPortal(t, nil)
	a := p.browser()
	id := a.submit(access("ada@example.com"))
	token := strings.TrimPrefix(a.cookie().Value, id+":")
	p.issueCode(id, "123456", "the-link-token")

	other := p.browser()
	_, page := other.get("/privacy/verify")
	contains(t, page, `id="verify-link-form"`, `id="link-token"`, `id="link-nojs"`, `id="verify-link"`)
	// Without the reference, another browser cannot spend a try.
	resp, _ := other.post("/privacy/requests/"+id+"/verify", url.Values{"token": {"the-link-token"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("link without reference: %d", resp.StatusCode)
	}
	if v := p.request(id).Verification; v.Tries != 0 {
		t.Fatalf("a try was spent: %d", v.Tries)
	}
	resp, page = other.post("/privacy/requests/"+id+"/verify", url.Values{"token": {"the-link-token"}, "reference": {token}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("link with reference: %d\n%s", resp.StatusCode, page)
	}
	if other.cookie() == nil {
		t.Fatal("the reference did not go in the cookie")
	}

	third := p.browser()
	third.get("/privacy/check")
	resp, page = third.post("/privacy/check", url.Values{"request": {id}, "reference": {"wrong"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("check with a wrong reference: %d", resp.StatusCode)
	}
	contains(t, page, `id="check-form"`, "could not open a request")
	resp, _ = third.post("/privacy/check", url.Values{"request": {id}, "reference": {token}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/privacy/requests/"+id+"?done=opened" {
		t.Fatalf("check: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = third.get(resp.Header.Get("Location"))
	contains(t, page, `data-status="verified"`)
	checkMarkup(t, *third.pages)
}

// TestValidation: a bad form is shown again with 422, every problem next
// to its field and in the summary, the input kept, escaped.
func TestValidation(t *testing.T) {
	p := startPortal(t, nil)
	b := p.browser()
	b.get("/privacy")
	evil := `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	resp, page := b.post("/privacy/requests", url.Values{"type": {"opt_out"}, "email": {"ada@" + evil}, "phone": {evil},
		"advertising_id": {"00000000-0000-0000-0000-000000000000"}, "device_id": {evil},
		"scope": {"marketing"}, "agent": {"1"}, "agent_name": {evil}, "agent_email": {"nope"}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", resp.StatusCode)
	}
	contains(t, page, `id="error-summary"`, `href="#regulation"`, `href="#email"`, `href="#phone"`, `href="#agent_email"`, `href="#agent_permission"`,
		`href="#advertising_id"`, `href="#device_id"`, `id="advertising_id-error"`, "ad tracking is limited",
		`id="email-error"`, `aria-invalid="true"`, `value="opt_out" checked`, `value="marketing" checked`, `id="agent" name="agent" value="1" checked`,
		"&lt;script&gt;alert(1)&lt;/script&gt;")
	lacks(t, page, "<script>alert", "<img src=x")
	if n := p.count(); n != 0 {
		t.Fatalf("%d requests filed", n)
	}
	checkMarkup(t, *b.pages)
}

// TestRefusals: what must change nothing, and reveal nothing.
func TestRefusals(t *testing.T) {
	p := startPortal(t, nil)
	a, eve := p.browser(), p.browser()
	id := a.submit(access("ada@example.com"))
	eve.submit(access("eve@example.com"))
	filed := p.count()

	t.Run("csrf", func(t *testing.T) {
		for name, v := range map[string]url.Values{"no token": access("x@example.com"), "forged": func() url.Values {
			v := access("x@example.com")
			v.Set("csrf", strings.Repeat("A", 43))
			return v
		}()} {
			b := p.browser()
			b.get("/privacy")
			if _, ok := v["csrf"]; !ok {
				v.Set("csrf", "")
			}
			if resp, _ := b.post("/privacy/requests", v); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: %d", name, resp.StatusCode)
			}
		}
		b := p.browser()
		b.get("/privacy")
		if resp, _ := b.post("/privacy/requests", access("x@example.com"), "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site: %d", resp.StatusCode)
		}
		if n := p.count(); n != filed {
			t.Errorf("%d requests filed, want %d", n, filed)
		}
	})

	// Another's id with my cookie, a tampered cookie, an unknown id and
	// no id at all: the same page.
	norm := regexp.MustCompile(`name="csrf" value="[^"]*"|value="[0-9a-f-]{36}"|href="/privacy/requests/[^"?]*\?lang=`)
	_, unknown := eve.get("/privacy/requests/0f8fad5b-d9cb-469f-a165-70867728950e")
	unknown = norm.ReplaceAllString(unknown, "")
	contains(t, unknown, `id="check-form"`)
	for name, path := range map[string]string{"another's": "/privacy/requests/" + id, "download of another's": "/privacy/requests/" + id + "/download",
		"preferences of another's": "/privacy/requests/" + id + "/preferences", "history of another's": "/privacy/requests/" + id + "/consent-history"} {
		resp, page := eve.get(path)
		if resp.StatusCode != http.StatusNotFound || norm.ReplaceAllString(page, "") != unknown {
			t.Errorf("%s: %d, not the unknown id's page", name, resp.StatusCode)
		}
		lacks(t, page, "ada@example.com")
	}
	tampered := p.browser()
	u, _ := url.Parse(p.url + "/privacy/")
	tampered.http.Jar.SetCookies(u, []*http.Cookie{{Name: portalpage.CookieName, Value: id + ":" + strings.Repeat("x", 43), Path: "/privacy"}})
	if resp, page := tampered.get("/privacy/requests/" + id); resp.StatusCode != http.StatusNotFound || norm.ReplaceAllString(page, "") != unknown {
		t.Errorf("tampered cookie: %d", resp.StatusCode)
	}
	for _, path := range []string{"/privacy/requests/not-an-id", "/privacy/requests/%22%3E%3Cscript%3E", "/privacy/requests/..%2f..%2fetc"} {
		resp, page := eve.get(path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
		lacks(t, page, "<script>", `value="not-an-id"`)
	}
	// Eve's verify of Ada's request spends none of its tries.
	eve.get("/privacy")
	if resp, _ := eve.post("/privacy/requests/"+id+"/verify", url.Values{"code": {"000000"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("verify of another's: %d", resp.StatusCode)
	}
	if v := p.request(id).Verification; v != nil && v.Tries != 0 {
		t.Errorf("tries spent: %d", v.Tries)
	}

	t.Run("download needs the token", func(t *testing.T) {
		if resp, _ := p.browser().get("/privacy/requests/" + id + "/download"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("without cookie: %d", resp.StatusCode)
		}
		resp, page := a.get("/privacy/requests/" + id + "/download")
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("before completion: %d", resp.StatusCode)
		}
		contains(t, page, "no copy of your data")
	})

	t.Run("huge body", func(t *testing.T) {
		b := p.browser()
		b.get("/privacy")
		v := access("big@example.com")
		v.Set("agent_name", strings.Repeat("a", portalpage.MaxBodyBytes))
		if resp, _ := b.post("/privacy/requests", v); resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("huge body: %d", resp.StatusCode)
		}
	})

	t.Run("methods", func(t *testing.T) {
		for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
			if resp, _ := a.do(m, "/privacy/requests/"+id, strings.NewReader("csrf="+a.csrf)); resp.StatusCode < 400 {
				t.Errorf("%s: %d", m, resp.StatusCode)
			}
		}
		// GETs of the forms' targets go back to a page, never elsewhere.
		for path, want := range map[string]string{"/privacy/requests/" + id + "/verify?lang=fr": "/privacy/requests/" + id,
			"/privacy/requests/x/resend": "/privacy", "/privacy/requests?next=https://evil.example": "/privacy"} {
			resp, _ := a.get(path)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Errorf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	})
	if n := p.count(); n != filed {
		t.Errorf("%d requests filed, want %d", n, filed)
	}
	checkMarkup(t, *a.pages)
	checkMarkup(t, *eve.pages)
}

// TestGPC: a browser's Sec-GPC: 1 shows the notice and files the request
// with GPC (and the linked opt-out the same token follows); so does the
// form's gpc field privacy.js sets.
func TestGPC(t *testing.T) {
	p := startPortal(t, nil)
	b := p.browser()
	_, page := b.get("/privacy", "Sec-GPC", "1")
	contains(t, page, `id="gpc-notice" class="notice" role="status"><p>`)
	id := b.submit(access("ada@example.com"), "Sec-GPC", "1")
	req := p.request(id)
	if !req.GPC || req.LinkedTo == "" {
		t.Fatalf("GPC %v, linked %q", req.GPC, req.LinkedTo)
	}
	_, page = b.get("/privacy/requests/" + id)
	contains(t, page, `id="gpc-honoured"`, `id="linked-request"`)
	if resp, page := b.get("/privacy/requests/" + req.LinkedTo); resp.StatusCode != http.StatusOK {
		t.Errorf("linked opt-out: %d", resp.StatusCode)
	} else {
		contains(t, page, `data-status="verified"`, "Selling or sharing my data")
	}

	js := p.browser()
	v := access("grace@example.com")
	v.Set("gpc", "1")
	if id := js.submit(v); !p.request(id).GPC {
		t.Error("the form's gpc field was not honoured")
	}
}

// TestOptOutScopes: scopes count for an opt-out, which needs no code.
func TestOptOutScopes(t *testing.T) {
	p := startPortal(t, nil)
	b := p.browser()
	id := b.submit(url.Values{"type": {"opt_out"}, "regulation": {"ccpa"}, "email": {"ada@example.com"}, "scope": {"marketing", "profiling"}})
	if got := p.request(id).Scopes; len(got) != 2 {
		t.Fatalf("scopes %v", got)
	}
	_, page := b.get("/privacy/requests/" + id + "?done=submitted")
	contains(t, page, "Your request was received.", "Marketing emails", "Personalisation")
	lacks(t, page, `id="verify-form"`, `id="preferences-link"`)
	// Scopes checked with another type are ignored, not refused.
	b.submit(url.Values{"type": {"deletion"}, "regulation": {"gdpr"}, "email": {"ada@example.com"}, "scope": {"marketing"}})
}

// TestAgentAndCorrection: an authorised agent files for a person; a
// correction of the fields the connectors can change is offered when they
// are known.
func TestAgentAndCorrection(t *testing.T) {
	p := startPortal(t, []string{"name", "address"})
	b := p.browser()
	_, page := b.get("/privacy")
	contains(t, page, `id="type-correction" value="correction"`, `id="correction-fieldset"`, `<option value="address">Postal address</option>`, `<option value="name">Name</option>`)
	v := access("ada@example.com")
	v.Set("agent", "1")
	v.Set("agent_name", "Rights Co")
	v.Set("agent_email", "desk@rights.example")
	v.Set("agent_permission", "1")
	id := b.submit(v)
	if a := p.request(id).Agent; a == nil || a.Name != "Rights Co" {
		t.Fatalf("agent %+v", a)
	}
}

// TestLanguages: every page in French on the switch.
func TestLanguages(t *testing.T) {
	p := startPortal(t, nil)
	b := p.browser()
	id := b.submit(access("ada@example.com"))
	for path, want := range map[string]string{
		"/privacy": "Vos droits sur vos données", "/privacy/check": "Suivre une demande", "/privacy/verify": "Confirmer votre demande",
		"/privacy/requests/" + id: "En attente de votre code", "/privacy/requests/" + id + "/preferences": "Ces choix ne s",
		"/privacy/requests/" + id + "/consent-history": "Ces choix ne s",
	} {
		_, page := b.get(path + "?lang=fr")
		contains(t, page, `<html lang="fr">`, want)
	}
	// The choice is kept, and Accept-Language chooses without it.
	_, page := b.get("/privacy")
	contains(t, page, `<html lang="fr">`)
	_, page = p.browser().get("/privacy", "Accept-Language", "fr-CA,fr;q=0.9")
	contains(t, page, "Vos droits sur vos données")
	checkMarkup(t, *b.pages)
}

var (
	scriptTag = regexp.MustCompile(`<script[^>]*>`)
	handler   = regexp.MustCompile(`\son[a-z]+\s*=`)
)

// checkMarkup fails on inline script or style, event handler attributes,
// more than one <h1>, an input without its label, and a status token in a
// link or a form's action.
func checkMarkup(t *testing.T, pages []string) {
	t.Helper()
	inputID := regexp.MustCompile(`<(?:input|select|textarea)[^>]*\sid="([^"]+)"`)
	for _, page := range pages {
		if !strings.Contains(page, "<html") {
			continue // a redirect's body
		}
		for _, tag := range scriptTag.FindAllString(page, -1) {
			if !strings.Contains(tag, ` src="/assets/`) {
				t.Errorf("inline script: %s", tag)
			}
		}
		if strings.Contains(page, " style=") || strings.Contains(page, "<style") {
			t.Errorf("inline style in:\n%s", page)
		}
		for _, tag := range regexp.MustCompile(`<[a-zA-Z][^>]*>`).FindAllString(page, -1) {
			if m := handler.FindString(regexp.MustCompile(`"[^"]*"`).ReplaceAllString(tag, `""`)); m != "" {
				t.Errorf("event handler attribute %q in %s", m, tag)
			}
		}
		if n := strings.Count(page, "<h1"); n != 1 {
			t.Errorf("%d <h1> in a page", n)
		}
		for _, m := range inputID.FindAllStringSubmatch(page, -1) {
			if !strings.Contains(page, `for="`+m[1]+`"`) && !strings.Contains(page, `type="hidden" name=`) {
				t.Errorf("input %q has no label", m[1])
			}
		}
		for _, m := range regexp.MustCompile(`(?:href|action)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			if regexp.MustCompile(`[A-Za-z0-9_-]{43}`).MatchString(m[1]) {
				t.Errorf("a link holds a token: %s", m[1])
			}
		}
	}
}

// TestDeviceIDsClaimed: the form takes an advertising id and a device id,
// stored normalised and, for an access request, claimed (the code proves
// the email only); for an opt-out, which needs no proof, acted on.
func TestDeviceIDsClaimed(t *testing.T) {
	p := startPortal(t, nil)
	for _, tt := range []struct {
		typ, source string
	}{{"access", dsr.SourceClaimed}, {"opt_out", dsr.SourceSubject}} {
		v := url.Values{"type": {tt.typ}, "regulation": {"gdpr"}, "email": {tt.typ + "@example.com"},
			"advertising_id": {"6D92078A-8246-4BA4-AE5B-76104861E7DC"}, "device_id": {"A1B2C3D4E5F60718"}}
		id := p.browser().submit(v)
		var got []string
		for _, i := range p.request(id).Identities {
			if i.Kind != dsr.KindEmail {
				got = append(got, string(i.Kind)+"="+i.Value+" "+i.Source)
			}
		}
		want := "advertising_id=6d92078a-8246-4ba4-ae5b-76104861e7dc " + tt.source + ",device_id=a1b2c3d4e5f60718 " + tt.source
		if strings.Join(got, ",") != want {
			t.Errorf("%s: identities %v; want %s", tt.typ, got, want)
		}
	}
}
