package mailchimp_test

import (
	"cmp"
	"crypto/md5"
	"encoding/hex"
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

// fake is a small Mailchimp Marketing API 3.0: list members (get, put,
// patch, actions/delete-permanent, the list's members by status), member
// tags (get, post), the member activity feed, /ping and /lists/{id}; basic
// or bearer auth against one key; problem-document errors; count/offset
// pages of at most maxCount items; and 429 when more than limit calls are
// in flight at once (Mailchimp's 10 simultaneous connections) or when
// throttled is set. It counts the calls in flight at most.
type fake struct {
	key      string
	limit    int           // simultaneous calls allowed; 0: 10
	maxCount int           // the most items a page holds; 0: 1000
	delay    time.Duration // each call's latency

	mu          sync.Mutex
	lists       map[string]map[string]*fakeMember // list id -> subscriber hash -> member
	inFlight    int
	maxInFlight int
	throttled   bool
}

type fakeMember struct {
	Email    string
	Status   string // subscribed, unsubscribed, cleaned, pending, transactional, archived
	Tags     []string
	Activity []string // activity types, newest first
}

func newFake(t testing.TB, key string, lists ...string) (*fake, string) {
	f := &fake{key: key, lists: map[string]map[string]*fakeMember{}}
	for _, l := range lists {
		f.lists[l] = map[string]*fakeMember{}
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/3.0"
}

func hashOf(email string) string {
	s := md5.Sum([]byte(strings.ToLower(email)))
	return hex.EncodeToString(s[:])
}

// add puts a member in list (the seed).
func (f *fake) add(list string, m fakeMember) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists[list][hashOf(m.Email)] = &m
}

// get returns a copy of the member of list with email, or nil.
func (f *fake) get(list, email string) *fakeMember {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.lists[list][hashOf(email)]
	if m == nil {
		return nil
	}
	c := *m
	c.Tags = append([]string(nil), m.Tags...)
	return &c
}

func (f *fake) problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type":  "https://mailchimp.com/developer/marketing/docs/errors/",
		"title": title, "status": status, "detail": detail,
		"instance": "995c5cb0-3280-4a6e-808b-3b096d0bb219",
	})
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	over := f.inFlight > cmp.Or(f.limit, 10) || f.throttled
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	time.Sleep(f.delay)
	if _, pass, ok := r.BasicAuth(); !(ok && pass == f.key) && r.Header.Get("Authorization") != "Bearer "+f.key {
		f.problem(w, 401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter.")
		return
	}
	if over {
		w.Header().Set("Retry-After", "7")
		f.problem(w, 429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := strings.Split(strings.TrimPrefix(r.URL.Path, "/3.0/"), "/")
	route := r.Method + " " + strings.Join(p, "/")
	if len(p) >= 4 && p[0] == "lists" && p[2] == "members" {
		p[3] = "{hash}"
		route = r.Method + " " + strings.Join(p, "/")
		p[3] = strings.Split(strings.TrimPrefix(r.URL.Path, "/3.0/"), "/")[3]
	}
	var list map[string]*fakeMember
	if len(p) >= 2 && p[0] == "lists" {
		if list = f.lists[p[1]]; list == nil {
			f.problem(w, 404, "Resource Not Found", "The requested resource could not be found.")
			return
		}
	}
	var m *fakeMember
	if len(p) >= 4 {
		m = list[p[3]]
		if (m == nil && r.Method != http.MethodPut) || (m != nil && m.Status == "archived" && r.Method != http.MethodPut && !strings.HasSuffix(route, "delete-permanent")) {
			f.problem(w, 404, "Resource Not Found", "The requested resource could not be found.")
			return
		}
	}
	switch route {
	case "GET ping":
		writeJSON(w, 200, map[string]string{"health_status": "Everything's Chimpy!"})
	case "GET lists/" + p[1]:
		writeJSON(w, 200, map[string]string{"id": p[1], "name": "Newsletter"})
	case "GET lists/" + p[1] + "/members":
		var page []any
		for _, h := range slices.Sorted(maps.Keys(list)) {
			if st := r.URL.Query().Get("status"); st == "" || list[h].Status == st {
				page = append(page, map[string]string{"email_address": list[h].Email})
			}
		}
		f.page(w, r, "members", page)
	case "GET lists/" + p[1] + "/members/{hash}":
		writeJSON(w, 200, memberJSON(p[1], m))
	case "PUT lists/" + p[1] + "/members/{hash}", "PATCH lists/" + p[1] + "/members/{hash}":
		var body struct {
			Email  string `json:"email_address"`
			Status string `json:"status"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || (body.Status != "" && !strings.Contains("subscribed unsubscribed cleaned pending transactional", body.Status)) {
			f.problem(w, 400, "Invalid Resource", "The resource submitted could not be validated.")
			return
		}
		if m == nil { // PUT of a new member
			m = &fakeMember{Email: body.Email}
			list[p[3]] = m
		}
		if body.Status != "" {
			m.Status = body.Status
		}
		writeJSON(w, 200, memberJSON(p[1], m))
	case "POST lists/" + p[1] + "/members/{hash}/actions/delete-permanent":
		delete(list, p[3])
		w.WriteHeader(204)
	case "GET lists/" + p[1] + "/members/{hash}/tags":
		var page []any
		for i, t := range m.Tags {
			page = append(page, map[string]any{"id": 100 + i, "name": t, "date_added": "2026-01-02T03:04:05+00:00"})
		}
		f.page(w, r, "tags", page)
	case "POST lists/" + p[1] + "/members/{hash}/tags":
		var body struct {
			Tags []struct{ Name, Status string } `json:"tags"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Tags) == 0 {
			f.problem(w, 400, "Invalid Resource", "The resource submitted could not be validated.")
			return
		}
		for _, t := range body.Tags {
			var kept []string
			for _, x := range m.Tags {
				if x != t.Name {
					kept = append(kept, x)
				}
			}
			if t.Status == "active" {
				kept = append(kept, t.Name)
			}
			m.Tags = kept
		}
		w.WriteHeader(204)
	case "GET lists/" + p[1] + "/members/{hash}/activity-feed":
		var page []any
		for i, a := range m.Activity {
			page = append(page, map[string]any{"activity_type": a, "created_at_timestamp": fmt.Sprintf("2026-01-%02dT10:00:00+00:00", 28-i), "campaign_id": "42694e9e57"})
		}
		f.page(w, r, "activity", page)
	default:
		f.problem(w, 405, "Method Not Allowed", "The requested method and resource are not compatible.")
	}
}

// page writes items[offset:offset+count] under key, with total_items.
func (f *fake) page(w http.ResponseWriter, r *http.Request, key string, items []any) {
	count, offset := 10, 0
	if v := r.URL.Query().Get("count"); v != "" {
		count, _ = strconv.Atoi(v)
	}
	if v := r.URL.Query().Get("offset"); v != "" {
		offset, _ = strconv.Atoi(v)
	}
	count = min(count, cmp.Or(f.maxCount, 1000))
	end := min(offset+count, len(items))
	out := []any{}
	if offset < end {
		out = items[offset:end]
	}
	writeJSON(w, 200, map[string]any{key: out, "total_items": len(items)})
}

func memberJSON(list string, m *fakeMember) map[string]any {
	tags := []any{}
	for i, t := range m.Tags {
		tags = append(tags, map[string]any{"id": 100 + i, "name": t})
	}
	return map[string]any{
		"id": hashOf(m.Email), "email_address": m.Email, "status": m.Status, "list_id": list,
		"merge_fields": map[string]string{"FNAME": strings.Split(m.Email, "@")[0]},
		"tags":         tags, "tags_count": len(tags),
		"_links": []any{map[string]string{"rel": "self", "href": "https://us21.api.mailchimp.com/3.0/lists/" + list + "/members/" + hashOf(m.Email)}},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
