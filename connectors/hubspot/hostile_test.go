package hubspot

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsar-project/dsar/connectors"
)

// hostile is a HubSpot that answers what a test scripts: answer gets each
// request (its path, without the query) and writes the answer; every
// request's path and query is kept.
type hostile struct {
	mu    sync.Mutex
	paths []string
}

func newHostile(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*hostile, *httptest.Server) {
	t.Helper()
	h := &hostile{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.paths = append(h.paths, r.URL.RawPath+"|"+r.URL.Path+"?"+r.URL.RawQuery)
		h.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return h, srv
}

// contactAt answers a contact read with id.
func contactAt(w http.ResponseWriter, id string, assocs map[string]any) {
	body := map[string]any{"id": id, "properties": map[string]string{"email": adaEmail}}
	if assocs != nil {
		body["associations"] = assocs
	}
	reply(w, body)
}

// TestHostileIDs: an id in HubSpot's answer that is not a number (a "/",
// "..", "?" or "#" in it) ends the action with a permanent error before it
// reaches a path or a body: no request names anything but what the
// connector meant.
func TestHostileIDs(t *testing.T) {
	t.Parallel()
	bad := []string{"1/../../lists/101/memberships/remove", "..", "1?archived=true", "1#x", "-1", " 1", "1%2F2"}
	type tc struct {
		name   string
		answer func(id string) func(http.ResponseWriter, *http.Request)
		run    func(*Connector) error
	}
	sub := subject(adaEmail)
	export := func(c *Connector) error { _, err := c.Export(t.Context(), sub, &orderedRecorder{}); return err }
	erase := func(c *Connector) error { _, err := c.Erase(t.Context(), sub); return err }
	list := func(c *Connector) error {
		return c.EachSegmentMember(t.Context(), func(string, connectors.Subject) error { return nil })
	}
	empty := map[string]any{"results": []any{}}
	cases := []tc{
		{"contact read", func(id string) func(http.ResponseWriter, *http.Request) {
			return func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/crm/v3/objects/contacts/") {
					contactAt(w, id, nil)
					return
				}
				reply(w, empty)
			}
		}, erase},
		{"search hit", func(id string) func(http.ResponseWriter, *http.Request) {
			return func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/crm/v3/objects/contacts/search" {
					reply(w, map[string]any{"total": 1, "results": []any{map[string]any{"id": id, "properties": map[string]string{"email": adaEmail}}}})
					return
				}
				http.Error(w, `{"status":"error","category":"OBJECT_NOT_FOUND"}`, http.StatusNotFound)
			}
		}, export},
		{"engagement id", func(id string) func(http.ResponseWriter, *http.Request) {
			return func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/crm/v3/objects/contacts/") {
					contactAt(w, "1", map[string]any{"notes": map[string]any{"results": []any{map[string]string{"id": id, "type": "contact_to_note"}}}})
					return
				}
				reply(w, empty)
			}
		}, export},
		{"list member", func(id string) func(http.ResponseWriter, *http.Request) {
			return func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/crm/v3/lists/101/memberships" {
					reply(w, map[string]any{"results": []any{map[string]string{"recordId": id}}})
					return
				}
				reply(w, empty)
			}
		}, list},
	}
	for _, c := range cases {
		for _, id := range bad {
			h, srv := newHostile(t, c.answer(id))
			conn := testConnector(t, srv, fakeToken)
			err := c.run(conn)
			if !errors.Is(err, connectors.ErrPermanent) {
				t.Errorf("%s %q: %v; want a permanent error", c.name, id, err)
			}
			for _, p := range h.paths {
				if strings.Contains(p, "..") || strings.Contains(p, "memberships/remove") || strings.Contains(p, "gdpr-delete") || strings.Contains(p, "batch/read") {
					t.Errorf("%s %q: a request to %s", c.name, id, p)
				}
			}
		}
	}
}

// TestNextLinkElsewhere: paging follows the after cursor alone; a next
// link naming another host (where the token would go) is never followed.
func TestNextLinkElsewhere(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		reply(w, map[string]any{"results": []any{}})
	}))
	t.Cleanup(other.Close)
	next := func(after string) map[string]any {
		return map[string]any{"next": map[string]string{"after": after, "link": other.URL + "/steal?after=" + after}}
	}
	_, srv := newHostile(t, func(w http.ResponseWriter, r *http.Request) {
		after := r.URL.Query().Get("after")
		switch {
		case r.URL.Path == "/crm/v3/objects/contacts/search":
			reply(w, map[string]any{"total": 0, "results": []any{}, "paging": next("s2")})
		case r.URL.Path == "/crm/v3/objects/contacts/1/associations/notes":
			reply(w, map[string]any{"results": []any{map[string]string{"id": "12"}}})
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/crm/v3/objects/contacts/"):
			contactAt(w, "1", map[string]any{"notes": map[string]any{
				"results": []any{map[string]string{"id": "11"}}, "paging": next("n2")}})
		case r.URL.Path == "/crm/v3/objects/notes/batch/read":
			reply(w, map[string]any{"status": "COMPLETE", "results": []any{map[string]any{"id": "11"}, map[string]any{"id": "12"}}})
		case r.URL.Path == "/crm/v3/lists/101/memberships" && after == "":
			reply(w, map[string]any{"results": []any{map[string]string{"recordId": "1"}}, "paging": next("m2")})
		case r.URL.Path == "/crm/v3/lists/101/memberships":
			reply(w, map[string]any{"results": []any{}})
		case r.URL.Path == "/crm/v3/objects/contacts/batch/read":
			reply(w, map[string]any{"status": "COMPLETE", "results": []any{map[string]any{"id": "1", "properties": map[string]string{"email": adaEmail}}}})
		default:
			reply(w, map[string]any{"results": []any{}})
		}
	})
	c := testConnector(t, srv, fakeToken)
	res, err := c.Export(t.Context(), subject(adaEmail), &orderedRecorder{})
	if err != nil || collCounts(res)["engagements/notes"] != 2 {
		t.Fatalf("Export = %v, %v; want both notes, the second page read by cursor", collCounts(res), err)
	}
	n := 0
	if err := c.EachSegmentMember(t.Context(), func(string, connectors.Subject) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("EachSegmentMember: %d members, %v", n, err)
	}
	if got := elsewhere.Load(); got != 0 {
		t.Errorf("%d requests reached the next link's host", got)
	}
}

// TestCursorLoops: an after cursor HubSpot gives twice (a search, a list's
// members, an engagement's associations) ends in a permanent error after
// a bounded number of requests.
func TestCursorLoops(t *testing.T) {
	t.Parallel()
	loop := map[string]any{"next": map[string]string{"after": "again"}}
	var calls atomic.Int64
	_, srv := newHostile(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 50 {
			http.Error(w, "looping", http.StatusTeapot)
			return
		}
		switch {
		case r.URL.Path == "/crm/v3/objects/contacts/search":
			reply(w, map[string]any{"total": 1, "results": []any{map[string]any{"id": "2", "properties": map[string]string{"email": "x@example.com"}}}, "paging": loop})
		case r.URL.Path == "/crm/v3/lists/101/memberships":
			reply(w, map[string]any{"results": []any{}, "paging": loop})
		default:
			http.Error(w, `{"status":"error","category":"OBJECT_NOT_FOUND"}`, http.StatusNotFound)
		}
	})
	c := testConnector(t, srv, fakeToken)
	_, err := c.Export(t.Context(), subject(adaEmail), &orderedRecorder{})
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "twice") {
		t.Errorf("search cursor loop: %v", err)
	}
	err = c.EachSegmentMember(t.Context(), func(string, connectors.Subject) error { return nil })
	if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "twice") {
		t.Errorf("list members cursor loop: %v", err)
	}
	if n := calls.Load(); n > 10 {
		t.Errorf("%d requests", n)
	}
}

// TestHugeAnswer: an answer that never ends is read to maxBody and no
// further, and fails the action at once (permanent), whatever the call.
func TestHugeAnswer(t *testing.T) {
	t.Parallel()
	endless := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"results":[{"id":"1","properties":{"email":"`))
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for range 200 { // 12.5 MiB, or until the client leaves
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}
	_, srv := newHostile(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/crm/v3/objects/contacts/search", "/crm/v3/lists/101/memberships":
			endless(w, r)
		default:
			http.Error(w, `{"status":"error","category":"OBJECT_NOT_FOUND"}`, http.StatusNotFound)
		}
	})
	c := testConnector(t, srv, fakeToken)
	start := time.Now()
	_, err := c.Erase(t.Context(), subject(adaEmail))
	if !errors.Is(err, connectors.ErrPermanent) || !errors.Is(err, errTooLong) {
		t.Errorf("a search answer without end: %v; want a permanent error", err)
	}
	err = c.EachSegmentMember(t.Context(), func(string, connectors.Subject) error { return nil })
	if !errors.Is(err, connectors.ErrPermanent) || !errors.Is(err, errTooLong) {
		t.Errorf("a members answer without end: %v; want a permanent error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestErrorsQuoteNoEmail: HubSpot's error messages quote the email (a
// search's 400 repeats the filter's value); neither the action's error nor
// the connector's log does, at any level.
func TestErrorsQuoteNoEmail(t *testing.T) {
	t.Parallel()
	const secret = "ada.secret@example.com"
	for _, code := range []int{http.StatusBadRequest, http.StatusConflict, http.StatusInternalServerError, http.StatusForbidden} {
		_, srv := newHostile(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/crm/v3/objects/contacts/search" || r.URL.Path == "/crm/v3/objects/notes/batch/read" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				_, _ = w.Write([]byte(`{"status":"error","message":"There was a problem with the request: hs_additional_emails CONTAINS_TOKEN ` + secret +
					`","category":"VALIDATION_ERROR","correlationId":"c-1","context":{"value":["` + secret + `"]}}`))
				return
			}
			http.Error(w, `{"status":"error","category":"OBJECT_NOT_FOUND","message":"no contact `+secret+`"}`, http.StatusNotFound)
		})
		var logs bytes.Buffer
		c := testConnector(t, srv, fakeToken)
		c.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		for _, run := range []func() error{
			func() error {
				_, err := c.Export(t.Context(), subject(secret), &orderedRecorder{})
				return err
			},
			func() error { _, err := c.Erase(t.Context(), subject(secret)); return err },
			func() error { _, err := c.OptOut(t.Context(), subject(secret)); return err },
		} {
			err := run()
			if err == nil {
				t.Errorf("%d: no error", code)
				continue
			}
			if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "c-1") {
				t.Errorf("%d: error %q; want the correlation id, not the email", code, err)
			}
		}
		if strings.Contains(logs.String(), "secret") {
			t.Errorf("%d: the log quotes the email:\n%s", code, logs.String())
		}
	}
}
