package webhook_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/webhook"
	sw "github.com/dsar-project/dsar/internal/webhook"
)

// testSecret is the secret the tests' connectors and receivers share.
const testSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func mustSecret(t testing.TB, s string) sw.Secret {
	t.Helper()
	k, err := sw.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// customer and order are the records the test system holds.
type customer struct {
	ID       string `json:"customer_id"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	OptedOut bool   `json:"opted_out"`
}

type order struct {
	ID       string `json:"order_id"`
	Customer string `json:"customer_id"`
	Total    int    `json:"total"`
}

// system is a small system behind a webhook receiver: customers, their
// orders, and a newsletter segment, acted on as the receiver's calls ask.
// It checks every call's signature, as a receiver must.
type system struct {
	t      testing.TB
	secret sw.Secret
	srv    *httptest.Server

	mu         sync.Mutex
	customers  map[string]*customer
	orders     []order
	newsletter map[string]bool
	calls      []webhook.Request
	// answer, when set, replaces the system's own answer.
	answer func(w http.ResponseWriter, req webhook.Request)
}

func newSystem(t testing.TB) *system {
	s := &system{t: t, secret: mustSecret(t, testSecret), customers: map[string]*customer{}, newsletter: map[string]bool{}}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

// connector returns a connector to the system, allowed to reach it
// (loopback, plain http).
func (s *system) connector(t testing.TB, name string) *webhook.Connector {
	t.Helper()
	c, err := webhook.New(name, webhook.Spec{URL: s.srv.URL + "/dsar", Secret: testSecret, AllowInsecure: true, AllowPrivate: true,
		CallbackURL: "https://dsar.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *system) seed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers["cus_ada_1"] = &customer{ID: "cus_ada_1", Email: "ada@example.com", Name: "Ada"}
	s.customers["cus_bob_2"] = &customer{ID: "cus_bob_2", Email: "bob@example.com", Name: "Bob"}
	s.orders = []order{{"o1", "cus_ada_1", 10}, {"o2", "cus_bob_2", 20}, {"o3", "cus_ada_1", 30}}
	s.newsletter["cus_ada_1"], s.newsletter["cus_bob_2"] = true, true
}

func (s *system) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if _, err := sw.Verify(r.Header, body, time.Now(), 0, s.secret); err != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var req webhook.Request
	if err := json.Unmarshal(body, &req); err != nil || req.Version != 1 {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, req)
	if s.answer != nil {
		s.answer(w, req)
		return
	}
	ans := s.act(req)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}

// act performs req on the system, under s.mu, and returns the answer.
func (s *system) act(req webhook.Request) webhook.Answer {
	var c *customer
	for _, id := range req.Identities {
		for _, x := range s.customers {
			if (id.Kind == "email" && x.Email == id.Value) || (id.Kind == "customer_id" && x.ID == id.Value) {
				c = x
			}
		}
	}
	var mine []order
	if c != nil {
		for _, o := range s.orders {
			if o.Customer == c.ID {
				mine = append(mine, o)
			}
		}
	}
	n := func(v int) *int64 { x := int64(v); return &x }
	ans := webhook.Answer{Collections: []webhook.Collection{}}
	switch connectors.Action(req.Action) {
	case connectors.ActionExport:
		ans.Export = map[string][]json.RawMessage{}
		if c != nil {
			ans.Export["customers"] = []json.RawMessage{mustJSON(s.t, c)}
		}
		for _, o := range mine {
			ans.Export["orders"] = append(ans.Export["orders"], mustJSON(s.t, o))
		}
		ans.Collections = append(ans.Collections, webhook.Collection{Name: "customers", Records: n(len(ans.Export["customers"]))},
			webhook.Collection{Name: "orders", Records: n(len(mine))})
	case connectors.ActionErase:
		deleted, pulled := 0, 0
		if c != nil {
			delete(s.customers, c.ID)
			deleted = 1
			if s.newsletter[c.ID] {
				delete(s.newsletter, c.ID)
				pulled = 1
			}
			s.orders = slices.DeleteFunc(s.orders, func(o order) bool { return o.Customer == c.ID })
		}
		ans.Collections = append(ans.Collections, webhook.Collection{Name: "customers", Records: n(deleted)},
			webhook.Collection{Name: "orders", Records: n(len(mine))},
			webhook.Collection{Name: "newsletter", Records: n(pulled), Outcome: "pulled"})
	case connectors.ActionOptOut:
		set, pulled := 0, 0
		if c != nil {
			if !c.OptedOut {
				c.OptedOut, set = true, 1
			}
			if s.newsletter[c.ID] {
				delete(s.newsletter, c.ID)
				pulled = 1
			}
		}
		ans.Collections = append(ans.Collections, webhook.Collection{Name: "customers", Records: n(set), Outcome: "set"},
			webhook.Collection{Name: "newsletter", Records: n(pulled), Outcome: "pulled"})
	}
	return ans
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// subjectRecords counts the records holding the subject's data.
func (s *system) subjectRecords() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if _, ok := s.customers["cus_ada_1"]; ok {
		n++
	}
	for _, o := range s.orders {
		if o.Customer == "cus_ada_1" {
			n++
		}
	}
	return n
}

// otherRecords counts Bob's records as seeded, his segment membership
// included.
func (s *system) otherRecords() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	if c, ok := s.customers["cus_bob_2"]; ok && *c == (customer{ID: "cus_bob_2", Email: "bob@example.com", Name: "Bob"}) {
		n++
	}
	for _, o := range s.orders {
		if o == (order{"o2", "cus_bob_2", 20}) {
			n++
		}
	}
	if s.newsletter["cus_bob_2"] {
		n++
	}
	return n
}

// callsOf returns the calls the system got, sorted by id.
func (s *system) callsOf() []webhook.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.calls)
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
