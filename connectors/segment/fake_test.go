package segment

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fake is a small Segment Public API: workspace regulations created by
// POST /regulations, read by GET /regulations/{id} and listed by GET
// /regulations, with the bodies the API reference documents
// (https://docs.segmentapis.com/tag/Deletion-and-Suppression). Each read of
// a regulation moves it one step: INITIALIZED, RUNNING, then its final
// status, when its effect on the workspace's data happens. It answers 401
// to a wrong token and, while limited, 429 with the rate-limit headers and
// body of https://docs.segmentapis.com/tag/Rate-Limits.
type fake struct {
	t     testing.TB
	srv   *httptest.Server
	token string

	mu sync.Mutex
	// final is the status a regulation ends in (default FINISHED); for
	// PARTIAL_SUCCESS the first destination finishes and the others fail.
	final Status
	// limited answers every call 429.
	limited bool
	// destinations are those every regulation fans out to.
	destinations []DestinationStatus
	// events counts the events the workspace holds per userId; suppressed
	// the userIds blocked at intake.
	events     map[string]int
	suppressed map[string]bool
	regs       map[string]*fakeRegulation
	order      []string
	// created counts the regulations created.
	created int
}

type fakeRegulation struct {
	reg   Regulation
	typ   RegulationType
	ids   []string
	step  int
	final Status
}

const fakeToken = "sgp_fake_token_0123456789"

// newFake starts a fake workspace with two destinations.
func newFake(t testing.TB) *fake {
	f := &fake{t: t, token: fakeToken, final: StatusFinished,
		destinations: []DestinationStatus{{Name: "Amplitude", ID: "dst_amp_1"}, {Name: "Braze", ID: "dst_braze_2"}},
		events:       map[string]int{}, suppressed: map[string]bool{}, regs: map[string]*fakeRegulation{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /regulations", f.create)
	mux.HandleFunc("GET /regulations", f.list)
	mux.HandleFunc("GET /regulations/{id}", f.get)
	f.srv = httptest.NewServer(f.guard(mux))
	t.Cleanup(f.srv.Close)
	return f
}

// connector returns a connector called name against the fake, with spec
// (its token set when empty).
func (f *fake) connector(t testing.TB, s Spec) *Connector {
	t.Helper()
	if s.Token == "" {
		s.Token = f.token
	}
	c, err := New("analytics", s, f.srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.base = f.srv.URL
	return c
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/vnd.segment.v1+json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, map[string]any{"errors": []map[string]any{{"type": typ, "message": msg}}})
}

// guard checks the token and the rate limit before any endpoint.
func (f *fake) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			writeErr(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized: invalid or missing token")
			return
		}
		f.mu.Lock()
		limited := f.limited
		f.mu.Unlock()
		if limited {
			w.Header().Set("Retry-After", "58")
			w.Header().Set("X-RateLimit-Consumed", "21")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset", "Mon, 30 Nov 2026 15:00:00 +0000")
			writeJSON(w, http.StatusTooManyRequests, map[string]any{"errors": []map[string]any{{"type": "RequestError", "message": "Too many requests",
				"data": map[string]any{"remainingPoints": 0, "msBeforeNext": 57647, "consumedPoints": 21}}}})
			return
		}
		next.ServeHTTP(w, r)
	})
}

var fakeTypes = map[RegulationType]bool{SuppressWithDelete: true, DeleteOnly: true, SuppressOnly: true, Unsuppress: true,
	"DELETE_INTERNAL": true, "SUPPRESS_WITH_DELETE_INTERNAL": true}

func (f *fake) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RegulationType RegulationType `json:"regulationType"`
		SubjectType    string         `json:"subjectType"`
		SubjectIDs     []string       `json:"subjectIds"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, http.StatusBadRequest, "BadRequest", "invalid JSON body")
		return
	}
	switch {
	case !fakeTypes[in.RegulationType]:
		writeErr(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("regulationType %q is not valid", in.RegulationType))
		return
	case in.SubjectType != "USER_ID" && in.SubjectType != "OBJECT_ID":
		writeErr(w, http.StatusBadRequest, "BadRequest", "subjectType must be USER_ID or OBJECT_ID")
		return
	case len(in.SubjectIDs) == 0 || len(in.SubjectIDs) > MaxSubjectIDs:
		writeErr(w, http.StatusBadRequest, "BadRequest", "subjectIds must hold 1 to 5000 ids")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created++
	id := fakeID(f.created)
	reg := &fakeRegulation{typ: in.RegulationType, ids: in.SubjectIDs, final: f.final, reg: Regulation{
		ID: id, WorkspaceID: "ws_fake", OverallStatus: StatusInitialized, CreatedAt: "2026-11-30T14:00:00Z",
		StreamStatus: []StreamStatus{{ID: "src_web_1"}}}}
	for _, d := range f.destinations {
		d.Status = StatusInitialized
		reg.reg.StreamStatus[0].DestinationStatus = append(reg.reg.StreamStatus[0].DestinationStatus, d)
	}
	f.regs[id] = reg
	f.order = append(f.order, id)
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"regulateId": id}})
}

// fakeID returns the n-th regulation id: 27 letters, as Segment's KSUIDs
// are 27 characters (letters only, so that no short identity such as a
// customer id "0" is found in it).
func fakeID(n int) string {
	b := []byte("rgKsuidAAAAAAAAAAAAAAAAAAAA")
	for i := len(b) - 1; n > 0; i-- {
		b[i] = byte('A' + n%26)
		n /= 26
	}
	return string(b)
}

func (f *fake) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	reg, ok := f.regs[r.PathValue("id")]
	if !ok {
		writeErr(w, http.StatusNotFound, "NotFound", "regulation not found")
		return
	}
	f.advance(reg)
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"regulation": reg.reg}})
}

func (f *fake) list(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	regs := []Regulation{}
	for _, id := range f.order {
		regs = append(regs, f.regs[id].reg)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"regulations": regs,
		"pagination": map[string]any{"current": "MA==", "totalEntries": len(regs)}}})
}

// advance moves reg one step, and applies its effect when it ends.
func (f *fake) advance(reg *fakeRegulation) {
	reg.step++
	set := func(s Status) {
		reg.reg.OverallStatus = s
		for i := range reg.reg.StreamStatus[0].DestinationStatus {
			reg.reg.StreamStatus[0].DestinationStatus[i].Status = s
		}
	}
	switch reg.step {
	case 1:
		set(StatusRunning)
		return
	case 2:
	default:
		return // final already
	}
	set(reg.final)
	reg.reg.FinishedAt = "2026-11-30T15:00:00Z"
	ds := reg.reg.StreamStatus[0].DestinationStatus
	if reg.final == StatusPartialSuccess {
		for i := range ds {
			if i > 0 {
				ds[i].Status = StatusFailed
				ds[i].ErrString = "user " + reg.ids[0] + " could not be deleted: 500 from partner"
			} else {
				ds[i].Status = StatusFinished
			}
		}
	}
	if reg.final == StatusFailed || reg.final == StatusNotSupported {
		return // nothing happened
	}
	for _, id := range reg.ids {
		switch reg.typ {
		case SuppressWithDelete:
			delete(f.events, id)
			f.suppressed[id] = true
		case DeleteOnly:
			delete(f.events, id)
		case SuppressOnly:
			f.suppressed[id] = true
		case Unsuppress:
			delete(f.suppressed, id)
		}
	}
}

// state returns the events held for userId and whether it is suppressed.
func (f *fake) state(userID string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.events[userID], f.suppressed[userID]
}

// set changes the fake's switches under its lock.
func (f *fake) set(fn func(f *fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// regulation returns what was created for the regulation called id.
func (f *fake) regulation(id string) (RegulationType, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.regs[strings.TrimSpace(id)]
	if r == nil {
		return "", nil
	}
	return r.typ, r.ids
}
