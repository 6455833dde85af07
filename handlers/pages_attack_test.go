package handlers_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A method that no page of an address takes answers the section's 405
// page, with the pages' headers (CSP, no-store, no framing), not the
// API's problem JSON; the API keeps its problem.
func TestPagesMethodNotAllowedIsAPage(t *testing.T) {
	a := setupPages(t)
	for _, tc := range []struct{ method, path, lang string }{
		{http.MethodDelete, "/privacy", "en"},
		{http.MethodPut, "/console", "en"},
		{http.MethodPost, "/console/dashboard", "en"},
		{http.MethodPatch, "/privacy/check", "fr"},
	} {
		req, _ := http.NewRequest(tc.method, a.url+tc.path, nil)
		req.Header.Set("Accept-Language", tc.lang)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", tc.method, tc.path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s %s: Content-Type %q, want a page", tc.method, tc.path, ct)
		}
		for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Cache-Control", "Allow"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s %s: no %s", tc.method, tc.path, h)
			}
		}
		if strings.Count(string(body), "<h1") != 1 || !strings.Contains(string(body), `lang="`+tc.lang+`"`) {
			t.Errorf("%s %s: want one h1 and lang %s:\n%s", tc.method, tc.path, tc.lang, body)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, a.url+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("DELETE /healthz: %d %q, want the API's 405 problem", resp.StatusCode, ct)
	}
}
