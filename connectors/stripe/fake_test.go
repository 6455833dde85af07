package stripe

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
)

// fake is a small Stripe account: customers listed by GET /v1/customers
// (email filter) and deleted by DELETE /v1/customers/{id}; their charges,
// invoices and card payment methods listed by GET /v1/charges,
// /v1/invoices and /v1/payment_methods (customer filter); and privacy
// redaction jobs created by POST /v1/privacy/redaction_jobs (idempotent
// by Idempotency-Key), read by GET /v1/privacy/redaction_jobs/{id} and run
// by POST .../run. Lists page with limit, has_more and starting_after,
// pageMax objects a page at most. Objects follow the examples of
// https://docs.stripe.com/api. Each read of a redaction job moves it one
// step: created, validating, then ready (or failed when failValidation is
// set); once run, redacting, then succeeded, when the customers' data is
// redacted. It answers 401 to a wrong key and, while limited, 429 with
// Stripe's rate_limit error body and no Retry-After.
//
// Customers are also found by GET /v1/customers/search?query=email:"..."
// as https://docs.stripe.com/search documents it: the value quoted, \"
// its one escape; an exact match is case-insensitive and word-based (the
// record "contains all of the words from the query in the same order", so
// "ada@example.com" also finds "x.ada@example.com.au"); results page with
// next_page and page; a customer in unindexed is not found yet (search is
// eventually consistent), while the list finds it at once.
//
// Redaction jobs are a public preview: the fake serves /v1/privacy/ only
// under a Stripe-Version ending in .preview, as stripe-go's preview SDKs
// (branch beta) pin one, and answers otherwise as Stripe answers an
// unknown URL (404 invalid_request_error "Unrecognized request URL";
// what Stripe answers exactly there is not documented). The job's objects
// are an expandable field: answered only with expand[]=objects, as the
// API reference's examples show (https://docs.stripe.com/api/privacy/redaction-job).
// hook, when set, answers a call instead of the fake (false: the fake
// answers).
type fake struct {
	t   testing.TB
	srv *httptest.Server
	key string

	mu sync.Mutex
	// pageMax is the most objects a list page holds (Stripe: limit, up
	// to 100).
	pageMax int
	// limited answers every call 429; failValidation makes every
	// redaction job fail validation.
	limited, failValidation bool
	customers               map[string]*fakeCustomer
	charges                 []map[string]any
	invoices                []map[string]any
	methods                 []map[string]any
	jobs                    map[string]*fakeJob
	idem                    map[string]string // Idempotency-Key -> job id
	// versions are the Stripe-Version headers seen, by path prefix
	// (/v1/privacy/ apart).
	versions        map[string]bool
	previewVersions map[string]bool
	calls           int
	unindexed       map[string]bool
	queries         []string
	hook            func(w http.ResponseWriter, r *http.Request) bool
}

type fakeCustomer struct {
	obj      map[string]any
	deleted  bool
	redacted bool
}

type fakeJob struct {
	id        string
	status    string
	customers []string
	ran       bool
}

const fakeKey = "sk_test_fake_0123456789abcdefghij"

func newFake(t testing.TB) *fake {
	f := &fake{t: t, key: fakeKey, pageMax: 100, customers: map[string]*fakeCustomer{}, jobs: map[string]*fakeJob{},
		idem: map[string]string{}, versions: map[string]bool{}, previewVersions: map[string]bool{}, unindexed: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/customers", f.listCustomers)
	mux.HandleFunc("GET /v1/customers/search", f.searchCustomers)
	mux.HandleFunc("DELETE /v1/customers/{id}", f.deleteCustomer)
	mux.HandleFunc("GET /v1/charges", f.lister(func(f *fake) []map[string]any { return f.charges }))
	mux.HandleFunc("GET /v1/invoices", f.lister(func(f *fake) []map[string]any { return f.invoices }))
	mux.HandleFunc("GET /v1/payment_methods", f.lister(func(f *fake) []map[string]any { return f.methods }))
	mux.HandleFunc("POST /v1/privacy/redaction_jobs", f.createJob)
	mux.HandleFunc("GET /v1/privacy/redaction_jobs/{id}", f.getJob)
	mux.HandleFunc("POST /v1/privacy/redaction_jobs/{id}/run", f.runJob)
	f.srv = httptest.NewServer(f.guard(mux))
	t.Cleanup(f.srv.Close)
	return f
}

// connector returns a connector against the fake, with spec (its key set
// when empty).
func (f *fake) connector(t testing.TB, s Spec) *Connector {
	t.Helper()
	if s.SecretKey == "" {
		s.SecretKey = f.key
	}
	c, err := New("payments", s, f.srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.base = f.srv.URL
	return c
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_fake")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, typ, errCode, msg, param string) {
	e := map[string]any{"type": typ, "message": msg}
	if errCode != "" {
		e["code"] = errCode
	}
	if param != "" {
		e["param"] = param
	}
	writeJSON(w, code, map[string]any{"error": e})
}

// guard checks the key and the rate limit before any endpoint.
func (f *fake) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.key {
			writeErr(w, http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided: sk_test_****", "")
			return
		}
		f.mu.Lock()
		f.calls++
		v := r.Header.Get("Stripe-Version")
		preview := strings.HasPrefix(r.URL.Path, "/v1/privacy/")
		if preview {
			f.previewVersions[v] = true
		} else {
			f.versions[v] = true
		}
		limited, hook := f.limited, f.hook
		f.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		if preview && !strings.HasSuffix(v, ".preview") {
			writeErr(w, http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").", "")
			return
		}
		if limited {
			writeErr(w, http.StatusTooManyRequests, "invalid_request_error", "rate_limit", "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// page writes the list of objs for r: limit, starting_after, has_more.
func (f *fake) page(w http.ResponseWriter, r *http.Request, path string, objs []map[string]any) {
	limit := 10
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", "Invalid integer: "+v, "limit")
			return
		}
		limit = n
	}
	limit = min(limit, f.pageMax)
	start := 0
	if after := r.URL.Query().Get("starting_after"); after != "" {
		i := slices.IndexFunc(objs, func(o map[string]any) bool { return o["id"] == after })
		if i < 0 {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "resource_missing", "No such object: '"+after+"'", "starting_after")
			return
		}
		start = i + 1
	}
	end := min(start+limit, len(objs))
	data := append([]map[string]any{}, objs[start:end]...)
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "url": path, "has_more": end < len(objs), "data": data})
}

func (f *fake) listCustomers(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	email, has := r.URL.Query()["email"]
	var objs []map[string]any
	for _, id := range sortedKeys(f.customers) {
		c := f.customers[id]
		if c.deleted || (has && c.obj["email"] != email[0]) {
			continue
		}
		objs = append(objs, c.obj)
	}
	f.page(w, r, "/v1/customers", objs)
}

func (f *fake) deleteCustomer(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := r.PathValue("id")
	c, ok := f.customers[id]
	if !ok || c.deleted {
		writeErr(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such customer: '"+id+"'", "id")
		return
	}
	c.deleted = true
	// Deleting a customer detaches its payment methods; its charges and
	// invoices stay.
	f.methods = slices.DeleteFunc(f.methods, func(m map[string]any) bool { return m["customer"] == id })
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "customer", "deleted": true})
}

// lister lists the objects of all whose customer is the customer
// parameter (and, for payment methods, whose type is type).
func (f *fake) lister(all func(f *fake) []map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		q := r.URL.Query()
		if r.URL.Path == "/v1/payment_methods" && q.Get("type") == "" {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "parameter_missing", "Missing required param: type.", "type")
			return
		}
		var objs []map[string]any
		for _, o := range all(f) {
			if (q.Has("customer") && o["customer"] != q.Get("customer")) || (q.Has("type") && o["type"] != q.Get("type")) {
				continue
			}
			objs = append(objs, o)
		}
		f.page(w, r, r.URL.Path, objs)
	}
}

func (f *fake) jobJSON(j *fakeJob, r *http.Request) map[string]any {
	o := map[string]any{"id": j.id, "object": "privacy.redaction_job", "created": 1764514800, "livemode": false,
		"status": j.status, "validation_behavior": "error"}
	if slices.Contains(r.URL.Query()["expand[]"], "objects") {
		o["objects"] = map[string]any{"customers": j.customers, "charges": nil, "invoices": nil}
	}
	return o
}

// searchQuery is the one query form the fake reads: email:"value", the
// value's quotes escaped as \".
var searchQuery = regexp.MustCompile(`^email:"((?:[^"\\]|\\")*)"$`)

// words splits s as the fake's search index does: lower case, on
// anything but letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func (f *fake) searchCustomers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("query")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	m := searchQuery.FindStringSubmatch(q)
	if m == nil {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid search query.", "query")
		return
	}
	want := words(strings.ReplaceAll(m[1], `\"`, `"`))
	limit := 10
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", "Invalid integer: "+v, "limit")
			return
		}
		limit = n
	}
	limit = min(limit, f.pageMax)
	f.mu.Lock()
	defer f.mu.Unlock()
	var objs []map[string]any
	for _, id := range sortedKeys(f.customers) {
		c := f.customers[id]
		e, _ := c.obj["email"].(string)
		if c.deleted || f.unindexed[id] || len(want) == 0 || !containsRun(words(e), want) {
			continue
		}
		objs = append(objs, c.obj)
	}
	start := 0
	if p := r.URL.Query().Get("page"); p != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(p, "page_"))
		if err != nil || n < 0 || n > len(objs) {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid page.", "page")
			return
		}
		start = n
	}
	end := min(start+limit, len(objs))
	res := map[string]any{"object": "search_result", "url": "/v1/customers/search", "has_more": end < len(objs),
		"data": append([]map[string]any{}, objs[start:end]...), "next_page": nil}
	if end < len(objs) {
		res["next_page"] = fmt.Sprintf("page_%d", end)
	}
	writeJSON(w, http.StatusOK, res)
}

// containsRun reports whether want appears in have, in order, together.
func containsRun(have, want []string) bool {
	for i := 0; i+len(want) <= len(have); i++ {
		if slices.Equal(have[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func (f *fake) createJob(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid request body", "")
		return
	}
	var custs []string
	for k, v := range r.PostForm {
		if k == "validation_behavior" {
			if v[0] != "error" && v[0] != "fix" {
				writeErr(w, http.StatusBadRequest, "invalid_request_error", "", "Invalid validation_behavior", k)
				return
			}
			continue
		}
		if !strings.HasPrefix(k, "objects[customers][") {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "parameter_unknown", "Received unknown parameter: "+k, k)
			return
		}
		custs = append(custs, v...)
	}
	slices.Sort(custs)
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Header.Get("Idempotency-Key")
	if id, ok := f.idem[key]; ok && key != "" {
		writeJSON(w, http.StatusOK, f.jobJSON(f.jobs[id], r))
		return
	}
	if len(custs) == 0 {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "parameter_missing", "Missing required param: objects.", "objects")
		return
	}
	for _, c := range custs {
		if _, ok := f.customers[c]; !ok {
			writeErr(w, http.StatusBadRequest, "invalid_request_error", "resource_missing", "No such customer: '"+c+"'", "objects[customers]")
			return
		}
	}
	j := &fakeJob{id: fmt.Sprintf("prj_fake%04d", len(f.jobs)+1), status: JobCreated, customers: custs}
	f.jobs[j.id] = j
	if key != "" {
		f.idem[key] = j.id
	}
	writeJSON(w, http.StatusOK, f.jobJSON(j, r))
}

func (f *fake) getJob(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[r.PathValue("id")]
	if !ok {
		writeErr(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such redaction job: '"+r.PathValue("id")+"'", "id")
		return
	}
	switch j.status {
	case JobCreated:
		j.status = JobValidating
	case JobValidating:
		j.status = JobReady
		if f.failValidation {
			j.status = JobFailed
		}
	case JobRedacting:
		j.status = JobSucceeded
		for _, id := range j.customers {
			f.redact(id)
		}
	}
	writeJSON(w, http.StatusOK, f.jobJSON(j, r))
}

func (f *fake) runJob(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[r.PathValue("id")]
	if !ok {
		writeErr(w, http.StatusNotFound, "invalid_request_error", "resource_missing", "No such redaction job", "id")
		return
	}
	if j.status != JobReady && !j.ran {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "invalid_state", "The job is not ready", "")
		return
	}
	if !j.ran {
		j.ran, j.status = true, JobRedacting
	}
	writeJSON(w, http.StatusOK, f.jobJSON(j, r))
}

// redact replaces the personal data of customer id and of its related
// objects with "[redacted]", as a succeeded redaction job does.
func (f *fake) redact(id string) {
	c := f.customers[id]
	c.redacted = true
	for _, k := range []string{"email", "name", "phone"} {
		c.obj[k] = "[redacted]"
	}
	for _, list := range [][]map[string]any{f.charges, f.invoices, f.methods} {
		for _, o := range list {
			if o["customer"] != id {
				continue
			}
			for _, k := range []string{"receipt_email", "customer_email", "customer_name"} {
				if _, ok := o[k]; ok {
					o[k] = "[redacted]"
				}
			}
			if bd, ok := o["billing_details"].(map[string]any); ok {
				bd["email"], bd["name"] = "[redacted]", "[redacted]"
			}
		}
	}
}

// person is one customer and what the fake holds for them.
type person struct {
	id, email, name string
	charges         int
}

// add gives the fake customer p with p.charges charges, an invoice and a
// card payment method.
func (f *fake) add(p person) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bd := func() map[string]any {
		return map[string]any{"email": p.email, "name": p.name, "phone": nil,
			"address": map[string]any{"city": nil, "country": "US", "line1": nil, "line2": nil, "postal_code": "94103", "state": nil}}
	}
	f.customers[p.id] = &fakeCustomer{obj: map[string]any{"id": p.id, "object": "customer", "email": p.email, "name": p.name,
		"phone": nil, "created": 1680893993, "livemode": false, "metadata": map[string]any{}}}
	for i := range p.charges {
		f.charges = append(f.charges, map[string]any{"id": fmt.Sprintf("ch_%s_%d", p.id, i), "object": "charge", "amount": 1099 + i,
			"currency": "usd", "customer": p.id, "receipt_email": p.email, "billing_details": bd(), "paid": true, "status": "succeeded",
			"payment_method_details": map[string]any{"type": "card", "card": map[string]any{"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2027}}})
	}
	f.invoices = append(f.invoices, map[string]any{"id": "in_" + p.id, "object": "invoice", "customer": p.id, "customer_email": p.email,
		"customer_name": p.name, "amount_due": 1099, "currency": "usd", "status": "paid"})
	f.methods = append(f.methods, map[string]any{"id": "pm_" + p.id, "object": "payment_method", "type": "card", "customer": p.id,
		"billing_details": bd(), "card": map[string]any{"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2027, "funding": "credit"}})
}

// holds counts the records that still hold email: customers not deleted
// or redacted, and related objects that quote it.
func (f *fake) holds(email string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.customers {
		if !c.deleted && c.obj["email"] == email {
			n++
		}
	}
	for _, m := range f.methods {
		if bd, _ := m["billing_details"].(map[string]any); bd["email"] == email {
			n++
		}
	}
	return n
}

// set changes the fake's switches under its lock.
func (f *fake) set(fn func(f *fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
