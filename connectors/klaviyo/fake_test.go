package klaviyo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// fake is a small Klaviyo REST API, with the bodies of the API reference
// (https://developers.klaviyo.com/en/reference/api_overview): profiles
// listed by GET /api/profiles?filter=equals(email|phone_number,"...") and
// read by GET /api/profiles/{id}, events by GET
// /api/events?filter=equals(profile_id,"..."), both paged pageSize at a
// time through links.next (page[cursor]); data-privacy deletion jobs
// (POST /api/data-privacy-deletion-jobs, 202, no body) that delete every
// profile matching their one identifier, and its events, as a unit after
// lag look-ups of those profiles, and no
// endpoint to read them, as Klaviyo documents none; bulk suppression and
// bulk unsubscribe jobs (202). It answers 401 to a wrong key, 400 without
// a revision header, and while limited 429 with Retry-After (or without,
// when noRetryAfter). Bodies and limits are those of the OpenAPI document
// of revision 2024-10-15 (github.com/klaviyo/openapi, tag 2024-10-15,
// openapi/stable.json): page[size] of a profile look-up 1 to 100 (default
// 20), events 200 a page, at most 100 profiles a bulk job, exactly one
// identifier a deletion job. hook, when set, answers a call instead of
// the fake (it returns false to let the fake answer).
type fake struct {
	srv *httptest.Server
	key string

	mu       sync.Mutex
	pageSize int
	lag      int // look-ups a deleted profile still answers
	limited  bool
	// noRetryAfter leaves Retry-After off a 429.
	noRetryAfter bool
	hook         func(w http.ResponseWriter, r *http.Request) bool
	// deletedBy lists the identifier (email, phone_number, id) of each
	// deletion job filed; jobSizes the number of profiles of each bulk job.
	deletedBy []string
	jobSizes  []int
	// filters are the filter parameters of the look-ups received.
	filters  []string
	profiles map[string]*fakeProfile
	order    []string
	events   map[string][]fakeEvent // by profile id
	lists    map[string]map[string]bool
	// suppressed holds the suppressed emails; deletions the deletion
	// jobs filed.
	suppressed map[string]bool
	deletions  int
	revisions  map[string]bool
}

type fakeProfile struct {
	id, email, phone string
	// deleting is the deletion job that holds the profile.
	deleting *fakeDeletion
}

// fakeDeletion is a deletion job: it finishes as a unit, deleting all its
// profiles, once its profiles have been looked up left times.
type fakeDeletion struct {
	left     int
	profiles []*fakeProfile
}

type fakeEvent struct {
	ID     string
	Metric string
}

const fakeKey = "pk_fake_0123456789abcdef"

// Seeded people.
const (
	adaEmail = "ada@example.com"
	adaPhone = "+14155550101"
	adaID    = "01HADAPROFILE0000000000000"
	bobEmail = "bob@example.com"
	bobID    = "01HBOBPROFILE0000000000000"
	listID   = "Y6nRLr"
)

func newFake(t testing.TB) *fake {
	f := &fake{key: fakeKey, pageSize: 2, lag: 1, profiles: map[string]*fakeProfile{}, events: map[string][]fakeEvent{},
		lists: map[string]map[string]bool{}, suppressed: map[string]bool{}, revisions: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/profiles", f.listProfiles)
	mux.HandleFunc("GET /api/profiles/{id}", f.getProfile)
	mux.HandleFunc("GET /api/profiles/{id}/relationships/lists", f.profileLists)
	mux.HandleFunc("GET /api/events", f.listEvents)
	mux.HandleFunc("POST /api/data-privacy-deletion-jobs", f.deletionJob)
	mux.HandleFunc("POST /api/profile-suppression-bulk-create-jobs", f.suppressJob)
	mux.HandleFunc("POST /api/profile-subscription-bulk-delete-jobs", f.unsubscribeJob)
	f.srv = httptest.NewServer(f.guard(mux))
	t.Cleanup(f.srv.Close)
	return f
}

// seed holds ada (3 events, in the list) and bob (2 events, in the list).
func (f *fake) seed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.add(&fakeProfile{id: adaID, email: adaEmail, phone: adaPhone}, 3)
	f.add(&fakeProfile{id: bobID, email: bobEmail}, 2)
	f.lists[listID] = map[string]bool{adaEmail: true, bobEmail: true}
}

func (f *fake) add(p *fakeProfile, events int) {
	f.profiles[p.id] = p
	f.order = append(f.order, p.id)
	for i := range events {
		f.events[p.id] = append(f.events[p.id], fakeEvent{ID: fmt.Sprintf("%s_ev%d", p.id[:7], i), Metric: "Placed Order"})
	}
}

// records counts a person's profile and events, by profile id.
func (f *fake) records(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.profiles[id]; !ok {
		return 0
	}
	return 1 + len(f.events[id])
}

func (f *fake) set(fn func(*fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// connector returns a connector against the fake with spec s (its key set
// when empty).
func (f *fake) connector(t testing.TB, s Spec) *Connector {
	t.Helper()
	if s.APIKey == "" {
		s.APIKey = f.key
	}
	c, err := New("marketing", s, f.srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.client.Base = f.srv.URL
	return c
}

// writeErrors answers status with Klaviyo's error body: the ClientError
// and ServerError responses of the 2024-10-15 OpenAPI document, errors[]
// of {id, code, title, detail, source: {pointer, parameter}}.
func writeErrors(w http.ResponseWriter, status int, code, title, detail string) {
	w.Header().Set("Content-Type", "application/vnd.api+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{map[string]any{
		"id": "e4eebb08-b055-4a6f-bb13-c8cb69c9eb94", "code": code, "title": title, "detail": detail,
		"source": map[string]any{"pointer": "/data/"},
	}}})
}

func (f *fake) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		limited, noRetryAfter, hook := f.limited, f.noRetryAfter, f.hook
		f.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		if r.Header.Get("Authorization") != "Klaviyo-API-Key "+f.key {
			writeErrors(w, http.StatusUnauthorized, "not_authenticated", "Authentication credentials were not provided.", "Missing or invalid private key.")
			return
		}
		rev := r.Header.Get("revision")
		if rev == "" {
			writeErrors(w, http.StatusBadRequest, "invalid", "Invalid input.", "The revision header is required.")
			return
		}
		if limited {
			if !noRetryAfter {
				w.Header().Set("Retry-After", "7")
			}
			writeErrors(w, http.StatusTooManyRequests, "throttled", "Request was throttled.", "Request was throttled. Expected available in 7 seconds.")
			return
		}
		f.mu.Lock()
		f.revisions[rev] = true
		f.mu.Unlock()
		if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/vnd.api+json" {
			writeErrors(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type.", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

var filterPattern = regexp.MustCompile(`^equals\((email|phone_number|profile_id),"([^"\\]*)"\)$`)

// filter reads the equals filter of r.
func (f *fake) filter(w http.ResponseWriter, r *http.Request, fields ...string) (string, string, bool) {
	f.mu.Lock()
	f.filters = append(f.filters, r.URL.Query().Get("filter"))
	f.mu.Unlock()
	m := filterPattern.FindStringSubmatch(r.URL.Query().Get("filter"))
	if m == nil || !slices.Contains(fields, m[1]) {
		writeErrors(w, http.StatusBadRequest, "invalid", "Invalid filter provided.", "")
		return "", "", false
	}
	return m[1], m[2], true
}

// writePage answers the items from page[cursor] (an offset), size (at
// most pageSize, the test's knob) a page, with links.next while more
// follow.
func (f *fake) writePage(w http.ResponseWriter, r *http.Request, items []any, size int) {
	from, _ := strconv.Atoi(r.URL.Query().Get("page[cursor]"))
	if from < 0 || from > len(items) {
		from = len(items)
	}
	to := min(from+min(size, f.pageSize), len(items))
	links := map[string]any{"self": f.srv.URL + r.URL.String(), "next": nil, "prev": nil}
	if to < len(items) {
		q := r.URL.Query()
		q.Set("page[cursor]", strconv.Itoa(to))
		links["next"] = f.srv.URL + r.URL.Path + "?" + q.Encode()
	}
	w.Header().Set("Content-Type", "application/vnd.api+json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": items[from:to], "links": links})
}

// resource is the profile as JSON:API; with subs, its subscriptions
// (additional-fields[profile]=subscriptions).
func (f *fake) resource(p *fakeProfile, subs bool) map[string]any {
	attrs := map[string]any{"email": p.email, "first_name": "Test", "properties": map[string]any{}}
	if p.phone != "" {
		attrs["phone_number"] = p.phone
	}
	if subs {
		suppression := []any{}
		if f.suppressed[p.email] {
			suppression = append(suppression, map[string]any{"reason": "USER_SUPPRESSED", "timestamp": "2024-10-15T00:00:00+00:00"})
		}
		attrs["subscriptions"] = map[string]any{"email": map[string]any{"marketing": map[string]any{
			"can_receive_email_marketing": len(suppression) == 0, "suppression": suppression}}}
	}
	return map[string]any{"type": "profile", "id": p.id, "attributes": attrs}
}

func (f *fake) listProfiles(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("filter") == ""
	var field, value string
	if !all {
		var ok bool
		if field, value, ok = f.filter(w, r, "email", "phone_number"); !ok {
			return
		}
	}
	size := 20 // get_profiles: page[size] default 20, min 1, max 100
	if v := r.URL.Query().Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeErrors(w, http.StatusBadRequest, "invalid", "Invalid input.", "page[size] must be between 1 and 100")
			return
		}
		size = n
	}
	subs := r.URL.Query().Get("additional-fields[profile]") == "subscriptions"
	f.mu.Lock()
	var items []any
	for _, id := range f.order {
		p, ok := f.profiles[id]
		if ok && (all || (field == "email" && p.email == value) || (field == "phone_number" && p.phone == value)) {
			items = append(items, f.resource(p, subs))
		}
	}
	f.mu.Unlock()
	f.writePage(w, r, items, size)
}

// getProfile answers a profile; a profile being deleted disappears once
// it has been looked up lag times.
func (f *fake) getProfile(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.profiles[r.PathValue("id")]
	if ok && p.deleting != nil {
		if d := p.deleting; d.left <= 0 {
			for _, q := range d.profiles {
				f.remove(q)
			}
			ok = false
		} else {
			d.left--
		}
	}
	if !ok {
		writeErrors(w, http.StatusNotFound, "not_found", "Not found.", "A profile with id "+r.PathValue("id")+" does not exist.")
		return
	}
	w.Header().Set("Content-Type", "application/vnd.api+json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": f.resource(p, false)})
}

// remove deletes p, its events and its list memberships.
func (f *fake) remove(p *fakeProfile) {
	delete(f.profiles, p.id)
	delete(f.events, p.id)
	for _, members := range f.lists {
		delete(members, p.email)
	}
}

func (f *fake) profileLists(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	p, ok := f.profiles[r.PathValue("id")]
	var items []any
	if ok {
		for id, members := range f.lists {
			if members[p.email] {
				items = append(items, map[string]any{"type": "list", "id": id})
			}
		}
	}
	f.mu.Unlock()
	if !ok {
		writeErrors(w, http.StatusNotFound, "not_found", "Not found.", "")
		return
	}
	f.writePage(w, r, items, 100)
}

func (f *fake) listEvents(w http.ResponseWriter, r *http.Request) {
	_, id, ok := f.filter(w, r, "profile_id")
	if !ok {
		return
	}
	f.mu.Lock()
	var items []any
	if _, ok := f.profiles[id]; ok {
		for _, e := range f.events[id] {
			items = append(items, map[string]any{"type": "event", "id": e.ID,
				"attributes": map[string]any{"timestamp": 1700000000, "event_properties": map[string]any{"value": 42}, "datetime": "2023-11-14T22:13:20+00:00"},
				"relationships": map[string]any{
					"profile": map[string]any{"data": map[string]any{"type": "profile", "id": id}},
					"metric":  map[string]any{"data": map[string]any{"type": "metric", "id": "RESQ6t"}},
				}})
		}
	}
	f.mu.Unlock()
	f.writePage(w, r, items, 200) // get_events: "Returns a maximum of 200 events per page"
}

// jobBody is the JSON:API body of the POSTed jobs.
type jobBody struct {
	Data struct {
		Type       string `json:"type"`
		Attributes struct {
			Profile *struct {
				Data struct {
					Type       string            `json:"type"`
					ID         string            `json:"id"`
					Attributes map[string]string `json:"attributes"`
				} `json:"data"`
			} `json:"profile"`
			Profiles *struct {
				Data []struct {
					Type       string         `json:"type"`
					Attributes map[string]any `json:"attributes"`
				} `json:"data"`
			} `json:"profiles"`
		} `json:"attributes"`
		Relationships struct {
			List *struct {
				Data struct {
					Type string `json:"type"`
					ID   string `json:"id"`
				} `json:"data"`
			} `json:"list"`
		} `json:"relationships"`
	} `json:"data"`
}

func readJob(w http.ResponseWriter, r *http.Request, typ string) (jobBody, bool) {
	var b jobBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Data.Type != typ {
		writeErrors(w, http.StatusBadRequest, "invalid", "Invalid input.", "want type "+typ)
		return b, false
	}
	return b, true
}

// deletionJob files a deletion of the profiles matching the one
// identifier given (email, phone_number or id).
func (f *fake) deletionJob(w http.ResponseWriter, r *http.Request) {
	b, ok := readJob(w, r, "data-privacy-deletion-job")
	if !ok {
		return
	}
	p := b.Data.Attributes.Profile
	if p == nil || p.Data.Type != "profile" || (p.Data.ID == "") == (len(p.Data.Attributes) == 0) || len(p.Data.Attributes) > 1 {
		writeErrors(w, http.StatusBadRequest, "invalid", "Invalid input.", "Exactly one identifier is required.")
		return
	}
	f.mu.Lock()
	f.deletions++
	by := "id"
	for k := range p.Data.Attributes {
		by = k
	}
	f.deletedBy = append(f.deletedBy, by)
	job := &fakeDeletion{left: f.lag}
	for _, q := range f.profiles {
		if q.id == p.Data.ID || (p.Data.Attributes["email"] != "" && q.email == p.Data.Attributes["email"]) ||
			(p.Data.Attributes["phone_number"] != "" && q.phone == p.Data.Attributes["phone_number"]) {
			if q.deleting == nil {
				q.deleting = job
				job.profiles = append(job.profiles, q)
			}
		}
	}
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (f *fake) emails(w http.ResponseWriter, b jobBody) ([]string, bool) {
	if b.Data.Attributes.Profiles == nil || len(b.Data.Attributes.Profiles.Data) == 0 {
		writeErrors(w, http.StatusBadRequest, "invalid", "Invalid input.", "profiles are required")
		return nil, false
	}
	if len(b.Data.Attributes.Profiles.Data) > 100 {
		writeErrors(w, http.StatusBadRequest, "invalid", "Invalid input.", "at most 100 profiles a job")
		return nil, false
	}
	f.mu.Lock()
	f.jobSizes = append(f.jobSizes, len(b.Data.Attributes.Profiles.Data))
	f.mu.Unlock()
	var out []string
	for _, p := range b.Data.Attributes.Profiles.Data {
		e, _ := p.Attributes["email"].(string)
		if p.Type != "profile" || e == "" {
			writeErrors(w, http.StatusBadRequest, "invalid", "Invalid input.", "a profile needs an email")
			return nil, false
		}
		out = append(out, e)
	}
	return out, true
}

func (f *fake) suppressJob(w http.ResponseWriter, r *http.Request) {
	b, ok := readJob(w, r, "profile-suppression-bulk-create-job")
	if !ok {
		return
	}
	emails, ok := f.emails(w, b)
	if !ok {
		return
	}
	f.mu.Lock()
	for _, e := range emails {
		f.suppressed[e] = true
	}
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (f *fake) unsubscribeJob(w http.ResponseWriter, r *http.Request) {
	b, ok := readJob(w, r, "profile-subscription-bulk-delete-job")
	if !ok {
		return
	}
	emails, ok := f.emails(w, b)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if l := b.Data.Relationships.List; l != nil {
		members, ok := f.lists[l.Data.ID]
		if !ok || l.Data.Type != "list" {
			writeErrors(w, http.StatusNotFound, "not_found", "Not found.", "no such list")
			return
		}
		for _, e := range emails {
			delete(members, e)
		}
	}
	w.WriteHeader(http.StatusAccepted)
}
