package workers_test

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

	"github.com/dsar-project/dsar/connectors/webhook"
	"github.com/dsar-project/dsar/dsr"
	sw "github.com/dsar-project/dsar/internal/webhook"
)

// TestWebhookCallback runs an export on a webhook connector whose receiver
// answers 202: the call names the job (webhook-id) and its callback URL,
// the job waits unpolled, and the receiver's signed callback, checked by
// the connector and stored as the job's answer, ends it with the records.
func TestWebhookCallback(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	var (
		mu    sync.Mutex
		calls []webhook.Request
		ids   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req webhook.Request
		_ = json.Unmarshal(b, &req)
		mu.Lock()
		calls, ids = append(calls, req), append(ids, r.Header.Get("webhook-id"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"handle":"crm-op-1"}`))
	}))
	t.Cleanup(srv.Close)
	conn, err := webhook.New("crm", webhook.Spec{URL: srv.URL, Secret: secret, AllowInsecure: true, AllowPrivate: true, CallbackURL: "https://dsar.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := setup(t, 1, conn)
	proc := e.waiter(time.Hour)
	r := e.file(dsr.TypeAccess, "ada@example.com")
	if err := proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	_ = proc.RunJob(ctx, dsr.JobID(r.ID, "shop", dsr.ActionExport))
	id := dsr.JobID(r.ID, "crm", dsr.ActionExport)
	if err := proc.RunJob(ctx, id); err != nil {
		t.Fatal(err)
	}
	job := e.job(id)
	if job.Status != dsr.JobWaiting || job.Handle != "crm-op-1" || !job.PollAt.Equal(*job.WaitUntil) {
		t.Fatalf("after the call: %s on %q, polls at %v; want waiting on crm-op-1, unpolled until %v", job.Status, job.Handle, job.PollAt, job.WaitUntil)
	}
	if len(calls) != 1 || ids[0] != id || calls[0].ID != id || calls[0].CallbackURL != "https://dsar.example.com/v1/callbacks/"+id {
		t.Fatalf("calls %+v with ids %v; want one naming the job and its callback", calls, ids)
	}

	body := []byte(`{"handle":"crm-op-1","collections":[{"name":"contacts","records":1}],"export":{"contacts":[{"email":"ada@example.com","plan":"pro"}]}}`)
	h := http.Header{}
	k, _ := sw.ParseSecret(secret)
	k.SignHeaders(h, "msg_1", time.Now(), body)
	handle, err := conn.VerifyCallback(t.Context(), "export", h, body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.AnswerJob(ctx, id, handle, body); err != nil {
		t.Fatal(err)
	}
	if err := proc.RunJob(ctx, id); err != nil {
		t.Fatal(err)
	}
	job = e.job(id)
	if job.Status != dsr.JobSucceeded || job.Records != 1 || len(job.Answer) != 0 {
		t.Errorf("after the callback: %s, %d records, answer %q kept; want succeeded with 1 record, the answer cleared", job.Status, job.Records, job.Answer)
	}
	var recs []string
	if err := e.store.EachExportRecord(ctx, id, func(c string, data json.RawMessage) error {
		recs = append(recs, c+" "+string(data))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !strings.Contains(recs[0], `"plan":"pro"`) {
		t.Errorf("export records %v; want the callback's contact", recs)
	}
	if len(calls) != 1 {
		t.Errorf("the receiver was called %d times; want once (a wait for a callback is not polled)", len(calls))
	}
}
