package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/webhook"
)

// TestHooksEndToEnd runs `dsar dev --demo` with both hooks set in its
// environment: the pre-fan-out hook holds an access request, a signed
// resume over HTTP releases it with an identity, the request completes,
// and the post-processing hook is told its outcome per system, signed,
// after refusing the first delivery.
func TestHooksEndToEnd(t *testing.T) {
	const secret = "e2e hook secret, 16+ bytes"
	key, err := webhook.ParseSecret(secret)
	testenv.Must(t, err)
	var mu sync.Mutex
	var preCalls, outcomes []map[string]any
	posts := 0
	hook := func(record *[]map[string]any, code func() int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if _, err := webhook.Verify(r.Header, body, time.Now(), 0, key); err != nil {
				t.Errorf("hook call not signed: %v", err)
			}
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			mu.Lock()
			*record = append(*record, m)
			mu.Unlock()
			w.WriteHeader(code())
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	pre := hook(&preCalls, func() int { return http.StatusAccepted })
	post := hook(&outcomes, func() int {
		mu.Lock()
		defer mu.Unlock()
		if posts++; posts == 1 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})

	r := testenv.RedisServer(t)
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_HOOK_PRE_URL="+pre.URL, "DSAR_HOOK_POST_URL="+post.URL, "DSAR_HOOK_SECRET="+secret)
	p := startDSAR(t, env, "dev", "--demo")

	var filed request
	if code := p.call("POST", "/v1/requests", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, &filed); code != http.StatusAccepted {
		t.Fatalf("file: %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(preCalls)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pre-fan-out hook was never called\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var got request
	p.call("GET", "/v1/requests/"+filed.ID, "", &got)
	if got.Status != "verified" || len(got.Jobs) != 0 {
		t.Fatalf("held request: %s with %d jobs", got.Status, len(got.Jobs))
	}

	// A forged resume changes nothing; the signed one releases it.
	body := `{"request_id":"` + filed.ID + `","add_identities":[{"kind":"customer_id","value":"cus_ada"}]}`
	send := func(k webhook.Secret) int {
		req, err := http.NewRequest("POST", p.base+"/v1/hooks/resume/"+filed.ID, strings.NewReader(body))
		testenv.Must(t, err)
		req.Header.Set("Content-Type", "application/json")
		k.SignHeaders(req.Header, "resume_1", time.Now(), []byte(body))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := p.client.Do(req.WithContext(ctx))
		testenv.Must(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	forged, _ := webhook.ParseSecret("not the hook's secret, 16+")
	if code := send(forged); code != http.StatusUnauthorized {
		t.Errorf("forged resume: %d; want 401", code)
	}
	if code := send(key); code != http.StatusOK {
		t.Fatalf("resume: %d\n%s", code, p.stderr)
	}
	done := p.waitCompleted(filed.ID)
	if total(done) != 6 {
		t.Errorf("export of %d records; want the demo's 6 for Ada", total(done))
	}

	deadline = time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(outcomes)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outcome was delivered %d times; want a refusal, then a delivery\n%s", n, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	last, _ := json.Marshal(outcomes[len(outcomes)-1])
	for _, want := range []string{`"status":"completed"`, `"connector":"shop"`, `"action":"export"`, filed.ID} {
		if !strings.Contains(string(last), want) {
			t.Errorf("outcome %s lacks %s", last, want)
		}
	}
	if strings.Contains(string(last), "ada@") {
		t.Errorf("the outcome names the person: %s", last)
	}
	if len(preCalls) != 1 {
		t.Errorf("%d pre-fan-out calls; want 1", len(preCalls))
	}
}
