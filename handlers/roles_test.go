package handlers_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/apitest"
	"github.com/dsar-project/dsar/internal/apikey"
)

// allowed names, for each agent-API route, the roles that may call it. A
// route missing here fails the test, so a new route must say who may use it.
var allowed = map[string][]apikey.Role{
	"POST /v1/requests":             {apikey.RoleAdmin, apikey.RoleAgent},
	"GET /v1/requests":              {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /v1/requests/:id":          {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /v1/requests/:id/export":   {apikey.RoleAdmin, apikey.RoleAgent},
	"GET /v1/requests/:id/report":   {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /v1/requests/:id/audit":    {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"POST /v1/requests/:id/approve": {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/deny":    {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/cancel":  {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/extend":  {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/retry":   {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/close":   {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/assign":  {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/unlink":  {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/bulk":        {apikey.RoleAdmin, apikey.RoleAgent},
	"GET /v1/requests/:id/clock":    {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"POST /v1/requests/:id/pause":   {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/resume":  {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/requests/:id/appeal":  {apikey.RoleAdmin, apikey.RoleAgent},
	"GET /v1/reports/summary":       {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /v1/reports/segments":      {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"GET /v1/admin/keys":            {apikey.RoleAdmin},
	"POST /v1/suppressions/check":   {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor, apikey.RolePipeline},
	"GET /v1/suppressions/check":    {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor, apikey.RolePipeline},
	"GET /v1/suppressions/key":      {apikey.RoleAdmin},
	"POST /v1/consent/opt-in":       {apikey.RoleAdmin, apikey.RoleAgent},
	"POST /v1/suppressions/lift":    {apikey.RoleAdmin},
	"POST /v1/consent/history":      {apikey.RoleAdmin, apikey.RoleAgent, apikey.RoleAuditor},
	"POST /v1/suppressions/filter":  {apikey.RoleAdmin, apikey.RoleAgent, apikey.RolePipeline},
	"GET /v1/suppressions/export":   {apikey.RoleAdmin},
	"POST /v1/suppressions/import":  {apikey.RoleAdmin},
}

// TestRolesOnEveryRoute calls every agent-API route with every role's key,
// and with none, and checks who is let through (anything but 401/403) and
// who is refused.
func TestRolesOnEveryRoute(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	keys := map[apikey.Role]string{apikey.RoleAdmin: adminKey, apikey.RoleAgent: agentKey, apikey.RoleAuditor: auditorKey, apikey.RolePipeline: pipelineKey}
	h := handlers.New(handlers.Deps{Log: slog.New(slog.DiscardHandler), Keys: apikey.NewKeyring()})
	walked := 0
	for _, r := range apitest.Routes(t, h) {
		if !strings.HasPrefix(r.Path, "/v1/") || strings.HasPrefix(r.Path, "/v1/portal/") || strings.HasPrefix(r.Path, "/v1/hooks/") || strings.HasPrefix(r.Path, "/v1/callbacks/") ||
			strings.HasPrefix(r.Path, "/v1/agent/") || strings.HasPrefix(r.Path, "/v1/data-rights-request") {
			continue // no API key: the portal's status tokens, the hooks' and callbacks' signatures, the DRP agents' tokens and signatures (hooks_test.go, callbacks_test.go, drp_test.go)
		}
		route := r.Method + " " + r.Path
		roles, ok := allowed[route]
		if !ok {
			t.Errorf("%s: not in the role table; say who may call it", route)
			continue
		}
		walked++
		path := strings.ReplaceAll(r.Path, ":id", "01a20d27-0000-7000-8000-000000000000")
		body, ct := "", ""
		if r.Method == http.MethodPost {
			body, ct = "{}", "application/json"
		}
		if resp := a.do(r.Method, path, "", ct, body, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a key: %d, want 401", route, resp.StatusCode)
		}
		for role, key := range keys {
			want := false
			for _, ok := range roles {
				want = want || ok == role
			}
			resp := a.do(r.Method, path, key, ct, body, nil)
			got := resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized
			if got != want {
				t.Errorf("%s as %s: %d; allowed %v, want allowed %v", route, role, resp.StatusCode, got, want)
			}
		}
	}
	for route := range allowed {
		found := false
		for _, r := range apitest.Routes(t, h) {
			found = found || r.Method+" "+r.Path == route
		}
		if !found {
			t.Errorf("%s is in the role table but not a route", route)
		}
	}
	if walked < 10 {
		t.Fatalf("walked %d routes; the router lost its routes", walked)
	}
}

// pipelineRoutes are the only routes a pipeline key may call: the
// suppression checks and the filter.
var pipelineRoutes = map[string]bool{
	"POST /v1/suppressions/check":  true,
	"GET /v1/suppressions/check":   true,
	"POST /v1/suppressions/filter": true,
}

// TestPipelineKeyReachesOnlyChecks calls every route of the router, with
// no key and with a pipeline's: every route that asks for an API key (401
// without one) answers the pipeline 403, except the checks and the filter.
// It reads no role table, so a new route that forgets to name its roles
// fails it.
func TestPipelineKeyReachesOnlyChecks(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	h := handlers.New(handlers.Deps{Log: slog.New(slog.DiscardHandler), Keys: apikey.NewKeyring()})
	// A plain client: this walks routes whose answers to bodies like {}
	// the OpenAPI document need not describe (apitest.Client checks them).
	call := func(method, path, key, contentType, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	keyed, let := 0, 0
	for _, r := range apitest.Routes(t, h) {
		route := r.Method + " " + r.Path
		path := strings.NewReplacer(":id", "01a20d27-0000-7000-8000-000000000000", ":job", "01a20d27-0000-7000-8000-000000000001").Replace(r.Path)
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") {
				path = strings.ReplaceAll(path, seg, "x")
			}
		}
		body, ct := "", ""
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			body, ct = "{}", "application/json"
		}
		if resp := call(r.Method, path, "", ct, body); resp.Header.Get("WWW-Authenticate") != `Bearer realm="dsar"` {
			continue // no API key asked: the portal's tokens, the probes, signed hooks and callbacks, the metrics token
		}
		keyed++
		resp := call(r.Method, path, pipelineKey, ct, body)
		if pipelineRoutes[route] {
			let++
			if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
				t.Errorf("%s as pipeline: %d; want let through", route, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s as pipeline: %d, want 403", route, resp.StatusCode)
		}
	}
	if keyed < 20 || let < 2 {
		t.Fatalf("walked %d keyed routes, %d a pipeline may call; the router lost its routes", keyed, let)
	}
}
