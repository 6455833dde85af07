package handlers_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/internal/drp"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers"
)

// signRaw signs msg as given, byte for byte.
func (g drpAgent) signRaw(msg string) string {
	return base64.StdEncoding.EncodeToString(append(ed25519.Sign(g.priv, []byte(msg)), msg...))
}

// TestDRPAgentRequestIDsPerAgent: two agents using the same
// agent-request-id file two requests; neither sees the other's.
func TestDRPAgentRequestIDsPerAgent(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a, b := d.agents["AGENT_A"], d.agents["AGENT_B"]
	tokA, tokB := d.pair("AGENT_A"), d.pair("AGENT_B")
	x := map[string]any{"exercise": "access", "email": "ann@example.com", "email_verified": true, "agent-request-id": "same-1"}
	ca, sa, _ := d.exercise(t, tokA, a.sign(t, a.envelope(x)))
	cb, sb, eb := d.exercise(t, tokB, b.sign(t, b.envelope(x)))
	if ca != http.StatusOK || cb != http.StatusOK || sa.RequestID == sb.RequestID {
		t.Fatalf("A: %d %s; B: %d %s %+v; want two requests", ca, sa.RequestID, cb, sb.RequestID, eb)
	}
	// B asking something else under A's id is B's own business.
	y := map[string]any{"exercise": "deletion", "email": "ann@example.com", "email_verified": true, "agent-request-id": "other-2"}
	if c, _, _ := d.exercise(t, tokA, a.sign(t, a.envelope(y))); c != http.StatusOK {
		t.Fatalf("A deletion: %d", c)
	}
	if c, _, e := d.exercise(t, tokB, b.sign(t, b.envelope(y))); c != http.StatusOK {
		t.Errorf("B's deletion under an id A used: %d %+v", c, e)
	}
}

// TestDRPDuplicateKeys: a message naming agent-id or business-id twice is
// read one way only: the check and the filing see the same value.
func TestDRPDuplicateKeys(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a := d.agents["AGENT_A"]
	tokA := d.pair("AGENT_A")
	now := time.Now().UTC()
	env := `"issued-at":"` + now.Add(-time.Second).Format(time.RFC3339) + `","expires-at":"` + now.Add(time.Minute).Format(time.RFC3339) + `"`
	for _, tt := range []struct {
		name, msg string
		code      int
	}{
		{"agent-id twice, the last another's", `{"agent-id":"AGENT_A","business-id":"SHOP",` + env + `,"exercise":"access","email":"x@example.com","AGENT-ID":"AGENT_B"}`, http.StatusForbidden},
		{"business-id twice, the last another's", `{"agent-id":"AGENT_A","business-id":"SHOP",` + env + `,"exercise":"access","email":"x@example.com","business-id":"OTHER"}`, http.StatusForbidden},
		{"BOM before the JSON", "\ufeff" + `{"agent-id":"AGENT_A","business-id":"SHOP",` + env + `,"exercise":"access","email":"x@example.com"}`, http.StatusBadRequest},
		{"a number for the email", `{"agent-id":"AGENT_A","business-id":"SHOP",` + env + `,"exercise":"access","email":12}`, http.StatusBadRequest},
		{"deeply nested", `{"agent-id":"AGENT_A","business-id":"SHOP",` + env + `,"exercise":"access","email":"x@example.com","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, http.StatusBadRequest},
	} {
		code, _, e := d.exercise(t, tokA, a.signRaw(tt.msg))
		if code != tt.code {
			t.Errorf("%s: %d %+v; want %d", tt.name, code, e, tt.code)
		}
	}
}

// TestDRPErrorsQuoteNoValue: an error names the field, never its value
// (an agent's bug may put an email anywhere), in the answer and the logs.
func TestDRPErrorsQuoteNoValue(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	for _, f := range []string{"issued-at", "expires-at", "drp.version", "exercise", "regime"} {
		code, _, e := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "access", "email": "x@example.com", f: "leak@example.com"})))
		if code != http.StatusBadRequest || strings.Contains(e.Message, "leak@") {
			t.Errorf("%s: %d %q; want 400 without the value", f, code, e.Message)
		}
	}
	// Nor the agent id of the path of a refused pairing (the logs check
	// it).
	if code, _ := d.call("POST", "/v1/agent/leak@example.com", "", a.sign(t, a.envelope(nil))); code != http.StatusForbidden {
		t.Errorf("pairing an unknown agent: %d; want 403", code)
	}
}

// TestDRPRevokeEnvelope: a revocation that names another business or
// agent, or has expired, is refused like any signed message.
func TestDRPRevokeEnvelope(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	x := map[string]any{"exercise": "access", "email": "rev@example.com"}
	for _, tt := range []struct {
		name string
		msg  map[string]any
	}{
		{"another business", a.envelope(map[string]any{"business-id": "OTHER", "reason": "x"})},
		{"another agent", a.envelope(map[string]any{"agent-id": "AGENT_B", "reason": "x"})},
		{"expired", a.envelope(map[string]any{"expires-at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), "reason": "x"})},
	} {
		_, st, _ := d.exercise(t, tok, a.sign(t, a.envelope(x)))
		if code, body := d.call("DELETE", "/v1/data-rights-request/"+st.RequestID, tok, a.sign(t, tt.msg)); code == http.StatusOK {
			t.Errorf("revocation, %s: %d %s; want refused", tt.name, code, body)
		}
	}
	// The protocol's own example, a bare reason, still revokes.
	_, st, _ := d.exercise(t, tok, a.sign(t, a.envelope(x)))
	if code, body := d.call("DELETE", "/v1/data-rights-request/"+st.RequestID, tok, a.sign(t, map[string]any{"reason": "x"})); code != http.StatusOK {
		t.Errorf("a bare reason: %d %s", code, body)
	}
}

// TestDRPOnlyVerifiedIdentitiesAct: an agent that verified the phone only
// does not make the email it did not verify actionable: a deletion is not
// carried out on a stranger's email on the word of the phone.
func TestDRPOnlyVerifiedIdentitiesAct(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	ctx := context.Background()
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	code, st, e := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "deletion", "phone_number": "+14155550100",
		"phone_number_verified": true, "email": "victim@example.com"})))
	if code != http.StatusOK {
		t.Fatalf("deletion: %d %+v", code, e)
	}
	req, err := d.store.Request(ctx, st.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[dsr.Kind]bool{}
	for _, id := range dsr.Actionable(req.Identities) {
		kinds[id.Kind] = true
	}
	if kinds[dsr.KindEmail] || !kinds[dsr.KindPhone] || len(req.Identities) != 2 {
		t.Errorf("actionable %v of %d identities; want the verified phone alone, the email kept as claimed", kinds, len(req.Identities))
	}
}

// TestDRPUnverifiedOptIn: an opt-in undoes a person's opt-out, so it is
// not taken on an identity nobody verified.
func TestDRPUnverifiedOptIn(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	code, st, _ := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "sale:opt_in", "email": "someone@example.com"})))
	if code == http.StatusOK {
		t.Errorf("an opt-in of an email nobody verified: %d %+v; want refused", code, st)
	}
}

// TestDRPRevokeOptIn: an opt-in takes effect when filed (the consent is
// given again at once): revoking it cannot answer "revoked" while the
// person stays opted in.
func TestDRPRevokeOptIn(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	code, st, e := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "sale:opt_in", "email": "opt@example.com", "email_verified": true})))
	if code != http.StatusOK {
		t.Fatalf("opt-in: %d %+v", code, e)
	}
	code, body := d.call("DELETE", "/v1/data-rights-request/"+st.RequestID, tok, a.sign(t, map[string]any{"reason": "no"}))
	var refused drp.Error
	if code != http.StatusConflict || json.Unmarshal(body, &refused) != nil || refused.Fatal || !strings.Contains(refused.Message, "sale:opt_out") {
		t.Errorf("revoking an opt-in already given: %d %s; want 409 saying to opt out (the consent was recorded when filed)", code, body)
	}
}

// TestDRPRemovedAgentNotCalledBack: an agent removed from the directory
// loses its tokens, and is told no more statuses either.
func TestDRPRemovedAgentNotCalledBack(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	ctx := context.Background()
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	var calls atomic.Int32
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	t.Cleanup(cb.Close)
	_, filed, _ := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "access", "email": "gone@example.com", "status_callback": cb.URL})))
	if filed.RequestID == "" {
		t.Fatal("not filed")
	}
	// The directory the workers read now lists agent B alone.
	pub := d.agents["AGENT_B"].priv.Public().(ed25519.PublicKey)
	doc, _ := json.Marshal([]map[string]string{{"id": "AGENT_B", "verify_key": base64.StdEncoding.EncodeToString(pub)}})
	dir, err := drp.ParseDirectory(doc)
	if err != nil {
		t.Fatal(err)
	}
	notices := workers.NewNoticeHandler(workers.NoticeDeps{Store: d.store, CallbackClient: &http.Client{Timeout: 10 * time.Second}, DRPAgents: dir, Log: slog.New(slog.DiscardHandler)},
		workers.NoticeOptions{}, nil)
	if err := notices.SendNotice(ctx, filed.RequestID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	req, err := d.store.Request(ctx, filed.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 0 || slices.Contains(req.PendingNotices, dsr.NoticeProtocolStatus) {
		t.Errorf("an agent no longer in the directory: %d callbacks, pending %v; want none, and the status dropped", calls.Load(), req.PendingNotices)
	}
}

// TestDRPRevokeEachStatus: a revocation once the request is processed, or
// closed, is a 409 (not a 500, not "revoked"); before, it revokes.
func TestDRPRevokeEachStatus(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	ctx := context.Background()
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	for i, tt := range []struct {
		path []dsr.Status
		code int
	}{
		{nil, http.StatusOK},
		{[]dsr.Status{dsr.StatusInProgress}, http.StatusConflict},
		{[]dsr.Status{dsr.StatusNeedsAttention}, http.StatusConflict},
		{[]dsr.Status{dsr.StatusInProgress, dsr.StatusCompleted}, http.StatusConflict},
		{[]dsr.Status{dsr.StatusDenied}, http.StatusConflict},
		{[]dsr.Status{dsr.StatusCancelled}, http.StatusConflict},
	} {
		_, st, _ := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "deletion", "email": "each" + strconv.Itoa(i) + "@example.com", "email_verified": true,
			"agent-request-id": "each-" + strconv.Itoa(i)})))
		from := dsr.StatusVerified
		for _, to := range tt.path {
			if _, err := d.store.Transition(ctx, st.RequestID, from, to, dsr.Change{Actor: "console"}); err != nil {
				t.Fatal(err)
			}
			from = to
		}
		code, body := d.call("DELETE", "/v1/data-rights-request/"+st.RequestID, tok, a.sign(t, map[string]any{"reason": "x"}))
		var got drp.Status
		_ = json.Unmarshal(body, &got)
		if code != tt.code || (code == http.StatusOK && got.Status != drp.StateRevoked) {
			t.Errorf("revoke after %v: %d %s; want %d", tt.path, code, body, tt.code)
		}
		if code != http.StatusOK {
			code, body = d.call("GET", "/v1/data-rights-request/"+st.RequestID, tok, "")
			_ = json.Unmarshal(body, &got)
			if code != http.StatusOK || got.Status == drp.StateRevoked {
				t.Errorf("status after a refused revocation (%v): %d %s", tt.path, code, body)
			}
		}
	}
}

// TestDRPCallbackAddresses: without DSAR_ALLOW_INTERNAL_CALLBACKS, a
// status_callback to this machine or its network is refused when filed
// (addresses), or when dialled (names); the worker's client follows no
// redirect.
func TestDRPCallbackAddresses(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a := d.agents["AGENT_A"]
	// The same service with internal callbacks refused.
	strict := setupWith(t, false, func(deps *handlers.Deps) {
		pub := a.priv.Public().(ed25519.PublicKey)
		doc, _ := json.Marshal([]map[string]string{{"id": "AGENT_A", "verify_key": base64.StdEncoding.EncodeToString(pub)}})
		dir, err := drp.ParseDirectory(doc)
		if err != nil {
			t.Fatal(err)
		}
		deps.DRP = app.DRPOptions{BusinessID: "SHOP", Agents: dir, Tokens: drp.NewTokens([]byte("drp token key for the tests......"))}
	})
	s := &drpAPI{api: strict, agents: d.agents, plain: d.plain}
	tok := s.pair("AGENT_A")
	for _, cb := range []string{"https://127.0.0.1/cb", "https://[::1]/cb", "https://169.254.169.254/latest", "https://10.1.2.3/",
		"https://[::ffff:127.0.0.1]/", "https://[fe80::1%25eth0]/", "http://localhost/cb", "https://u:p@agent.example/cb", "ftp://agent.example/",
		"https:///nohost", "//agent.example/cb"} {
		if code, _, e := s.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "sale:opt_out", "email": "cb@example.com", "status_callback": cb}))); code != http.StatusBadRequest || !e.Fatal {
			t.Errorf("callback %s: %d %+v; want 400 fatal", cb, code, e)
		}
	}
	// A name that resolves to this machine passes the filing, and is
	// refused when dialled.
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	code, st, e := s.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "sale:opt_out", "email": "cb2@example.com", "status_callback": "https://localhost" + port + "/cb"})))
	if code != http.StatusOK {
		t.Fatalf("a callback by name: %d %+v", code, e)
	}
	guarded := workers.NewNoticeHandler(workers.NoticeDeps{Store: strict.store, Log: slog.New(slog.DiscardHandler)}, workers.NoticeOptions{}, nil)
	if err := guarded.SendNotice(context.Background(), st.RequestID, dsr.NoticeProtocolStatus); err == nil || calls.Load() != 0 {
		t.Errorf("a callback to localhost by name: %v, %d calls; want refused when dialled", err, calls.Load())
	}
}

// TestDRPBadIdentitiesNotEchoed: an email or phone number that does not
// parse, or a note too long, is refused without its value, in the answer and
// the logs. (An email that is not one is answered with the fixed example
// name@example.com, which the logs check would take for a leak, so it is
// left out here.)
func TestDRPBadIdentitiesNotEchoed(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	a := d.agents["AGENT_A"]
	tok := d.pair("AGENT_A")
	for _, x := range []map[string]any{
		{"exercise": "access", "email": "a\u202e@leak.test", "email_verified": true},
		{"exercise": "access", "email": "ok@leak.test", "email_verified": true, "phone_number": "+999 leak", "phone_number_verified": true},
		{"exercise": "deletion", "email": "ok@leak.test", "email_verified": true, "power_of_attorney": "leak" + strings.Repeat("p", 3000)},
		{"exercise": "deletion", "email": "ok@leak.test", "email_verified": true, "relationships": []string{"a\x00b@leak.test"}},
	} {
		code, _, e := d.exercise(t, tok, a.sign(t, a.envelope(x)))
		if code != http.StatusBadRequest || strings.Contains(e.Message, "leak") {
			t.Errorf("%v: %d %+v; want 400 without the value", x, code, e)
		}
	}
}

// TestDRPNotMergedAtVerification: an agent's request the person verifies
// at the portal while they have the same request open already is not
// merged into it (cancelled): the agent was told "denied" for a request
// that goes on, under a request it cannot follow. It is verified and goes
// on under its own id, as an appeal or a correction does.
func TestDRPNotMergedAtVerification(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(nil)
	doc, _ := json.Marshal([]map[string]string{{"id": "AGENT_A", "verify_key": base64.StdEncoding.EncodeToString(pub)}})
	dir, err := drp.ParseDirectory(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := startPortal(t, portalConfig{drp: app.DRPOptions{BusinessID: "SHOP", Agents: dir, Tokens: drp.NewTokens([]byte("drp token key for the tests......"))}})
	// The portal's clock stands still: messages dated by the real one
	// would be from its future once a second has passed (under -race).
	g := drpAgent{id: "AGENT_A", priv: priv, now: p.clock.Now}
	ctx := context.Background()
	// Ada's own access request, verified, open (no workers run it).
	first := p.submit(`{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`)
	p.verifyCode(first, "ada@example.com")
	d := &drpAPI{api: &api{t: t, url: p.url}, agents: map[string]drpAgent{"AGENT_A": g}, plain: &http.Client{Timeout: 10 * time.Second}}
	tok := d.pair("AGENT_A")
	code, st, e := d.exercise(t, tok, g.sign(t, g.envelope(map[string]any{"exercise": "access", "regime": "ccpa", "email": "ada@example.com"})))
	if code != http.StatusOK || st.Reason != drp.ReasonNeedUserVerification {
		t.Fatalf("agent's access: %d %+v %+v", code, st, e)
	}
	// Ada confirms the agent's request with the code and reference mailed.
	if err := p.proc.SendNotice(ctx, st.RequestID, dsr.NoticeVerify); err != nil {
		t.Fatal(err)
	}
	_, text := p.mail("ada@example.com", st.RequestID, "verify")
	ref := regexpToken.FindStringSubmatch(text)
	if ref == nil {
		t.Fatalf("no reference in the email:\n%s", text)
	}
	var out map[string]any
	if resp := p.call("POST", "/v1/portal/requests/"+st.RequestID+"/verify", ref[1], `{"code":"`+codeIn.FindStringSubmatch(text)[1]+`"}`, &out); resp.StatusCode != 200 {
		t.Fatalf("verify: %d %v", resp.StatusCode, out)
	}
	c, body := d.call("GET", "/v1/data-rights-request/"+st.RequestID, tok, "")
	var now drp.Status
	if c != http.StatusOK || json.Unmarshal(body, &now) != nil || now.Status != drp.StateInProgress || now.Reason != "" {
		t.Errorf("the agent's request once the person verified it: %d %s; want in_progress", c, body)
	}
}

// TestDRPNotParkedAsDuplicate: two agents file the same deletion for the
// same person. The second is not parked as a duplicate of the first: a
// duplicate waits for staff to unlink it, and when the first agent revokes
// its request nothing would ever run the second's, which its agent is told
// is in progress.
func TestDRPNotParkedAsDuplicate(t *testing.T) {
	t.Parallel()
	d := setupDRP(t)
	ctx := context.Background()
	a, b := d.agents["AGENT_A"], d.agents["AGENT_B"]
	tokA, tokB := d.pair("AGENT_A"), d.pair("AGENT_B")
	x := map[string]any{"exercise": "deletion", "email": "twice@example.com", "email_verified": true}
	_, first, _ := d.exercise(t, tokA, a.sign(t, a.envelope(x)))
	_, second, _ := d.exercise(t, tokB, b.sign(t, b.envelope(x)))
	if code, body := d.call("DELETE", "/v1/data-rights-request/"+first.RequestID, tokA, a.sign(t, map[string]any{"reason": "x"})); code != http.StatusOK {
		t.Fatalf("A revokes: %d %s", code, body)
	}
	req, err := d.store.Request(ctx, second.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if req.Status != dsr.StatusVerified || req.DuplicateOf != "" {
		t.Errorf("agent B's deletion once A revoked its own: %s, duplicate of %q; want verified, on its own", req.Status, req.DuplicateOf)
	}
}

// TestDRPVerificationMailLimited: an exercise the person must confirm mails
// them a code; an agent cannot have the business mail one person without
// end: past the portal's limit per mailbox, 429 (not fatal), and nothing
// filed. Exercises the agent verified mail no code, and are not counted.
func TestDRPVerificationMailLimited(t *testing.T) {
	t.Parallel()
	r := testenv.RedisServer(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	limits, err := httpkit.NewLimits(rc, "dsar:rl:"+testenv.Queue(t, r), "1000-M", "2-M", []byte("0123456789abcdef0123456789abcdef"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := setupDRP(t)
	a := base.agents["AGENT_A"]
	pub := a.priv.Public().(ed25519.PublicKey)
	doc, _ := json.Marshal([]map[string]string{{"id": "AGENT_A", "verify_key": base64.StdEncoding.EncodeToString(pub)}})
	dir, err := drp.ParseDirectory(doc)
	if err != nil {
		t.Fatal(err)
	}
	d := &drpAPI{api: setupWith(t, false, func(deps *handlers.Deps) {
		deps.DRP = app.DRPOptions{BusinessID: "SHOP", Agents: dir, Tokens: drp.NewTokens([]byte("drp token key for the tests......"))}
		deps.Limits = limits
	}), agents: base.agents, plain: base.plain}
	tok := d.pair("AGENT_A")
	for i := range 3 {
		code, _, e := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "access", "email": "Target@example.com", "agent-request-id": "n" + strconv.Itoa(i)})))
		if i < 2 && code != http.StatusOK {
			t.Fatalf("exercise %d: %d %+v", i, code, e)
		}
		if i == 2 && (code != http.StatusTooManyRequests || e.Fatal) {
			t.Errorf("a third verification mailed to the same person within the minute: %d %+v; want 429, not fatal", code, e)
		}
	}
	before := d.countRequests()
	if code, _, e := d.exercise(t, tok, a.sign(t, a.envelope(map[string]any{"exercise": "access", "email": "target@example.com", "email_verified": true}))); code != http.StatusOK {
		t.Errorf("an exercise the agent verified: %d %+v; want 200 (no mail, no limit)", code, e)
	}
	if got := d.countRequests(); got != before+1 {
		t.Errorf("%d requests filed; want 1", got-before)
	}
}
