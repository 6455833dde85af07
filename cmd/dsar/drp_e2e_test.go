package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
)

// TestDRPEndToEnd runs an authorised agent against `dsar dev --demo` through
// the Data Rights Protocol: it pairs, files a deletion for Ada with a status
// callback, and is told, by callbacks the workers send, that the deletion
// is in progress and, once approved, fulfilled; its GET agrees. Messages are signed
// here with crypto/ed25519, as an agent would.
func TestDRPEndToEnd(t *testing.T) {
	r := testenv.RedisServer(t)
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	agents := filepath.Join(dir, "agents.json")
	doc := `[{"id":"E2E_AGENT","name":"An agent","verify_key":"` + base64.StdEncoding.EncodeToString(pub) + `"}]`
	if err := os.WriteFile(agents, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var states []string
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var st struct{ Status, Reason string }
		_ = json.NewDecoder(r.Body).Decode(&st)
		mu.Lock()
		states = append(states, st.Status)
		mu.Unlock()
	}))
	t.Cleanup(cb.Close)
	env := append(baseEnv(t, filepath.Join(dir, "data"), r.Addr, testenv.Queue(t, r), testenv.Name("drp")),
		"DSAR_DRP_BUSINESS_ID=SHOP", "DSAR_DRP_AGENTS_FILE="+agents, "DSAR_ALLOW_INTERNAL_CALLBACKS=true")
	p := startDSAR(t, env, "dev", "--demo")

	sign := func(m map[string]any) string {
		now := time.Now().UTC()
		m["agent-id"], m["business-id"], m["drp.version"] = "E2E_AGENT", "SHOP", "1.0"
		m["issued-at"], m["expires-at"] = now.Add(-time.Second).Format(time.RFC3339), now.Add(5*time.Minute).Format(time.RFC3339)
		msg, _ := json.Marshal(m)
		return base64.StdEncoding.EncodeToString(append(ed25519.Sign(priv, msg), msg...))
	}
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := call("POST", "/v1/agent/E2E_AGENT", "", sign(map[string]any{}))
	var paired struct{ Token string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &paired) != nil || paired.Token == "" {
		t.Fatalf("pair: %d %s", code, body)
	}
	code, body = call("POST", "/v1/data-rights-request", paired.Token, sign(map[string]any{"exercise": "deletion", "regime": "ccpa",
		"email": "ada@example.com", "email_verified": true, "agent-request-id": "e2e-1", "status_callback": cb.URL + "/drp"}))
	var filed struct {
		RequestID string `json:"request_id"`
		Status    string `json:"status"`
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &filed) != nil || filed.Status != "in_progress" {
		t.Fatalf("exercise: %d %s", code, body)
	}
	// Deletions wait for a person's approval in dev (DSAR_APPROVAL); the
	// agent sees them in progress meanwhile.
	if st := p.call("POST", "/v1/requests/"+filed.RequestID+"/approve", "", nil); st != http.StatusOK {
		t.Fatalf("approve: %d", st)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), states...)
		mu.Unlock()
		if len(got) > 0 && got[len(got)-1] == "fulfilled" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("callbacks %v; want fulfilled at last\n%s", got, p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body = call("GET", "/v1/data-rights-request/"+filed.RequestID, paired.Token, ""); code != http.StatusOK || !strings.Contains(body, `"status":"fulfilled"`) {
		t.Errorf("GET after the callbacks: %d %s", code, body)
	}
	mu.Lock()
	if states[0] != "in_progress" {
		t.Errorf("first callback %q; want in_progress", states[0])
	}
	mu.Unlock()
	p.stop()
	logs := p.stderr.String()
	if !strings.Contains(logs, filed.RequestID) {
		t.Fatal("the logs do not mention the request; the check below would prove nothing")
	}
	for _, secret := range []string{"ada@example.com", paired.Token, cb.URL} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q", secret)
		}
	}
}
