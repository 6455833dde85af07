package apitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/dsar-project/dsar/handlers/apitest"
)

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }

func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// reply is a canned response of the fake server.
type reply struct {
	status      int
	contentType string
	body        string
	header      map[string]string
}

func fakeServer(t *testing.T, rep reply) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Request-Id", "test-1")
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		if rep.contentType != "" {
			w.Header().Set("Content-Type", rep.contentType)
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

const problem400 = `{"type":"urn:dsar:problem:malformed-body","title":"Malformed body","status":400,"detail":"x","instance":"/v1/requests","request_id":"test-1"}`

func TestTransport(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		auth   bool
		body   string
		reply  reply
		// want lists substrings of the errors the transport must report;
		// none means it must report nothing.
		want []string
	}{
		{
			name: "healthz as documented", method: "GET", path: "/healthz",
			reply: reply{status: 200, contentType: "application/json; charset=utf-8", body: `{"status":"ok"}`},
		},
		{
			name: "healthz body missing its field", method: "GET", path: "/healthz",
			reply: reply{status: 200, contentType: "application/json", body: `{}`},
			want:  []string{"GET /healthz: 200: the response does not match the document", "status"},
		},
		{
			name: "healthz body with an undocumented field", method: "GET", path: "/healthz",
			reply: reply{status: 200, contentType: "application/json", body: `{"status":"ok","uptime":3}`},
			want:  []string{"GET /healthz: 200: the response does not match the document", "uptime"},
		},
		{
			name: "healthz wrong content type", method: "GET", path: "/healthz",
			reply: reply{status: 200, contentType: "text/plain", body: `ok`},
			want:  []string{"GET /healthz: 200: the response does not match the document", "Content-Type"},
		},
		{
			name: "healthz undocumented status", method: "GET", path: "/healthz",
			reply: reply{status: 204},
			want:  []string{"GET /healthz: 204: status not documented"},
		},
		{
			name: "malformed body rejected", method: "POST", path: "/v1/requests", auth: true, body: `{"type":`,
			reply: reply{status: 400, contentType: "application/problem+json", body: problem400},
		},
		{
			name: "malformed body accepted", method: "POST", path: "/v1/requests", auth: true, body: `{"type":`,
			reply: reply{status: 500, contentType: "application/problem+json", body: `{"type":"about:blank","title":"Internal Server Error","status":500,"instance":"/v1/requests","request_id":"test-1"}`},
			want:  []string{"POST /v1/requests: 500: the document forbids this request but the server did not reject it with a 4xx"},
		},
		{
			name: "missing key accepted", method: "GET", path: "/v1/requests",
			reply: reply{status: 200, contentType: "application/json", body: `{"items":[]}`},
			want:  []string{"GET /v1/requests: 200: the document forbids this request", "Bearer"},
		},
		{
			name: "list as documented", method: "GET", path: "/v1/requests?status=completed&limit=5", auth: true,
			reply: reply{status: 200, contentType: "application/json", body: `{"items":[]}`},
		},
		{
			name: "problem with the wrong status", method: "GET", path: "/v1/requests?limit=0", auth: true,
			reply: reply{status: 400, contentType: "application/problem+json", body: `{"type":"urn:dsar:problem:validation","title":"Invalid request","status":422,"instance":"/v1/requests","errors":[{"field":"limit","message":"m"}],"request_id":"test-1"}`},
			want:  []string{"GET /v1/requests?limit=0: 400: the response does not match the document", "422"},
		},
		{
			name: "missing documented header", method: "GET", path: "/v1/requests", auth: false,
			reply: reply{status: 401, contentType: "application/problem+json", body: `{"type":"about:blank","title":"Unauthorized","status":401,"instance":"/v1/requests","request_id":"test-1"}`},
			want:  []string{"GET /v1/requests: 401: the response does not match the document", "WWW-Authenticate"},
		},
		{
			name: "undocumented route answered", method: "GET", path: "/v2/requests",
			reply: reply{status: 200, contentType: "application/json", body: `{}`},
			want:  []string{"GET /v2/requests: 200: the document has no such operation"},
		},
		{
			name: "undocumented route rejected", method: "PUT", path: "/healthz",
			reply: reply{status: 405, contentType: "application/problem+json", body: `{"type":"about:blank","title":"Method Not Allowed","status":405,"instance":"/healthz","request_id":"test-1"}`},
		},
		{
			name: "zip content type only", method: "GET", path: "/v1/requests/01928c4e-7a1b-7cde-8f01-23456789abcd/export", auth: true,
			reply: reply{status: 200, contentType: "application/zip", body: "not checked", header: map[string]string{"Content-Disposition": `attachment; filename="dsar-01928c4e-7a1b-7cde-8f01-23456789abcd.zip"`,
				"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}},
		},
		{
			name: "zip with the wrong content type", method: "GET", path: "/v1/requests/01928c4e-7a1b-7cde-8f01-23456789abcd/export", auth: true,
			reply: reply{status: 200, contentType: "application/octet-stream", body: "PK", header: map[string]string{"Content-Disposition": `attachment; filename="dsar-01928c4e-7a1b-7cde-8f01-23456789abcd.zip"`,
				"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}},
			want: []string{"200: the response does not match the document", "Content-Type"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeServer(t, tc.reply)
			rec := &recorder{TB: t}
			client := &http.Client{Transport: apitest.Transport(rec, nil)}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.auth {
				req.Header.Set("Authorization", "Bearer k")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.reply.body {
				t.Errorf("the caller got body %q, want %q", got, tc.reply.body)
			}
			errs := rec.errors()
			if len(tc.want) == 0 {
				for _, e := range errs {
					t.Errorf("unexpected report: %s", e)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("got %d reports, want 1: %q", len(errs), errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0], w) {
					t.Errorf("report %q does not contain %q", errs[0], w)
				}
			}
		})
	}
}

func TestCheckRoutes(t *testing.T) {
	ok := func(*gin.Context) {}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/healthz", ok)
	r.GET("/readyz", ok)
	r.GET("/openapi.yaml", ok)
	r.GET("/metrics", ok)
	r.POST("/v1/requests", ok)
	r.GET("/v1/requests", ok)
	r.GET("/v1/requests/:id", ok)
	r.GET("/v1/requests/:id/export", ok)
	r.GET("/v1/requests/:id/report", ok)
	r.GET("/v1/requests/:id/audit", ok)
	r.POST("/v1/requests/:id/approve", ok)
	r.POST("/v1/requests/:id/deny", ok)
	r.POST("/v1/requests/:id/cancel", ok)
	r.POST("/v1/requests/:id/extend", ok)
	r.POST("/v1/requests/:id/retry", ok)
	r.POST("/v1/requests/:id/close", ok)
	r.POST("/v1/requests/:id/assign", ok)
	r.POST("/v1/requests/:id/unlink", ok)
	r.POST("/v1/requests/bulk", ok)
	r.GET("/v1/requests/:id/clock", ok)
	r.POST("/v1/requests/:id/pause", ok)
	r.POST("/v1/requests/:id/resume", ok)
	r.POST("/v1/requests/:id/appeal", ok)
	r.GET("/v1/reports/summary", ok)
	r.GET("/v1/reports/segments", ok)
	r.GET("/v1/admin/keys", ok)
	r.POST("/v1/consent/opt-in", ok)
	r.POST("/v1/suppressions/lift", ok)
	r.POST("/v1/consent/history", ok)
	r.POST("/v1/portal/requests", ok)
	r.GET("/v1/portal/requests/:id", ok)
	r.POST("/v1/portal/requests/:id/verify", ok)
	r.POST("/v1/portal/requests/:id/verification", ok)
	r.GET("/v1/portal/requests/:id/export", ok)
	r.GET("/v1/portal/requests/:id/preferences", ok)
	r.PUT("/v1/portal/requests/:id/preferences", ok)
	r.GET("/v1/portal/requests/:id/consent-history", ok)
	r.POST("/v1/portal/gpc", ok)
	r.POST("/v1/callbacks/:job", ok)
	r.GET("/.well-known/gpc.json", ok)
	r.POST("/v1/hooks/resume/:id", ok)
	r.GET("/opendsr/v2/discovery", ok)
	r.GET("/opendsr/v2/certificate.pem", ok)
	r.POST("/opendsr/v2/requests", ok)
	r.GET("/opendsr/v2/requests/:id", ok)
	r.DELETE("/opendsr/v2/requests/:id", ok)
	r.GET("/opendsr/v2/requests/:id/results", ok)
	r.POST("/opendsr/v2/opengdpr_requests", ok)
	r.GET("/opendsr/v2/opengdpr_requests/:id", ok)
	r.DELETE("/opendsr/v2/opengdpr_requests/:id", ok)
	r.POST("/v1/agent/:agent", ok)
	r.GET("/v1/agent/:agent", ok)
	r.POST("/v1/data-rights-request", ok)
	r.POST("/v1/data-rights-request/", ok)
	r.GET("/v1/data-rights-request/:id", ok)
	r.DELETE("/v1/data-rights-request/:id", ok)
	r.POST("/v1/suppressions/check", ok)
	r.GET("/v1/suppressions/check", ok)
	r.GET("/v1/suppressions/key", ok)
	r.POST("/v1/suppressions/filter", ok)
	r.GET("/v1/suppressions/export", ok)
	r.POST("/v1/suppressions/import", ok)

	rec := &recorder{TB: t}
	apitest.CheckRoutes(rec, r.Routes())
	if errs := rec.errors(); len(errs) != 0 {
		t.Errorf("the routes of the document were reported: %q", errs)
	}

	r.DELETE("/v1/requests/:id", ok)
	rec = &recorder{TB: t}
	apitest.CheckRoutes(rec, filter(r.Routes(), "/v1/requests/:id/export"))
	errs := rec.errors()
	want := []string{
		"apitest: route DELETE /v1/requests/{id} is served but not in the OpenAPI document",
		"apitest: operation GET /v1/requests/{id}/export is in the OpenAPI document but not served",
	}
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Errorf("reports:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}

func filter(routes gin.RoutesInfo, without string) gin.RoutesInfo {
	var out gin.RoutesInfo
	for _, r := range routes {
		if r.Path != without {
			out = append(out, r)
		}
	}
	return out
}
