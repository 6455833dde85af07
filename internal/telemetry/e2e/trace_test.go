package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/telemetry"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/store/tracedstore"
	"github.com/dsar-project/dsar/workers"
)

const agentKey = "agent-secret-for-traces"

// The subject's identities and the free text of the request: none may
// appear anywhere in a span.
const (
	email      = "Ada.Lovelace@Example.com"
	phone      = "+44 20 7946 0958"
	customerID = "cus_ada_1815"
	resolvedID = "cus_ada_resolved_1852"
	note       = "Countess of Lovelace asks for erasure"
)

// secrets are the strings no span may hold, in every form dsar writes them.
var secrets = []string{email, strings.ToLower(email), "ada.lovelace", "Lovelace", phone, "+442079460958", "2079460958",
	customerID, resolvedID, "Countess"}

// crm erases and resolves: it provides a customer id found by email.
type crm struct {
	mu     sync.Mutex
	erased []connectors.Subject
}

func (*crm) Name() string { return "crm" }

func (*crm) Resolve(_ context.Context, s connectors.Subject) ([]connectors.Identity, error) {
	for _, id := range s.Identities {
		if id.Kind == "email" {
			return []connectors.Identity{{Kind: "customer_id", Value: resolvedID, Source: "crm/customers"}}, nil
		}
	}
	return nil, nil
}

func (c *crm) Erase(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.erased = append(c.erased, s)
	return connectors.Result{Records: 3}, nil
}

// mail erases only.
type mail struct{}

func (mail) Name() string { return "mail" }

func (mail) Erase(context.Context, connectors.Subject) (connectors.Result, error) {
	return connectors.Result{Records: 1}, nil
}

// TestOneRequestTrace files a deletion through the API, runs it through
// the workers on the test Redis (a queue of its own) and the embedded
// store, and checks its trace: one trace from the HTTP span through the
// filing, the store calls, the enqueue of the fan-out, the fan-out task,
// the identity resolution, the enqueue of each job, each job's task and
// its connector action; each span's parent in it; and no span name,
// attribute, event, link or status anywhere holding the subject's
// identities or the request's free text.
func TestOneRequestTrace(t *testing.T) {
	ctx := context.Background()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	telemetry.Install(tp)
	t.Cleanup(func() {
		_ = tp.Shutdown(ctx)
		telemetry.Install(noop.NewTracerProvider())
	})

	st := teststore.Open(t, nil)
	store := tracedstore.New(st, "sqlite")
	key := []byte("0123456789abcdef0123456789abcdef")
	idx, err := dsr.NewBlindIndex(key)
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.RedisServer(t)
	qname := testenv.Queue(t, r)
	ropt := asynq.RedisClientOpt{Addr: r.Addr}
	queue := workers.NewQueue(ropt, workers.QueueOptions{Name: qname, MaxRetry: 3, JobTimeout: 10 * time.Second})
	t.Cleanup(func() { _ = queue.Close() })
	reg := connectors.NewRegistry()
	c := &crm{}
	for _, conn := range []connectors.Connector{c, mail{}} {
		if err := reg.Add(conn); err != nil {
			t.Fatal(err)
		}
	}
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	srv := httptest.NewServer(handlers.New(handlers.Deps{
		Store: store, Queue: queue, Index: idx, Log: log, Links: dsr.NewLinkSigner(key),
		Keys: apikey.NewKeyring(apikey.Key{Name: "desk", Role: apikey.RoleAgent, Hash: sha256.Sum256([]byte(agentKey))}),
	}))
	t.Cleanup(srv.Close)
	proc := workers.NewProcessor(workers.Deps{Store: store, Connectors: reg, Queue: queue, Index: idx, Log: log},
		workers.Options{MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute})
	asrv := workers.NewServer(ropt, workers.ServerOptions{Queue: qname, Concurrency: 4, RetryBase: 20 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Log: log, PollInterval: 100 * time.Millisecond})
	if err := asrv.Start(proc.Mux()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			asrv.Shutdown()
		}
	}
	t.Cleanup(stop)

	body := fmt.Sprintf(`{"type":"deletion","regulation":"ccpa","note":%q,"subject":{"email":%q,"phone":%q,"customer_id":%q}}`, note, email, phone, customerID)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/requests", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+agentKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("file: %d %s", resp.StatusCode, answer)
	}
	var filed struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(answer, &filed); err != nil || filed.ID == "" {
		t.Fatalf("file: %s: %v", answer, err)
	}

	// The request completes: both jobs ran.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := st.Request(ctx, filed.ID) // the store unwrapped: no spans of the test's own
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == dsr.StatusCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request %s still %s after 30s", filed.ID, got.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop() // waits for the tasks under way: their spans end
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(c.erased) != 1 || !slices.ContainsFunc(c.erased[0].Identities, func(id connectors.Identity) bool { return id.Value == resolvedID }) {
		t.Fatalf("crm erased %+v, want one erasure with the resolved customer id", c.erased)
	}

	spans := exp.GetSpans()
	if len(spans) == 0 {
		t.Fatal("no spans")
	}
	for _, l := range leaks(spans) {
		t.Error(l)
	}

	// The trace of the filing.
	var root *tracetest.SpanStub
	for i := range spans {
		if spans[i].Name == "POST /v1/requests" {
			if root != nil {
				t.Fatal("two spans POST /v1/requests")
			}
			root = &spans[i]
		}
	}
	if root == nil {
		t.Fatalf("no span POST /v1/requests among %d", len(spans))
	}
	if root.Parent.IsValid() || root.SpanKind != trace.SpanKindServer {
		t.Errorf("HTTP span: parent %v kind %v, want a server root", root.Parent, root.SpanKind)
	}
	wantAttrs(t, root, attribute.String("http.request.method", "POST"), attribute.String("http.route", "/v1/requests"),
		attribute.Int("http.response.status_code", http.StatusAccepted))
	tid := root.SpanContext.TraceID()
	byID := map[trace.SpanID]*tracetest.SpanStub{}
	var tr []*tracetest.SpanStub
	for i := range spans {
		if spans[i].SpanContext.TraceID() == tid {
			tr = append(tr, &spans[i])
			byID[spans[i].SpanContext.SpanID()] = &spans[i]
		}
	}
	for _, s := range tr {
		if s != root && byID[s.Parent.SpanID()] == nil {
			t.Errorf("span %q: its parent is not in the trace", s.Name)
		}
	}
	t.Logf("trace %s, %d spans:\n%s", tid, len(tr), tree(root, tr))

	// The chain, each link the child of the one before.
	parentOf := func(s *tracetest.SpanStub) *tracetest.SpanStub { return byID[s.Parent.SpanID()] }
	children := func(p *tracetest.SpanStub, name string) []*tracetest.SpanStub {
		var out []*tracetest.SpanStub
		for _, s := range tr {
			if s.Name == name && s.Parent.SpanID() == p.SpanContext.SpanID() {
				out = append(out, s)
			}
		}
		return out
	}
	descendants := func(p *tracetest.SpanStub, name string) []*tracetest.SpanStub {
		var out []*tracetest.SpanStub
		for _, s := range tr {
			if s.Name != name {
				continue
			}
			for a := parentOf(s); a != nil; a = parentOf(a) {
				if a == p {
					out = append(out, s)
					break
				}
			}
		}
		return out
	}
	one := func(what string, ss []*tracetest.SpanStub) *tracetest.SpanStub {
		t.Helper()
		if len(ss) != 1 {
			t.Fatalf("%s: %d spans, want 1\n%s", what, len(ss), tree(root, tr))
		}
		return ss[0]
	}
	file := one("file request under the HTTP span", children(root, "file request"))
	wantAttrs(t, file, telemetry.RequestID.String(filed.ID))
	create := one("store CreateRequest under the filing", children(file, "store CreateRequest"))
	wantAttrs(t, create, telemetry.RequestID.String(filed.ID), attribute.String("db.system.name", "sqlite"))
	enqFanout := one("enqueue dsar:fanout under the filing", descendants(file, "enqueue dsar:fanout"))
	if enqFanout.SpanKind != trace.SpanKindProducer {
		t.Errorf("enqueue span kind %v", enqFanout.SpanKind)
	}
	wantAttrs(t, enqFanout, telemetry.RequestID.String(filed.ID), attribute.Bool("dsar.queued", true))
	fanout := one("process dsar:fanout under its enqueue", children(enqFanout, "process dsar:fanout"))
	if fanout.SpanKind != trace.SpanKindConsumer {
		t.Errorf("fan-out span kind %v", fanout.SpanKind)
	}
	wantAttrs(t, fanout, telemetry.RequestID.String(filed.ID), attribute.String("messaging.destination.name", qname))
	// Resolution runs until a round finds nothing new: two rounds here.
	resolves := descendants(fanout, "connector resolve")
	if len(resolves) != 2 {
		t.Fatalf("%d spans connector resolve under the fan-out, want 2", len(resolves))
	}
	slices.SortFunc(resolves, func(a, b *tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	wantAttrs(t, resolves[0], telemetry.Connector.String("crm"), telemetry.Records.Int(1))
	if len(descendants(fanout, "store CreateJobs")) != 1 {
		t.Errorf("no store CreateJobs under the fan-out")
	}
	enqJobs := descendants(fanout, "enqueue dsar:job")
	if len(enqJobs) != 2 {
		t.Fatalf("%d job enqueues under the fan-out, want 2\n%s", len(enqJobs), tree(root, tr))
	}
	var conns []string
	for _, enq := range enqJobs {
		job := one("process dsar:job under its enqueue", children(enq, "process dsar:job"))
		action := one("connector erase under its job", children(job, "connector erase"))
		name := attr(action, telemetry.Connector)
		conns = append(conns, name)
		wantAttrs(t, action, telemetry.Action.String("erase"), telemetry.Outcome.String("succeeded"), telemetry.RequestID.String(filed.ID))
		if want := map[string]int64{"crm": 3, "mail": 1}[name]; attr(action, telemetry.Records) != fmt.Sprint(want) {
			t.Errorf("%s erase: records %s, want %d", name, attr(action, telemetry.Records), want)
		}
		jobID := attr(job, telemetry.JobID)
		if jobID == "" || attr(enq, telemetry.JobID) != jobID || attr(action, telemetry.JobID) != jobID {
			t.Errorf("job ids: enqueue %q, task %q, action %q", attr(enq, telemetry.JobID), jobID, attr(action, telemetry.JobID))
		}
		for _, m := range []string{"store ClaimJob", "store FinishJob", "store JobFinished"} {
			if len(descendants(job, m)) != 1 {
				t.Errorf("job %s: %d spans %s, want 1", name, len(descendants(job, m)), m)
			}
		}
	}
	slices.Sort(conns)
	if !slices.Equal(conns, []string{"crm", "mail"}) {
		t.Errorf("connector actions %v, want crm and mail", conns)
	}
	for _, s := range tr {
		if s.Status.Code == codes.Error {
			t.Errorf("span %q failed", s.Name)
		}
	}
}

// leaks describes every place in spans (a span's name, attributes,
// events, links, status, resource) that holds one of secrets, in any case.
func leaks(spans tracetest.SpanStubs) []string {
	var out []string
	check := func(span, where, v string) {
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(v), strings.ToLower(s)) {
				out = append(out, fmt.Sprintf("span %q: %s holds %q: %q", span, where, s, v))
			}
		}
	}
	attrs := func(span, where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			check(span, where+" key", string(kv.Key))
			check(span, where+" "+string(kv.Key), kv.Value.Emit())
		}
	}
	for _, s := range spans {
		check(s.Name, "name", s.Name)
		check(s.Name, "status", s.Status.Description)
		attrs(s.Name, "attribute", s.Attributes)
		for _, e := range s.Events {
			check(s.Name, "event", e.Name)
			attrs(s.Name, "event "+e.Name, e.Attributes)
		}
		for _, l := range s.Links {
			attrs(s.Name, "link", l.Attributes)
		}
		if s.Resource != nil {
			attrs(s.Name, "resource", s.Resource.Attributes())
		}
	}
	return out
}

// TestLeaksFindsIdentities holds leaks to finding an identity wherever a
// span may carry one, so the trace test cannot pass by not looking.
func TestLeaksFindsIdentities(t *testing.T) {
	spans := tracetest.SpanStubs{
		{Name: "file " + strings.ToLower(email)},
		{Name: "a", Attributes: []attribute.KeyValue{attribute.StringSlice("ids", []string{"x", resolvedID})}},
		{Name: "b", Events: []sdktrace.Event{{Name: "exception", Attributes: []attribute.KeyValue{attribute.String("exception.message", "no row for +442079460958")}}}},
		{Name: "c", Status: sdktrace.Status{Code: codes.Error, Description: "duplicate key " + customerID}},
		{Name: "d", Attributes: []attribute.KeyValue{attribute.String("note", note)}},
		{Name: "clean", Attributes: []attribute.KeyValue{telemetry.RequestID.String("req_1"), telemetry.Connector.String("crm")}},
	}
	got := leaks(spans)
	for _, name := range []string{`"file `, `"a"`, `"b"`, `"c"`, `"d"`} {
		if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "span "+name) }) {
			t.Errorf("no leak found in span %s; found:\n%s", name, strings.Join(got, "\n"))
		}
	}
	if slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, `span "clean"`) }) {
		t.Errorf("a leak found in the clean span: %v", got)
	}
}

func attr(s *tracetest.SpanStub, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.Emit()
		}
	}
	return ""
}

func wantAttrs(t *testing.T, s *tracetest.SpanStub, want ...attribute.KeyValue) {
	t.Helper()
	for _, w := range want {
		if got := attr(s, w.Key); got != w.Value.Emit() {
			t.Errorf("span %q: %s = %q, want %q", s.Name, w.Key, got, w.Value.Emit())
		}
	}
}

// tree draws the spans of tr under root, children in start order.
func tree(root *tracetest.SpanStub, tr []*tracetest.SpanStub) string {
	var b strings.Builder
	var walk func(s *tracetest.SpanStub, depth int)
	walk = func(s *tracetest.SpanStub, depth int) {
		fmt.Fprintf(&b, "%s%s [%s]", strings.Repeat("  ", depth), s.Name, s.SpanKind)
		for _, k := range []attribute.Key{telemetry.Connector, telemetry.Action, telemetry.Outcome, telemetry.Records} {
			if v := attr(s, k); v != "" {
				fmt.Fprintf(&b, " %s=%s", k, v)
			}
		}
		b.WriteByte('\n')
		var kids []*tracetest.SpanStub
		for _, c := range tr {
			if c.Parent.SpanID() == s.SpanContext.SpanID() && c != s {
				kids = append(kids, c)
			}
		}
		slices.SortFunc(kids, func(a, b *tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	return b.String()
}
