package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
)

// TestServeChecksCallbacks: `dsar serve` given a connectors file builds its
// webhook connectors alone (the others' settings and variables unread) to
// check callbacks; their secrets must be set, or it does not start.
func TestServeChecksCallbacks(t *testing.T) {
	dir := t.TempDir()
	r := testenv.RedisServer(t)
	file := filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(file, []byte(`connectors:
  - name: shop
    type: mongodb
    uri: mongodb://dsar:${SHOP_PASSWORD_NOT_SET_IN_SERVE}@shop.invalid/
    database: shop
    collections:
      - {name: customers, match: {email: email}, erase: delete}
  - name: crm
    type: webhook
    url: https://crm.example.com/dsar
    secret: ${CRM_WEBHOOK_SECRET}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(baseEnv(t, dir, r.Addr, testenv.Queue(t, r), "callbacks"),
		"DSAR_BLIND_INDEX_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"DSAR_MASTER_KEYS="+testMasterKeys,
		"DSAR_API_KEYS=ops:admin:"+apiKey,
		"DSAR_CONNECTORS_FILE="+file,
	)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CRM_WEBHOOK_SECRET is not set") || strings.Contains(string(out), "SHOP_PASSWORD") {
		t.Errorf("serve without the webhook's secret: %v\n%s\nwant it refused for CRM_WEBHOOK_SECRET alone", err, out)
	}

	api := startDSAR(t, append(env, "CRM_WEBHOOK_SECRET=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="), "serve")
	if !strings.Contains(api.stderr.String(), `"connectors taking callbacks loaded","connectors":"crm"`) {
		t.Errorf("serve's log does not say it loaded crm for callbacks:\n%s", api.stderr)
	}
	if got := api.raw("POST", "/v1/callbacks/nope:crm:export", `{"handle":"h","collections":[]}`); got.status != 404 {
		t.Errorf("callback for no job: %d %s; want 404", got.status, got.body)
	}
}
