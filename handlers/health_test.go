package handlers_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dsar-project/dsar/handlers"
)

// The health server of a worker or scheduler serves its three routes and
// nothing else, says which dependency is down, and asks for the metrics
// token.
func TestHealthServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	h := handlers.NewHealth(handlers.HealthDeps{
		Ready: []handlers.Check{
			{Name: "store", Ping: func(context.Context) error { return nil }},
			{Name: "queue", Ping: func(context.Context) error { return errors.New("redis down") }},
		},
		Metrics: reg, MetricsToken: "0123456789abcdef0123",
	})
	tests := []struct {
		method, path, token string
		code                int
		body                string
	}{
		{"GET", "/healthz", "", 200, `{"status":"ok"}`},
		{"GET", "/readyz", "", 503, `{"checks":{"queue":"unavailable","store":"ok"},"status":"unavailable"}`},
		{"GET", "/metrics", "", 401, ""},
		{"GET", "/metrics", "wrong-token-0123456789", 401, ""},
		{"GET", "/metrics", "0123456789abcdef0123", 200, "go_goroutines"},
		{"POST", "/healthz", "", 405, "Method Not Allowed"},
		{"GET", "/v1/requests", "", 404, "healthz, /readyz and /metrics only"},
		{"GET", "/debug/pprof/", "", 404, ""},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.body) {
			t.Errorf("%s %s: %d %.200s, want %d with %q", tt.method, tt.path, w.Code, w.Body.String(), tt.code, tt.body)
		}
	}
}
