package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
)

// startBackground runs `dsar args...`, which serves no API (a worker, a
// scheduler), until the test ends; its stderr goes to the returned buffer.
func startBackground(t *testing.T, env []string, args ...string) (*exec.Cmd, *testenv.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	stderr := &testenv.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("dsar %s did not stop within 30s of SIGTERM", args[0])
		}
	})
	return cmd, stderr
}

// checkHealth waits up to 20 s for the health server at addr (a worker's
// or scheduler's DSAR_HEALTH_ADDR) to answer, then checks its three routes:
// /readyz answers ready (the JSON wantReady), /healthz 200, /metrics the
// process's own metrics and not the store's, and nothing else is served.
func checkHealth(t *testing.T, addr, wantReady string) {
	t.Helper()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	deadline := time.Now().Add(20 * time.Second)
	code, body := get("/readyz")
	for code != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		code, body = get("/readyz")
	}
	if code != http.StatusOK || body != wantReady {
		t.Fatalf("%s/readyz: %d %s, want 200 %s", addr, code, body, wantReady)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != `{"status":"ok"}` {
		t.Errorf("%s/healthz: %d %s", addr, code, body)
	}
	code, body = get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, "process_resident_memory_bytes") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("%s/metrics: %d, without the process's metrics:\n%.300s", addr, code, body)
	}
	if strings.Contains(body, "dsar_requests") || strings.Contains(body, "asynq_") {
		t.Errorf("%s/metrics serves the store's or the queues' metrics, which the API serves once for all processes", addr)
	}
	for _, path := range []string{"/v1/requests", "/openapi.yaml", "/privacy"} {
		if code, _ := get(path); code != http.StatusNotFound {
			t.Errorf("%s%s: %d, want 404: the health address serves nothing else", addr, path, code)
		}
	}
}

// TestSeparateProcessesShareTheEmbeddedStore runs serve, worker and
// scheduler as three processes on one embedded store (one SQLite file):
// requests filed through serve are carried out by the worker; the API is
// killed (-9) and started again while the worker goes on, and every request
// completes, none lost, none done twice.
func TestSeparateProcessesShareTheEmbeddedStore(t *testing.T) {
	if testenv.RealMongo() {
		t.Skip("DSAR_TEST_MONGO_URI is set: the store is not the embedded one")
	}
	ctx := context.Background()
	dir := t.TempDir()
	r := testenv.RedisServer(t)
	if !r.Real {
		t.Skip("needs a real Redis that the three processes share")
	}
	queue := testenv.Queue(t, r)
	smtp := testenv.StartSMTP(t, testenv.SMTPOptions{})

	// The customer's data: the demo shop on the test's MongoDB-compatible
	// server, reached by uri.
	shop := testenv.Database(t, testenv.Client(t))
	if err := seedDemoInto(ctx, shop); err != nil {
		t.Fatal(err)
	}
	spec := strings.Replace(demoConnectors, "    database: demo_shop        # no uri: the demo shop's server, which dsar dev --demo starts",
		fmt.Sprintf("    uri: %q\n    database: %s", testenv.MongoURI(t), shop.Name()), 1)
	connectorsFile := filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(connectorsFile, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}

	env := baseEnv(t, dir, r.Addr, queue, "")
	env = append(env,
		"DSAR_BLIND_INDEX_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"DSAR_MASTER_KEYS="+testMasterKeys,
		"DSAR_API_KEYS=ops:admin:"+apiKey,
		"DSAR_CONNECTORS_FILE="+connectorsFile,
		"DSAR_SMTP_HOST="+smtp.Host, "DSAR_SMTP_PORT="+strconv.Itoa(smtp.Port),
		"DSAR_PUBLIC_URL=http://privacy.example.com",
		"DSAR_APPROVAL_REQUIRED=none",
	)
	workerHealth, schedulerHealth := testenv.ClosedAddr(t), testenv.ClosedAddr(t)
	startBackground(t, append(env, "DSAR_HEALTH_ADDR="+workerHealth), "worker")
	startBackground(t, append(env, "DSAR_HEALTH_ADDR="+schedulerHealth), "scheduler")
	api := startDSAR(t, env, "serve")
	checkHealth(t, workerHealth, `{"checks":{"queue":"ok","store":"ok"},"status":"ok"}`)
	checkHealth(t, schedulerHealth, `{"checks":{"queue":"ok"},"status":"ok"}`)

	file := func(p *proc, i int) string {
		var got request
		body := fmt.Sprintf(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"person%d@example.com"}}`, i)
		if code := p.call("POST", "/v1/requests", body, &got); code != http.StatusAccepted {
			t.Fatalf("file %d: status %d", i, code)
		}
		return got.ID
	}
	var ids []string
	for i := range 20 {
		ids = append(ids, file(api, i))
	}
	// The API dies without a word; the worker goes on with what was filed.
	if err := api.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-api.exited
	api = startDSAR(t, env, "serve")
	for i := 20; i < 40; i++ {
		ids = append(ids, file(api, i))
	}
	for _, id := range ids {
		got := api.waitCompleted(id)
		if len(got.Jobs) != 1 || got.Jobs[0].Status != "succeeded" {
			t.Errorf("request %s: jobs %+v", id, got.Jobs)
		}
	}
	var list struct {
		Items []request `json:"items"`
	}
	if code := api.call("GET", "/v1/requests?limit=100", "", &list); code != http.StatusOK || len(list.Items) != len(ids) {
		t.Errorf("list: %d, %d requests, want %d", code, len(list.Items), len(ids))
	}
}
