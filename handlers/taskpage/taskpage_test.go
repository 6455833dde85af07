package taskpage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/manual"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/links"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/workers"
	"github.com/dsar-project/dsar/workers/notify"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const owner = "archive@shop.example"

type env struct {
	t      *testing.T
	store  *teststore.Store
	queue  *workers.Queue
	proc   *workers.Processor
	redis  asynq.RedisClientOpt
	qname  string
	smtp   *testenv.SMTPServer
	url    string
	clock  *testenv.Clock
	index  *dsr.BlindIndex
	signer *dsr.LinkSigner
	logs   *testenv.Buffer
}

// setup runs the API (with the task pages) and a processor whose one
// connector, "paper", is a manual one mailing its owner through a real
// SMTP server; every clock is the test's.
func setup(t *testing.T) *env {
	t.Helper()
	clk := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	store := teststore.Open(t, clk.Now)
	r := testenv.RedisServer(t)
	qname := testenv.Queue(t, r)
	redisOpt := asynq.RedisClientOpt{Addr: r.Addr}
	queue := workers.NewQueue(redisOpt, workers.QueueOptions{Name: qname, MaxRetry: 3, JobTimeout: 10 * time.Second})
	t.Cleanup(func() { _ = queue.Close() })
	key := []byte("0123456789abcdef0123456789abcdef")
	idx, err := dsr.NewBlindIndex(key)
	if err != nil {
		t.Fatal(err)
	}
	signer := dsr.NewTaskSigner(key)
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mailbox := testenv.StartSMTP(t, testenv.SMTPOptions{})
	notifier, err := notify.NewSMTP(notify.SMTPConfig{Host: mailbox.Host, Port: mailbox.Port, From: "Privacy <privacy@shop.example>", TLS: notify.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handlers.New(handlers.Deps{Store: store, Queue: queue, Index: idx, Keys: apikey.NewKeyring(), Log: log,
		Links: dsr.NewLinkSigner(key), TaskLinks: signer, Now: clk.Now}))
	t.Cleanup(srv.Close)
	staff := workers.NewStaffTasks(workers.StaffOptions{Notifier: notifier, PublicURL: srv.URL, Links: signer, Log: log,
		Escalation: workers.EscalationOptions{Email: "dpo@shop.example"}})
	paper, err := manual.New("paper", manual.Spec{Owner: owner, System: `Paper <b onmouseover="x()">archive</b>`, RemindEvery: time.Hour, EscalateAfter: 3 * time.Hour,
		MaxUpload: 1 << 20, MaxRecords: 100,
		Instructions: map[string]string{"export": "Scan the folder.", "erase": "Shred the folder."}}, connectors.Deps{Tasks: staff, Now: clk.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	reg := connectors.NewRegistry()
	if err := reg.Add(paper); err != nil {
		t.Fatal(err)
	}
	proc := workers.NewProcessor(workers.Deps{Store: store, Connectors: reg, Queue: queue, Index: idx, Notifier: notifier, Log: log},
		workers.Options{MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: clk.Now, WaitMax: 24 * time.Hour})
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "ada@example.com") || strings.Contains(logs.String(), "cus_ada") {
			t.Errorf("logs carry the subject's identities:\n%s", logs.String())
		}
	})
	return &env{t: t, store: store, queue: queue, proc: proc, redis: redisOpt, qname: qname, smtp: mailbox, url: srv.URL, clock: clk,
		index: idx, signer: signer, logs: logs}
}

// file stores a verified GDPR request of typ for the subject with
// customerID beside ada@example.com.
func (e *env) file(typ dsr.Type, customerID string) *dsr.Request {
	e.t.Helper()
	r, err := dsr.NewRequest(dsr.Intake{Type: typ, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester",
		Status: dsr.StatusVerified, ReceivedAt: e.clock.Now(),
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject},
			{Kind: dsr.KindCustomerID, Value: customerID, Source: dsr.SourceSubject}}}, e.index)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateRequest(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// opened files a request of typ, fans it out and runs its manual job,
// which then waits; it returns the request, the job id and the link the
// owner was mailed.
func (e *env) opened(typ dsr.Type, customerID string) (*dsr.Request, string, string) {
	e.t.Helper()
	ctx := context.Background()
	r := e.file(typ, customerID)
	if err := e.proc.Fanout(ctx, r.ID); err != nil {
		e.t.Fatal(err)
	}
	action := dsr.ActionErase
	if typ == dsr.TypeAccess {
		action = dsr.ActionExport
	}
	id := dsr.JobID(r.ID, "paper", action)
	_ = e.proc.RunJob(ctx, id)
	if j := e.job(id); j.Status != dsr.JobWaiting {
		e.t.Fatalf("manual job %s (%s), want waiting", j.Status, j.Error)
	}
	return r, id, e.link(r.ID, "manual_task")
}

// link waits for the mail of kind about request id to the owner and
// returns the link in it.
func (e *env) link(requestID, kind string) string {
	e.t.Helper()
	m := e.smtp.WaitMessage(e.t, owner, func(m testenv.Received) bool {
		return bytes.Contains(m.Data, []byte("X-DSAR-Request-Id: "+requestID)) && bytes.Contains(m.Data, []byte("X-DSAR-Kind: "+kind))
	}, 10*time.Second)
	_, body, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
	text, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	if err != nil {
		e.t.Fatal(err)
	}
	if bytes.Contains(text, []byte("ada@example.com")) || bytes.Contains(text, []byte("cus_")) {
		e.t.Errorf("the owner's mail names the subject:\n%s", text)
	}
	link := regexp.MustCompile(`https?://\S+/tasks/\S+`).Find(text)
	if link == nil {
		e.t.Fatalf("no task link in the mail:\n%s", text)
	}
	return string(link)
}

func (e *env) job(id string) *dsr.Job {
	e.t.Helper()
	j, err := e.store.Job(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *env) status(id string) dsr.Status {
	e.t.Helper()
	r, err := e.store.Request(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Status
}

// owner is a browser: it keeps cookies, and reads the page's forms.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(link string) (int, string) {
	b.t.Helper()
	resp, err := b.client.Get(link)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		b.t.Errorf("content type %q", ct)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		b.t.Errorf("headers %v: want no-store and no-referrer", resp.Header)
	}
	// The CSP allows the page's own style block by its hash, and nothing
	// inline otherwise (a browser would ignore a style whose hash differs).
	csp := resp.Header.Get("Content-Security-Policy")
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(string(data))
	if style == nil {
		b.t.Fatalf("no style block in:\n%s", data)
	}
	sum := sha256.Sum256([]byte(style[1]))
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") || !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		b.t.Errorf("CSP %q: want the style block's hash, no unsafe source and no script", csp)
	}
	return resp.StatusCode, string(data)
}

var hidden = regexp.MustCompile(`<input type="hidden" name="(token|csrf)" value="([^"]*)">`)

// fields returns the hidden fields of the page's first form.
func fields(page string) url.Values {
	v := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(page, 2) {
		v.Set(m[1], m[2])
	}
	return v
}

// post sends a form (a file too when name is set) to link.
func (b *browser) post(link string, form url.Values, name string, file []byte) (int, string) {
	b.t.Helper()
	var body bytes.Buffer
	ct := "application/x-www-form-urlencoded"
	if name != "" {
		w := multipart.NewWriter(&body)
		for k, vs := range form {
			for _, v := range vs {
				_ = w.WriteField(k, v)
			}
		}
		fw, _ := w.CreateFormFile("file", name)
		_, _ = fw.Write(file)
		_ = w.Close()
		ct = w.FormDataContentType()
	} else {
		body.WriteString(form.Encode())
	}
	req, _ := http.NewRequest(http.MethodPost, link, &body)
	req.Header.Set("Content-Type", ct)
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// answer opens link and posts answer (with extra fields) as the owner.
func (b *browser) answer(link, answer string, extra url.Values, name string, file []byte) (int, string) {
	b.t.Helper()
	code, page := b.get(link)
	if code != http.StatusOK {
		b.t.Fatalf("GET the task page: %d\n%s", code, page)
	}
	form := fields(page)
	form.Set("answer", answer)
	for k, v := range extra {
		form[k] = v
	}
	return b.post(link, form, name, file)
}

// TestManualTaskEndToEnd runs a deletion and an access request through
// the worker on real Redis: each waits on its owner, who is mailed a link,
// opens the page, and answers; only then does the request complete.
func TestManualTaskEndToEnd(t *testing.T) {
	t.Parallel()
	e := setup(t)
	srv := workers.NewServer(e.redis, workers.ServerOptions{Queue: e.qname, Concurrency: 4, RetryBase: 20 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second, Log: slog.New(slog.NewTextHandler(e.logs, nil)), PollInterval: 100 * time.Millisecond})
	if err := srv.Start(e.proc.Mux()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx := context.Background()

	del := e.file(dsr.TypeDeletion, "cus_ada")
	acc := e.file(dsr.TypeAccess, "cus_ada")
	for _, r := range []*dsr.Request{del, acc} {
		if err := e.queue.EnqueueFanout(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	delLink, accLink := e.link(del.ID, "manual_task"), e.link(acc.ID, "manual_task")
	// The mail goes out before the worker records the job as waiting; an
	// owner is slower than that, and the test waits as long.
	for _, id := range []string{dsr.JobID(del.ID, "paper", dsr.ActionErase), dsr.JobID(acc.ID, "paper", dsr.ActionExport)} {
		deadline := time.Now().Add(20 * time.Second)
		for e.job(id).Status != dsr.JobWaiting {
			if time.Now().After(deadline) {
				t.Fatalf("job %s never waited: %+v", id, e.job(id))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, r := range []*dsr.Request{del, acc} {
		if s := e.status(r.ID); s != dsr.StatusInProgress {
			t.Fatalf("request %s before the owner answered, want in_progress", s)
		}
	}

	b := newBrowser(t)
	code, page := b.get(delLink)
	if code != http.StatusOK || !strings.Contains(page, "erase the person&#39;s records") || !strings.Contains(page, "cus_ada") ||
		!strings.Contains(page, "ada@example.com") || !strings.Contains(page, del.ID) {
		t.Fatalf("task page %d:\n%s", code, page)
	}
	if code, page := b.answer(delLink, "confirm", url.Values{"count": {"7"}}, "", nil); code != http.StatusOK || !strings.Contains(page, "Thank you") {
		t.Fatalf("confirm: %d\n%s", code, page)
	}
	csv := "page,note\n1,\"=HYPERLINK(\"\"http://evil.example\"\")\"\n2,<img src=x onerror=alert(1)>\n"
	if code, page := b.answer(accLink, "upload", nil, "folder.csv", []byte(csv)); code != http.StatusOK {
		t.Fatalf("upload: %d\n%s", code, page)
	}

	for _, r := range []*dsr.Request{del, acc} {
		deadline := time.Now().Add(20 * time.Second)
		for e.status(r.ID) != dsr.StatusCompleted {
			if time.Now().After(deadline) {
				jobs, _ := e.store.Jobs(ctx, r.ID)
				t.Fatalf("request %s stuck in %s; jobs %+v\nlogs:\n%s", r.Type, e.status(r.ID), jobs, e.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	j := e.job(dsr.JobID(del.ID, "paper", dsr.ActionErase))
	if j.Records != 7 || len(j.Collections) != 1 || j.Collections[0].Outcome != "deleted" || len(j.Answer) > 0 {
		t.Errorf("erase job %+v: want 7 records deleted and the answer cleared", j)
	}
	var recs []string
	err := e.store.EachExportRecord(ctx, dsr.JobID(acc.ID, "paper", dsr.ActionExport), func(coll string, doc json.RawMessage) error {
		recs = append(recs, coll+" "+string(doc))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`upload {"page":"1","note":"=HYPERLINK(\"http://evil.example\")"}`, `upload {"page":"2","note":"\u003cimg src=x onerror=alert(1)\u003e"}`}
	if fmt.Sprint(recs) != fmt.Sprint(want) {
		// The store may encode < as \u003c or not; compare decoded values.
		var got []map[string]string
		for _, r := range recs {
			var m map[string]string
			_, doc, _ := strings.Cut(r, " ")
			if err := json.Unmarshal([]byte(doc), &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		}
		if len(got) != 2 || got[0]["note"] != `=HYPERLINK("http://evil.example")` || got[1]["note"] != "<img src=x onerror=alert(1)>" {
			t.Errorf("export records %v: want the CSV's text as it was written", recs)
		}
	}
	kinds := testenv.AuditKinds(t, e.store.AuditTrail, del.ID)
	if !contains(kinds, "job_answered") {
		t.Errorf("audit %v: want job_answered", kinds)
	}
	// The link works no more: the task is closed.
	if code, page := b.get(delLink); code != http.StatusConflict || !strings.Contains(page, "closed") {
		t.Errorf("the link after the answer: %d\n%s", code, page)
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// TestTaskPageAttacks: links that are not the owner's, or no longer good,
// and forms that are not the page's, are refused with a page that says
// why, and change nothing.
func TestTaskPageAttacks(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	r, id, link := e.opened(dsr.TypeDeletion, `<script>alert("x")</script>`)
	other, otherID, otherLink := e.opened(dsr.TypeDeletion, "cus_grace")
	acc, accID, accLink := e.opened(dsr.TypeAccess, "cus_ada")
	token := strings.TrimPrefix(link, e.url+links.TasksPrefix)
	parts := strings.Split(token, ".")
	payload, _, err := links.ParseTaskToken(token, e.signer, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	l, _ := manual.ParseLink(payload)
	otherJobThisTask := l
	otherJobThisTask.Job = otherID
	exp := e.clock.Now().Add(time.Hour)

	b := newBrowser(t)
	code, page := b.get(link)
	if code != http.StatusOK {
		t.Fatalf("GET: %d\n%s", code, page)
	}
	// HTML in values is inert: escaped where shown, never markup.
	for _, bad := range []string{"<script>", "<b onmouseover", "cus_grace"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page carries %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "Paper &lt;b onmouseover=&#34;x()&#34;&gt;archive&lt;/b&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks the escaped %q", want)
		}
	}
	form := fields(page)
	if form.Get("token") != token || len(form.Get("csrf")) != 32 {
		t.Fatalf("form fields %v", form)
	}
	confirm := func(f url.Values) url.Values {
		g := url.Values{"answer": {"confirm"}}
		for k, v := range f {
			g[k] = v
		}
		return g
	}
	big := bytes.Repeat([]byte("a,b\n1,2\n"), 50<<20/8)
	tests := []struct {
		name     string
		do       func() (int, string)
		want     int
		wantPage string
		job      string // the job that must be unchanged
	}{
		{name: "a tampered payload", want: http.StatusNotFound, wantPage: "not valid", job: id,
			do: func() (int, string) {
				return b.get(e.url + links.TasksPrefix + "x" + parts[0][1:] + "." + parts[1] + "." + parts[2])
			}},
		{name: "a forged signature", want: http.StatusNotFound, wantPage: "not valid", job: id,
			do: func() (int, string) {
				return b.get(e.url + links.TasksPrefix + links.TaskToken(payload, exp, dsr.NewTaskSigner([]byte("another key, another service....."))))
			}},
		{name: "an export link's key", want: http.StatusNotFound, wantPage: "not valid", job: id,
			do: func() (int, string) {
				return b.get(e.url + links.TasksPrefix + links.TaskToken(payload, exp, dsr.NewLinkSigner([]byte("0123456789abcdef0123456789abcdef"))))
			}},
		{name: "another job with this task", want: http.StatusConflict, wantPage: "closed", job: otherID,
			do: func() (int, string) {
				return b.get(e.url + links.TasksPrefix + links.TaskToken(otherJobThisTask.Payload(), exp, e.signer))
			}},
		{name: "this token posted to another job's page", want: http.StatusForbidden, wantPage: "not sent from the task page", job: otherID,
			do: func() (int, string) {
				_, op := b.get(otherLink)
				f := fields(op)
				f.Set("token", token)
				return b.post(otherLink, confirm(f), "", nil)
			}},
		{name: "no cookie (a cross-site post)", want: http.StatusForbidden, wantPage: "not sent from the task page", job: id,
			do: func() (int, string) { return newBrowser(t).post(link, confirm(form), "", nil) }},
		{name: "another csrf value", want: http.StatusForbidden, job: id,
			do: func() (int, string) {
				f := confirm(form)
				f.Set("csrf", strings.Repeat("0", 32))
				return b.post(link, f, "", nil)
			}},
		{name: "an upload to an erasure", want: http.StatusUnprocessableEntity, wantPage: "Choose one of the answers", job: id,
			do: func() (int, string) {
				f := confirm(form)
				f.Set("answer", "upload")
				return b.post(link, f, "x.csv", []byte("a\n1\n"))
			}},
		{name: "a negative count", want: http.StatusUnprocessableEntity, wantPage: "whole number", job: id,
			do: func() (int, string) { return b.answer(link, "confirm", url.Values{"count": {"-1"}}, "", nil) }},
		{name: "an upload of 50 MB", want: http.StatusRequestEntityTooLarge, wantPage: "too large", job: accID,
			do: func() (int, string) { return b.answer(accLink, "upload", nil, "huge.csv", big) }},
		{name: "a CSV with an error", want: http.StatusUnprocessableEntity, wantPage: "line 3: not valid CSV", job: accID,
			do: func() (int, string) { return b.answer(accLink, "upload", nil, "x.csv", []byte("a,b\n1,2\n3\n")) }},
		{name: "a JSON error with HTML in it", want: http.StatusUnprocessableEntity, wantPage: "line 2: not valid JSON", job: accID,
			do: func() (int, string) {
				code, page := b.answer(accLink, "upload", nil, "x.json", []byte("[{\"a\":1},\n<script>]"))
				if strings.Contains(page, "<script>") {
					t.Error("the error page carries the upload's markup")
				}
				return code, page
			}},
	}
	for _, tt := range tests {
		before := e.job(tt.job)
		code, page := tt.do()
		if code != tt.want || !strings.Contains(page, tt.wantPage) {
			t.Errorf("%s: %d, want %d with %q\n%s", tt.name, code, tt.want, tt.wantPage, page)
		}
		if after := e.job(tt.job); after.Status != before.Status || after.Handle != before.Handle || len(after.Answer) > 0 {
			t.Errorf("%s changed the job: %+v", tt.name, after)
		}
	}

	// The owner answers once; a replay of the same form is refused.
	if code, page := b.post(link, confirm(form), "", nil); code != http.StatusOK {
		t.Fatalf("answer: %d\n%s", code, page)
	}
	answered := e.job(id)
	if code, page := b.post(link, url.Values{"answer": {"absent"}, "token": {token}, "csrf": {form.Get("csrf")}}, "", nil); code != http.StatusConflict ||
		!strings.Contains(page, "answered already") {
		t.Errorf("a replay: %d\n%s", code, page)
	}
	if j := e.job(id); string(j.Answer) != string(answered.Answer) {
		t.Errorf("a replay changed the answer: %s, was %s", j.Answer, answered.Answer)
	}
	if err := e.proc.RunJob(ctx, id); err != nil {
		t.Fatal(err)
	}
	if s := e.status(r.ID); s != dsr.StatusCompleted {
		t.Errorf("request %s after the answer, want completed", s)
	}
	if s := e.status(other.ID); s != dsr.StatusInProgress {
		t.Errorf("the other request %s, want in_progress: its task is not answered", s)
	}
	if code, _ := b.post(link, confirm(form), "", nil); code != http.StatusConflict {
		t.Errorf("a replay after the job ended: %d, want 409", code)
	}

	// A link past its expiry: refused, nothing changes. The reminder
	// carries a fresh one that works.
	e.clock.Add(2 * time.Hour)
	if code, page := b.get(accLink); code != http.StatusOK {
		t.Fatalf("a link within its week: %d\n%s", code, page)
	}
	e.clock.Add(7 * 24 * time.Hour)
	if code, page := b.get(accLink); code != http.StatusGone || !strings.Contains(page, "expired") {
		t.Errorf("an expired link: %d\n%s", code, page)
	}
	f := fields(page)
	f.Set("answer", "absent")
	if code, _ := b.post(accLink, f, "", nil); code != http.StatusGone {
		t.Errorf("a post to an expired link: %d, want 410", code)
	}
	if j := e.job(accID); len(j.Answer) > 0 {
		t.Error("a post to an expired link stored an answer")
	}
	_ = acc
}

// TestUnansweredTask: a task nobody answers is reminded with a fresh link,
// escalated, and at the job's wait deadline fails saying the owner did not
// answer, so the request needs an agent's attention rather than completing.
func TestUnansweredTask(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	r, id, link := e.opened(dsr.TypeDeletion, "cus_ada")

	e.clock.Add(61 * time.Minute)
	if err := e.proc.RunJob(ctx, id); err != nil {
		t.Fatal(err)
	}
	fresh := e.link(r.ID, "manual_reminder")
	if fresh == link {
		t.Error("the reminder carries the first link, want a fresh one")
	}
	if code, page := newBrowser(t).get(fresh); code != http.StatusOK {
		t.Errorf("the reminder's link: %d\n%s", code, page)
	}
	if code, page := newBrowser(t).get(link); code != http.StatusOK {
		t.Errorf("the first link within its week, after a reminder: %d\n%s", code, page)
	}
	e.clock.Add(2 * time.Hour)
	if err := e.proc.RunJob(ctx, id); err != nil {
		t.Fatal(err)
	}
	m := e.smtp.WaitMessage(t, "dpo@shop.example", func(m testenv.Received) bool {
		return bytes.Contains(m.Data, []byte("X-DSAR-Kind: task_unanswered"))
	}, 10*time.Second)
	if !bytes.Contains(m.Data, []byte(owner)) || bytes.Contains(m.Data, []byte("ada@example.com")) {
		t.Errorf("escalation mail:\n%s", m.Data)
	}
	if s := e.status(r.ID); s != dsr.StatusInProgress {
		t.Fatalf("request %s after the escalation, want in_progress: the task stays open", s)
	}

	e.clock.Add(24 * time.Hour) // past WaitMax
	_ = e.proc.RunJob(ctx, id)
	j := e.job(id)
	if j.Status != dsr.JobFailed || !strings.Contains(j.Error, "owner "+owner+" did not answer") {
		t.Errorf("job %s (%q), want failed saying the owner did not answer", j.Status, j.Error)
	}
	if s := e.status(r.ID); s != dsr.StatusNeedsAttention {
		t.Errorf("request %s, want needs_attention", s)
	}
	if code, _ := newBrowser(t).get(fresh); code != http.StatusConflict {
		t.Errorf("the link of a failed task: %d, want 409 (closed)", code)
	}
}
