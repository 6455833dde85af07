package main

// Fault tests (docs/reliability.md): the built binary under a process
// killed with SIGKILL, a Redis that loses everything, a store that stops
// taking writes, connectors that fail, and a burst of requests. Every
// service is on loopback: the connectors are webhook receivers in the test
// process, Redis is the test's or a redis-server of the test's own.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
)

// receiver is a webhook connector's receiver (docs/connectors/webhook.md):
// the system holding the subjects' data, as email -> records held. An
// erasure deletes what it holds of every email of the call and counts it;
// an opt-out sets a flag; both are idempotent, as the contract asks.
type receiver struct {
	name string
	// delay, when set, is slept before each answer: work in flight.
	delay func() time.Duration
	// failRate is the share of calls answered 500 (retried with back-off).
	failRate float64

	mu       sync.Mutex
	rnd      *rand.Rand
	held     map[string]int // email -> records
	optedOut map[string]bool
	calls    map[string]int // webhook-id (the job) -> calls
	failed   int
	answered int
}

func newReceiver(name string, seed uint64) *receiver {
	return &receiver{name: name, rnd: rand.New(rand.NewPCG(seed, 7)), held: map[string]int{}, optedOut: map[string]bool{}, calls: map[string]int{}}
}

// start serves the receiver on loopback until the test ends.
func (rc *receiver) start(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var call struct {
		Action     string `json:"action"`
		Identities []struct {
			Kind  string `json:"kind"`
			Value string `json:"value"`
		} `json:"identities"`
	}
	if err := json.NewDecoder(r.Body).Decode(&call); err != nil || r.Header.Get("webhook-signature") == "" {
		http.Error(w, "bad call", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.calls[r.Header.Get("webhook-id")]++
	fail := rc.failRate > 0 && rc.rnd.Float64() < rc.failRate
	var d time.Duration
	if rc.delay != nil {
		d = rc.delay()
	}
	rc.mu.Unlock()
	time.Sleep(d)
	if fail {
		rc.mu.Lock()
		rc.failed++
		rc.mu.Unlock()
		http.Error(w, rc.name+" is failing", http.StatusInternalServerError)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answered++
	n := 0
	for _, id := range call.Identities {
		if id.Kind != "email" {
			continue
		}
		switch call.Action {
		case "erase":
			n += rc.held[id.Value]
			delete(rc.held, id.Value)
		case "opt_out":
			if !rc.optedOut[id.Value] {
				rc.optedOut[id.Value] = true
				n++
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch call.Action {
	case "export":
		_, _ = io.WriteString(w, `{"collections":[],"export":{}}`)
	default:
		_, _ = fmt.Fprintf(w, `{"collections":[{"name":"contacts","records":%d}]}`, n)
	}
}

// rerun is the number of jobs the receiver was called for more than once.
func (rc *receiver) rerun() (jobs, calls int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.calls {
		calls += n
		if n > 1 {
			jobs++
		}
	}
	return jobs, calls
}

// webhookConnector is a connectors file entry for the receiver at url.
func webhookConnector(name, url string, actions ...string) string {
	s := fmt.Sprintf("  - name: %s\n    type: webhook\n    url: %s\n    secret: ${FAULT_WEBHOOK_SECRET}\n    allow_insecure: true\n    allow_private: true\n    timeout: 5s\n", name, url)
	if len(actions) > 0 {
		s += "    actions: [" + strings.Join(actions, ", ") + "]\n"
	}
	return s
}

// faultEnv is the environment of a dev process with the connectors given,
// deletions unapproved, and short leases and retries.
func faultEnv(t *testing.T, dir string, redis testenv.Redis, queue string, conns ...string) []string {
	t.Helper()
	file := filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(file, []byte("connectors:\n"+strings.Join(conns, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return append(baseEnv(t, dir, redis.Addr, queue, testenv.Name("faults")),
		"DSAR_CONNECTORS_FILE="+file, "FAULT_WEBHOOK_SECRET=fault-test-webhook-secret-0123456789",
		"DSAR_APPROVAL_REQUIRED=none", "DSAR_JOB_TIMEOUT=5s", "DSAR_JOB_LEASE=8s", "DSAR_JOB_RETRY_BASE=50ms")
}

// apiClient talks to a dsar that may die under it: unlike proc.call, an
// exchange that fails is returned as an error, not a test failure.
var apiClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func apiDo(ctx context.Context, method, url, body, idemKey string) (answer, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

func requestBody(typ, regulation, email string) string {
	return fmt.Sprintf(`{"type":%q,"regulation":%q,"subject":{"email":%q}}`, typ, regulation, email)
}

// settled waits until every request of ids is in a final state (completed
// or needs_attention) and returns them by id; it fails the test, listing
// what is left, after timeout.
func settled(t *testing.T, base func() string, ids []string, timeout time.Duration) map[string]request {
	t.Helper()
	deadline := time.Now().Add(timeout)
	begin, lastLog := time.Now(), time.Now()
	out := map[string]request{}
	for {
		for _, id := range ids {
			if _, ok := out[id]; ok {
				continue
			}
			a, err := apiDo(context.Background(), "GET", base()+"/v1/requests/"+id, "", "")
			if err != nil || a.status != http.StatusOK {
				continue // a process restarting
			}
			var r request
			if err := json.Unmarshal(a.body, &r); err != nil {
				t.Fatalf("get %s: %v", id, err)
			}
			if r.Status == "completed" || r.Status == "needs_attention" {
				out[id] = r
			}
		}
		if len(out) == len(ids) {
			return out
		}
		if time.Since(lastLog) > 5*time.Second {
			t.Logf("%s: %d of %d settled", time.Since(begin).Round(time.Second), len(out), len(ids))
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			left := map[string]int{}
			for _, id := range ids {
				if _, ok := out[id]; !ok {
					a, _ := apiDo(context.Background(), "GET", base()+"/v1/requests/"+id, "", "")
					var r request
					_ = json.Unmarshal(a.body, &r)
					left[r.Status]++
				}
			}
			t.Fatalf("%d of %d requests settled after %s; the others by status: %v", len(out), len(ids), timeout, left)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stored lists every request the store holds, by id.
func stored(t *testing.T, base string) map[string]request {
	t.Helper()
	out := map[string]request{}
	cursor := ""
	for {
		a, err := apiDo(context.Background(), "GET", base+"/v1/requests?limit=100"+cursor, "", "")
		if err != nil || a.status != http.StatusOK {
			t.Fatalf("list requests: %v %d %s", err, a.status, a.body)
		}
		var page struct {
			Items      []request `json:"items"`
			NextCursor string    `json:"next_cursor"`
		}
		if err := json.Unmarshal(a.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Items {
			out[r.ID] = r
		}
		if page.NextCursor == "" {
			return out
		}
		cursor = "&cursor=" + page.NextCursor
	}
}

// restartable is a dev process the test kills and starts again on the
// same data directory and queue.
type restartable struct {
	t   *testing.T
	env []string
	mu  sync.Mutex
	p   *proc
}

func (r *restartable) base() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.p.base
}

// kill sends SIGKILL and waits until the process is gone.
func (r *restartable) kill() {
	r.mu.Lock()
	p := r.p
	r.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	<-p.exited
}

func (r *restartable) start() {
	p := startDSAR(r.t, r.env, "dev")
	r.mu.Lock()
	r.p = p
	r.mu.Unlock()
}

// TestFaultProcessKilled: 200 deletions are filed while the process
// (API, workers and scheduler: dsar dev, on the embedded SQLite store) is
// killed with SIGKILL three times, at random moments, and started again.
// Filing goes on through the kills with an Idempotency-Key per deletion,
// retried after a failed exchange. Every deletion must complete, each
// filed once, every subject's data erased at the receiver, and no job
// failed for having run twice (a job cut off by a kill is run again; the
// receiver, idempotent, reports 0 records then).
func TestFaultProcessKilled(t *testing.T) {
	t.Parallel()
	if testenv.RealMongo() {
		t.Skip("DSAR_TEST_MONGO_URI is set: the store is not the embedded one")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 1))
	const n = 200
	crm := newReceiver("crm", seed)
	crm.delay = func() time.Duration { return time.Duration(20+crm.rnd.IntN(100)) * time.Millisecond }
	for i := range n {
		crm.held[fmt.Sprintf("kill%03d@example.com", i)] = 3
	}
	srv := crm.start(t)
	redis := testenv.RedisServer(t)
	if !redis.Real {
		t.Skip("needs a real Redis that outlives the process killed")
	}
	dir := t.TempDir()
	d := &restartable{t: t, env: append(faultEnv(t, dir, redis, testenv.Queue(t, redis), webhookConnector("crm", srv.URL)), "DSAR_WORKER_CONCURRENCY=4")}
	d.start()

	ids := make([]string, n)
	filed := make(chan struct{})
	var retries atomic.Int64
	go func() {
		defer close(filed)
		for i := range n {
			for {
				a, err := apiDo(context.Background(), "POST", d.base()+"/v1/requests", requestBody("deletion", "gdpr", fmt.Sprintf("kill%03d@example.com", i)), fmt.Sprintf("kill-%d", i))
				if err == nil && a.status == http.StatusAccepted {
					var r request
					if json.Unmarshal(a.body, &r) == nil {
						ids[i] = r.ID
						break
					}
				}
				if err == nil && a.status != http.StatusServiceUnavailable {
					t.Errorf("file deletion %d: %d %s", i, a.status, a.body)
					return
				}
				retries.Add(1)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	start := time.Now()
	for k := range 3 {
		time.Sleep(time.Duration(300+rnd.IntN(2500)) * time.Millisecond)
		d.kill()
		t.Logf("kill %d at %s", k+1, time.Since(start).Round(time.Millisecond))
		d.start()
	}
	<-filed
	if t.Failed() {
		return
	}
	t.Logf("all %d filed %s after the start", n, time.Since(start).Round(time.Millisecond))
	got := settled(t, d.base, ids, 3*time.Minute)
	took := time.Since(start)
	for _, id := range ids {
		r := got[id]
		if r.Status != "completed" || len(r.Jobs) != 1 || r.Jobs[0].Status != "succeeded" {
			t.Errorf("deletion %s: %s, jobs %+v", id, r.Status, r.Jobs)
		}
	}
	if all := stored(t, d.base()); len(all) != n {
		t.Errorf("the store holds %d requests, want %d: a retried filing was filed twice", len(all), n)
	}
	crm.mu.Lock()
	left := len(crm.held)
	crm.mu.Unlock()
	if left != 0 {
		t.Errorf("%d subjects still have data at the receiver", left)
	}
	rerun, calls := crm.rerun()
	t.Logf("FIGURES kill: %d deletions, 3 SIGKILLs, %d filing retries, all completed %s after the start; receiver: %d calls, %d jobs called more than once",
		n, retries.Load(), took.Round(time.Millisecond), calls, rerun)
}
