package handlers_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/handlers/agentapi"
	"github.com/dsar-project/dsar/handlers/apitest"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/workers"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	adminKey   = "admin-key-0123456789"
	agentKey   = "agent-key-0123456789"
	auditorKey = "auditor-key-0123456789"
	// agent2Key is a second agent's ("desk2").
	agent2Key = "agent2-key-0123456789"
	// pipelineKey is a segmentation pipeline's ("segments").
	pipelineKey = "pipeline-key-0123456789"
)

type api struct {
	t      testing.TB
	url    string
	client *http.Client
	store  *teststore.Store
	cmds   *testenv.Commands
	index  *dsr.BlindIndex
	redis  asynq.RedisClientOpt
	queue  string
	logs   *testenv.Buffer
}

// failingQueue is an Enqueuer whose queue is down.
type failingQueue struct{}

func (failingQueue) EnqueueFanout(context.Context, string) error {
	return errors.New("redis: connection refused")
}

func (failingQueue) EnqueueJob(context.Context, string) error {
	return errors.New("redis: connection refused")
}

func (failingQueue) EnqueueNotice(context.Context, string, string) error {
	return errors.New("redis: connection refused")
}

// setup serves the API on a real store and a real queue (or on a queue that
// is down when down is set) and returns a client whose traffic is checked
// against the OpenAPI document.
func setup(t testing.TB, down bool) *api {
	t.Helper()
	return setupWith(t, down, nil)
}

// setupWith is setup with the API's dependencies changed by change.
func setupWith(t testing.TB, down bool, change func(*handlers.Deps)) *api {
	t.Helper()
	store := teststore.Open(t, nil)
	cmds := store.Commands
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.RedisServer(t)
	qname := testenv.Queue(t, r)
	redis := asynq.RedisClientOpt{Addr: r.Addr}
	queue := workers.NewQueue(redis, workers.QueueOptions{Name: qname, MaxRetry: 3, JobTimeout: time.Minute})
	t.Cleanup(func() { _ = queue.Close() })
	var enq app.Enqueuer = queue
	if down {
		enq = failingQueue{}
	}
	logs := &testenv.Buffer{}
	key := func(name string, role apikey.Role, secret string) apikey.Key {
		return apikey.Key{Name: name, Role: role, Hash: sha256.Sum256([]byte(secret))}
	}
	deps := handlers.Deps{
		Store: store, Queue: enq, Index: idx, Log: slog.New(slog.NewJSONHandler(logs, nil)),
		Keys: apikey.NewKeyring(key("ops", apikey.RoleAdmin, adminKey), key("desk", apikey.RoleAgent, agentKey), key("audit", apikey.RoleAuditor, auditorKey),
			key("desk2", apikey.RoleAgent, agent2Key), key("segments", apikey.RolePipeline, pipelineKey)),
		DuplicateWindow: 30 * 24 * time.Hour,
		Ready: []handlers.Check{
			{Name: "store", Ping: store.Ping},
			{Name: "queue", Ping: queue.Ping},
		},
	}
	if change != nil {
		change(&deps)
	}
	h := handlers.New(deps)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "@example.com") || strings.Contains(logs.String(), "+4420") {
			t.Errorf("logs hold personal data:\n%s", logs)
		}
	})
	cmds.Reset()
	return &api{t: t, url: srv.URL, client: apitest.Client(t), store: store, cmds: cmds, index: idx, redis: redis, queue: qname, logs: logs}
}

func (a *api) countRequests() int64 {
	a.t.Helper()
	return a.store.Count(a.t, mongostore.RequestsCollection)
}

type requestJSON struct {
	ID                 string            `json:"id"`
	Type               string            `json:"type"`
	Regulation         string            `json:"regulation"`
	Status             string            `json:"status"`
	FiledBy            string            `json:"filed_by"`
	ReceivedAt         time.Time         `json:"received_at"`
	DueAt              time.Time         `json:"due_at"`
	Subject            map[string]string `json:"subject"`
	Jobs               []map[string]any  `json:"jobs"`
	ResolvedIdentities []map[string]any  `json:"resolved_identities"`
}

func TestFileAndRead(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	var got requestJSON
	resp := a.do("POST", "/v1/requests", agentKey, "application/json",
		`{"type":"deletion","regulation":"ccpa","subject":{"email":" Ada@Example.com ","phone":"+44 20 7946 0958","customer_id":"cus_ada"}}`, &got)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The duplicate check, the insert, the audit chain's first event, and
	// the mark that the chain caught up.
	if a.store.Mongo != nil {
		if diff := cmp.Diff([]string{"find", "insert", "insert", "update"}, a.cmds.Names()); diff != "" {
			t.Errorf("store commands of an intake (-want +got):\n%s", diff)
		}
	}
	if loc := resp.Header.Get("Location"); loc != "/v1/requests/"+got.ID {
		t.Errorf("Location %q", loc)
	}
	want := map[string]string{"email": "ada@example.com", "phone": "+442079460958", "customer_id": "cus_ada"}
	if diff := cmp.Diff(want, got.Subject); diff != "" {
		t.Errorf("normalised subject (-want +got):\n%s", diff)
	}
	if got.Status != "verified" || got.FiledBy != "desk" || len(got.Jobs) != 0 {
		t.Errorf("filed request = %+v", got)
	}
	if d := got.DueAt.Sub(got.ReceivedAt); d != 45*24*time.Hour {
		t.Errorf("CCPA deletion due after %s, want 45 days", d)
	}
	stored, err := a.store.Request(context.Background(), got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.IdentityHashes) != 3 || stored.IdentityHashes[0] != a.index.Hash(dsr.KindEmail, "ada@example.com") {
		t.Errorf("blind index = %v", stored.IdentityHashes)
	}
	// The fan-out is queued under the request's task id.
	insp := asynq.NewInspector(a.redis)
	defer insp.Close()
	if _, err := insp.GetTaskInfo(a.queue, "fanout:"+got.ID); err != nil {
		t.Errorf("fan-out task not queued: %v", err)
	}

	var again requestJSON
	if resp := a.do("GET", "/v1/requests/"+got.ID, auditorKey, "", "", &again); resp.StatusCode != http.StatusOK || again.ID != got.ID {
		t.Errorf("read back: %d %+v", resp.StatusCode, again)
	}
	if resp := a.do("GET", "/v1/requests/01a20d27-0000-7000-8000-000000000000", agentKey, "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown id: %d", resp.StatusCode)
	}
	if resp := a.do("GET", "/v1/requests/not-an-id", agentKey, "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("malformed id: %d", resp.StatusCode)
	}
}

func TestAcceptedWhileQueueIsDown(t *testing.T) {
	t.Parallel()
	a := setup(t, true)
	var got requestJSON
	resp := a.do("POST", "/v1/requests", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, &got)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d with the queue down; the request is stored and the sweep will queue it", resp.StatusCode)
	}
	if _, err := a.store.Request(context.Background(), got.ID); err != nil {
		t.Errorf("accepted request not stored: %v", err)
	}
}

type problemJSON struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (p problemJSON) fields() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// TestRejectedRequestsLeaveNothing sends every kind of bad request and checks
// the status, the fields named, and that nothing was stored.
func TestRejectedRequestsLeaveNothing(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	big := `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com","customer_id":"` + strings.Repeat("x", agentapi.MaxBodyBytes) + `"}}`
	tests := []struct {
		name       string
		key        string
		ct         string
		body       string
		wantStatus int
		wantFields []string
	}{
		{"no key", "", "application/json", `{}`, 401, nil},
		{"unknown key", "nope-nope-nope-nope", "application/json", `{}`, 401, nil},
		{"auditor may not file", auditorKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, 403, nil},
		{"not JSON", agentKey, "application/json", `{"type":`, 400, nil},
		{"empty", agentKey, "application/json", ``, 400, nil},
		{"trailing data", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}} {}`, 400, nil},
		{"unknown field", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"priority":1}`, 400, []string{"priority"}},
		{"unknown subject field", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"ssn":"123"}}`, 400, []string{"subject.ssn"}},
		{"field given twice", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"},"type":"deletion"}`, 400, []string{"type"}},
		{"subject field given twice", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com","email":"eve@example.com"}}`, 400, []string{"subject.email"}},
		{"field name in the wrong case", agentKey, "application/json", `{"TYPE":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, 400, []string{"TYPE"}},
		{"wrong type", agentKey, "application/json", `{"type":7,"regulation":"gdpr","subject":{"email":"ada@example.com"}}`, 400, []string{"type"}},
		{"missing everything", agentKey, "application/json", `{}`, 400, []string{"type", "regulation", "subject"}},
		{"unknown values", agentKey, "application/json", `{"type":"rectify","regulation":"hipaa","subject":{"email":"ada@example.com"}}`, 400, []string{"type", "regulation"}},
		{"no identity", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{}}`, 400, []string{"subject"}},
		{"bad identities", agentKey, "application/json", `{"type":"access","regulation":"gdpr","subject":{"email":"ada at example","phone":"020 7946 0958","customer_id":"  "}}`, 400, []string{"subject.email", "subject.customer_id", "subject.phone"}},
		{"body over 1 MiB", agentKey, "application/json", big, 413, nil},
		{"form body", agentKey, "application/x-www-form-urlencoded", `type=access`, 415, nil},
		{"no content type", agentKey, "", `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, 415, nil},
	}
	for _, tt := range tests {
		var p problemJSON
		resp := a.do("POST", "/v1/requests", tt.key, tt.ct, tt.body, &p)
		if resp.StatusCode != tt.wantStatus || p.Status != tt.wantStatus {
			t.Errorf("%s: status %d (problem %d), want %d", tt.name, resp.StatusCode, p.Status, tt.wantStatus)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s: Content-Type %q", tt.name, ct)
		}
		if tt.wantFields != nil {
			if diff := cmp.Diff(tt.wantFields, p.fields()); diff != "" {
				t.Errorf("%s: fields named (-want +got):\n%s", tt.name, diff)
			}
		}
		if strings.Contains(fmt.Sprint(p), "ada") {
			t.Errorf("%s: the problem quotes the input: %+v", tt.name, p)
		}
	}
	if n := a.countRequests(); n != 0 {
		t.Errorf("%d requests stored after only rejected calls", n)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	var ids []string
	for i, typ := range []string{"access", "deletion", "access"} {
		var r requestJSON
		body := fmt.Sprintf(`{"type":%q,"regulation":"gdpr","subject":{"email":"p%d@example.com"}}`, typ, i)
		if resp := a.do("POST", "/v1/requests", agentKey, "application/json", body, &r); resp.StatusCode != 202 {
			t.Fatal(resp.StatusCode)
		}
		ids = append([]string{r.ID}, ids...) // newest first
		time.Sleep(2 * time.Millisecond)
	}
	type page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	var seen []string
	cursor := ""
	for range 3 {
		var p page
		path := "/v1/requests?sort=newest&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if resp := a.do("GET", path, auditorKey, "", "", &p); resp.StatusCode != 200 {
			t.Fatalf("list: %d", resp.StatusCode)
		}
		for _, it := range p.Items {
			seen = append(seen, it.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if diff := cmp.Diff(ids, seen); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	// By due date (the default): all GDPR, so in the order they were filed.
	var byDue page
	a.do("GET", "/v1/requests", agentKey, "", "", &byDue)
	if len(byDue.Items) != 3 || byDue.Items[0].ID != ids[2] || byDue.Items[2].ID != ids[0] {
		t.Errorf("by due date: %+v, want oldest (most urgent) first", byDue.Items)
	}
	var access page
	a.do("GET", "/v1/requests?type=access&status=verified", agentKey, "", "", &access)
	if len(access.Items) != 2 {
		t.Errorf("access requests listed: %d, want 2", len(access.Items))
	}
	var p problemJSON
	resp := a.do("GET", "/v1/requests?status=done&limit=0&cursor=%21&sort=asc&overdue=yes&due_before=monday&regulation=hipaa&colour=red", agentKey, "", "", &p)
	if resp.StatusCode != 400 {
		t.Fatalf("bad parameters: %d", resp.StatusCode)
	}
	got := p.fields()
	for _, f := range []string{"status", "limit", "cursor", "sort", "overdue", "due_before", "regulation", "colour"} {
		if !strings.Contains(strings.Join(got, ","), f) {
			t.Errorf("bad parameters: %s not named in %v", f, got)
		}
	}
}

// seedCompleted stores a completed access request whose export job found
// records, as the workers would have left it.
func (a *api) seedCompleted(typ dsr.Type, status dsr.Status, records int) *dsr.Request {
	a.t.Helper()
	ctx := context.Background()
	r, err := dsr.NewRequest(dsr.Intake{Type: typ, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerified, ReceivedAt: time.Now(),
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}}, a.index)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.store.CreateRequest(ctx, r); err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{}); err != nil {
		a.t.Fatal(err)
	}
	job := dsr.NewJob(r.ID, "shop", typ.Action(), time.Now())
	if err := a.store.CreateJobs(ctx, []dsr.Job{job}); err != nil {
		a.t.Fatal(err)
	}
	if err := a.store.MarkFannedOut(ctx, r.ID); err != nil {
		a.t.Fatal(err)
	}
	claimed, err := a.store.ClaimJob(ctx, job.ID, time.Minute)
	if err != nil {
		a.t.Fatal(err)
	}
	w, err := a.store.NewExportWriter(ctx, claimed)
	if err != nil {
		a.t.Fatal(err)
	}
	for i := range records {
		coll := "customers"
		if i > 0 {
			coll = "orders"
		}
		if err := w.WriteRecord(ctx, coll, bson.D{{Key: "_id", Value: i}, {Key: "email", Value: "ada@example.com"}}); err != nil {
			a.t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		a.t.Fatal(err)
	}
	out := dsr.Outcome{Status: dsr.JobSucceeded, Records: int64(records), Collections: []dsr.CollectionResult{
		{Name: "customers", Records: 1, Outcome: "exported"}, {Name: "orders", Records: int64(records - 1), Outcome: "exported"}, {Name: "tickets", Outcome: "exported"},
	}}
	if err := a.store.FinishJob(ctx, claimed, out); err != nil {
		a.t.Fatal(err)
	}
	if status == dsr.StatusCompleted {
		if _, err := a.store.Settle(ctx, r.ID, "t"); err != nil {
			a.t.Fatal(err)
		}
	}
	return r
}

func TestExport(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	done := a.seedCompleted(dsr.TypeAccess, dsr.StatusCompleted, 250)
	resp, data := a.send("GET", "/v1/requests/"+done.ID+"/export", agentKey, "", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("export: %d %s", resp.StatusCode, data)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	files := map[string][]byte{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if diff := cmp.Diff([]string{"manifest.json", "summary.json", "shop/customers.json", "shop/orders.json",
		"shop/customers.csv", "shop/orders.csv", "index.html"}, names); diff != "" {
		t.Errorf("zip entries (-want +got):\n%s", diff)
	}
	var orders []map[string]any
	if err := json.Unmarshal(files["shop/orders.json"], &orders); err != nil || len(orders) != 249 {
		t.Errorf("orders.json: %d records, %v", len(orders), err)
	}
	var m struct {
		Connectors []struct {
			Collections []struct {
				Name    string `json:"name"`
				Records int64  `json:"records"`
				File    string `json:"file"`
			} `json:"collections"`
		} `json:"connectors"`
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil || len(m.Connectors) != 1 || len(m.Connectors[0].Collections) != 3 ||
		m.Connectors[0].Collections[2].File != "" || m.Connectors[0].Collections[1].File != "shop/orders.json" {
		t.Errorf("manifest: %+v, %v", m, err)
	}

	running := a.seedCompleted(dsr.TypeAccess, dsr.StatusInProgress, 1)
	deletion := a.seedCompleted(dsr.TypeDeletion, dsr.StatusCompleted, 0)
	for _, tt := range []struct {
		name string
		path string
		key  string
		want int
	}{
		{"in progress", "/v1/requests/" + running.ID + "/export", agentKey, 409},
		{"not an access request", "/v1/requests/" + deletion.ID + "/export", agentKey, 409},
		{"unknown", "/v1/requests/01a20d27-0000-7000-8000-000000000000/export", agentKey, 404},
		{"auditors may not download", "/v1/requests/" + done.ID + "/export", auditorKey, 403},
	} {
		if resp := a.do("GET", tt.path, tt.key, "", "", nil); resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if resp := a.do("GET", "/readyz", "", "", "", &body); resp.StatusCode != 200 || body.Checks["store"] != "ok" || body.Checks["queue"] != "ok" {
		t.Errorf("readyz: %d %+v", resp.StatusCode, body)
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := setup(t, false)
	post := func(key, apiKey, body string, out any) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", a.url+"/v1/requests", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
		return resp
	}
	ada := `{"type":"deletion","regulation":"gdpr","subject":{"email":"ada@example.com"}}`
	adaReordered := `{"subject":{"email":"ADA@example.com "},"regulation":"gdpr","type":"deletion"}`

	var first, retry, other requestJSON
	if resp := post("k-1", agentKey, ada, &first); resp.StatusCode != 202 || resp.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first call: %d, replayed %q", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"))
	}
	a.cmds.Reset()
	resp := post("k-1", agentKey, adaReordered, &retry)
	if resp.StatusCode != 202 || resp.Header.Get("Idempotent-Replayed") != "true" || retry.ID != first.ID {
		t.Errorf("retry: %d, replayed %q, id %s want %s", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), retry.ID, first.ID)
	}
	if resp := post("k-1", adminKey, ada, &other); resp.StatusCode != 202 || other.ID == first.ID {
		t.Errorf("the same key from another API key: %d, id %s; want a request of its own", resp.StatusCode, other.ID)
	}
	var p problemJSON
	if resp := post("k-1", agentKey, `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`, &p); resp.StatusCode != 422 || p.Type != "urn:dsar:problem:idempotency-key-reused" {
		t.Errorf("key reused for another request: %d %+v", resp.StatusCode, p)
	}
	if resp := post("with space", agentKey, ada, &p); resp.StatusCode != 400 || p.fields()[0] != "Idempotency-Key" {
		t.Errorf("malformed key: %d %+v", resp.StatusCode, p)
	}
	if n := a.countRequests(); n != 2 {
		t.Errorf("%d requests stored, want 2 (one per API key)", n)
	}

	// A first attempt that reserved its id and died before storing the
	// request: the retry stores it under the reserved id.
	reserved, _ := dsr.NewRequestID()
	in := dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationCCPA, Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "grace@example.com", Source: dsr.SourceSubject}}}
	if _, err := a.store.ClaimIdempotencyKey(context.Background(), dsr.IdempotencyID("desk", "k-2"), reserved, in.Fingerprint(a.index)); err != nil {
		t.Fatal(err)
	}
	var resumed requestJSON
	if resp := post("k-2", agentKey, `{"type":"access","regulation":"ccpa","subject":{"email":"grace@example.com"}}`, &resumed); resp.StatusCode != 202 || resumed.ID != reserved {
		t.Errorf("retry after a dead first attempt: %d, id %s, want %s", resp.StatusCode, resumed.ID, reserved)
	}
}
