package handlers_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
)

// TestSuppressionCheckAPI: a pipeline checks plain and hashed identities
// in bulk and one by one; an admin reads the key, and a hash computed by
// the recipe with it is the server's.
func TestSuppressionCheckAPI(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	key := a.index.SuppressionKey()
	if _, err := a.store.Suppress(context.Background(), []dsr.Suppression{
		{Hash: key.Hash(dsr.KindEmail, "ada@example.com"), Scope: dsr.ScopeMarketing, Source: dsr.ConsentPortal, At: time.Now()},
		{Hash: key.Hash(dsr.KindCustomerID, "cus_9"), Scope: dsr.ScopeAll, Source: dsr.ConsentAPI, At: time.Now()},
	}); err != nil {
		t.Fatal(err)
	}

	var keyed struct {
		Key     string `json:"key"`
		Example struct{ Kind, Value, Hash string }
	}
	if resp := a.do("GET", "/v1/suppressions/key", adminKey, "", "", &keyed); resp.StatusCode != http.StatusOK {
		t.Fatalf("key: %d", resp.StatusCode)
	}
	raw, err := base64.StdEncoding.DecodeString(keyed.Key)
	if err != nil || len(raw) != 32 {
		t.Fatalf("key %q: %v", keyed.Key, err)
	}
	mac := hmac.New(sha256.New, raw) // the recipe, as a pipeline follows it
	mac.Write([]byte("customer_id\x00cus_9"))
	hashed := "customer_id:" + hex.EncodeToString(mac.Sum(nil))
	if hashed != key.Hash(dsr.KindCustomerID, "cus_9") || keyed.Example.Hash != key.Hash(dsr.KindEmail, keyed.Example.Value) {
		t.Errorf("the recipe with the key served does not give the server's hashes")
	}

	var got struct {
		Scope      string `json:"scope"`
		Checked    int    `json:"checked"`
		Suppressed []int  `json:"suppressed"`
		Invalid    []struct {
			Index  int    `json:"index"`
			Reason string `json:"reason"`
		} `json:"invalid"`
	}
	body := fmt.Sprintf(`{"scope":"marketing","identities":[{"kind":"email","value":"ADA@example.com"},{"hash":%q},{"kind":"email","value":"bob@example.com"},{"kind":"phone","value":"12"}]}`, hashed)
	resp := a.do("POST", "/v1/suppressions/check", pipelineKey, "application/json", body, &got)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("check: %d", resp.StatusCode)
	}
	if got.Checked != 4 || !cmp.Equal(got.Suppressed, []int{0, 1}) || len(got.Invalid) != 1 || got.Invalid[0].Index != 3 ||
		!strings.HasPrefix(got.Invalid[0].Reason, "identities[3].value: ") {
		t.Errorf("check: %+v", got)
	}

	var one struct {
		Suppressed bool     `json:"suppressed"`
		Scopes     []string `json:"scopes"`
	}
	if resp := a.do("GET", "/v1/suppressions/check?scope=profiling&hash="+url.QueryEscape(hashed), pipelineKey, "", "", &one); resp.StatusCode != 200 ||
		!one.Suppressed || !cmp.Equal(one.Scopes, []string{"all"}) {
		t.Errorf("single hashed check: %d %+v", resp.StatusCode, one)
	}
	if resp := a.do("GET", "/v1/suppressions/check?scope=profiling&kind=email&value=ada%40example.com", agentKey, "", "", &one); resp.StatusCode != 200 ||
		one.Suppressed || !cmp.Equal(one.Scopes, []string{"marketing"}) {
		t.Errorf("single plain check: %d %+v", resp.StatusCode, one)
	}

	for _, c := range []struct {
		method, path, ct, body string
		status                 int
	}{
		{"POST", "/v1/suppressions/check", "application/json", `{"scope":"email","identities":[]}`, 400},
		{"POST", "/v1/suppressions/check", "application/json", `{"scope":"marketing"}`, 400},
		{"POST", "/v1/suppressions/check", "application/json", `{"scope":"marketing","identities":[],"extra":1}`, 400},
		{"POST", "/v1/suppressions/check", "application/json", `{"scope":"marketing","identities":[` + strings.Repeat(`{"hash":"x"},`, 10000) + `{"hash":"x"}]}`, 400},
		{"POST", "/v1/suppressions/check", "text/plain", `{}`, 415},
		{"POST", "/v1/suppressions/check", "application/json", `{"scope":"marketing","identities":[{"kind":"email","value":"` + strings.Repeat("a", 5<<20) + `"}]}`, 413},
		{"GET", "/v1/suppressions/check?scope=marketing", "", "", 400},
		{"GET", "/v1/suppressions/check?scope=marketing&hash=x&hash=y", "", "", 400},
		{"GET", "/v1/suppressions/check?scope=marketing&email=ada%40example.com", "", "", 400},
	} {
		if resp, data := a.send(c.method, c.path, pipelineKey, c.ct, c.body); resp.StatusCode != c.status ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") || strings.Contains(string(data), "ada@") {
			t.Errorf("%s %s %.60s: %d %s; want %d problem", c.method, c.path, c.body, resp.StatusCode, data, c.status)
		}
	}
	if resp := a.do("GET", "/v1/suppressions/key", pipelineKey, "", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("key as pipeline: %d, want 403", resp.StatusCode)
	}
}
