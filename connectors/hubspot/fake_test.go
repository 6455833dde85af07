package hubspot

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a small HubSpot behind an httptest server: the endpoints the
// connector calls, with the documented status codes, error bodies, after
// cursors and rate-limit answers, driven by the example bodies of
// HubSpot's docs (CRM v3 objects and gdpr-delete, lists v3 memberships,
// communication preferences v4, the API usage guidelines).
type fake struct {
	mu    sync.Mutex
	token string
	now   func() time.Time

	contacts map[string]*fakeContact // by id
	lists    map[string]*fakeList    // by list id
	statuses map[string][]status     // by lower-case email
	optedOut map[string]bool         // "opted out of all email", by lower-case email
	blocked  map[string]bool         // emails gdpr-delete blocked

	per10s    int         // requests allowed in any 10 seconds (0: no limit)
	dailyLeft int         // requests left today (-1: no limit)
	sent      []time.Time // when each request that passed auth came
	limited   int         // 429s answered
	pageSize  int         // associations per page
	unsubs    []string    // the query of each unsubscribe-all
	scopes    []string    // the private app's
	nextCorr  int

	engagements map[string]map[string]map[string]string // type -> id -> properties
	searches    []searchBody                            // each contacts search's body
	batches     map[string][]int                        // object type -> size of each batch read
	memberPage  int                                     // list members per page at most (0: as asked)
	deletes     []map[string]string                     // each gdpr-delete's body
	searchLoose bool                                    // CONTAINS_TOKEN matches any part of a token
	bigOver     int                                     // a batch read of more than bigOver answers over 4 MiB (0: never)
}

// searchBody is a CRM search request.
type searchBody struct {
	FilterGroups []struct {
		Filters []struct {
			PropertyName string `json:"propertyName"`
			Operator     string `json:"operator"`
			Value        string `json:"value"`
		} `json:"filters"`
	} `json:"filterGroups"`
	Properties []string `json:"properties"`
	Limit      int      `json:"limit"`
	After      string   `json:"after"`
}

type fakeContact struct {
	id, email string
	props     map[string]string
	assocs    map[string][]string // object type -> ids
	created   string
}

type fakeList struct {
	processing string            // MANUAL, SNAPSHOT or DYNAMIC
	members    map[string]string // record id -> firstAddedTimestamp
}

const fakeToken = "pat-eu1-00000000-0000-0000-0000-000000000000"

func newFake(t testing.TB) (*fake, *httptest.Server) {
	t.Helper()
	f := &fake{
		token: fakeToken, now: time.Now,
		contacts: map[string]*fakeContact{}, lists: map[string]*fakeList{},
		statuses: map[string][]status{}, optedOut: map[string]bool{}, blocked: map[string]bool{},
		per10s: 100, dailyLeft: -1, pageSize: 2,
		engagements: map[string]map[string]map[string]string{}, batches: map[string][]int{},
		scopes: []string{"crm.lists.read", "crm.lists.write", "crm.objects.companies.read", "crm.objects.contacts.read",
			"crm.objects.contacts.write", "crm.objects.deals.read", "communication_preferences.read_write", "oauth", "sales-email-read", "tickets"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /crm/v3/objects/contacts/{id}", f.getContact)
	mux.HandleFunc("GET /crm/v3/objects/contacts/{id}/associations/{type}", f.getAssociations)
	mux.HandleFunc("POST /crm/v3/objects/contacts/gdpr-delete", f.gdprDelete)
	mux.HandleFunc("GET /crm/v3/lists/records/{objectType}/{id}/memberships", f.getMemberships)
	mux.HandleFunc("PUT /crm/v3/lists/{listId}/memberships/remove", f.removeMembers)
	mux.HandleFunc("GET /crm/v3/lists/{listId}", f.getList)
	mux.HandleFunc("GET /crm/v3/lists/{listId}/memberships", f.getListMembers)
	mux.HandleFunc("POST /crm/v3/objects/contacts/search", f.searchContacts)
	mux.HandleFunc("POST /crm/v3/objects/{objectType}/batch/read", f.batchRead)
	mux.HandleFunc("POST /oauth/v2/private-apps/get/access-token-info", f.tokenInfo)
	mux.HandleFunc("GET /communication-preferences/v4/statuses/{email}", f.getStatuses)
	mux.HandleFunc("GET /communication-preferences/v4/statuses/{email}/unsubscribe-all", f.getUnsubscribeAll)
	mux.HandleFunc("POST /communication-preferences/v4/statuses/{email}/unsubscribe-all", f.unsubscribeAll)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			f.fail(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
			return
		}
		if !f.admit(w) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv
}

// admit applies the rate limits as HubSpot documents them: the headers on
// every answer, and a 429 with the RATE_LIMIT body once a limit is spent.
func (f *fake) admit(w http.ResponseWriter) bool {
	now := f.now()
	recent := 0
	for _, t := range f.sent {
		if t.After(now.Add(-10 * time.Second)) {
			recent++
		}
	}
	h := w.Header()
	if f.per10s > 0 {
		h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
		h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(f.per10s))
		h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(max(f.per10s-recent-1, 0)))
	}
	if f.dailyLeft >= 0 {
		h.Set("X-HubSpot-RateLimit-Daily-Remaining", strconv.Itoa(max(f.dailyLeft-1, 0)))
	}
	var policy, msg string
	switch {
	case f.dailyLeft == 0:
		policy, msg = "DAILY", "You have reached your daily limit."
	case f.per10s > 0 && recent >= f.per10s:
		policy, msg = "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit."
	}
	if policy != "" {
		f.limited++
		f.nextCorr++
		h.Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"status": "error", "message": msg, "errorType": "RATE_LIMIT",
			"correlationId": fmt.Sprintf("c033cdaa-2c40-4a64-ae48-%012d", f.nextCorr), "policyName": policy,
		})
		return false
	}
	f.sent = append(f.sent, now)
	if f.dailyLeft > 0 {
		f.dailyLeft--
	}
	return true
}

// fail writes HubSpot's error body.
func (f *fake) fail(w http.ResponseWriter, code int, category, message string) {
	f.nextCorr++
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "error", "message": message, "category": category,
		"correlationId": fmt.Sprintf("aeb5f871-7f07-4993-9211-%012d", f.nextCorr),
	})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fake) byEmail(e string) *fakeContact {
	for _, c := range f.contacts {
		if strings.EqualFold(c.email, e) {
			return c
		}
	}
	return nil
}

// getContact: GET /crm/v3/objects/contacts/{contactId}, by id or, with
// idProperty=email, by email; properties and associations as asked.
func (f *fake) getContact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := r.PathValue("id")
	var c *fakeContact
	switch q.Get("idProperty") {
	case "email":
		c = f.byEmail(id)
	case "", "hs_object_id":
		c = f.contacts[id]
	default:
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unknown idProperty")
		return
	}
	if c == nil {
		f.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
		return
	}
	props := map[string]*string{}
	want := []string{"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"} // HubSpot's defaults
	if p := q.Get("properties"); p != "" {
		want = strings.Split(p, ",")
	}
	for _, p := range want {
		if v, ok := c.props[p]; ok {
			props[p] = &v
		} else {
			props[p] = nil
		}
	}
	body := map[string]any{"id": c.id, "properties": props, "createdAt": c.created, "updatedAt": c.created, "archived": false}
	if a := q.Get("associations"); a != "" {
		assocs := map[string]any{}
		for _, typ := range strings.Split(a, ",") {
			if ids := c.assocs[typ]; len(ids) > 0 {
				assocs[typ] = f.assocPage(c, typ, 0, f.pageSize)
			}
		}
		if len(assocs) > 0 {
			body["associations"] = assocs
		}
	}
	reply(w, body)
}

// assocPage is one page of c's associations of typ from offset, with the
// after cursor of the next (an offset, opaque to the client).
func (f *fake) assocPage(c *fakeContact, typ string, from, size int) map[string]any {
	ids := c.assocs[typ]
	end := min(from+size, len(ids))
	results := []map[string]string{}
	for _, id := range ids[min(from, len(ids)):end] {
		results = append(results, map[string]string{"id": id, "type": "contact_to_" + strings.TrimSuffix(strings.TrimSuffix(typ, "s"), "ie")})
	}
	page := map[string]any{"results": results}
	if end < len(ids) {
		after := "MjA%3D" + strconv.Itoa(end) // opaque, and needs escaping
		page["paging"] = map[string]any{"next": map[string]string{
			"after": after, "link": "https://api.hubapi.com/crm/v3/objects/contacts/" + c.id + "/associations/" + typ + "?after=" + after,
		}}
	}
	return page
}

// getAssociations: GET /crm/v3/objects/contacts/{id}/associations/{type}?after=&limit=.
func (f *fake) getAssociations(w http.ResponseWriter, r *http.Request) {
	c := f.contacts[r.PathValue("id")]
	if c == nil {
		f.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.")
		return
	}
	from := 0
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(a, "MjA%3D"))
		if !strings.HasPrefix(a, "MjA%3D") || err != nil {
			f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid after")
			return
		}
		from = n
	}
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit < 1 || limit > 500 {
		limit = 500
	}
	reply(w, f.assocPage(c, r.PathValue("type"), from, min(limit, f.pageSize)))
}

// gdprDelete: POST /crm/v3/objects/contacts/gdpr-delete {objectId,
// idProperty}: 204; the contact, its memberships and statuses go, and its
// email is blocked (an email no contact has is blocked too).
func (f *fake) gdprDelete(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ObjectID   string `json:"objectId"`
		IDProperty string `json:"idProperty"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ObjectID == "" {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON")
		return
	}
	f.deletes = append(f.deletes, map[string]string{"objectId": body.ObjectID, "idProperty": body.IDProperty})
	var c *fakeContact
	if body.IDProperty == "email" {
		c = f.byEmail(body.ObjectID)
		f.blocked[strings.ToLower(body.ObjectID)] = true
	} else {
		if c = f.contacts[body.ObjectID]; c == nil {
			f.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Object not found.")
			return
		}
	}
	if c != nil {
		delete(f.contacts, c.id)
		for _, l := range f.lists {
			delete(l.members, c.id)
		}
		delete(f.statuses, strings.ToLower(c.email))
		delete(f.optedOut, strings.ToLower(c.email))
		f.blocked[strings.ToLower(c.email)] = true
	}
	w.WriteHeader(http.StatusNoContent)
}

// getMemberships: GET /crm/v3/lists/records/{objectTypeId}/{recordId}/memberships.
func (f *fake) getMemberships(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("objectType") != "0-1" {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unsupported object type")
		return
	}
	id := r.PathValue("id")
	results := []map[string]any{}
	ids := make([]string, 0, len(f.lists))
	for lid := range f.lists {
		ids = append(ids, lid)
	}
	slices.Sort(ids)
	for _, lid := range ids {
		if at, ok := f.lists[lid].members[id]; ok {
			results = append(results, map[string]any{"listId": lid, "listVersion": 3, "firstAddedTimestamp": at, "lastAddedTimestamp": at})
		}
	}
	reply(w, map[string]any{"results": results, "total": len(results)})
}

// removeMembers: PUT /crm/v3/lists/{listId}/memberships/remove [ids]:
// only MANUAL and SNAPSHOT lists.
func (f *fake) removeMembers(w http.ResponseWriter, r *http.Request) {
	l := f.lists[r.PathValue("listId")]
	if l == nil {
		f.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "List does not exist")
		return
	}
	if l.processing == "DYNAMIC" {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "List is not MANUAL or SNAPSHOT")
		return
	}
	var ids []string
	if err := json.NewDecoder(r.Body).Decode(&ids); err != nil {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON")
		return
	}
	removed, missing := []string{}, []string{}
	for _, id := range ids {
		if _, ok := l.members[id]; ok {
			delete(l.members, id)
			removed = append(removed, id)
		} else {
			missing = append(missing, id)
		}
	}
	reply(w, map[string]any{"recordIdsRemoved": removed, "recordsIdsMissing": missing})
}

// getStatuses: GET /communication-preferences/v4/statuses/{email}?channel=EMAIL.
func (f *fake) getStatuses(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("channel") != "EMAIL" {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "channel is required")
		return
	}
	results := f.statuses[strings.ToLower(r.PathValue("email"))]
	if results == nil {
		results = []status{}
	}
	now := f.now().UTC().Format(time.RFC3339Nano)
	reply(w, map[string]any{"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now})
}

// getUnsubscribeAll: GET /communication-preferences/v4/statuses/{email}/unsubscribe-all:
// an empty results array unless the contact opted out of all email.
func (f *fake) getUnsubscribeAll(w http.ResponseWriter, r *http.Request) {
	e := r.PathValue("email")
	results := []map[string]any{}
	if f.optedOut[strings.ToLower(e)] {
		results = append(results, map[string]any{
			"subscriberIdString": e, "channel": "EMAIL", "status": "UNSUBSCRIBED",
			"wideStatusType": "PORTAL_WIDE", "businessUnitId": 0, "timestamp": f.now().UTC().Format(time.RFC3339),
		})
	}
	reply(w, map[string]any{"status": "COMPLETE", "results": results})
}

// unsubscribeAll: POST /communication-preferences/v4/statuses/{email}/unsubscribe-all?channel=EMAIL:
// every subscription UNSUBSCRIBED; without verbose, empty results.
func (f *fake) unsubscribeAll(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("channel") != "EMAIL" {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "channel is required")
		return
	}
	f.unsubs = append(f.unsubs, r.URL.RawQuery)
	e := strings.ToLower(r.PathValue("email"))
	f.optedOut[e] = true
	for i := range f.statuses[e] {
		f.statuses[e][i].Status = "UNSUBSCRIBED"
		f.statuses[e][i].Source = "Public API"
	}
	reply(w, map[string]any{"status": "COMPLETE", "results": []any{}})
}

// getList: GET /crm/v3/lists/{listId}.
func (f *fake) getList(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("listId")
	l := f.lists[id]
	if l == nil {
		f.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "List does not exist")
		return
	}
	reply(w, map[string]any{"list": map[string]any{
		"listId": id, "listVersion": 3, "name": "list " + id, "objectTypeId": "0-1",
		"processingType": l.processing, "processingStatus": "COMPLETE", "size": len(l.members),
	}})
}

// tokenInfo: POST /oauth/v2/private-apps/get/access-token-info {tokenKey}.
func (f *fake) tokenInfo(w http.ResponseWriter, r *http.Request) {
	var body struct {
		TokenKey string `json:"tokenKey"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.TokenKey != f.token {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid token")
		return
	}
	reply(w, map[string]any{"userId": 1234567, "hubId": 24680, "appId": 987654, "scopes": f.scopes})
}

// fakeProps returns the properties want of c (HubSpot's defaults when
// none), null for those it lacks.
func fakeProps(c *fakeContact, want []string) map[string]*string {
	if len(want) == 0 {
		want = []string{"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}
	}
	props := map[string]*string{}
	for _, p := range want {
		if v, ok := c.props[p]; ok {
			props[p] = &v
		} else {
			props[p] = nil
		}
	}
	return props
}

// tokens splits a property value as the search's CONTAINS_TOKEN reads it:
// at semicolons, commas and spaces.
func tokens(v string) []string {
	return strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r == ';' || r == ',' || r == ' ' })
}

// searchContacts: POST /crm/v3/objects/contacts/search. filterGroups are
// ORed, a group's filters ANDed; at most 5 groups, 6 filters a group and 18
// in all; limit at most 200 (default 10); after is an offset. EQ compares
// the whole value, CONTAINS_TOKEN one token ("*" a wildcard), both
// case-insensitively. Its 400s quote the value, as HubSpot's messages do.
func (f *fake) searchContacts(w http.ResponseWriter, r *http.Request) {
	var body searchBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON")
		return
	}
	f.searches = append(f.searches, body)
	total := 0
	for _, g := range body.FilterGroups {
		total += len(g.Filters)
		if len(g.Filters) > 6 {
			f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Too many filters in a filter group")
			return
		}
	}
	if len(body.FilterGroups) > 5 || total > 18 {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Too many filter groups or filters")
		return
	}
	if body.Limit > 200 || body.Limit < 0 {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "limit must be at most 200")
		return
	}
	if body.Limit == 0 {
		body.Limit = 10
	}
	from, err := strconv.Atoi("0" + body.After)
	if err != nil {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid after: "+body.After)
		return
	}
	match := func(c *fakeContact, prop, op, value string) (bool, error) {
		v := c.props[prop]
		switch op {
		case "EQ":
			return strings.EqualFold(v, value), nil
		case "CONTAINS_TOKEN":
			for _, t := range tokens(v) {
				if f.searchLoose && strings.Contains(t, strings.ToLower(value)) {
					return true, nil
				}
				if ok, _ := path.Match(strings.ToLower(value), t); ok {
					return true, nil
				}
			}
			return false, nil
		}
		return false, fmt.Errorf("operator %s is not supported for %s = %s", op, prop, value)
	}
	var hits []*fakeContact
	for _, c := range f.contacts {
		any := false
		for _, g := range body.FilterGroups {
			all := true
			for _, fl := range g.Filters {
				ok, err := match(c, fl.PropertyName, fl.Operator, fl.Value)
				if err != nil {
					f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "There was a problem with the request: "+err.Error())
					return
				}
				all = all && ok
			}
			any = any || all
		}
		if any {
			hits = append(hits, c)
		}
	}
	slices.SortFunc(hits, func(a, b *fakeContact) int { return strings.Compare(a.id, b.id) })
	results := []map[string]any{}
	end := min(from+body.Limit, len(hits))
	for _, c := range hits[min(from, len(hits)):end] {
		results = append(results, map[string]any{"id": c.id, "properties": fakeProps(c, body.Properties),
			"createdAt": c.created, "updatedAt": c.created, "archived": false})
	}
	ans := map[string]any{"total": len(hits), "results": results}
	if end < len(hits) {
		ans["paging"] = map[string]any{"next": map[string]string{"after": strconv.Itoa(end), "link": "https://api.hubapi.com/crm/v3/objects/contacts/search?after=" + strconv.Itoa(end)}}
	}
	reply(w, ans)
}

// batchRead: POST /crm/v3/objects/{objectType}/batch/read {properties,
// inputs: [{id}]}: at most 100 inputs; 200 when every id is held, else 207
// with errors (OBJECT_NOT_FOUND, the ids in context).
func (f *fake) batchRead(w http.ResponseWriter, r *http.Request) {
	typ := r.PathValue("objectType")
	var body struct {
		Properties []string `json:"properties"`
		Inputs     []struct {
			ID string `json:"id"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON")
		return
	}
	if len(body.Inputs) > 100 {
		f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "Batch input must be at most 100 items")
		return
	}
	f.batches[typ] = append(f.batches[typ], len(body.Inputs))
	if f.bigOver > 0 && len(body.Inputs) > f.bigOver || f.bigOver < 0 {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		_, _ = w.Write([]byte(`{"status":"COMPLETE","results":[{"id":"1","properties":{"hs_email_html":"`))
		_, _ = w.Write([]byte(strings.Repeat("x", maxBody)))
		_, _ = w.Write([]byte(`"}}]}`))
		return
	}
	results, missing := []map[string]any{}, []string{}
	for _, in := range body.Inputs {
		var props map[string]*string
		switch {
		case typ == "contacts" && f.contacts[in.ID] != nil:
			c := f.contacts[in.ID]
			props = fakeProps(c, body.Properties)
		case f.engagements[typ][in.ID] != nil:
			props = fakeProps(&fakeContact{props: f.engagements[typ][in.ID]}, body.Properties)
		default:
			missing = append(missing, in.ID)
			continue
		}
		results = append(results, map[string]any{"id": in.ID, "properties": props,
			"createdAt": "2024-05-01T09:00:00.000Z", "updatedAt": "2024-05-01T09:00:00.000Z", "archived": false})
	}
	now := f.now().UTC().Format(time.RFC3339Nano)
	ans := map[string]any{"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now}
	if len(missing) > 0 {
		ans["numErrors"] = 1
		ans["errors"] = []map[string]any{{"status": "error", "category": "OBJECT_NOT_FOUND",
			"message": "Could not get some " + strings.ToUpper(typ) + " objects, they may be deleted or not exist.", "context": map[string]any{"ids": missing}}}
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(http.StatusMultiStatus)
		_ = json.NewEncoder(w).Encode(ans)
		return
	}
	reply(w, ans)
}

// getListMembers: GET /crm/v3/lists/{listId}/memberships?after=&limit=:
// members ordered by record id, limit at most 250 (default 100), after the
// last record id of the page before (opaque to the client).
func (f *fake) getListMembers(w http.ResponseWriter, r *http.Request) {
	l := f.lists[r.PathValue("listId")]
	if l == nil {
		f.fail(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "List does not exist")
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 250 {
			f.fail(w, http.StatusBadRequest, "VALIDATION_ERROR", "limit must be between 1 and 250")
			return
		}
		limit = n
	}
	if f.memberPage > 0 {
		limit = min(limit, f.memberPage)
	}
	after := r.URL.Query().Get("after")
	ids := make([]string, 0, len(l.members))
	for id := range l.members {
		if after == "" || byNumber(id, after) > 0 {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, byNumber)
	results := []map[string]any{}
	for _, id := range ids[:min(limit, len(ids))] {
		results = append(results, map[string]any{"recordId": id, "membershipTimestamp": l.members[id]})
	}
	ans := map[string]any{"results": results, "total": len(l.members)}
	if len(ids) > limit {
		last := ids[limit-1]
		ans["paging"] = map[string]any{"next": map[string]string{"after": last,
			"link": "https://api.hubapi.com/crm/v3/lists/" + r.PathValue("listId") + "/memberships?after=" + last}}
	}
	reply(w, ans)
}

// byNumber orders decimal record ids.
func byNumber(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
