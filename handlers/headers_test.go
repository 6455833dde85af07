package handlers_test

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// TestSecurityHeaders: answers with a status token, the evidence report and
// the exports are no-store and nosniff, and the HTML report carries a
// Content-Security-Policy whose style hash is the page's style element.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	done := a.seedCompleted(dsr.TypeAccess, dsr.StatusCompleted, 2)
	private := map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
	check := func(what string, resp *http.Response, want map[string]string) {
		t.Helper()
		got := map[string]string{}
		for k := range want {
			got[k] = resp.Header.Get(k)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: headers (-want +got):\n%s", what, diff)
		}
	}
	get := func(path, key string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", a.url+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, page := get("/v1/requests/"+done.ID+"/report?format=html", auditorKey)
	check("HTML report", resp, private)
	csp := resp.Header.Get("Content-Security-Policy")
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(page)
	if style == nil {
		t.Fatal("the HTML report has no style element")
	}
	sum := sha256.Sum256([]byte(style[1]))
	want := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	if csp != want {
		t.Errorf("HTML report: Content-Security-Policy %q, want %q", csp, want)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, " style=") {
		t.Error("the HTML report has a script or an inline style attribute, which its policy blocks")
	}
	resp, _ = get("/v1/requests/"+done.ID+"/report", auditorKey)
	check("JSON report", resp, private)
	resp, _ = get("/v1/requests/"+done.ID+"/export", agentKey)
	check("agent export", resp, private)
	resp, _ = get("/v1/requests/"+done.ID, agentKey)
	check("a request", resp, private)
	resp, _ = get("/v1/requests/"+done.ID, "")
	check("a 401 under /v1", resp, private)
	resp, _ = get("/healthz", "")
	check("healthz", resp, map[string]string{"Cache-Control": "", "X-Content-Type-Options": "nosniff"})
}

// TestPortalSecurityHeaders: the portal's answers that carry a status token
// (filing, verifying) and its export are no-store and nosniff.
func TestPortalSecurityHeaders(t *testing.T) {
	t.Parallel()
	p := startPortal(t, portalConfig{workers: true})
	var c created
	resp := p.call("POST", "/v1/portal/requests", "", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, &c)
	headers := func(what string, resp *http.Response) {
		t.Helper()
		got := map[string]string{"Cache-Control": resp.Header.Get("Cache-Control"), "X-Content-Type-Options": resp.Header.Get("X-Content-Type-Options")}
		if diff := cmp.Diff(map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}, got); diff != "" {
			t.Errorf("%s: headers (-want +got):\n%s", what, diff)
		}
	}
	headers("filing", resp)
	_, text := p.mail("ada@example.com", c.ID, "verify")
	code := codeIn.FindStringSubmatch(text)
	if code == nil {
		t.Fatalf("no code in:\n%s", text)
	}
	resp = p.call("POST", "/v1/portal/requests/"+c.ID+"/verify", c.StatusToken, `{"code":"`+code[1]+`"}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("verify: %d", resp.StatusCode)
	}
	headers("verifying", resp)
	p.waitStatus(c.ID, c.StatusToken, "completed")
	resp = p.call("GET", "/v1/portal/requests/"+c.ID+"/export", c.StatusToken, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d", resp.StatusCode)
	}
	headers("export", resp)
}
