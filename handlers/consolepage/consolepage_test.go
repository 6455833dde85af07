package consolepage

import (
	"context"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/net/html"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/handlers/webkit"
	"github.com/dsar-project/dsar/internal/apikey"
)

// now is the tests' present: a Wednesday.
var now = time.Date(2026, 3, 11, 10, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// rowIDs lists the request ids of the queue's rows, in order.
func rowIDs(doc *html.Node) []string {
	var out []string
	for _, tr := range tags(byID(doc, "queue"), "tr") {
		if id := attr(tr, "data-id"); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// TestCountdown: the countdown in whole calendar days, overdue only when
// open and past due, none when closed or paused.
func TestCountdown(t *testing.T) {
	paused := now
	for _, tt := range []struct {
		name   string
		r      dsr.Request
		key    string
		n      int
		overdu bool
	}{
		{"in three days", dsr.Request{Status: dsr.StatusVerified, DueAt: now.Add(3 * day)}, "console.countdown.days", 3, false},
		{"later today", dsr.Request{Status: dsr.StatusVerified, DueAt: now.Add(2 * time.Hour)}, "console.countdown.today", 0, false},
		{"tomorrow early", dsr.Request{Status: dsr.StatusVerified, DueAt: dayOf(now).Add(day + time.Hour)}, "console.countdown.tomorrow", 0, false},
		{"earlier today", dsr.Request{Status: dsr.StatusInProgress, DueAt: now.Add(-time.Hour)}, "console.countdown.overdue_today", 0, true},
		{"yesterday", dsr.Request{Status: dsr.StatusVerified, DueAt: now.Add(-day)}, "console.countdown.overdue_one", 0, true},
		{"two days ago", dsr.Request{Status: dsr.StatusNeedsAttention, DueAt: now.Add(-2 * day)}, "console.countdown.overdue_many", 2, true},
		{"closed late", dsr.Request{Status: dsr.StatusCompleted, DueAt: now.Add(-2 * day)}, "console.countdown.closed", 0, false},
		{"paused", dsr.Request{Status: dsr.StatusVerifying, DueAt: now.Add(-2 * day), PausedAt: &paused}, "console.countdown.paused", 0, false},
	} {
		key, n := countdown(&tt.r, now)
		if key != tt.key || n != tt.n || tt.r.Overdue(now) != tt.overdu {
			t.Errorf("%s: %s %d (overdue %v); want %s %d", tt.name, key, n, tt.r.Overdue(now), tt.key, tt.n)
		}
	}
}

// TestQueue: most urgent first, the overdue highlighted with its
// countdown, each filter, and the cursor's pages.
func TestQueue(t *testing.T) {
	e := newEnv(t, now, nil)
	late := e.file(filing{ago: 40 * day})                                              // due about 10 days ago
	soon := e.file(filing{ago: 25 * day})                                              // due in about 4 days
	fresh := e.file(filing{ago: time.Hour, regulation: "ccpa"})                        // due in 45 days
	verifying := e.file(filing{ago: 10 * day, unverified: true})                       // verifying
	held := e.file(filing{typ: "deletion", ago: 20 * day})                             // awaiting approval
	if _, err := e.svc.Assign(context.Background(), soon, "desk", "ops"); err != nil { // desk's
		t.Fatal(err)
	}

	res := e.get("/console", agent)
	if res.code != http.StatusOK {
		t.Fatalf("queue: %d\n%s", res.code, res.body)
	}
	got := rowIDs(res.doc)
	want := []string{late, soon, held, verifying, fresh}
	slices.SortFunc(want, func(a, b string) int { return e.request(a).DueAt.Compare(e.request(b).DueAt) })
	if !slices.Equal(got, want) || got[0] != late {
		t.Fatalf("order %v; want by due date %v", got, want)
	}
	for _, tr := range tags(byID(res.doc, "queue"), "tr") {
		id := attr(tr, "data-id")
		if id == "" {
			continue
		}
		cd := find(tr, func(n *html.Node) bool { return strings.Contains(attr(n, "class"), "countdown") })[0]
		overdue := strings.Contains(attr(tr, "class"), "overdue")
		if overdue != (id == late) || strings.HasPrefix(text(cd), "overdue by") != (id == late) {
			t.Errorf("row %s: class %q countdown %q", id, attr(tr, "class"), text(cd))
		}
		if id == soon && !regexp.MustCompile(`^due in \d+ days$`).MatchString(text(cd)) {
			t.Errorf("soon: countdown %q", text(cd))
		}
		if id == late && attr(cd, "data-due") == "" {
			t.Errorf("late: no data-due for console.js")
		}
	}

	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"status=verifying", []string{verifying}},
		{"status=awaiting_approval", []string{held}},
		{"type=deletion", []string{held}},
		{"regulation=ccpa", []string{fresh}},
		{"mine=1", []string{soon}},
		{"overdue=1", []string{late}},
		{"status=verified&regulation=gdpr", []string{late, soon}},
		{"status=completed", nil},
	} {
		res := e.get("/console?"+tt.query, agent)
		if got := rowIDs(res.doc); res.code != http.StatusOK || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %d %v; want %v", tt.query, res.code, got, tt.want)
		}
		if tt.want == nil && byID(res.doc, "queue-empty") == nil {
			t.Errorf("%s: no empty notice", tt.query)
		}
	}
	// The form keeps the filters asked for.
	res = e.get("/console?status=verifying&mine=1", agent)
	if sel := find(byID(res.doc, "filter-status"), func(n *html.Node) bool {
		return n.Data == "option" && attr(n, "selected") != "" || hasAttr(n, "selected")
	}); len(sel) != 1 || attr(sel[0], "value") != "verifying" {
		t.Errorf("status filter not kept")
	}
	if !hasAttr(byID(res.doc, "filter-mine"), "checked") {
		t.Errorf("mine not kept")
	}

	// A filter refused: 400, said at the top and at the field.
	for _, q := range []string{"status=nope", "type=%3Cscript%3E", "cursor=zzz"} {
		res := e.get("/console?"+q, agent)
		field := strings.SplitN(q, "=", 2)[0]
		if res.code != http.StatusBadRequest || byID(res.doc, "error-summary") == nil || byID(res.doc, "queue") != nil {
			t.Errorf("%s: %d", q, res.code)
		}
		if field != "cursor" && attr(byID(res.doc, "filter-"+field), "aria-invalid") != "true" {
			t.Errorf("%s: field not marked", q)
		}
		if strings.Contains(res.body, "<script>") {
			t.Errorf("%s: input echoed unescaped", q)
		}
	}
}

func hasAttr(n *html.Node, key string) bool {
	if n == nil {
		return false
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// TestQueuePages: pages of 20 by cursor, the filters kept in the links.
func TestQueuePages(t *testing.T) {
	e := newEnv(t, now, nil)
	var all []string
	for i := range 23 {
		all = append(all, e.file(filing{ago: time.Duration(i+1) * time.Hour}))
	}
	res := e.get("/console?status=verified", agent)
	first := rowIDs(res.doc)
	next := byID(res.doc, "page-next")
	if len(first) != app.DefaultListLimit || next == nil || byID(res.doc, "page-first") != nil {
		t.Fatalf("first page: %d rows, next %v", len(first), next != nil)
	}
	u, _ := url.Parse(attr(next, "href"))
	if u.Query().Get("status") != "verified" || u.Query().Get("cursor") == "" {
		t.Fatalf("next link %q", attr(next, "href"))
	}
	res = e.get(attr(next, "href"), agent)
	second := rowIDs(res.doc)
	if len(second) != 3 || byID(res.doc, "page-next") != nil || byID(res.doc, "page-first") == nil {
		t.Fatalf("second page: %v", second)
	}
	got := append(first, second...)
	slices.Sort(got)
	slices.Sort(all)
	if !slices.Equal(got, all) {
		t.Fatalf("pages hold %v; want %v", got, all)
	}
}

// TestRequestPage: the summary, clock, identities, jobs with their
// error, history, audit trail and the report; a form per action for an
// agent, none for an auditor.
func TestRequestPage(t *testing.T) {
	e := newEnv(t, now, nil)
	id := e.needsAttention()
	for _, user := range []string{agent, admin, auditor} {
		res := e.get("/console/requests/"+id, user)
		if res.code != http.StatusOK {
			t.Fatalf("%s: %d\n%s", user, res.code, res.body)
		}
		for _, want := range []string{"summary", "clock", "identities-table", "jobs-table", "history-table", "audit-table", "report-link", "audit-verified"} {
			if byID(res.doc, want) == nil {
				t.Errorf("%s: no #%s", user, want)
			}
		}
		if got := attr(byID(res.doc, "request-status"), "data-status"); got != "needs_attention" {
			t.Errorf("%s: status %q", user, got)
		}
		job := tags(byID(res.doc, "jobs-table"), "tbody")[0]
		if s := text(job); !strings.Contains(s, "crm") || !strings.Contains(s, "failed") || !strings.Contains(s, "crm answered 503 <b>busy</b>") {
			t.Errorf("%s: job row %q", user, s)
		}
		if !strings.Contains(text(byID(res.doc, "identities-table")), "ada@example.com") {
			t.Errorf("%s: identities %q", user, text(byID(res.doc, "identities-table")))
		}
		if n := len(tags(tags(byID(res.doc, "audit-table"), "tbody")[0], "tr")); n < 2 {
			t.Errorf("%s: %d audit events", user, n)
		}
		forms := find(res.doc, func(n *html.Node) bool { return n.Data == "form" && strings.HasPrefix(attr(n, "id"), "action-") })
		canAct := user != auditor
		if canAct != (len(forms) == len(actions)) || !canAct && len(forms) != 0 || canAct == (byID(res.doc, "read-only") != nil) {
			t.Errorf("%s: %d action forms", user, len(forms))
		}
		for _, f := range forms {
			name := strings.TrimPrefix(attr(f, "id"), "action-")
			if attr(f, "action") != "/console/requests/"+id+"/"+name || attr(f, "method") != "post" {
				t.Errorf("form %s: action %q", name, attr(f, "action"))
			}
			if csrf := find(f, func(n *html.Node) bool { return attr(n, "name") == "csrf" }); len(csrf) != 1 || attr(csrf[0], "value") == "" {
				t.Errorf("form %s: no csrf field", name)
			}
			for _, in := range find(f, func(n *html.Node) bool {
				return n.Data == "input" && attr(n, "type") != "hidden" || n.Data == "select" || n.Data == "textarea"
			}) {
				if len(find(f, func(n *html.Node) bool { return n.Data == "label" && attr(n, "for") == attr(in, "id") })) != 1 {
					t.Errorf("form %s: %s has no label", name, attr(in, "id"))
				}
			}
		}
	}
	basis := byID(e.get("/console/requests/"+id, agent).doc, "deny-basis")
	var bases []string
	for _, o := range tags(basis, "option") {
		if v := attr(o, "value"); v != "" {
			bases = append(bases, v)
		}
	}
	if len(bases) != len(dsr.DenialBases) {
		t.Errorf("deny bases %v", bases)
	}

	for _, path := range []string{"/console/requests/nope", "/console/requests/6f1c1d6e-8f0a-4c2b-9d3e-1a2b3c4d5e6f",
		"/console/requests/nope/report", "/console/requests/x%27%20OR%201=1"} {
		if res := e.get(path, agent); res.code != http.StatusNotFound || byID(res.doc, "main") == nil {
			t.Errorf("%s: %d", path, res.code)
		}
	}
	// A body too large is read as empty: refused, nothing changed.
	before := e.state(id)
	big := url.Values{"reason": {strings.Repeat("x", maxForm)}}
	if res := e.post("/console/requests/"+id+"/close", agent, big); res.code != http.StatusForbidden || e.state(id) != before {
		t.Errorf("large body: %d", res.code)
	}

	res := e.get("/console/requests/"+id+"/report", auditor)
	if res.code != http.StatusOK || !strings.Contains(res.body, "Evidence report") || !strings.Contains(res.hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("report: %d %q", res.code, res.hdr.Get("Content-Security-Policy"))
	}
	if got := res.hdr.Get("Cache-Control"); got != "no-store" {
		t.Errorf("report: Cache-Control %q", got)
	}
}

// TestActions: every action an agent (or admin) takes works through the
// application, 303 back to the request with the flash.
func TestActions(t *testing.T) {
	e := newEnv(t, now, nil)
	ctx := context.Background()
	for _, tt := range []struct {
		action string
		setup  func() string
		form   url.Values
		check  func(*dsr.Request) bool
	}{
		{"approve", func() string { return e.file(filing{typ: "deletion"}) }, nil,
			func(r *dsr.Request) bool { return r.Status == dsr.StatusVerified && r.ApprovedBy == "desk" }},
		{"deny", func() string { return e.file(filing{}) }, url.Values{"basis": {"exempt"}, "reason": {"Legal hold."}},
			func(r *dsr.Request) bool { return r.Status == dsr.StatusDenied && r.DenialBasis == dsr.DeniedExempt }},
		{"extend", func() string { return e.file(filing{}) }, url.Values{"reason": {"Many systems."}},
			func(r *dsr.Request) bool { return r.Extension != nil && r.Extension.By == "desk" }},
		{"pause", func() string { return e.file(filing{unverified: true}) }, url.Values{"reason": {"Waiting for ID."}},
			func(r *dsr.Request) bool { return r.PausedAt != nil }},
		{"resume", func() string {
			id := e.file(filing{unverified: true})
			if _, err := e.svc.Pause(ctx, id, "waiting", "desk"); err != nil {
				t.Fatal(err)
			}
			return id
		}, nil, func(r *dsr.Request) bool { return r.PausedAt == nil && len(r.Pauses) == 1 }},
		{"retry", e.needsAttention, nil, func(r *dsr.Request) bool { return r.Status == dsr.StatusInProgress }},
		{"close", e.needsAttention, url.Values{"reason": {"Done by hand."}},
			func(r *dsr.Request) bool { return r.Status == dsr.StatusCompleted }},
		{"assign", func() string { return e.file(filing{}) }, url.Values{"agent": {"desk2"}},
			func(r *dsr.Request) bool { return r.AssignedTo == "desk2" }},
		{"cancel", func() string { return e.file(filing{}) }, url.Values{},
			func(r *dsr.Request) bool { return r.Status == dsr.StatusCancelled }},
	} {
		t.Run(tt.action, func(t *testing.T) {
			for _, user := range []string{agent, admin} {
				id := tt.setup()
				res := e.post("/console/requests/"+id+"/"+tt.action, user, tt.form)
				loc := "/console/requests/" + id + "?done=" + tt.action
				if res.code != http.StatusSeeOther || res.hdr.Get("Location") != loc {
					t.Fatalf("%s: %d %q\n%s", user, res.code, res.hdr.Get("Location"), res.body)
				}
				r := e.request(id)
				if user == agent && !tt.check(r) {
					t.Errorf("%s: request after: %s %+v", user, r.Status, r)
				}
				page := e.get(loc, user)
				if f := byID(page.doc, "flash"); f == nil || attr(f, "role") != "status" || text(f) == "" {
					t.Errorf("%s: no flash", user)
				}
			}
		})
	}
}

// TestRefusals: an auditor's action, a request without the CSRF token, an
// invalid input, a wrong state, an id that is not one, an unknown action:
// each refused with its status and message, and nothing changed.
func TestRefusals(t *testing.T) {
	e := newEnv(t, now, nil)
	open := e.file(filing{})
	held := e.file(filing{typ: "deletion"})
	for _, tt := range []struct {
		name     string
		id       string
		action   string
		user     string
		form     url.Values
		noToken  bool
		code     int
		errField string // the id of the field error shown
		message  string // in the error summary
	}{
		{"auditor approves", held, "approve", auditor, nil, false, http.StatusForbidden, "", ""},
		{"auditor denies", open, "deny", auditor, url.Values{"basis": {"other"}, "reason": {"x"}}, false, http.StatusForbidden, "", ""},
		{"auditor assigns", open, "assign", auditor, url.Values{"agent": {"desk"}}, false, http.StatusForbidden, "", ""},
		{"no csrf token", open, "cancel", agent, url.Values{}, true, http.StatusForbidden, "", ""},
		{"another session's token", open, "cancel", agent2, url.Values{"csrf": {"forged"}}, true, http.StatusForbidden, "", ""},
		{"deny without basis", open, "deny", agent, url.Values{"reason": {"No."}}, false, http.StatusBadRequest, "deny-basis-error", ""},
		{"deny without reason", open, "deny", agent, url.Values{"basis": {"other"}}, false, http.StatusBadRequest, "deny-reason-error", ""},
		{"deny with an unknown basis", open, "deny", agent, url.Values{"basis": {"because"}, "reason": {"No."}}, false, http.StatusBadRequest, "deny-basis-error", ""},
		{"extend without reason", open, "extend", agent, url.Values{"reason": {"   "}}, false, http.StatusBadRequest, "extend-reason-error", ""},
		{"pause without reason", open, "pause", agent, nil, false, http.StatusBadRequest, "pause-reason-error", ""},
		{"close without reason", open, "close", agent, nil, false, http.StatusBadRequest, "close-reason-error", ""},
		{"assign to no agent", open, "assign", agent, url.Values{"agent": {"audit"}}, false, http.StatusBadRequest, "assign-agent-error", ""},
		{"approve a verified request", open, "approve", agent, nil, false, http.StatusConflict, "", "cannot be moved"},
		{"retry without failure", open, "retry", agent, nil, false, http.StatusConflict, "", "Only a request that needs attention"},
		{"close an open request", open, "close", agent, url.Values{"reason": {"done"}}, false, http.StatusConflict, "", "cannot be moved"},
		{"resume a running clock", open, "resume", agent, nil, false, http.StatusConflict, "", ""},
		{"pause a verified request", open, "pause", agent, url.Values{"reason": {"wait"}}, false, http.StatusConflict, "", ""},
		{"unknown action", open, "delete", agent, nil, false, http.StatusNotFound, "", ""},
		{"another route's name", open, "report", agent, nil, false, http.StatusNotFound, "", ""},
		{"the API's unlink", open, "unlink", agent, nil, false, http.StatusNotFound, "", ""},
		{"not an id", "not-an-id", "approve", agent, nil, false, http.StatusNotFound, "", ""},
		{"an id of nothing", "6f1c1d6e-8f0a-4c2b-9d3e-1a2b3c4d5e6f", "cancel", agent, nil, false, http.StatusNotFound, "", ""},
		{"injection in the id", "x'%20OR%201=1", "cancel", agent, nil, false, http.StatusNotFound, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]string{open: e.state(open), held: e.state(held)}
			form := tt.form
			if form == nil {
				form = url.Values{}
			}
			var res response
			if tt.noToken {
				res = e.do(http.MethodPost, "/console/requests/"+tt.id+"/"+tt.action, tt.user, form, "")
			} else {
				res = e.post("/console/requests/"+tt.id+"/"+tt.action, tt.user, form)
			}
			if res.code != tt.code {
				t.Fatalf("%d, want %d\n%s", res.code, tt.code, res.body)
			}
			for id, s := range before {
				if got := e.state(id); got != s {
					t.Errorf("request changed: %s -> %s", s, got)
				}
			}
			if tt.errField != "" {
				fe := byID(res.doc, tt.errField)
				input := byID(res.doc, strings.TrimSuffix(tt.errField, "-error"))
				if fe == nil || input == nil || attr(input, "aria-invalid") != "true" || !strings.Contains(attr(input, "aria-describedby"), tt.errField) {
					t.Errorf("field error %s not shown and linked", tt.errField)
				}
				if s := byID(res.doc, "error-summary"); s == nil || attr(s, "role") != "alert" {
					t.Errorf("no error summary")
				}
				if r := form.Get("reason"); r != "" && strings.TrimSpace(r) != "" && !strings.Contains(res.body, r) {
					t.Errorf("reason %q not kept", r)
				}
			}
			if tt.code == http.StatusConflict {
				msg := byID(res.doc, "error-message")
				if msg == nil || !strings.Contains(text(msg), tt.message) {
					t.Errorf("message %q; want %q", text(msg), tt.message)
				}
				if byID(res.doc, "action-"+tt.action) == nil {
					t.Errorf("the page was not rendered again with its forms")
				}
			}
		})
	}
}

// TestDoubleSubmit: the same action sent twice does it once; the second
// is told the request changed.
func TestDoubleSubmit(t *testing.T) {
	e := newEnv(t, now, nil)
	id := e.file(filing{})
	form := url.Values{"basis": {"other"}, "reason": {"Not ours."}}
	if res := e.post("/console/requests/"+id+"/deny", agent, form); res.code != http.StatusSeeOther {
		t.Fatalf("first: %d", res.code)
	}
	res := e.post("/console/requests/"+id+"/deny", agent, form)
	if res.code != http.StatusConflict || !strings.Contains(text(byID(res.doc, "error-message")), "denied request cannot be moved") {
		t.Fatalf("second: %d %q", res.code, text(byID(res.doc, "error-message")))
	}
	denials := 0
	for _, h := range e.request(id).History {
		if h.To == dsr.StatusDenied {
			denials++
		}
	}
	if denials != 1 {
		t.Fatalf("%d denials", denials)
	}
	// An extension twice: the regulation allows one.
	id = e.file(filing{})
	e.post("/console/requests/"+id+"/extend", agent, url.Values{"reason": {"Many systems."}})
	due := e.request(id).DueAt
	res = e.post("/console/requests/"+id+"/extend", agent, url.Values{"reason": {"Many systems."}})
	if res.code != http.StatusConflict || !e.request(id).DueAt.Equal(due) {
		t.Fatalf("second extension: %d", res.code)
	}
}

// TestEscaping: text from people and agents is escaped wherever it shows.
func TestEscaping(t *testing.T) {
	e := newEnv(t, now, nil)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	id := e.file(filing{note: evil})
	if res := e.post("/console/requests/"+id+"/extend", agent, url.Values{"reason": {evil}}); res.code != http.StatusSeeOther {
		t.Fatalf("extend: %d\n%s", res.code, res.body)
	}
	refused := e.post("/console/requests/"+id+"/deny", agent, url.Values{"reason": {evil}}) // no basis: kept in the form
	for name, res := range map[string]response{"page": e.get("/console/requests/"+id, agent), "refused": refused} {
		if strings.Contains(res.body, "<script>alert") || strings.Contains(res.body, "<img src=x") {
			t.Errorf("%s: injected markup unescaped", name)
		}
		if !strings.Contains(res.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s: the text is not shown escaped", name)
		}
	}
}

// TestQueuesPage: admins only; a nil inspector or a failing one says so.
func TestQueuesPage(t *testing.T) {
	infos := fakeQueues{infos: map[string]*asynq.QueueInfo{"dsar": {Queue: "dsar", Size: 7, Pending: 3, Active: 1, Scheduled: 2, Retry: 1, Archived: 4, Processed: 12, Failed: 2}}}
	for _, tt := range []struct {
		name   string
		queues Queues
		user   string
		code   int
		want   string
	}{
		{"admin", infos, admin, http.StatusOK, "queues-table"},
		{"agent", infos, agent, http.StatusForbidden, ""},
		{"auditor", infos, auditor, http.StatusForbidden, ""},
		{"no inspector", nil, admin, http.StatusOK, "queues-unavailable"},
		{"redis down", fakeQueues{infos: infos.infos, err: context.DeadlineExceeded}, admin, http.StatusServiceUnavailable, "queues-unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, now, tt.queues)
			res := e.get("/console/queues", tt.user)
			if res.code != tt.code || tt.want != "" && byID(res.doc, tt.want) == nil {
				t.Fatalf("%d\n%s", res.code, res.body)
			}
			if tt.want == "queues-table" {
				var cells []string
				for _, c := range find(tags(byID(res.doc, "queues-table"), "tbody")[0], func(n *html.Node) bool { return n.Data == "td" || n.Data == "th" }) {
					cells = append(cells, text(c))
				}
				if got := strings.Join(cells, " "); got != "dsar 7 3 1 2 1 4 12 2" {
					t.Errorf("row %q", got)
				}
			}
			nav := byID(res.doc, "nav-queues")
			if (nav != nil) != (tt.user == admin) {
				t.Errorf("queues link shown to %s: %v", tt.user, nav != nil)
			}
		})
	}
}

// TestDashboardPage: the counts, the on-time rate and the chart's and
// table's weekly figures are the store's; the chart is accessible SVG.
func TestDashboardPage(t *testing.T) {
	e := newEnv(t, now, nil)
	monday := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	received := map[int]int{0: 1, 2: 3, 5: 2, 11: 1} // week index -> requests
	var ids []string
	for w, n := range received {
		for i := range n {
			at := monday.AddDate(0, 0, -7*(11-w)).Add(time.Duration(i+1) * time.Hour)
			ids = append(ids, e.file(filing{ago: now.Sub(at)}))
		}
	}
	_ = ids
	dash, err := e.svc.Dashboard(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := e.get("/console/dashboard", auditor)
	if res.code != http.StatusOK {
		t.Fatalf("%d\n%s", res.code, res.body)
	}
	rows := tags(tags(byID(res.doc, "weekly-table"), "tbody")[0], "tr")
	if len(rows) != app.DashboardWeeks {
		t.Fatalf("%d weeks", len(rows))
	}
	for i, tr := range rows {
		cells := tags(tr, "td")
		got, _ := strconv.Atoi(text(cells[0]))
		if got != received[i] || got != dash.Weeks[i].Received || attr(tr, "data-week") != dash.Weeks[i].Start.Format("2006-01-02") {
			t.Errorf("week %d: %q received %d; want %d", i, attr(tr, "data-week"), got, received[i])
		}
	}
	if text(byID(res.doc, "weekly-received")) != "7" {
		t.Errorf("total %q", text(byID(res.doc, "weekly-received")))
	}
	svg := byID(res.doc, "weekly-chart")
	if svg == nil || attr(svg, "role") != "img" || attr(svg, "aria-labelledby") != "chart-title chart-desc" || byID(svg, "chart-title") == nil || byID(svg, "chart-desc") == nil {
		t.Fatalf("chart not accessible: %v", svg)
	}
	bars := find(svg, func(n *html.Node) bool { return n.Data == "rect" && attr(n, "class") == "bar-received" })
	if len(bars) != app.DashboardWeeks {
		t.Fatalf("%d received bars", len(bars))
	}
	h := func(n *html.Node) float64 { v, _ := strconv.ParseFloat(attr(n, "height"), 64); return v }
	unit := h(bars[2]) / 3 // week 2 received 3
	for i, b := range bars {
		if d := h(b) - unit*float64(received[i]); d > 0.2 || d < -0.2 {
			t.Errorf("bar %d: height %v for %d", i, h(b), received[i])
		}
	}
	if byID(res.doc, "on-time-none") == nil || !strings.Contains(text(byID(res.doc, "count-total")), "7") {
		t.Errorf("counts: %q, on time %q", text(byID(res.doc, "count-total")), text(byID(res.doc, "on-time")))
	}
	var verified string
	for _, tr := range tags(byID(res.doc, "status-counts"), "tr") {
		if attr(tr, "data-status") == "verified" {
			verified = text(tags(tr, "td")[0])
		}
	}
	if verified != "7" {
		t.Errorf("verified count %q", verified)
	}
	// Answered: the on-time rate shows.
	if _, err := e.svc.Deny(context.Background(), ids[0], app.Denial{Reason: "no", Basis: "other"}, "desk"); err != nil {
		t.Fatal(err)
	}
	res = e.get("/console/dashboard", agent)
	if rate := text(byID(res.doc, "on-time-rate")); rate == "" {
		t.Errorf("no on-time rate after an answer:\n%s", text(byID(res.doc, "on-time")))
	}
}

// TestPagesSafeAndTranslated: no page has inline script, style or event
// handlers; every page is complete in French; pages need a session.
func TestPagesSafeAndTranslated(t *testing.T) {
	e := newEnv(t, now, fakeQueues{infos: map[string]*asynq.QueueInfo{"dsar": {Queue: "dsar"}}})
	id := e.needsAttention()
	refused := e.post("/console/requests/"+id+"/deny", agent, url.Values{})
	pages := map[string]response{"refused action": refused}
	for _, p := range []struct{ path, user string }{
		{"/console", agent}, {"/console?status=nope", agent}, {"/console/requests/" + id, agent}, {"/console/requests/" + id, auditor},
		{"/console/requests/" + id + "?done=close", admin}, {"/console/dashboard", agent}, {"/console/queues", admin}, {"/console/queues", agent},
		{"/console/requests/nope", agent},
	} {
		for _, lang := range []string{"en", "fr"} {
			res := e.do(http.MethodGet, p.path, p.user, nil, lang)
			pages[p.path+" as "+p.user+" in "+lang] = res
			if lang == "fr" && strings.Contains(res.body, "[console.") {
				t.Errorf("%s: untranslated key", p.path)
			}
		}
	}
	for name, res := range pages {
		if strings.Contains(res.body, "[console.") || strings.Contains(res.body, "%!") {
			t.Errorf("%s: a message is missing or badly formatted", name)
		}
		for _, n := range find(res.doc, func(*html.Node) bool { return true }) {
			if n.Data == "style" || n.Data == "script" && attr(n, "src") == "" {
				t.Errorf("%s: inline <%s>", name, n.Data)
			}
			for _, a := range n.Attr {
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: inline %s= on <%s>", name, a.Key, n.Data)
				}
			}
		}
		if len(tags(res.doc, "h1")) != 1 {
			t.Errorf("%s: %d h1", name, len(tags(res.doc, "h1")))
		}
		if !strings.Contains(res.hdr.Get("Content-Security-Policy"), "script-src 'self'") || res.hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", name, res.hdr)
		}
		seen := map[string]bool{}
		for _, n := range find(res.doc, func(n *html.Node) bool { return attr(n, "id") != "" }) {
			if seen[attr(n, "id")] {
				t.Errorf("%s: id %q twice", name, attr(n, "id"))
			}
			seen[attr(n, "id")] = true
		}
	}
	if res := e.get("/console", ""); res.code != http.StatusUnauthorized {
		t.Errorf("no session: %d", res.code)
	}
	if res := e.get("/console", "segments:pipeline"); res.code != http.StatusForbidden {
		t.Errorf("pipeline: %d", res.code)
	}
}

// TestCatalogues: en and fr hold the same keys, and every key the pages
// and the code use is in them.
func TestCatalogues(t *testing.T) {
	kit := webkit.New(webkit.Options{Secrets: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}})
	pages := kit.Parse(files, "console", "/console")
	if m := pages.Missing(); len(m) > 0 {
		t.Fatalf("catalogues incomplete:\n%s", strings.Join(m, "\n"))
	}
	keys := pages.Keys()
	var used []string
	static := regexp.MustCompile(`\.T "([^"]+)"`)
	dynamic := regexp.MustCompile(`printf "(console\.[a-z_]+)\.%s(\.[a-z]+)?"`)
	values := map[string][]string{
		"console.status": strs(dsr.Statuses), "console.type": strs(dsr.Types), "console.regulation": strs(dsr.Regulations),
		"console.basis": strs(dsr.DenialBases), "console.role": strs(apikey.Roles), "console.done": actions,
		"console.job":    {"pending", "running", "succeeded", "failed", "skipped", "waiting"},
		"console.action": actions,
	}
	err := fs.WalkDir(files, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, path)
		for _, m := range static.FindAllStringSubmatch(string(b), -1) {
			used = append(used, m[1])
		}
		for _, m := range dynamic.FindAllStringSubmatch(string(b), -1) {
			vs, ok := values[m[1]]
			if !ok {
				t.Errorf("%s: no values known for %s", path, m[0])
			}
			for _, v := range vs {
				if m[2] == ".confirm" && !confirmed[v] {
					continue
				}
				used = append(used, m[1]+"."+v+m[2])
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The keys the code uses: literal ones, and those it composes.
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	literal := regexp.MustCompile(`"((?:console|common)\.[a-z_.]*[a-z_])"`)
	for _, src := range sources {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
			used = append(used, m[1])
		}
	}
	for i := 1; i <= 12; i++ {
		used = append(used, "console.month."+strconv.Itoa(i))
	}
	for _, u := range []dsr.Unit{dsr.Months, dsr.Days, dsr.BusinessDays} {
		used = append(used, "console.period."+string(u), "console.period."+string(u)+".one")
	}
	for _, k := range used {
		if !keys[k] {
			t.Errorf("key %q used but not in en.json", k)
		}
	}
}

func strs[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}
