package braze_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBraze is a small Braze REST API, as its docs describe it, for one
// workspace: the user profiles, the email subscription state of addresses,
// and subscription groups. It implements
//
//   - POST /users/export/ids: up to 50 external_ids or user_aliases, or one
//     braze_id, email_address or phone; fields_to_export required (as for
//     workspaces onboarded on or after 22 August 2024); answers
//     {"message": "success", "users": [...], "invalid_user_ids": [...]};
//   - POST /users/delete: up to 50 identifiers of exactly one of
//     external_ids, user_aliases, braze_ids; answers {"deleted": n};
//   - POST /email/status: email (a string or up to 50), subscription_state;
//   - GET /subscription/status/get: subscription_group_id, external_id[]
//     (up to 50); answers {"status": {id: "Subscribed"|"Unsubscribed"|"Unknown"}};
//   - POST /v2/subscription/status/set: subscription_groups, each with
//     up to 50 external_ids; answers 201 {"message": "success"}.
//
// Every call needs "Authorization: Bearer <key>" (else 401). Errors are
// {"message": ..., "errors": [...]}. When limited, every call is answered
// 429 with the X-RateLimit-* headers (and Retry-After when retryAfter is
// set).
type fakeBraze struct {
	t   testing.TB
	key string

	mu          sync.Mutex
	users       map[string]map[string]any // by braze_id
	emailStatus map[string]string         // address -> state, for addresses no profile holds
	groups      map[string]map[string]string
	calls       []call
	next        int

	limited    bool
	retryAfter string
	resetAt    time.Time
}

// call is one request the fake took: its path and JSON body (or query).
type call struct {
	path string
	body map[string]json.RawMessage
}

// exportFields are the documented fields_to_export.
var exportFields = []string{
	"apps", "attributed_ad", "attributed_adgroup", "attributed_campaign", "attributed_source",
	"braze_id", "campaigns_received", "canvases_received", "cards_clicked", "country", "created_at",
	"custom_attributes", "custom_events", "devices", "dob", "email", "email_subscribe", "external_id",
	"first_name", "gender", "home_city", "language", "last_coordinates", "last_name", "phone",
	"purchases", "push_subscribe", "push_tokens", "random_bucket", "time_zone", "total_revenue",
	"uninstalled_at", "user_aliases",
}

const fakeKey = "braze-test-rest-key-0000"

// newFake starts a fake Braze and returns it with its URL.
func newFake(t testing.TB) (*fakeBraze, string) {
	t.Helper()
	f := &fakeBraze{t: t, key: fakeKey, users: map[string]map[string]any{}, emailStatus: map[string]string{}, groups: map[string]map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// addUser adds a profile holding fields (external_id, email, ...) and
// returns its braze_id.
func (f *fakeBraze) addUser(fields map[string]any) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	id := fmt.Sprintf("5fbd99bac125ca40511f%04x", f.next)
	u := maps.Clone(fields)
	u["braze_id"] = id
	u["created_at"] = "2020-07-10 15:00:00.000 UTC"
	if email, ok := u["email"].(string); ok {
		if st, ok := f.emailStatus[email]; ok {
			u["email_subscribe"] = st
		} else if _, ok := u["email_subscribe"]; !ok {
			u["email_subscribe"] = "subscribed"
		}
	}
	f.users[id] = u
	return id
}

// subscribe sets the state of external id in subscription group g.
func (f *fakeBraze) subscribe(g, external, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groups[g] == nil {
		f.groups[g] = map[string]string{}
	}
	f.groups[g][external] = state
}

// callsTo returns the calls made to path.
func (f *fakeBraze) callsTo(path string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.path == path {
			out = append(out, c)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string, errs ...string) {
	body := map[string]any{"message": msg}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	writeJSON(w, code, body)
}

func (f *fakeBraze) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("X-RateLimit-Limit", "250")
	if f.limited {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(f.resetAt.Unix(), 10))
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		fail(w, http.StatusTooManyRequests, "Rate limit exceeded")
		return
	}
	w.Header().Set("X-RateLimit-Remaining", "249")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
	if r.Header.Get("Authorization") != "Bearer "+f.key {
		fail(w, http.StatusUnauthorized, "Invalid API key: the key is unknown or missing")
		return
	}
	c := call{path: r.URL.Path, body: map[string]json.RawMessage{}}
	want := http.MethodPost
	if r.URL.Path == "/subscription/status/get" {
		want = http.MethodGet
		for k, v := range r.URL.Query() {
			c.body[k], _ = json.Marshal(v)
		}
	} else if r.Method == http.MethodPost {
		if r.Header.Get("Content-Type") != "application/json" {
			fail(w, http.StatusBadRequest, "Content-Type must be application/json")
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&c.body); err != nil {
			fail(w, http.StatusBadRequest, "Invalid JSON in request body")
			return
		}
	}
	if r.Method != want {
		fail(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	f.calls = append(f.calls, c)
	switch r.URL.Path {
	case "/users/export/ids":
		f.export(w, c.body)
	case "/users/delete":
		f.delete(w, c.body)
	case "/email/status":
		f.emailStatusSet(w, c.body)
	case "/subscription/status/get":
		f.groupStatus(w, r)
	case "/v2/subscription/status/set":
		f.groupSet(w, c.body)
	default:
		fail(w, http.StatusNotFound, "Not found")
	}
}

type alias struct {
	Name  string `json:"alias_name"`
	Label string `json:"alias_label"`
}

// decode reads the listed keys of body strictly: an unknown key is a 400.
func decode(w http.ResponseWriter, body map[string]json.RawMessage, into map[string]any) bool {
	for k, raw := range body {
		dst, ok := into[k]
		if !ok {
			fail(w, http.StatusBadRequest, "Unknown parameter "+k)
			return false
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			fail(w, http.StatusBadRequest, "Invalid "+k)
			return false
		}
	}
	return true
}

func (f *fakeBraze) export(w http.ResponseWriter, body map[string]json.RawMessage) {
	var (
		external, fields              []string
		aliases                       []alias
		brazeID, email, phone, device string
	)
	if !decode(w, body, map[string]any{"external_ids": &external, "user_aliases": &aliases, "braze_id": &brazeID,
		"email_address": &email, "phone": &phone, "device_id": &device, "fields_to_export": &fields}) {
		return
	}
	switch {
	case len(fields) == 0:
		fail(w, http.StatusBadRequest, "fields_to_export is required")
		return
	case len(external) > 50 || len(aliases) > 50:
		fail(w, http.StatusBadRequest, "Too many identifiers: up to 50 external_ids or user_aliases")
		return
	case len(external)+len(aliases)+count(brazeID, email, phone, device) == 0:
		fail(w, http.StatusBadRequest, "No user identifier given")
		return
	}
	for _, fl := range fields {
		if !slices.Contains(exportFields, fl) {
			fail(w, http.StatusBadRequest, "Invalid fields_to_export", fl)
			return
		}
	}
	users := []map[string]any{}
	var invalid []string
	found := map[string]bool{}
	add := func(u map[string]any) {
		id := u["braze_id"].(string)
		if found[id] {
			return
		}
		found[id] = true
		out := map[string]any{}
		for _, fl := range fields {
			if v, ok := u[fl]; ok {
				out[fl] = v
			}
		}
		users = append(users, out)
	}
	for _, id := range external {
		n := f.each(func(u map[string]any) bool { return u["external_id"] == id }, add)
		if n == 0 {
			invalid = append(invalid, id)
		}
	}
	for _, a := range aliases {
		n := f.each(func(u map[string]any) bool { return hasAlias(u, a) }, add)
		if n == 0 {
			invalid = append(invalid, a.Name)
		}
	}
	if brazeID != "" && f.each(func(u map[string]any) bool { return u["braze_id"] == brazeID }, add) == 0 {
		invalid = append(invalid, brazeID)
	}
	if email != "" {
		f.each(func(u map[string]any) bool { s, _ := u["email"].(string); return strings.EqualFold(s, email) }, add)
	}
	if phone != "" {
		f.each(func(u map[string]any) bool { return u["phone"] == phone }, add)
	}
	ans := map[string]any{"message": "success", "users": users}
	if len(invalid) > 0 {
		ans["invalid_user_ids"] = invalid
	}
	writeJSON(w, http.StatusCreated, ans)
}

// each calls add for every profile match accepts, in braze_id order, and
// returns how many.
func (f *fakeBraze) each(match func(map[string]any) bool, add func(map[string]any)) int {
	n := 0
	for _, id := range slices.Sorted(maps.Keys(f.users)) {
		if u := f.users[id]; match(u) {
			add(u)
			n++
		}
	}
	return n
}

func hasAlias(u map[string]any, a alias) bool {
	as, _ := u["user_aliases"].([]alias)
	return slices.Contains(as, a)
}

func count(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

func (f *fakeBraze) delete(w http.ResponseWriter, body map[string]json.RawMessage) {
	var external, brazeIDs []string
	var aliases []alias
	if !decode(w, body, map[string]any{"external_ids": &external, "user_aliases": &aliases, "braze_ids": &brazeIDs}) {
		return
	}
	kinds := 0
	for _, n := range []int{len(external), len(aliases), len(brazeIDs)} {
		if n > 50 {
			fail(w, http.StatusBadRequest, "Up to 50 identifiers can be included in a single request")
			return
		}
		if n > 0 {
			kinds++
		}
	}
	if kinds != 1 {
		fail(w, http.StatusBadRequest, "Only one of external_ids, user_aliases, braze_ids, email_addresses or phone_numbers can be included in a single request")
		return
	}
	var gone []string
	for id, u := range f.users {
		if slices.Contains(brazeIDs, id) || slices.Contains(external, fmt.Sprint(u["external_id"])) || slices.ContainsFunc(aliases, func(a alias) bool { return hasAlias(u, a) }) {
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		if ext, ok := f.users[id]["external_id"].(string); ok {
			for _, g := range f.groups {
				delete(g, ext)
			}
		}
		delete(f.users, id)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"deleted": len(gone), "message": "success"})
}

func (f *fakeBraze) emailStatusSet(w http.ResponseWriter, body map[string]json.RawMessage) {
	var raw json.RawMessage
	var state string
	if !decode(w, body, map[string]any{"email": &raw, "subscription_state": &state}) {
		return
	}
	var emails []string
	if err := json.Unmarshal(raw, &emails); err != nil {
		var one string
		if err := json.Unmarshal(raw, &one); err != nil || one == "" {
			fail(w, http.StatusBadRequest, "email must be a string or an array of strings")
			return
		}
		emails = []string{one}
	}
	switch {
	case len(emails) == 0 || len(emails) > 50:
		fail(w, http.StatusBadRequest, "email: from 1 to 50 addresses")
		return
	case state != "subscribed" && state != "unsubscribed" && state != "opted_in":
		fail(w, http.StatusBadRequest, "subscription_state must be subscribed, unsubscribed or opted_in")
		return
	}
	for _, e := range emails {
		f.emailStatus[e] = state
		for _, u := range f.users {
			if s, _ := u["email"].(string); strings.EqualFold(s, e) {
				u["email_subscribe"] = state
			}
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"message": "success"})
}

func (f *fakeBraze) groupStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	g := q.Get("subscription_group_id")
	ids := q["external_id[]"]
	switch {
	case g == "":
		fail(w, http.StatusBadRequest, "subscription_group_id is required")
		return
	case len(ids) == 0 || len(ids) > 50:
		fail(w, http.StatusBadRequest, "external_id: from 1 to 50")
		return
	}
	status := map[string]string{}
	for _, id := range ids {
		st, ok := f.groups[g][id]
		if !ok {
			st = "Unknown"
		}
		status[id] = st
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": status, "message": "success"})
}

func (f *fakeBraze) groupSet(w http.ResponseWriter, body map[string]json.RawMessage) {
	var groups []struct {
		ID          string   `json:"subscription_group_id"`
		State       string   `json:"subscription_state"`
		ExternalIDs []string `json:"external_ids"`
		Emails      []string `json:"emails"`
		Phones      []string `json:"phones"`
	}
	if !decode(w, body, map[string]any{"subscription_groups": &groups}) {
		return
	}
	for _, g := range groups {
		switch {
		case g.ID == "":
			fail(w, http.StatusBadRequest, "subscription_group_id is required")
			return
		case g.State != "subscribed" && g.State != "unsubscribed":
			fail(w, http.StatusBadRequest, "subscription_state must be subscribed or unsubscribed")
			return
		case len(g.Emails) > 0 && len(g.Phones) > 0:
			fail(w, http.StatusBadRequest, "Either an email address or a phone number should be provided, but not both.")
			return
		case len(g.ExternalIDs) > 50 || len(g.Emails) > 50 || len(g.Phones) > 50:
			fail(w, http.StatusBadRequest, "Up to 50 users per subscription group")
			return
		}
	}
	for _, g := range groups {
		if f.groups[g.ID] == nil {
			f.groups[g.ID] = map[string]string{}
		}
		for _, id := range g.ExternalIDs {
			f.groups[g.ID][id] = strings.ToUpper(g.State[:1]) + g.State[1:]
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"message": "success"})
}

// userJSON is a profile as the fake holds it, for comparisons.
func (f *fakeBraze) userJSON(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if !ok {
		return ""
	}
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(u)
	return b.String()
}
