package connectortest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/connectors"
)

// Answer is one way a vendor, or something between it and the connector,
// may answer a write: for a type's test that a write counts done only on
// the status its vendor documents for it. Serve it with Intercept; AnswersBut lists them.
type Answer struct {
	Name        string
	Status      int
	ContentType string
	Body        string
	RetryAfter  string // the Retry-After header; "": none
}

// AnswersBut returns the answers every write is tried with: an HTML page
// with 200 (a proxy's, a captive portal's), other 2xx, a client error, a
// rate limit, server errors; but not documented with no body, which is
// the success of a write documented to answer 204.
func AnswersBut(documented int) []Answer {
	var out []Answer
	for _, a := range answers {
		if a.Status != documented || a.Body != "" {
			out = append(out, a)
		}
	}
	return out
}

var answers = []Answer{
	{Name: "html page 200", Status: http.StatusOK, ContentType: "text/html; charset=utf-8", Body: "<!doctype html><html><body>Welcome</body></html>"},
	{Name: "201 created", Status: http.StatusCreated, ContentType: "application/json", Body: "{}"},
	{Name: "202 accepted", Status: http.StatusAccepted, ContentType: "application/json", Body: "{}"},
	{Name: "204 no content", Status: http.StatusNoContent},
	{Name: "400 bad request", Status: http.StatusBadRequest, ContentType: "application/json", Body: "{}"},
	{Name: "429 too many", Status: http.StatusTooManyRequests, ContentType: "application/json", Body: "{}", RetryAfter: "7"},
	{Name: "500 server error", Status: http.StatusInternalServerError, ContentType: "text/plain", Body: "oops"},
	{Name: "503 unavailable", Status: http.StatusServiceUnavailable, ContentType: "text/html", Body: "<html>down</html>"},
}

// ServeHTTP writes a.
func (a Answer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if a.ContentType != "" {
		w.Header().Set("Content-Type", a.ContentType)
	}
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	w.WriteHeader(a.Status)
	_, _ = w.Write([]byte(a.Body))
}

// Check fails t unless err, what an action whose write was answered a
// returned, is as the worker needs it when the vendor documents
// documented for the write's success:
//   - a itself documented (a 200 page where the vendor answers 200 with
//     JSON): an error of any kind, the write not counted done;
//   - 429: a connectors.RetryAfter;
//   - 5xx: transient (neither permanent nor RetryAfter);
//   - any other (an undocumented 2xx, a 4xx): connectors.Permanent.
//
// Every error but the first kind names a's status.
func (a Answer) Check(t testing.TB, err error, documented int) {
	t.Helper()
	if err == nil {
		t.Errorf("%s where %d is documented: no error; want the write not counted done", a.Name, documented)
		return
	}
	if a.Status == documented {
		return
	}
	_, retry := connectors.RetryDelay(err)
	permanent := errors.Is(err, connectors.ErrPermanent)
	switch {
	case a.Status == http.StatusTooManyRequests && !retry:
		t.Errorf("%s: %v; want a RetryAfter", a.Name, err)
	case a.Status >= 500 && (retry || permanent):
		t.Errorf("%s: %v; want a transient error", a.Name, err)
	case a.Status < 500 && a.Status != http.StatusTooManyRequests && !permanent:
		t.Errorf("%s: %v; want a permanent error", a.Name, err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(a.Status)) {
		t.Errorf("%s: %v; want the error to name the status", a.Name, err)
	}
}

// Write is one write a connector type makes, for Writes.
type Write struct {
	// Name names the write in the test's output.
	Name string
	// Documented is the status the vendor documents for its success.
	Documented int
	// Pick picks the write's requests among the connector's calls.
	Pick func(*http.Request) bool
	// Try seeds a fresh fake with the subject, builds a connector whose
	// base URL is front(the fake's URL), runs the action that makes the
	// write, and returns whether the fake shows the write done and the
	// action's error.
	Try func(t *testing.T, front func(upstream string) string) (done bool, err error)
}

// Writes holds each of ws to its documented status: answered by the fake
// (the documented success), the action succeeds and the write is done;
// answered each of AnswersBut(Documented) instead, the error is as
// Answer.Check wants and quotes none of secrets.
func Writes(t *testing.T, ws []Write, secrets ...string) {
	for _, w := range ws {
		t.Run(w.Name, func(t *testing.T) {
			t.Parallel()
			// The zero Answer passes the write through to the fake.
			for _, a := range append([]Answer{{}}, AnswersBut(w.Documented)...) {
				var h http.Handler
				if a.Status != 0 {
					h = a
				}
				done, err := w.Try(t, func(upstream string) string { return Intercept(t, upstream, w.Pick, h) })
				if a.Status == 0 {
					if err != nil || !done {
						t.Errorf("the documented %d: %v, done %v; want done", w.Documented, err, done)
					}
					continue
				}
				a.Check(t, err, w.Documented)
				for _, s := range secrets {
					if err != nil && strings.Contains(err.Error(), s) {
						t.Errorf("%s: the error quotes %q: %v", a.Name, s, err)
					}
				}
			}
		})
	}
}
