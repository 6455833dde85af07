package handlers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/agentapi"
	"github.com/dsar-project/dsar/handlers/apitest"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// TestOpenAPIDocument checks that the document is valid OpenAPI 3.1, its
// examples included, that it passes apitest.Lint (required properties
// defined, a 4xx for every operation), and that it lists exactly the routes
// the router serves.
func TestOpenAPIDocument(t *testing.T) {
	doc := apitest.Load(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi: %q, want 3.1.0", doc.OpenAPI)
	}
	if err := apitest.Validate(context.Background(), doc); err != nil {
		t.Fatalf("the OpenAPI document is not valid: %v", err)
	}
	for _, f := range apitest.Lint(doc) {
		t.Errorf("the OpenAPI document: %s", f)
	}
	h := handlers.New(handlers.Deps{
		Log:  slog.New(slog.DiscardHandler),
		Keys: apikey.NewKeyring(),
	})
	apitest.CheckRoutes(t, apitest.Routes(t, h))
}

// TestOpenAPITraffic sends the requests that need no store through the
// validating transport: probes, the document, and every rejection the API
// makes before it touches the store.
func TestOpenAPITraffic(t *testing.T) {
	keys := apikey.NewKeyring(
		apikey.Key{Name: "admin", Role: apikey.RoleAdmin, Hash: sha256.Sum256([]byte("admin-secret"))},
		apikey.Key{Name: "auditor", Role: apikey.RoleAuditor, Hash: sha256.Sum256([]byte("auditor-secret"))},
	)
	h := handlers.New(handlers.Deps{
		Log:  slog.New(slog.DiscardHandler),
		Keys: keys,
		Ready: []handlers.Check{
			{Name: "store", Ping: func(context.Context) error { return nil }},
		},
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	down := httptest.NewServer(handlers.New(handlers.Deps{
		Log:  slog.New(slog.DiscardHandler),
		Keys: keys,
		Ready: []handlers.Check{
			{Name: "store", Ping: func(context.Context) error { return nil }},
			{Name: "queue", Ping: func(context.Context) error { return errors.New("down") }},
		},
	}))
	defer down.Close()
	client := apitest.Client(t)

	const id = "01928c4e-7a1b-7cde-8f01-23456789abcd"
	valid := `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`
	tests := []struct {
		name        string
		base        string
		method      string
		path        string
		key         string
		contentType string
		body        string
		header      string // the value of an X-Padding header, when set
		want        int
		wantType    string
	}{
		{name: "healthz", method: "GET", path: "/healthz", want: 200},
		{name: "readyz", method: "GET", path: "/readyz", want: 200},
		{name: "readyz down", base: down.URL, method: "GET", path: "/readyz", want: 503},
		{name: "openapi", method: "GET", path: "/openapi.yaml", want: 200},
		{name: "healthz headers too large", method: "GET", path: "/healthz", header: strings.Repeat("a", 2<<20), want: 431},
		{name: "readyz headers too large", method: "GET", path: "/readyz", header: strings.Repeat("a", 2<<20), want: 431},
		{name: "unknown route", method: "GET", path: "/v1/nothing", want: 404},
		{name: "trailing slash", method: "GET", path: "/v1/requests/", key: "admin-secret", want: 404},
		{name: "wrong method", method: "DELETE", path: "/v1/requests/" + id, key: "admin-secret", want: 405},
		{name: "list without key", method: "GET", path: "/v1/requests", want: 401},
		{name: "list with unknown key", method: "GET", path: "/v1/requests", key: "nope", want: 401},
		{name: "get without key", method: "GET", path: "/v1/requests/" + id, want: 401},
		{name: "export without key", method: "GET", path: "/v1/requests/" + id + "/export", want: 401},
		{name: "create without key", method: "POST", path: "/v1/requests", contentType: "application/json", body: valid, want: 401},
		{name: "create as auditor", method: "POST", path: "/v1/requests", key: "auditor-secret", contentType: "application/json", body: valid, want: 403},
		{name: "export as auditor", method: "GET", path: "/v1/requests/" + id + "/export", key: "auditor-secret", want: 403},
		{name: "get bad id", method: "GET", path: "/v1/requests/not-an-id", key: "auditor-secret", want: 404},
		{name: "get upper-case id", method: "GET", path: "/v1/requests/" + strings.ToUpper(id), key: "auditor-secret", want: 404},
		{name: "export bad id", method: "GET", path: "/v1/requests/not-an-id/export", key: "admin-secret", want: 404},
		{name: "list unknown parameter", method: "GET", path: "/v1/requests?state=completed", key: "auditor-secret", want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "list bad status", method: "GET", path: "/v1/requests?status=done", key: "auditor-secret", want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "list bad type", method: "GET", path: "/v1/requests?type=erasure", key: "auditor-secret", want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "list limit 0", method: "GET", path: "/v1/requests?limit=0", key: "auditor-secret", want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "list limit 101", method: "GET", path: "/v1/requests?limit=101", key: "auditor-secret", want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "list limit text", method: "GET", path: "/v1/requests?limit=ten", key: "auditor-secret", want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "list bad cursor", method: "GET", path: "/v1/requests?cursor=abc", key: "auditor-secret", want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "create empty body", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", want: 400, wantType: "urn:dsar:problem:malformed-body"},
		{name: "create not JSON", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type":`, want: 400, wantType: "urn:dsar:problem:malformed-body"},
		{name: "create syntax error", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type" "access"}`, want: 400, wantType: "urn:dsar:problem:malformed-body"},
		{name: "create array", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `[]`, want: 400, wantType: "urn:dsar:problem:malformed-body"},
		{name: "create unknown field", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"priority":"x"}`, want: 400, wantType: "urn:dsar:problem:malformed-body"},
		{name: "create wrong JSON type", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type":1,"regulation":"gdpr","subject":{"email":"ada@example.com"}}`, want: 400, wantType: "urn:dsar:problem:malformed-body"},
		{name: "create trailing data", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: valid + `{}`, want: 400, wantType: "urn:dsar:problem:malformed-body"},
		{name: "create no fields", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{}`, want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "create empty subject", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type":"access","regulation":"gdpr","subject":{}}`, want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "create bad enums", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type":"erasure","regulation":"hipaa","subject":{"email":"ada@example.com"}}`, want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "create bad identities", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type":"access","regulation":"gdpr","subject":{"email":"ada","phone":"12","customer_id":" "}}`, want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "create empty identity", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type":"access","regulation":"gdpr","subject":{"email":""}}`, want: 400, wantType: "urn:dsar:problem:validation"},
		{name: "create text", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "text/plain", body: valid, want: 415},
		{name: "create too big", method: "POST", path: "/v1/requests", key: "admin-secret", contentType: "application/json", body: `{"type":"` + strings.Repeat("a", agentapi.MaxBodyBytes) + `"}`, want: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.base
			if base == "" {
				base = srv.URL
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, base+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.header != "" {
				req.Header.Set("X-Padding", tc.header)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d; body: %s", resp.StatusCode, tc.want, data)
			}
			if tc.wantType != "" {
				var p httpkit.Problem
				if err := json.NewDecoder(bytes.NewReader(data)).Decode(&p); err != nil {
					t.Fatal(err)
				}
				if p.Type != tc.wantType {
					t.Errorf("problem type %q, want %q; body: %s", p.Type, tc.wantType, data)
				}
			}
		})
	}
}
