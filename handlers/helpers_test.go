package handlers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
)

// send sends a request with a key (none if empty) and a body of
// contentType (none if empty), and returns the answer with its body read.
func (a *api) send(method, path, key, contentType, body string) (*http.Response, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// do sends a request as send does and decodes a JSON answer into out.
func (a *api) do(method, path, key, contentType, body string, out any) *http.Response {
	a.t.Helper()
	resp, data := a.send(method, path, key, contentType, body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("%s %s: %d: not JSON: %v\n%s", method, path, resp.StatusCode, err, data)
		}
	}
	return resp
}

// filed files a request through the API and returns its id.
func (a *api) filed(body string) string {
	a.t.Helper()
	var r requestJSON
	if resp := a.do("POST", "/v1/requests", agentKey, "application/json", body, &r); resp.StatusCode != http.StatusAccepted {
		a.t.Fatalf("file: %d", resp.StatusCode)
	}
	return r.ID
}

// move moves request id from from to to in the store, as actor "test".
func (a *api) move(id string, from, to dsr.Status) {
	a.t.Helper()
	if _, err := a.store.Transition(context.Background(), id, from, to, dsr.Change{Actor: "test"}); err != nil {
		a.t.Fatal(err)
	}
}

// kinds lists the kinds of the audit events of request id, from the store.
func (a *api) kinds(id string) []string {
	a.t.Helper()
	return testenv.AuditKinds(a.t, a.store.AuditTrail, id)
}

// lastChange is the last change of request id's status, from the store.
func (a *api) lastChange(id string) dsr.Transition {
	a.t.Helper()
	r, err := a.store.Request(context.Background(), id)
	if err != nil {
		a.t.Fatal(err)
	}
	return r.History[len(r.History)-1]
}

// atOnce calls call n times at once and returns what each call returned,
// in the order of the calls.
func atOnce(n int, call func() int) []int {
	out := make([]int, n)
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() { out[i] = call() })
	}
	wg.Wait()
	return out
}
