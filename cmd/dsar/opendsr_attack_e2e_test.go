package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/handlers/callbackapi"
	spec "github.com/dsar-project/dsar/internal/opendsr"
	"github.com/dsar-project/dsar/internal/testenv"
)

// fakeProcessor is an OpenDSR processor written in the test, to misbehave
// against a running controller: it serves each connector of the
// controller under its own path (/NAME/discovery, /NAME/requests), in the
// way mode[NAME] says.
type fakeProcessor struct {
	t      *testing.T
	srv    *http.Server
	base   string
	cert   []byte
	signer spec.Signer

	mu sync.Mutex
	// mode of each path: "" files and answers 201, "500" answers 500,
	// "pii" answers 400 with an error object quoting the subject, "hold"
	// files and then waits for release before answering 201.
	mode     map[string]string
	posts    map[string][]string // srid of each POST, per path
	requests map[string]spec.Request
	status   map[string]string
	held     chan string // a "hold" POST's srid, once filed
	release  chan struct{}
}

// newFakeProcessor starts a processor signing with the key of keyFile,
// whose certificate certFile is, for processor.test.
func newFakeProcessor(t *testing.T, certFile, keyFile string) *fakeProcessor {
	t.Helper()
	cert, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(keyPEM)
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeProcessor{t: t, cert: cert, signer: spec.Signer{Domain: "processor.test", Key: key}, mode: map[string]string{},
		posts: map[string][]string{}, requests: map[string]spec.Request{}, status: map[string]string{},
		held: make(chan string, 4), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{path}/discovery", func(w http.ResponseWriter, r *http.Request) {
		f.answer(w, http.StatusOK, spec.Discovery{APIVersion: "2.0", ProcessorCertificate: f.base + "/cert.pem",
			SupportedSubjectRequestTypes: []string{spec.TypeAccess, spec.TypeErasure},
			SupportedIdentities:          []spec.Identity{{Type: "email", Format: spec.FormatRaw}}})
	})
	mux.HandleFunc("GET /cert.pem", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(f.cert) })
	mux.HandleFunc("POST /{path}/requests", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := spec.ParseRequest(body)
		if err != nil {
			f.answer(w, http.StatusBadRequest, spec.ErrorBody{Error: spec.ErrorObject{Code: 400, Errors: []spec.ErrorDetail{{Reason: "Validation"}}}})
			return
		}
		path := r.PathValue("path")
		f.mu.Lock()
		mode := f.mode[path]
		f.posts[path] = append(f.posts[path], req.SubjectRequestID)
		if mode != "500" && mode != "pii" {
			f.requests[req.SubjectRequestID] = *req
			if f.status[req.SubjectRequestID] == "" {
				f.status[req.SubjectRequestID] = spec.StatusPending
			}
		}
		f.mu.Unlock()
		switch mode {
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
			return
		case "pii":
			email := req.SubjectIdentities[0].Value
			f.answer(w, http.StatusBadRequest, spec.ErrorBody{Error: spec.ErrorObject{Code: 400, Message: "no user " + email,
				Errors: []spec.ErrorDetail{{Domain: "OpenDSR", Reason: strings.ToUpper(email), Message: "no user " + email}}}})
			return
		case "hold":
			f.held <- req.SubjectRequestID
			select {
			case <-f.release:
			case <-r.Context().Done():
			}
		}
		f.answer(w, http.StatusCreated, spec.CreateResponse{ControllerID: "acme", SubjectRequestID: req.SubjectRequestID,
			ExpectedCompletionTime: "2026-12-31T00:00:00Z", ReceivedTime: time.Now().UTC().Format(time.RFC3339)})
	})
	mux.HandleFunc("GET /{path}/requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		st, ok := f.status[r.PathValue("id")]
		f.mu.Unlock()
		if !ok {
			f.answer(w, http.StatusNotFound, spec.ErrorBody{Error: spec.ErrorObject{Code: 404, Errors: []spec.ErrorDetail{{Reason: "NotFound"}}}})
			return
		}
		f.answer(w, http.StatusOK, spec.StatusResponse{ControllerID: "acme", SubjectRequestID: r.PathValue("id"), RequestStatus: st,
			ExpectedCompletionTime: "2026-12-31T00:00:00Z"})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.base = "http://" + l.Addr().String()
	f.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.srv.Serve(l) }()
	t.Cleanup(func() { _ = f.srv.Close() })
	return f
}

// answer writes v, signed.
func (f *fakeProcessor) answer(w http.ResponseWriter, code int, v any) {
	body, _ := json.Marshal(v)
	if err := f.signer.SignHeaders(w.Header(), body); err != nil {
		f.t.Error(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// filed returns the request filed under srid.
func (f *fakeProcessor) filed(srid string) (spec.Request, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.requests[srid]
	return r, ok
}

// postsTo returns the srids POSTed to path.
func (f *fakeProcessor) postsTo(path string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.posts[path]...)
}

// callback is a callback of request srid, signed by s (f's signer when
// zero), reporting status at cbURL.
func (f *fakeProcessor) callback(s spec.Signer, srid, status, cbURL string) (http.Header, []byte) {
	if s.Key == nil {
		s = f.signer
	}
	body, _ := json.Marshal(spec.Callback{ControllerID: "acme", ExpectedCompletionTime: "2026-12-31T00:00:00Z", StatusCallbackURL: cbURL,
		SubjectRequestID: srid, RequestStatus: status})
	h := http.Header{"Content-Type": {"application/json"}}
	if err := s.SignHeaders(h, body); err != nil {
		f.t.Fatal(err)
	}
	return h, body
}

// post sends a callback as the outside world would: no API key.
func post(t *testing.T, url string, h http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// controllerOf starts a controller whose connectors (each name an opendsr
// connector at f's path of the same name) pass requests to f.
func controllerOf(t *testing.T, f *fakeProcessor, dir, ca, redis, queue, addr string, extra []string, names ...string) *proc {
	t.Helper()
	var conf strings.Builder
	conf.WriteString("connectors:\n")
	for _, n := range names {
		fmt.Fprintf(&conf, "  - name: %s\n    type: opendsr\n    url: %s/%s\n    token: ${VENDOR_TOKEN}\n    domain: processor.test\n    ca_file: %s\n    poll_every: 1h\n    allow_insecure: true\n    allow_private: true\n", n, f.base, n, ca)
	}
	// Some connector must take opt-outs.
	conf.WriteString("  - name: mailing_list\n    type: manual\n    owner: ops@example.com\n    system: The printed mailing list\n    instructions:\n      opt_out: Take the customer off the printed mailing list.\n")
	file := filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(file, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(baseEnv(t, filepath.Join(dir, "controller"), redis, queue, testenv.Name("odsr-atk")),
		"DSAR_HTTP_ADDR="+addr, "DSAR_CONNECTORS_FILE="+file, "VENDOR_TOKEN=attack-controller-secret-0123456789")
	return startDSAR(t, append(env, extra...), "dev")
}

// requestJobs reads request id's status and jobs, with their errors.
type attackJob struct {
	Connector string `json:"connector"`
	Status    string `json:"status"`
	Error     string `json:"error"`
}

func readRequest(p *proc, id string) (string, []attackJob) {
	p.t.Helper()
	var r struct {
		Status string      `json:"status"`
		Jobs   []attackJob `json:"jobs"`
	}
	if code := p.call("GET", "/v1/requests/"+id, "", &r); code != http.StatusOK {
		p.t.Fatalf("get %s: %d", id, code)
	}
	return r.Status, r.Jobs
}

// fileApproved files a request of typ for Ada at p and approves it when
// it waits for approval.
func fileApproved(p *proc, typ string) string {
	p.t.Helper()
	var r request
	body := fmt.Sprintf(`{"type":%q,"regulation":"gdpr","subject":{"email":"ada@example.com"}}`, typ)
	if code := p.call("POST", "/v1/requests", body, &r); code != http.StatusAccepted {
		p.t.Fatalf("file %s: %d", typ, code)
	}
	return r.ID
}

// until polls cond every 100ms for up to d, approving p's request id
// whenever it waits for approval.
func until(t *testing.T, p *proc, id string, d time.Duration, what string, cond func(status string, jobs []attackJob) bool) (string, []attackJob) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st, jobs := readRequest(p, id)
		if cond(st, jobs) {
			return st, jobs
		}
		if st == "awaiting_approval" {
			p.call("POST", "/v1/requests/"+id+"/approve", "", nil)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: request %s is %s, jobs %+v\n%s", what, id, st, jobs, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jobIs(jobs []attackJob, connector, status string) bool {
	for _, j := range jobs {
		if j.Connector == connector {
			return j.Status == status
		}
	}
	return false
}

// TestOpenDSRControllerCallbackAttacks sends, through the route of a running
// controller, what an attacker or a confused processor would: callbacks
// unsigned, signed by a key no authority issued, too big, not JSON, a
// valid callback of one job at another job's URL, and a valid one again
// after its job ended. None of them changes a job; the processor's own
// callbacks, under the OpenGDPR header names and with its domain in
// capitals and a trailing dot, are taken.
func TestOpenDSRControllerCallbackAttacks(t *testing.T) {
	skipUnderRace(t)
	r := testenv.RedisServer(t)
	dir := t.TempDir()
	ca, cert, key := processorPKI(t, dir, "processor.test")
	f := newFakeProcessor(t, cert, key)
	ctrl := controllerOf(t, f, dir, ca, r.Addr, testenv.Queue(t, r), freeAddr(t), nil, "vendor")

	// One erasure and one access, each waiting on the processor.
	erasure, access := fileApproved(ctrl, "deletion"), fileApproved(ctrl, "access")
	for _, id := range []string{erasure, access} {
		until(t, ctrl, id, 60*time.Second, "filed", func(_ string, jobs []attackJob) bool { return jobIs(jobs, "vendor", "waiting") })
	}
	posts := f.postsTo("vendor")
	if len(posts) != 2 {
		t.Fatalf("the processor got %d requests; want 2", len(posts))
	}
	type filed struct{ srid, url string }
	var del, acc filed
	for _, srid := range posts {
		req, _ := f.filed(srid)
		if len(req.StatusCallbackURLs) != 1 {
			t.Fatalf("request %s names callbacks %v; want one", srid, req.StatusCallbackURLs)
		}
		fl := filed{srid, req.StatusCallbackURLs[0]}
		if req.SubjectRequestType == spec.TypeErasure {
			del = fl
		} else {
			acc = fl
		}
	}
	if !strings.HasPrefix(del.url, ctrl.base+"/v1/callbacks/") || !strings.Contains(del.url, erasure) {
		t.Fatalf("callback URL %q; want the controller's route for the erasure's job", del.url)
	}

	otherCA := filepath.Join(dir, "other")
	if err := os.Mkdir(otherCA, 0o700); err != nil {
		t.Fatal(err)
	}
	_, _, strayKeyFile := processorPKI(t, otherCA, "processor.test")
	stray := newFakeProcessor(t, filepath.Join(otherCA, "cert.pem"), strayKeyFile).signer

	completed := func() (http.Header, []byte) {
		return f.callback(spec.Signer{}, del.srid, spec.StatusCompleted, del.url)
	}
	for _, tt := range []struct {
		name string
		url  string
		make func() (http.Header, []byte)
		want int
	}{
		{"unsigned", del.url, func() (http.Header, []byte) {
			h, b := completed()
			h.Del(spec.HeaderSignature)
			h.Del(spec.HeaderDomain)
			return h, b
		}, http.StatusForbidden},
		{"signed by a key of another authority", del.url, func() (http.Header, []byte) {
			return f.callback(stray, del.srid, spec.StatusCompleted, del.url)
		}, http.StatusForbidden},
		{"signed for another domain", del.url, func() (http.Header, []byte) {
			h, b := completed()
			h.Set(spec.HeaderDomain, "attacker.test")
			return h, b
		}, http.StatusForbidden},
		{"tampered", del.url, func() (http.Header, []byte) {
			h, b := completed()
			return h, bytes.Replace(b, []byte(spec.StatusCompleted), []byte(spec.StatusCancelled), 1)
		}, http.StatusForbidden},
		{"not JSON", del.url, func() (http.Header, []byte) {
			h, b := completed()
			h.Set("Content-Type", "text/plain")
			return h, b
		}, http.StatusUnsupportedMediaType},
		{"too big", del.url, func() (http.Header, []byte) {
			h, _ := completed()
			return h, bytes.Repeat([]byte(" "), callbackapi.MaxBodyBytes+1)
		}, http.StatusRequestEntityTooLarge},
		// Refused before it is read whole, not after (the route takes no
		// key: 8 MiB read for each forged callback would be the attacker's
		// to spend).
		{"longer than an OpenDSR message", del.url, func() (http.Header, []byte) {
			h, b := completed()
			return h, append(b, bytes.Repeat([]byte(" "), spec.MaxMessage)...)
		}, http.StatusRequestEntityTooLarge},
		{"the erasure's callback at the access's URL", acc.url, completed, http.StatusBadRequest},
		{"the access's callback at the erasure's URL", del.url, func() (http.Header, []byte) {
			return f.callback(spec.Signer{}, acc.srid, spec.StatusCompleted, acc.url)
		}, http.StatusBadRequest},
		{"an unknown job", ctrl.base + "/v1/callbacks/nope:vendor:erase", completed, http.StatusNotFound},
	} {
		h, b := tt.make()
		if got := post(t, tt.url, h, b); got != tt.want {
			t.Errorf("%s: %d; want %d", tt.name, got, tt.want)
		}
	}
	time.Sleep(time.Second) // what a callback taken by mistake would do
	for _, id := range []string{erasure, access} {
		if _, jobs := readRequest(ctrl, id); !jobIs(jobs, "vendor", "waiting") {
			t.Fatalf("after the attacks, request %s's jobs are %+v; want still waiting", id, jobs)
		}
	}

	// The processor's in_progress, under the OpenGDPR names, its domain in
	// capitals with a trailing dot: taken, the job waits on.
	h, b := f.callback(spec.Signer{}, del.srid, spec.StatusInProgress, del.url)
	legacy := http.Header{"Content-Type": {"application/json"}, spec.LegacyHeaderDomain: {"PROCESSOR.TEST."}, spec.LegacyHeaderSignature: {h.Get(spec.HeaderSignature)}}
	if got := post(t, del.url, legacy, b); got != http.StatusAccepted {
		t.Fatalf("the processor's in_progress under the OpenGDPR headers: %d; want 202", got)
	}
	// Completed: the erasure ends (409 while the in_progress is taken up:
	// a processor sends it again, as the service as processor does); sent
	// again after, it changes nothing.
	h, b = completed()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got := post(t, del.url, h, b)
		if got == http.StatusAccepted {
			break
		}
		if got != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("the processor's completed: %d; want 202", got)
		}
	}
	until(t, ctrl, erasure, 30*time.Second, "completed taken", func(st string, _ []attackJob) bool { return st == "completed" })
	h, b = f.callback(spec.Signer{}, del.srid, spec.StatusCancelled, del.url)
	if got := post(t, del.url, h, b); got != http.StatusConflict {
		t.Errorf("a callback after the job ended: %d; want 409", got)
	}
	if st, jobs := readRequest(ctrl, erasure); st != "completed" || !jobIs(jobs, "vendor", "succeeded") {
		t.Errorf("after a late cancelled: %s %+v; want completed", st, jobs)
	}
	ctrl.stop()
	if logs := ctrl.stderr.String(); strings.Contains(strings.ToLower(logs), "ada@example.com") {
		t.Error("the controller's logs hold the subject's email")
	}
}

// TestOpenDSRControllerFaults: a processor answering 500 to every request,
// and one refusing it with an error object that quotes the subject's
// email (in capitals, in its reason code and messages), each end their job
// in front of an agent with the reason (the status, the reason code when
// it is one) once the retries are spent; no part of the email reaches the
// job's error or the controller's logs.
func TestOpenDSRControllerFaults(t *testing.T) {
	skipUnderRace(t)
	r := testenv.RedisServer(t)
	dir := t.TempDir()
	ca, cert, key := processorPKI(t, dir, "processor.test")
	f := newFakeProcessor(t, cert, key)
	f.mode["down"], f.mode["leaky"] = "500", "pii"
	ctrl := controllerOf(t, f, dir, ca, r.Addr, testenv.Queue(t, r), freeAddr(t), []string{"DSAR_JOB_MAX_RETRY=2"}, "down", "leaky")

	id := fileApproved(ctrl, "deletion")
	st, jobs := until(t, ctrl, id, 90*time.Second, "both jobs failed", func(st string, _ []attackJob) bool { return st == "needs_attention" })
	if !jobIs(jobs, "down", "failed") || !jobIs(jobs, "leaky", "failed") {
		t.Fatalf("request %s, jobs %+v; want both opendsr jobs failed", st, jobs)
	}
	if n := len(f.postsTo("down")); n != 3 {
		t.Errorf("the processor answering 500 got %d requests; want 3 (DSAR_JOB_MAX_RETRY=2)", n)
	}
	if n := len(f.postsTo("leaky")); n != 1 {
		t.Errorf("the processor refusing with 400 got %d requests; want 1 (a 400 is not retried)", n)
	}
	for _, j := range jobs {
		switch j.Connector {
		case "down":
			if !strings.Contains(j.Error, "500") {
				t.Errorf("the job of the processor answering 500 failed with %q; want the status named", j.Error)
			}
		case "leaky":
			if !strings.Contains(j.Error, "400") {
				t.Errorf("the job of the processor answering 400 failed with %q; want the status named", j.Error)
			}
		}
		if leaksAda(j.Error) {
			t.Errorf("job %s's error quotes the subject: %q", j.Connector, j.Error)
		}
	}
	ctrl.stop()
	logs := ctrl.stderr.String()
	if !strings.Contains(logs, id) {
		t.Fatal("the controller's logs name no request; the check below would prove nothing")
	}
	if leaksAda(logs) {
		t.Error("the controller's logs quote the subject")
	}
}

// leaksAda reports whether s holds Ada's email, whole or in part.
func leaksAda(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "ada@") || strings.Contains(s, "adaexample") || strings.Contains(s, "@example.com")
}

// TestOpenDSRControllerKilledMidPost: a controller killed (SIGKILL) while
// its request is at the processor, unanswered, sends the same
// subject_request_id again once restarted (the job's lease ran out): the
// processor files one request, and its callback ends the job.
func TestOpenDSRControllerKilledMidPost(t *testing.T) {
	skipUnderRace(t)
	r := testenv.RedisServer(t)
	dir := t.TempDir()
	ca, cert, key := processorPKI(t, dir, "processor.test")
	f := newFakeProcessor(t, cert, key)
	f.mode["vendor"] = "hold"
	queue, addr := testenv.Queue(t, r), freeAddr(t)
	extra := []string{"DSAR_JOB_TIMEOUT=5s", "DSAR_JOB_LEASE=6s"}
	ctrl := controllerOf(t, f, dir, ca, r.Addr, queue, addr, extra, "vendor")
	id := fileApproved(ctrl, "deletion")
	deadline := time.After(60 * time.Second)
	for held := false; !held; {
		select {
		case <-f.held:
			held = true
		case <-deadline:
			t.Fatalf("no request reached the processor\n%s", ctrl.stderr)
		case <-time.After(200 * time.Millisecond):
			if st, _ := readRequest(ctrl, id); st == "awaiting_approval" {
				ctrl.call("POST", "/v1/requests/"+id+"/approve", "", nil)
			}
		}
	}
	if err := ctrl.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-ctrl.exited
	f.mu.Lock()
	f.mode["vendor"] = ""
	f.mu.Unlock()

	ctrl = controllerOf(t, f, dir, ca, r.Addr, queue, addr, extra, "vendor")
	until(t, ctrl, id, 180*time.Second, "sent again", func(_ string, jobs []attackJob) bool { return jobIs(jobs, "vendor", "waiting") })
	posts := f.postsTo("vendor")
	if len(posts) < 2 {
		t.Fatalf("the processor got %d requests; want the first and the one sent again", len(posts))
	}
	for _, srid := range posts[1:] {
		if srid != posts[0] {
			t.Fatalf("the request was sent again under another subject_request_id (%v): the processor files two", posts)
		}
	}
	req, ok := f.filed(posts[0])
	if !ok || len(req.StatusCallbackURLs) != 1 {
		t.Fatalf("the processor holds %+v", req)
	}
	h, b := f.callback(spec.Signer{}, posts[0], spec.StatusCompleted, req.StatusCallbackURLs[0])
	if got := post(t, req.StatusCallbackURLs[0], h, b); got != http.StatusAccepted {
		t.Fatalf("the processor's callback after the restart: %d", got)
	}
	until(t, ctrl, id, 30*time.Second, "completed", func(st string, _ []attackJob) bool { return st == "completed" })
}

// ownRedis starts a redis-server of the test's own, on a port of its own,
// that the test may flush; it is stopped when the test ends.
func ownRedis(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Skipf("no redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
	}
}

// TestOpenDSRControllerRedisFlushed: the controller's Redis loses every key
// (FLUSHDB) while a job waits on the processor; the processor's callback
// still ends the job.
func TestOpenDSRControllerRedisFlushed(t *testing.T) {
	skipUnderRace(t)
	redis := ownRedis(t)
	dir := t.TempDir()
	ca, cert, key := processorPKI(t, dir, "processor.test")
	f := newFakeProcessor(t, cert, key)
	ctrl := controllerOf(t, f, dir, ca, redis, "dsar_flushed", freeAddr(t), nil, "vendor")
	id := fileApproved(ctrl, "deletion")
	until(t, ctrl, id, 60*time.Second, "filed", func(_ string, jobs []attackJob) bool { return jobIs(jobs, "vendor", "waiting") })
	_, port, _ := net.SplitHostPort(redis)
	if out, err := exec.Command("redis-cli", "-p", port, "FLUSHDB").CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("FLUSHDB: %v %s", err, out)
	}
	posts := f.postsTo("vendor")
	req, _ := f.filed(posts[0])
	h, b := f.callback(spec.Signer{}, posts[0], spec.StatusCompleted, req.StatusCallbackURLs[0])
	if got := post(t, req.StatusCallbackURLs[0], h, b); got != http.StatusAccepted {
		t.Fatalf("the processor's callback after FLUSHDB: %d", got)
	}
	until(t, ctrl, id, 60*time.Second, "completed", func(st string, _ []attackJob) bool { return st == "completed" })
}
