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
