package consolepage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"golang.org/x/net/html"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/httpkit"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
)

// The principals of the tests, as the fake sign-in's header names them.
const (
	agent   = "desk:agent"
	agent2  = "desk2:agent"
	admin   = "ops:admin"
	auditor = "audit:auditor"
)

// userHeader names the signed-in principal ("name:role") for fakeAuth.
const userHeader = "X-Test-User"

// fakeAuth stands for consoleauth: the principal comes from a header, the
// CSRF tokens are bound to a session per name, unsafe methods need the
// kit's token; no header is no session (a 401 here).
type fakeAuth struct{ kit *webkit.Kit }

func (fakeAuth) Register(*gin.Engine) {}

func (a fakeAuth) Require() gin.HandlerFunc {
	return func(c *gin.Context) {
		name, role, ok := strings.Cut(c.GetHeader(userHeader), ":")
		if !ok {
			c.AbortWithStatus(http.StatusUnauthorized)
			return
		}
		httpkit.SetPrincipal(c, apikey.Principal{Name: name, Role: apikey.Role(role)})
		webkit.BindCSRF(c, "session-"+name)
		if !a.kit.CSRFValid(c) {
			c.AbortWithStatus(http.StatusForbidden)
			return
		}
		c.Next()
	}
}

// fakeQueue accepts every hand-over.
type fakeQueue struct{}

func (fakeQueue) EnqueueFanout(context.Context, string) error         { return nil }
func (fakeQueue) EnqueueJob(context.Context, string) error            { return nil }
func (fakeQueue) EnqueueNotice(context.Context, string, string) error { return nil }

// fakeQueues is an asynq inspector's answer, or its failure.
type fakeQueues struct {
	infos map[string]*asynq.QueueInfo
	err   error
}

func (q fakeQueues) Queues() ([]string, error) {
	var out []string
	for n := range q.infos {
		out = append(out, n)
	}
	return out, q.err
}

func (q fakeQueues) GetQueueInfo(n string) (*asynq.QueueInfo, error) {
	if i, ok := q.infos[n]; ok {
		return i, nil
	}
	return nil, errors.New("no such queue")
}

// csrfCookie is every test browser's CSRF cookie.
var csrfCookie = &http.Cookie{Name: webkit.CSRFCookie, Value: strings.Repeat("c", 43)}

// env is a console over a real store, on a clock the test moves.
type env struct {
	t      *testing.T
	r      *gin.Engine
	svc    *app.Service
	st     *teststore.Store
	now    time.Time
	clock  *atomic.Pointer[time.Time]
	mu     sync.Mutex
	tokens map[string]string
	logs   *testenv.Buffer
}

// newEnv returns a console at now whose deletions wait for approval, with
// queues (nil: none).
func newEnv(t *testing.T, now time.Time, queues Queues) *env {
	t.Helper()
	gin.SetMode(gin.TestMode)
	e := &env{t: t, now: now, clock: &atomic.Pointer[time.Time]{}, tokens: map[string]string{}}
	e.clock.Store(&now)
	tick := func() time.Time { return *e.clock.Load() }
	e.st = teststore.Open(t, tick)
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	approval, err := dsr.ParseApprovalPolicy("deletion")
	if err != nil {
		t.Fatal(err)
	}
	keys := apikey.NewKeyring(apikey.Key{Name: "desk", Role: apikey.RoleAgent}, apikey.Key{Name: "desk2", Role: apikey.RoleAgent},
		apikey.Key{Name: "ops", Role: apikey.RoleAdmin}, apikey.Key{Name: "audit", Role: apikey.RoleAuditor})
	e.svc = app.New(app.Deps{Store: e.st, Queue: fakeQueue{}, Index: idx, Approval: approval, IsAgent: keys.HasAgent, Now: tick})
	e.logs = &testenv.Buffer{}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	kit := webkit.New(webkit.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Log: log})
	e.r = gin.New()
	Register(e.r, Deps{App: e.svc, Kit: kit, Auth: fakeAuth{kit: kit}, Queues: queues, Log: log})
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), "@example.com") {
			t.Errorf("logs hold personal data:\n%s", e.logs)
		}
		if strings.Contains(e.logs.String(), "page failed to render") {
			t.Errorf("a page failed to render:\n%s", e.logs)
		}
	})
	return e
}

// filing is a request to file: type, regulation, received how long ago,
// and whether the person is still to verify their identity.
type filing struct {
	typ, regulation string
	ago             time.Duration
	unverified      bool
	note            string
}

// file files f as agent desk and returns its id.
func (e *env) file(f filing) string {
	e.t.Helper()
	if f.typ == "" {
		f.typ = "access"
	}
	if f.regulation == "" {
		f.regulation = "gdpr"
	}
	email := "ada@example.com"
	in := app.AgentRequest{Type: f.typ, Regulation: f.regulation, Subject: app.Subject{Email: &email}, Note: f.note,
		ReceivedAt: e.now.Add(-f.ago).Format(time.RFC3339)}
	if f.unverified {
		in.Identity = &app.Proof{Verified: false}
	}
	if f.typ == "opt_out" {
		in.Identity = nil
	}
	got, err := e.svc.Create(context.Background(), app.Filing{Request: in, By: "desk"})
	if err != nil {
		e.t.Fatal(err)
	}
	return got.Request.ID
}

// needsAttention files an access request whose job for connector crm
// failed, and settles it: it needs attention.
func (e *env) needsAttention() string {
	e.t.Helper()
	ctx := context.Background()
	id := e.file(filing{})
	if _, err := e.st.Transition(ctx, id, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "test"}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.MarkFannedOut(ctx, id); err != nil {
		e.t.Fatal(err)
	}
	j := dsr.NewJob(id, "crm", dsr.ActionExport, e.now)
	if err := e.st.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		e.t.Fatal(err)
	}
	claimed, err := e.st.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobFailed, Error: "crm answered 503 <b>busy</b>"}); err != nil {
		e.t.Fatal(err)
	}
	if to, err := e.st.Settle(ctx, id, "test"); err != nil || to != dsr.StatusNeedsAttention {
		e.t.Fatalf("settle: %s %v", to, err)
	}
	return id
}

// request reads request id from the store.
func (e *env) request(id string) *dsr.Request {
	e.t.Helper()
	r, err := e.st.Request(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// state is what must not change when an exchange changes nothing.
func (e *env) state(id string) string {
	e.t.Helper()
	r := e.request(id)
	events, err := e.st.AuditTrail(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return fmt.Sprintf("%s|%s|%s|%s|%s|%d|%d|%d|%v", r.Status, r.UpdatedAt, r.AssignedTo, r.DueAt, r.DenialBasis, len(r.History), len(events), len(r.Pauses), r.Extension != nil)
}

// response is an exchange's answer.
type response struct {
	code int
	body string
	hdr  http.Header
	doc  *html.Node
}

// do sends method path as user (none: no session) with form, the CSRF
// cookie always set.
func (e *env) do(method, path, user string, form url.Values, lang string) response {
	e.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	if user != "" {
		req.Header.Set(userHeader, user)
	}
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	req.AddCookie(csrfCookie)
	w := httptest.NewRecorder()
	e.r.ServeHTTP(w, req)
	doc, err := html.Parse(strings.NewReader(w.Body.String()))
	if err != nil {
		e.t.Fatal(err)
	}
	return response{code: w.Code, body: w.Body.String(), hdr: w.Header(), doc: doc}
}

func (e *env) get(path, user string) response { return e.do(http.MethodGet, path, user, nil, "") }

// post sends form to path as user with the user's CSRF token.
func (e *env) post(path, user string, form url.Values) response {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", e.token(user))
	return e.do(http.MethodPost, path, user, form, "")
}

// token is user's CSRF token, as the pages' forms carry it.
func (e *env) token(user string) string {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if tok, ok := e.tokens[user]; ok {
		return tok
	}
	res := e.get("/console", user)
	in := find(res.doc, func(n *html.Node) bool { return n.Data == "input" && attr(n, "name") == "csrf" })
	if len(in) == 0 {
		e.t.Fatalf("no csrf field on /console as %s:\n%s", user, res.body)
	}
	e.tokens[user] = attr(in[0], "value")
	return e.tokens[user]
}

// find lists the elements under n that match, in document order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// byID is the element of id under n, or nil.
func byID(n *html.Node, id string) *html.Node {
	if f := find(n, func(n *html.Node) bool { return attr(n, "id") == id }); len(f) > 0 {
		return f[0]
	}
	return nil
}

// tags lists the elements named tag under n.
func tags(n *html.Node, tag string) []*html.Node {
	if n == nil {
		return nil
	}
	return find(n, func(n *html.Node) bool { return n.Data == tag })
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is n's text, its spaces collapsed.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}
