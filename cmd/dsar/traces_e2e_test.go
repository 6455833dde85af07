package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
)

// TestTracesExportedOverOTLP runs `dsar dev` with an OTLP endpoint set (the
// SDK's variable) at a stand-in collector: a request filed reaches it as
// spans over OTLP/HTTP protobuf, from the HTTP span to the fan-out task,
// with the mode, and without the subject's email anywhere in them.
func TestTracesExportedOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var got strings.Builder
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s", r.URL.Path, r.Header.Get("Content-Type"))
		}
		mu.Lock()
		got.Write(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(collector.Close)
	exported := func() string { mu.Lock(); defer mu.Unlock(); return got.String() }

	r := testenv.RedisServer(t)
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"OTEL_EXPORTER_OTLP_ENDPOINT="+collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100")
	p := startDSAR(t, env, "dev")
	const email = "trace.subject@example.com"
	if code := p.call("POST", "/v1/requests", `{"type":"access","regulation":"gdpr","subject":{"email":"`+email+`"}}`, nil); code != http.StatusAccepted {
		t.Fatalf("file: %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(exported(), "process dsar:fanout") {
		if time.Now().After(deadline) {
			t.Fatalf("no fan-out span exported within 30s\n%s", p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	out := exported()
	for _, want := range []string{"POST /v1/requests", "file request", "store CreateRequest", "enqueue dsar:fanout", "dsar.request.id", "dsar.mode", "dev"} {
		if !strings.Contains(out, want) {
			t.Errorf("the spans exported hold no %q", want)
		}
	}
	if strings.Contains(out, "trace.subject") {
		t.Error("the spans exported hold the subject's email")
	}
}
