package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/connectortest"
	"github.com/dsar-project/dsar/connectors/webhook"
)

// TestConformance runs the connector conformance suite against a receiver
// that answers at once, backed by a small system of customers, orders and
// a newsletter segment; and the faults against receivers that are down,
// refuse the signature, or limit the rate.
func TestConformance(t *testing.T) {
	t.Parallel()
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T) (connectors.Connector, *connectortest.Fixture) {
			sys := newSystem(t)
			return sys.connector(t, "crm"), &connectortest.Fixture{
				Subject: connectors.Subject{Identities: []connectors.Identity{
					{Kind: "email", Value: "ada@example.com"}, {Kind: "customer_id", Value: "cus_ada_1"},
				}},
				OtherValues:    []string{"bob@example.com", "cus_bob_2", "Bob", "o2"},
				Seed:           func(context.Context) { sys.seed() },
				SubjectRecords: func(context.Context) int { return sys.subjectRecords() },
				OtherRecords:   func(context.Context) int { return sys.otherRecords() },
				InSegment: func(context.Context) bool {
					sys.mu.Lock()
					defer sys.mu.Unlock()
					return sys.newsletter["cus_ada_1"]
				},
				OptedOut: func(context.Context) bool {
					sys.mu.Lock()
					defer sys.mu.Unlock()
					c, ok := sys.customers["cus_ada_1"]
					return ok && c.OptedOut
				},
				Export: map[string]int64{"customers": 1, "orders": 2},
				Erase:  map[string]int64{"customers": 1, "orders": 2, "newsletter": 1},
				OptOut: map[string]int64{"customers": 1, "newsletter": 1},
			}
		},
		Fault: func(t *testing.T, f connectortest.Fault) connectors.Connector {
			var url string
			switch f {
			case connectortest.Unreachable:
				srv := httptest.NewServer(http.NotFoundHandler())
				url = srv.URL
				srv.Close() // nothing listens there any more
			case connectortest.Rejected:
				url = serve(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "bad signature", http.StatusUnauthorized) })
			case connectortest.RateLimited:
				url = serve(t, func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Retry-After", "7")
					http.Error(w, "slow down", http.StatusTooManyRequests)
				})
			default:
				return nil
			}
			c, err := webhook.New("crm", webhook.Spec{URL: url, Secret: testSecret, AllowInsecure: true, AllowPrivate: true})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	})
}

// serve starts a receiver answering with h and returns its URL.
func serve(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
