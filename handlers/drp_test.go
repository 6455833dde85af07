package handlers_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/drp"
	"github.com/dsar-project/dsar/workers"
)

// drpAgent is an authorised agent of the tests: its id and signing key.
type drpAgent struct {
	id   string
	priv ed25519.PrivateKey
	// now is the clock its messages are dated by: the server's, when the
	// server's is a test clock; nil: time.Now.
	now func() time.Time
}

// sign signs v the protocol's way, with crypto/ed25519 and no code of the
// service: base64 of the signature followed by the JSON.
func (g drpAgent) sign(t *testing.T, v any) string {
	t.Helper()
	msg, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(append(ed25519.Sign(g.priv, msg), msg...))
}

// envelope is a message of g to the business SHOP, standing now.
func (g drpAgent) envelope(extra map[string]any) map[string]any {
	now := time.Now().UTC()
	if g.now != nil {
		now = g.now().UTC()
	}
	m := map[string]any{"agent-id": g.id, "business-id": "SHOP", "issued-at": now.Add(-time.Second).Format(time.RFC3339),
		"expires-at": now.Add(5 * time.Minute).Format(time.RFC3339), "drp.version": "1.0"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

type drpAPI struct {
	*api
	agents map[string]drpAgent
	plain  *http.Client
}

// call sends a DRP call: body as text/plain, token as the bearer.
func (d *drpAPI) call(method, path, token, body string) (int, []byte) {
	d.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, d.url+path, rd)
	req.Header.Set("Content-Type", "text/plain")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.plain.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (d *drpAPI) pair(id string) string {
	d.t.Helper()
	g := d.agents[id]
	st, b := d.call("POST", "/v1/agent/"+id, "", g.sign(d.t.(*testing.T), g.envelope(nil)))
	var out struct {
		AgentID string `json:"agent-id"`
		Token   string `json:"token"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &out) != nil || out.AgentID != id || out.Token == "" {
		d.t.Fatalf("pair %s: %d %s", id, st, b)
	}
	return out.Token
}

func (d *drpAPI) exercise(t *testing.T, token string, body string) (int, drp.Status, drp.Error) {
	t.Helper()
	code, b := d.call("POST", "/v1/data-rights-request", token, body)
	var st drp.Status
	var e drp.Error
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("status: %v: %s", err, b)
		}
	} else if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body: %v: %s", err, b)
	}
	return code, st, e
}

func setupDRP(t *testing.T) *drpAPI {
	return setupDRPWith(t, nil)
}

// setupDRPWith is setupDRP with the dependencies, as set, handed to keep.
func setupDRPWith(t *testing.T, keep func(handlers.Deps)) *drpAPI {
	agents := map[string]drpAgent{}
	var dir []map[string]string
	for _, id := range []string{"AGENT_A", "AGENT_B"} {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		agents[id] = drpAgent{id: id, priv: priv}
		dir = append(dir, map[string]string{"id": id, "name": "Agent " + id, "verify_key": base64.StdEncoding.EncodeToString(pub)})
	}
	doc, _ := json.Marshal(dir)
	directory, err := drp.ParseDirectory(doc)
	if err != nil {
		t.Fatal(err)
	}
	a := setupWith(t, false, func(d *handlers.Deps) {
		d.DRP = app.DRPOptions{BusinessID: "SHOP", Agents: directory, Tokens: drp.NewTokens([]byte("drp token key for the tests......")),
			PortalURL: "https://privacy.shop.example/privacy", AllowInternalCallbacks: true}
		if keep != nil {
			keep(*d)
		}
	})
	return &drpAPI{api: a, agents: agents, plain: a.client} // its traffic checked against the OpenAPI document
}

// TestDRPOptInRetryAcrossKeyRotation: an opt-in retried under its
// agent-request-id after the blind index key changed answers the request
// its first attempt filed (its fingerprint is under the previous key), as
// every other filing does.
func TestDRPOptInRetryAcrossKeyRotation(t *testing.T) {
	t.Parallel()
	var deps handlers.Deps
	d := setupDRPWith(t, func(k handlers.Deps) { deps = k })
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	body := func() string {
		return a.sign(t, a.envelope(map[string]any{"exercise": "sale:opt_in", "email": "ada@example.com", "email_verified": true, "agent-request-id": "in-1"}))
	}
	code, first, e := d.exercise(t, tok, body())
	if code != http.StatusOK {
		t.Fatalf("opt-in: %d %+v", code, e)
	}
	rotated, err := dsr.NewBlindIndex([]byte("fedcba9876543210fedcba9876543210"), []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	deps.Index = rotated
	srv := httptest.NewServer(handlers.New(deps))
	t.Cleanup(srv.Close)
	after := &drpAPI{api: &api{t: t, url: srv.URL, store: d.store, client: d.client}, agents: d.agents, plain: &http.Client{Timeout: 10 * time.Second}}
	code, again, e := after.exercise(t, tok, body())
	if code != http.StatusOK || again.RequestID != first.RequestID {
		t.Errorf("the opt-in retried after the key changed: %d %+v %+v; want request %s", code, again, e, first.RequestID)
	}
}

// TestDRPPairing: a token for a signed, current message of an agent in the
// directory, naming itself and this business; 403 with no body for anything
// else, and a token works only for its agent.
func TestDRPPairing(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a, b := d.agents["AGENT_A"], d.agents["AGENT_B"]
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	for _, tt := range []struct {
		name, path, body string
	}{
		{"unknown agent", "/v1/agent/AGENT_X", drpAgent{id: "AGENT_X", priv: stranger}.sign(t, drpAgent{id: "AGENT_X", priv: stranger}.envelope(nil))},
		{"signed by another agent", "/v1/agent/AGENT_A", b.sign(t, a.envelope(nil))},
		{"path names another agent than the message", "/v1/agent/AGENT_B", a.sign(t, a.envelope(nil))},
		{"another business", "/v1/agent/AGENT_A", a.sign(t, a.envelope(map[string]any{"business-id": "OTHER"}))},
		{"expired", "/v1/agent/AGENT_A", a.sign(t, a.envelope(map[string]any{"expires-at": time.Now().Add(-time.Second).UTC().Format(time.RFC3339)}))},
		{"unsigned JSON", "/v1/agent/AGENT_A", `{"agent-id":"AGENT_A","business-id":"SHOP"}`},
	} {
		if code, body := d.call("POST", tt.path, "", tt.body); code != http.StatusForbidden || len(body) != 0 {
			t.Errorf("%s: %d %q; want 403 with no body", tt.name, code, body)
		}
	}
	tok := d.pair("AGENT_A")
	if code, body := d.call("GET", "/v1/agent/AGENT_A", tok, ""); code != http.StatusOK || strings.TrimSpace(string(body)) != "{}" {
		t.Errorf("GET /v1/agent/AGENT_A with its token: %d %s; want 200 {}", code, body)
	}
	for _, tt := range []struct{ name, path, token string }{
		{"another agent's path", "/v1/agent/AGENT_B", tok},
		{"no token", "/v1/agent/AGENT_A", ""},
		{"a forged token", "/v1/agent/AGENT_B", strings.Replace(tok, "AGENT_A", "AGENT_B", 1)},
	} {
		if code, _ := d.call("GET", tt.path, tt.token, ""); code != http.StatusForbidden {
			t.Errorf("%s: %d; want 403", tt.name, code)
		}
	}
}

// TestDRPExercises files each right through the protocol and checks what is
// stored and answered; then the attacks: tampered, expired, early, another
// agent's request, a replay, an agent-request-id reused.
func TestDRPExercises(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	ctx := context.Background()
	a, b := d.agents["AGENT_A"], d.agents["AGENT_B"]
	tokA, tokB := d.pair("AGENT_A"), d.pair("AGENT_B")

	// An opt-out, written the examples' way, needs no proof: in progress.
	code, optOut, _ := d.exercise(t, tokA, a.sign(t, a.envelope(map[string]any{"exercise": "sale:opt-out", "regime": "ccpa",
		"email": "ada@example.com", "agent-request-id": "aa-1"})))
	if code != http.StatusOK || optOut.Status != drp.StateInProgress || optOut.ExpectedBy == "" || optOut.AgentRequestID != "aa-1" || optOut.ReceivedAt == "" {
		t.Fatalf("opt-out: %d %+v", code, optOut)
	}
	req, err := d.store.Request(ctx, optOut.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if req.Type != dsr.TypeOptOut || !slices.Equal(req.Scopes, []dsr.Scope{dsr.ScopeSaleShare}) || req.Source != dsr.SourceDRP ||
		req.FiledBy != "drp:AGENT_A" || req.DRP == nil || req.DRP.Exercise != drp.RightOptOut || req.Status != dsr.StatusVerified {
		t.Errorf("stored opt-out: %+v", req)
	}

	// A deletion whose email the agent verified: proven by the agent.
	code, deletion, _ := d.exercise(t, tokA, a.sign(t, a.envelope(map[string]any{"exercise": "deletion", "email": "bob@example.com", "email_verified": true,
		"name": "Bob Example", "address": map[string]any{"locality": "Springfield"}})))
	if code != http.StatusOK || deletion.Status != drp.StateInProgress || deletion.Reason != "" {
		t.Fatalf("deletion: %d %+v", code, deletion)
	}
	if req, _ := d.store.Request(ctx, deletion.RequestID); req.Status != dsr.StatusVerified || !strings.Contains(req.VerificationMethod, "AGENT_A verified the email") {
		t.Errorf("stored deletion: %s, %q", req.Status, req.VerificationMethod)
	}

	// An access whose email is not verified waits for the person.
	code, access, _ := d.exercise(t, tokA, a.sign(t, a.envelope(map[string]any{"exercise": "access:categories", "email": "cy@example.com"})))
	if code != http.StatusOK || access.Status != drp.StateInProgress || access.Reason != drp.ReasonNeedUserVerification ||
		access.UserVerificationURL != "https://privacy.shop.example/privacy/check?request="+access.RequestID {
		t.Fatalf("unverified access: %d %+v", code, access)
	}
	if req, _ := d.store.Request(ctx, access.RequestID); req.Status != dsr.StatusVerifying || !slices.Contains(req.PendingNotices, dsr.NoticeVerify) {
		t.Errorf("stored access: %s, notices %v; want verifying with the verification pending", req.Status, req.PendingNotices)
	}

	// The same message again, and the same agent-request-id asking the
	// same in a new message: the first request. Asking something else
	// under it: refused.
	replayed := a.sign(t, a.envelope(map[string]any{"exercise": "sale:opt_out", "regime": "ccpa", "email": "ada@example.com", "agent-request-id": "aa-1"}))
	if code, st, _ := d.exercise(t, tokA, replayed); code != http.StatusOK || st.RequestID != optOut.RequestID {
		t.Errorf("a retry under the same agent-request-id: %d %+v; want request %s", code, st, optOut.RequestID)
	}
	if code, _, e := d.exercise(t, tokA, a.sign(t, a.envelope(map[string]any{"exercise": "deletion", "email": "ada@example.com", "agent-request-id": "aa-1"}))); code != http.StatusConflict || !e.Fatal {
		t.Errorf("agent-request-id reused for a deletion: %d %+v; want 409 fatal", code, e)
	}
	before := d.countRequests()
	once := a.sign(t, a.envelope(map[string]any{"exercise": "access", "email": "dan@example.com", "email_verified": true}))
	_, first, _ := d.exercise(t, tokA, once)
	if _, again, _ := d.exercise(t, tokA, once); again.RequestID != first.RequestID || d.countRequests() != before+1 {
		t.Errorf("a replayed message filed %d requests (%s, %s); want one", d.countRequests()-before, first.RequestID, again.RequestID)
	}

	// The trailing slash of versions before 0.9.3 files the same way.
	if code, body := d.call("POST", "/v1/data-rights-request/", tokA, a.sign(t, a.envelope(map[string]any{"exercise": "access", "email": "eli@example.com", "email_verified": true}))); code != http.StatusOK || !strings.Contains(string(body), `"status":"in_progress"`) {
		t.Errorf("POST /v1/data-rights-request/: %d %s", code, body)
	}
	before++

	// What is refused, and how.
	tampered := func() string {
		raw, _ := base64.StdEncoding.DecodeString(once)
		return base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(raw), "dan@", "eve@", 1)))
	}()
	for _, tt := range []struct {
		name  string
		token string
		body  string
		code  int
		fatal bool
	}{
		{"tampered", tokA, tampered, http.StatusForbidden, true},
		{"signed by another agent than the token's", tokA, b.sign(t, b.envelope(map[string]any{"exercise": "access", "email": "x@example.com"})), http.StatusForbidden, true},
		{"another agent's id under its own key", tokA, a.sign(t, a.envelope(map[string]any{"agent-id": "AGENT_B", "exercise": "access", "email": "x@example.com"})), http.StatusForbidden, true},
		{"another business", tokA, a.sign(t, a.envelope(map[string]any{"business-id": "OTHER", "exercise": "access", "email": "x@example.com"})), http.StatusForbidden, true},
		{"expired", tokA, a.sign(t, a.envelope(map[string]any{"expires-at": time.Now().Add(-time.Second).UTC().Format(time.RFC3339), "exercise": "access", "email": "x@example.com"})), http.StatusBadRequest, true},
		{"issued in the future", tokA, a.sign(t, a.envelope(map[string]any{"issued-at": time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "exercise": "access", "email": "x@example.com"})), http.StatusBadRequest, false},
		{"unknown right", tokA, a.sign(t, a.envelope(map[string]any{"exercise": "rectify", "email": "x@example.com"})), http.StatusBadRequest, true},
		{"no identity", tokA, a.sign(t, a.envelope(map[string]any{"exercise": "access", "name": "X"})), http.StatusBadRequest, true},
		{"an unverified phone alone", tokA, a.sign(t, a.envelope(map[string]any{"exercise": "access", "phone_number": "+14155550100"})), http.StatusBadRequest, true},
		{"a callback to plain http elsewhere", tokA, a.sign(t, a.envelope(map[string]any{"exercise": "access", "email": "x@example.com", "status_callback": "http://agent.example/cb"})), http.StatusBadRequest, true},
		{"no token", "", once, http.StatusForbidden, false},
	} {
		code, _, e := d.exercise(t, tt.token, tt.body)
		if code != tt.code || e.Fatal != tt.fatal || e.Code != strconv.Itoa(code) {
			t.Errorf("%s: %d %+v; want %d fatal=%v", tt.name, code, e, tt.code, tt.fatal)
		}
		if strings.Contains(e.Message, "@example.com") {
			t.Errorf("%s: the error quotes an identity: %q", tt.name, e.Message)
		}
	}
	if got := d.countRequests(); got != before+1 {
		t.Errorf("the refused messages stored %d requests", got-before-1)
	}

	// Another agent cannot read or revoke agent A's requests.
	if code, _ := d.call("GET", "/v1/data-rights-request/"+access.RequestID, tokB, ""); code != http.StatusForbidden {
		t.Errorf("agent B reads agent A's request: %d; want 403", code)
	}
	if code, _ := d.call("DELETE", "/v1/data-rights-request/"+access.RequestID, tokB, b.sign(t, map[string]any{"reason": "x"})); code != http.StatusForbidden {
		t.Errorf("agent B revokes agent A's request: %d; want 403", code)
	}
	if code, _ := d.call("GET", "/v1/data-rights-request/01a20d27-0000-7000-8000-00000000dead", tokA, ""); code != http.StatusNotFound {
		t.Errorf("a request that does not exist: %d; want 404", code)
	}
	code, body := d.call("GET", "/v1/data-rights-request/"+access.RequestID, tokA, "")
	var st drp.Status
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil || st != access {
		t.Errorf("GET the access: %d %s; want %+v", code, body, access)
	}

	// Revoked: before processing; again: the same answer; signed by
	// another agent's key: refused; once in progress: refused.
	if code, _ := d.call("DELETE", "/v1/data-rights-request/"+access.RequestID, tokA, b.sign(t, map[string]any{"reason": "x"})); code != http.StatusForbidden {
		t.Errorf("a revocation signed with another key: %d; want 403", code)
	}
	for range 2 {
		code, body = d.call("DELETE", "/v1/data-rights-request/"+access.RequestID, tokA, a.sign(t, map[string]any{"reason": "I changed my mind"}))
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Status != drp.StateRevoked {
			t.Errorf("revoke: %d %s; want 200 revoked", code, body)
		}
	}
	if _, err := d.store.Transition(ctx, deletion.RequestID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if code, body := d.call("DELETE", "/v1/data-rights-request/"+deletion.RequestID, tokA, a.sign(t, map[string]any{"reason": "late"})); code != http.StatusConflict {
		t.Errorf("revoke a deletion in progress: %d %s; want 409", code, body)
	}

	// An opt-in: refused while Ada's opt-out has not been fanned out (it
	// would suppress her again at once); then the consent given again,
	// recorded, with its request.
	optInBody := a.sign(t, a.envelope(map[string]any{"exercise": "sale:opt_in", "email": "ada@example.com", "email_verified": true}))
	if code, _, e := d.exercise(t, tokA, optInBody); code != http.StatusConflict || e.Fatal || !strings.Contains(e.Message, "not been applied yet") {
		t.Errorf("opt-in before the opt-out is applied: %d %+v; want 409, not fatal, saying why", code, e)
	}
	if _, err := d.store.Transition(ctx, optOut.RequestID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if err := d.store.MarkFannedOut(ctx, optOut.RequestID); err != nil {
		t.Fatal(err)
	}
	code, optIn, _ := d.exercise(t, tokA, optInBody)
	if code != http.StatusOK || optIn.RequestID == "" {
		t.Fatalf("opt-in: %d %+v", code, optIn)
	}
	if req, _ := d.store.Request(ctx, optIn.RequestID); req.Type != dsr.TypeOptIn || req.DRP == nil || req.DRP.Agent != "AGENT_A" {
		t.Errorf("stored opt-in: %+v", req)
	}
}

// TestDRPCallbacks: a request with a status_callback owes its agent its
// status at filing and after every change, until the agent answers 200.
func TestDRPCallbacks(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	ctx := context.Background()
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	var mu sync.Mutex
	var got []drp.Status
	answer := http.StatusInternalServerError
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var st drp.Status
		_ = json.NewDecoder(r.Body).Decode(&st)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, st)
		w.WriteHeader(answer)
	}))
	t.Cleanup(cb.Close)
	_, filed, _ := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "access", "email": "ada@example.com", "status_callback": cb.URL + "/status"})))
	// The callback listens on 127.0.0.1: the client of a deployment that
	// allows internal callbacks (DSAR_ALLOW_INTERNAL_CALLBACKS).
	notices := workers.NewNoticeHandler(workers.NoticeDeps{Store: d.store, CallbackClient: &http.Client{Timeout: 10 * time.Second}, Log: slog.New(slog.DiscardHandler)},
		workers.NoticeOptions{PortalURL: "https://privacy.shop.example/privacy"}, nil)
	pending := func() bool {
		r, err := d.store.Request(ctx, filed.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(r.PendingNotices, dsr.NoticeProtocolStatus)
	}
	if !pending() {
		t.Fatal("no status pending for the agent at filing")
	}
	if err := notices.SendNotice(ctx, filed.RequestID, dsr.NoticeProtocolStatus); err == nil || !pending() {
		t.Errorf("the agent answered 500: %v, pending %v; want an error and the status still pending", err, pending())
	}
	mu.Lock()
	answer = http.StatusOK
	mu.Unlock()
	if err := notices.SendNotice(ctx, filed.RequestID, dsr.NoticeProtocolStatus); err != nil || pending() {
		t.Fatalf("the agent answered 200: %v, pending %v", err, pending())
	}
	if code, _ := d.call("DELETE", "/v1/data-rights-request/"+filed.RequestID, tok, a.sign(t, map[string]any{"reason": "no"})); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	if !pending() {
		t.Fatal("the revocation made no status pending for the agent")
	}
	if err := notices.SendNotice(ctx, filed.RequestID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var states []string
	for _, st := range got {
		if st.RequestID != filed.RequestID {
			t.Errorf("a callback for %q", st.RequestID)
		}
		states = append(states, st.Status+"/"+st.Reason)
	}
	want := []string{"in_progress/need_user_verification", "in_progress/need_user_verification", "revoked/"}
	if !slices.Equal(states, want) {
		t.Errorf("callbacks %v; want %v", states, want)
	}
}
