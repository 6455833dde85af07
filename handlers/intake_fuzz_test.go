package handlers_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
)

// intakeServer is the API on a real store, with a queue that is down (an
// accepted request is stored and left to the sweep), for the intake fuzz
// targets: each call goes through the router as a client's does.
func intakeServer(f *testing.F) (http.Handler, *testenv.Buffer) {
	f.Helper()
	store := teststore.Open(f, nil)
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	logs := &testenv.Buffer{}
	h := handlers.New(handlers.Deps{
		Store: store, Queue: failingQueue{}, Index: idx, Log: slog.New(slog.NewJSONHandler(logs, nil)),
		Keys: apikey.NewKeyring(apikey.Key{Name: "desk", Role: apikey.RoleAgent, Hash: sha256.Sum256([]byte(agentKey))}),
	})
	return h, logs
}

// fuzzPost posts body as JSON to path and returns the answer.
func fuzzPost(h http.Handler, path, key string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// agentSeeds are bodies of POST /v1/requests.
var agentSeeds = []string{
	`{"type":"deletion","regulation":"ccpa","subject":{"email":" Ada@Example.com ","phone":"+44 20 7946 0958","customer_id":"cus_ada"}}`,
	`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"identity":{"verified":false},"channel":"phone","note":"called in"}`,
	`{"type":"opt_out","regulation":"ccpa","subject":{"phone":"+15550100123"},"scopes":["marketing","sale_share"]}`,
	`{"type":"correction","regulation":"gdpr","subject":{"email":"ada@example.com"},"corrections":[{"field":"name","value":"Ada King"}]}`,
	`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"received_at":"2099-01-01T00:00:00Z"}`,
	`{"type":"access","regulation":"gdpr","subject":{"email":"secret.person@example.com","email":"x@example.com"}}`,
	`{"type":"access","regulation":"gdpr","subject":{"email":"аda@example.com","phone":"12345678901"},"TYPE":"x"}`,
	`{"type":"opt_in","regulation":"gdpr","subject":{}}`,
	`{"type":1}`, `[]`, `{"type":"access"} {}`, `{`,
}

// portalSeeds are bodies of POST /v1/portal/requests.
var portalSeeds = []string{
	`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`,
	`{"type":"opt_out","jurisdiction":"US-CA","subject":{"email":"ada@example.com","phone":"+1 555 0100 123"},"scopes":["marketing"]}`,
	`{"type":"deletion","jurisdiction":"ZZ","subject":{"email":"ada@example.com"}}`,
	`{"type":"access","regulation":"ccpa","subject":{"email":"ada@example.com"},"agent":{"name":"Helpers","email":"agent@example.com","signed_permission":true}}`,
	`{"type":"access","regulation":"ccpa","subject":{"email":"ada@example.com"},"agent":{"name":"Agent\nReply","email":"secret.agent@example.com"}}`,
	`{"type":"access","regulation":"gdpr","jurisdiction":"DE","subject":{"customer_id":"cus_123456"}}`,
	`{"type":"correction","regulation":"gdpr","subject":{"email":"ada@example.com"},"corrections":[]}`,
	`{"subject":null}`, `null`, `"x"`,
}

// FuzzAgentRequest: any body of POST /v1/requests is answered without a
// server error; 202 only for a body that is a JSON object of known fields
// with a type an agent files, a known regulation, a known channel and at
// least one identity, each valid, answered in its normal form; and a
// refusal is a problem (application/problem+json) whose errors name
// fields, never quoting a person's email or phone number, which no log
// line holds either.
func FuzzAgentRequest(f *testing.F) {
	for _, s := range agentSeeds {
		f.Add([]byte(s))
	}
	h, logs := intakeServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		w := fuzzPost(h, "/v1/requests", agentKey, body)
		checkIntakeAnswer(t, body, w, logs, func(b map[string]any) string {
			var r app.AgentRequest
			if !decodesAs(body, &r) {
				return "its fields are not the API's"
			}
			if !slices.Contains(dsr.FiledTypes, dsr.Type(r.Type)) || r.Type == string(dsr.TypeOptIn) {
				return "type " + r.Type
			}
			if !dsr.Regulation(r.Regulation).Valid() {
				return "regulation " + r.Regulation
			}
			if r.Channel != "" && !slices.Contains(app.Channels, r.Channel) {
				return "channel " + r.Channel
			}
			return checkSubject(t, r.Subject, w.Body.Bytes(), true)
		})
	})
}

// FuzzPortalRequest is FuzzAgentRequest for POST /v1/portal/requests:
// 202 only for a portal type, a known regulation or a jurisdiction (not
// both), and a valid email at least.
func FuzzPortalRequest(f *testing.F) {
	for _, s := range portalSeeds {
		f.Add([]byte(s))
	}
	h, logs := intakeServer(f)
	portalTypes := []dsr.Type{dsr.TypeAccess, dsr.TypeDeletion, dsr.TypeOptOut, dsr.TypeCorrection}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := fuzzPost(h, "/v1/portal/requests", "", body)
		checkIntakeAnswer(t, body, w, logs, func(b map[string]any) string {
			var r app.PortalRequest
			if !decodesAs(body, &r) {
				return "its fields are not the API's"
			}
			if !slices.Contains(portalTypes, dsr.Type(r.Type)) {
				return "type " + r.Type
			}
			if (r.Regulation == "") == (r.Jurisdiction == "") {
				return "not one of regulation and jurisdiction"
			}
			if r.Regulation != "" && !dsr.Regulation(r.Regulation).Valid() {
				return "regulation " + r.Regulation
			}
			if r.Subject.Email == nil {
				return "no email"
			}
			if r.Agent != nil && !r.Agent.SignedPermission {
				return "an agent without signed permission"
			}
			return checkSubject(t, r.Subject, nil, false)
		})
	})
}

// decodesAs reports whether body is one JSON object that decodes into v
// with no unknown field.
func decodesAs(body []byte, v any) bool {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' || !json.Valid(body) {
		return false
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	return d.Decode(v) == nil
}

// checkSubject returns why s is not a valid subject ("" when it is): no
// identity, or one that is not valid. With answer (an agent's 202), the
// answer's subject must be the identities in their normal form.
func checkSubject(t *testing.T, s app.Subject, answer []byte, agent bool) string {
	t.Helper()
	given := map[string]*string{"email": s.Email, "phone": s.Phone, "customer_id": s.CustomerID}
	want := map[string]string{}
	for kind, v := range given {
		if v == nil {
			continue
		}
		n, err := dsr.NormalizeGiven(dsr.Kind(kind), *v)
		if err != nil {
			return kind + " not valid"
		}
		want[kind] = n
	}
	if len(want) == 0 {
		return "no identity"
	}
	if agent {
		var got struct {
			Subject map[string]string `json:"subject"`
		}
		if err := json.Unmarshal(answer, &got); err != nil {
			t.Fatalf("a 202 that is not JSON: %v", err)
		}
		for kind, n := range want {
			if got.Subject[kind] != n {
				t.Fatalf("%s answered as %q, want %q", kind, got.Subject[kind], n)
			}
		}
	}
	return ""
}

// personal finds what looks like a person's email or phone number.
var personal = regexp.MustCompile(`[^\s"@,;:<>()\[\]\\]+@[^\s"@,;:<>()\[\]\\]+|\+?\d[\d ().-]{6,}\d`)

// examples are the values the messages themselves give as examples.
var examples = []string{"name@example.com", "+44 20 7946 0958", "2026-11-20T09:30:00Z"}

// checkIntakeAnswer holds the answer w to body to the properties both
// intake targets share; invalid says why the body is not valid, or "".
func checkIntakeAnswer(t *testing.T, body []byte, w *httptest.ResponseRecorder, logs *testenv.Buffer, invalid func(map[string]any) string) {
	t.Helper()
	if w.Code >= 500 || w.Code < 200 {
		t.Fatalf("%d for %q:\n%s", w.Code, body, w.Body)
	}
	// The emails and phone numbers of the body's values, as given (not
	// those of its keys: an unknown field is named).
	var leaves, keys []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			for _, m := range personal.FindAllString(v, -1) {
				if m = strings.TrimSpace(m); len(m) >= 8 && !slices.ContainsFunc(examples, func(e string) bool { return strings.Contains(e, m) }) {
					leaves = append(leaves, m)
				}
			}
		case map[string]any:
			for k, x := range v {
				keys = append(keys, k)
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var parsed any
	if json.Unmarshal(body, &parsed) == nil {
		walk(parsed)
	}
	leaves = slices.DeleteFunc(leaves, func(l string) bool {
		return slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, l) })
	})
	if logged := logs.String(); len(leaves) > 0 {
		for _, l := range leaves {
			if strings.Contains(logged, l) {
				t.Fatalf("the logs hold %q of the body", l)
			}
		}
	}
	obj, _ := parsed.(map[string]any)
	switch w.Code {
	case http.StatusAccepted:
		if why := invalid(obj); why != "" {
			t.Fatalf("202 for a body that is not valid (%s): %q", why, body)
		}
		return
	case http.StatusConflict, http.StatusTooManyRequests:
		return
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%d answered as %q", w.Code, ct)
	}
	var p problemJSON
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code {
		t.Fatalf("%d with a problem that does not read: %v\n%s", w.Code, err, w.Body)
	}
	if w.Code == http.StatusBadRequest && obj != nil && len(p.Errors) == 0 {
		t.Fatalf("400 for a JSON object names no field: %s", w.Body)
	}
	for _, e := range p.Errors {
		if e.Field == "" || e.Message == "" {
			t.Fatalf("an error without a field or message: %s", w.Body)
		}
	}
	for _, l := range leaves {
		if strings.Contains(w.Body.String(), l) {
			t.Fatalf("the problem quotes %q of the body: %s", l, w.Body)
		}
	}
}
