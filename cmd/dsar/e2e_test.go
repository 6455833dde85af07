package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dsar-project/dsar/handlers/apitest"
	"github.com/dsar-project/dsar/internal/testenv"
)

// binary is the dsar binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if w := flag.Lookup("test.fuzzworker"); w != nil && w.Value.String() == "true" {
		// A fuzzing worker runs a fuzz target alone: no binary needed.
		testenv.Main(m)
		return
	}
	dir, err := os.MkdirTemp("", "dsar-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dsar")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build dsar: %v\n%s", err, out)
		os.Exit(1)
	}
	testenv.Main(m, func() { _ = os.RemoveAll(dir) })
}

const apiKey = "e2e-admin-key-0123456789"

// proc is a running dsar process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	client *http.Client // checks every exchange against the OpenAPI document
	stderr *testenv.Buffer
	stdout *testenv.Buffer // what it printed
	exited chan error
}

// baseEnv is the environment of a dsar process under test: the test's Redis
// and queue, the test MongoDB when DSAR_TEST_MONGO_URI is set (else the
// binary's own embedded FerretDB under dataDir), and short sweep intervals.
func baseEnv(t *testing.T, dataDir string, redisAddr, queue, mongoDB string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DSAR_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"DSAR_HTTP_ADDR=127.0.0.1:0", "DSAR_DATA_DIR="+dataDir, "DSAR_DEV_API_KEY="+apiKey,
		"DSAR_REDIS_ADDR="+redisAddr, "DSAR_QUEUE="+queue, "DSAR_LOG_FORMAT=json",
		"DSAR_SWEEP_EVERY=1s", "DSAR_SWEEP_GRACE=2s", "DSAR_JOB_RETRY_BASE=100ms",
	)
	if testenv.RealMongo() {
		env = append(env, "DSAR_MONGO_URI="+testenv.MongoURI(t), "DSAR_MONGO_DB="+mongoDB)
	}
	return env
}

var apiLine = regexp.MustCompile(`API on (https?://\S+)`)

// startDSAR runs `dsar args...` and waits until its API listens.
func startDSAR(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, client: apitest.Client(t), stderr: &testenv.Buffer{}, stdout: &testenv.Buffer{}, exited: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = fmt.Fprintln(p.stdout, sc.Text())
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	select {
	case p.base = <-found:
	case err := <-p.exited:
		t.Fatalf("dsar exited at start: %v\n%s", err, p.stderr)
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("dsar did not start listening\n%s", p.stderr)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM and checks dsar exits cleanly.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			p.t.Errorf("dsar exited with %v after SIGTERM\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		p.t.Errorf("dsar did not stop within 30s of SIGTERM")
	}
}

// call sends a request to the API with the admin key and decodes a JSON
// answer into out (when not nil); it returns the status.
func (p *proc) call(method, path, body string, out any) int {
	p.t.Helper()
	resp := p.raw(method, path, body)
	if out != nil {
		if err := json.Unmarshal([]byte(resp.body), out); err != nil {
			p.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.status
}

type rawResponse struct {
	status int
	header http.Header
	body   string
}

// raw sends a request with the admin key, body (if any) as JSON, and
// returns the answer whole.
func (p *proc) raw(method, path, body string) rawResponse {
	p.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.base+path, r)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := p.client.Do(req.WithContext(ctx))
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

type job struct {
	Connector   string `json:"connector"`
	Action      string `json:"action"`
	Status      string `json:"status"`
	Records     int64  `json:"records"`
	Collections []struct {
		Name    string `json:"name"`
		Records int64  `json:"records"`
		Outcome string `json:"outcome"`
	} `json:"collections"`
}

type request struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Type   string `json:"type"`
	Jobs   []job  `json:"jobs"`
}

// file files a request and waits until it is completed.
func (p *proc) file(typ, regulation, email string) request {
	p.t.Helper()
	var r request
	body := fmt.Sprintf(`{"type":%q,"regulation":%q,"subject":{"email":%q}}`, typ, regulation, email)
	if code := p.call("POST", "/v1/requests", body, &r); code != http.StatusAccepted {
		p.t.Fatalf("file %s: status %d", typ, code)
	}
	return p.waitCompleted(r.ID)
}

func (p *proc) waitCompleted(id string) request {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var r request
		if code := p.call("GET", "/v1/requests/"+id, "", &r); code != http.StatusOK {
			p.t.Fatalf("get %s: status %d", id, code)
		}
		if r.Status == "completed" {
			return r
		}
		if r.Status == "awaiting_approval" {
			// Deletions wait for an agent's approval by default.
			if code := p.call("POST", "/v1/requests/"+id+"/approve", "", nil); code != http.StatusOK {
				p.t.Fatalf("approve %s: %d", id, code)
			}
		}
		if r.Status == "needs_attention" || time.Now().After(deadline) {
			p.t.Fatalf("request %s is %s: %+v\n%s", id, r.Status, r, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// export downloads an access request's zip and returns its files.
func (p *proc) export(id string) map[string][]byte {
	p.t.Helper()
	resp := p.raw("GET", "/v1/requests/"+id+"/export", "")
	if resp.status != http.StatusOK || resp.header.Get("Content-Type") != "application/zip" {
		p.t.Fatalf("export: %d %s: %s", resp.status, resp.header.Get("Content-Type"), resp.body)
	}
	data := []byte(resp.body)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		p.t.Fatalf("export is not a zip: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			p.t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		_ = rc.Close()
	}
	return files
}

func records(t *testing.T, files map[string][]byte, name string) []map[string]any {
	t.Helper()
	data, ok := files[name]
	if !ok {
		return nil
	}
	var out []map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s is not a JSON array: %v\n%s", name, err, data)
	}
	return out
}

func total(r request) int64 {
	var n int64
	for _, j := range r.Jobs {
		n += j.Records
	}
	return n
}

// TestDemoShop drives `dsar dev --demo` over HTTP as a newcomer would: an
// access request exports the seeded records, a deletion erases them, the
// same deletion again completes with 0 records, an opt-out takes the person
// out of every segment; then a restart keeps every request.
func TestDemoShop(t *testing.T) {
	r := testenv.RedisServer(t)
	queue := testenv.Queue(t, r)
	dataDir := t.TempDir()
	env := baseEnv(t, dataDir, r.Addr, queue, testenv.Name("e2e"))
	p := startDSAR(t, env, "dev", "--demo")
	// It prints where its pages are, and they answer there.
	for _, want := range []string{"Privacy portal: " + p.base + "/privacy\n", "Agent console:  " + p.base + "/console "} {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.stdout.String(), want) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(p.stdout.String(), want) {
			t.Errorf("dev --demo did not print %q:\n%s", want, p.stdout)
		}
	}
	for _, page := range []string{"/privacy", "/console/sign-in"} {
		resp, err := http.Get(p.base + page)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s", page, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	// Access: Ada's customer record, her two orders (found through the
	// customer id resolved from her email), her ticket, her memberships.
	access := p.file("access", "gdpr", "ada@example.com")
	files := p.export(access.ID)
	var manifest struct {
		Request    struct{ ID string } `json:"request"`
		Connectors []struct {
			Name    string `json:"name"`
			Records int64  `json:"records"`
		} `json:"connectors"`
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if manifest.Request.ID != access.ID || len(manifest.Connectors) != 1 || manifest.Connectors[0].Records != 6 {
		t.Errorf("manifest = %+v, want request %s with 6 records from shop", manifest, access.ID)
	}
	if got := records(t, files, "shop/customers.json"); len(got) != 1 || got[0]["email"] != "ada@example.com" {
		t.Errorf("customers.json = %v", got)
	}
	// The access package: the demo file's data map reached summary.json
	// through the export job; the CSV and the page are beside the JSON.
	var summary struct {
		Systems []struct {
			Name       string `json:"name"`
			DataMap    string `json:"data_map"`
			LegalBasis string `json:"legal_basis"`
		} `json:"systems"`
	}
	if err := json.Unmarshal(files["summary.json"], &summary); err != nil || len(summary.Systems) != 1 ||
		summary.Systems[0].DataMap != "declared" || summary.Systems[0].LegalBasis != "contract" {
		t.Errorf("summary.json = %+v, %v; want the shop's declared data map", summary, err)
	}
	if !bytes.Contains(files["shop/orders.csv"], []byte("_id,customer_id,items,total,shipping_address")) ||
		!bytes.Contains(files["index.html"], []byte("Selling and delivering orders")) {
		t.Errorf("the package lacks its CSV or its page: orders.csv %q", files["shop/orders.csv"])
	}
	if got := records(t, files, "shop/orders.json"); len(got) != 2 {
		t.Errorf("orders.json has %d records, want 2", len(got))
	}
	segments := records(t, files, "shop/segments.json")
	if len(segments) != 2 {
		t.Errorf("segments.json has %d records, want Ada's 2 memberships", len(segments))
	}
	for _, s := range segments {
		if m, _ := s["members"].([]any); len(m) != 1 || m[0] != "ada@example.com" {
			t.Errorf("segment %v discloses other members", s)
		}
	}

	// Deletion: Grace's data goes; the same deletion again finds nothing.
	del := p.file("deletion", "gdpr", "grace@example.com")
	if n := total(del); n != 4 {
		t.Errorf("deletion erased %d records, want 4 (customer masked, order masked, ticket deleted, segment pulled): %+v", n, del.Jobs)
	}
	again := p.file("deletion", "gdpr", "grace@example.com")
	if n := total(again); n != 0 || len(again.Jobs) != 1 || again.Jobs[0].Status != "succeeded" {
		t.Errorf("second deletion: %d records, jobs %+v; want a succeeded job with 0", n, again.Jobs)
	}
	after := p.file("access", "gdpr", "grace@example.com")
	if n := total(after); n != 0 {
		t.Errorf("access after deletion found %d records, want 0: %+v", n, after.Jobs)
	}

	// Opt-out: Alan leaves every segment and his marketing flag is cleared.
	opt := p.file("opt_out", "ccpa", "alan@example.com")
	if n := total(opt); n != 3 {
		t.Errorf("opt-out changed %d records, want 3 (flag set, two segments pulled): %+v", n, opt.Jobs)
	}
	alan := p.export(p.file("access", "ccpa", "alan@example.com").ID)
	if got := records(t, alan, "shop/segments.json"); len(got) != 0 {
		t.Errorf("Alan is still in segments: %v", got)
	}
	if got := records(t, alan, "shop/customers.json"); len(got) != 1 || got[0]["marketing_opt_in"] != false {
		t.Errorf("Alan's customer record: %v", got)
	}

	// Without DSAR_SMTP_HOST, dev writes emails to the outbox folder.
	req, _ := http.NewRequest("POST", p.base+"/v1/portal/requests", strings.NewReader(`{"type":"opt_out","regulation":"ccpa","subject":{"email":"grace@example.com"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var oo struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&oo)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("portal opt-out: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if emls, _ := filepath.Glob(filepath.Join(dataDir, "outbox", "*-"+oo.ID+"-receipt.eml")); len(emls) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no receipt written to the outbox")
		}
		time.Sleep(100 * time.Millisecond)
	}

	var page struct {
		Items []request `json:"items"`
	}
	if code := p.call("GET", "/v1/requests?type=deletion", "", &page); code != http.StatusOK || len(page.Items) != 2 {
		t.Errorf("list deletions: %d, %d items", code, len(page.Items))
	}

	// Restart on the same data directory: every request is still there.
	p.stop()
	if strings.Contains(p.stderr.String(), "@example.com") {
		t.Errorf("the log holds an email address:\n%s", p.stderr)
	}
	p2 := startDSAR(t, env, "dev")
	var back request
	if code := p2.call("GET", "/v1/requests/"+access.ID, "", &back); code != http.StatusOK || back.Status != "completed" {
		t.Errorf("after restart: %d, %+v", code, back)
	}
	if got := records(t, p2.export(access.ID), "shop/orders.json"); len(got) != 2 {
		t.Errorf("export after restart has %d orders", len(got))
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	run := func(env []string, args ...string) (string, int) {
		// A command that should have exited but serves is killed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	clean := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	noConnectors := filepath.Join(t.TempDir(), "connectors.yaml")
	if err := os.WriteFile(noConnectors, []byte("connectors: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := testenv.RedisServer(t)
	emptyFile := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")), "DSAR_CONNECTORS_FILE="+noConnectors)
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     []string
		dontWant []string
	}{
		{"usage", clean, []string{"--help"}, 0, []string{"dev", "serve", "worker", "scheduler"}, nil},
		{"dev help", clean, []string{"dev", "--help"}, 0, []string{"-demo", "DSAR_MONGO_URI", "DSAR_DEV_API_KEY", "DSAR_DATA_DIR"}, nil},
		{"serve help", clean, []string{"serve", "--help"}, 0, []string{"DSAR_HTTP_ADDR", "DSAR_API_KEYS"}, []string{"DSAR_DEV_API_KEY", "-demo"}},
		{"scheduler help", clean, []string{"scheduler", "--help"}, 0, []string{"DSAR_REDIS_ADDR", "DSAR_SWEEP_EVERY"}, []string{"DSAR_MONGO_URI"}},
		{"unknown command", clean, []string{"frobnicate"}, 1, []string{`unknown command "frobnicate"`}, nil},
		{"a new master key, as the settings' help says", clean, []string{"keys", "new"}, 0, []string{":"}, nil},
		{"bad setting", append(clean, "DSAR_HTTP_ADDR=8080", "DSAR_JOB_MAX_RETRY=x"), []string{"dev"}, 1, []string{"DSAR_HTTP_ADDR", "DSAR_JOB_MAX_RETRY"}, nil},
		{"serve needs a real Redis, the key and API keys (the store may be the embedded one)", clean, []string{"serve"}, 1, []string{"DSAR_REDIS_ADDR", "DSAR_BLIND_INDEX_KEY", "DSAR_MASTER_KEYS", "DSAR_API_KEYS"}, []string{"DSAR_MONGO_URI"}},
		{"a connectors file with no connector for a request type", emptyFile, []string{"dev"}, 1,
			[]string{"connectors file " + noConnectors + ": no connector can export data (access requests) or erase data (deletion requests) or opt a person out (opt_out requests)"}, nil},
	}
	for _, tt := range tests {
		out, code := run(tt.env, tt.args...)
		if code != tt.wantCode {
			t.Errorf("%s: exit %d, want %d\n%s", tt.name, code, tt.wantCode, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q\n%s", tt.name, w, out)
			}
		}
		for _, w := range tt.dontWant {
			if strings.Contains(out, w) {
				t.Errorf("%s: output has %q\n%s", tt.name, w, out)
			}
		}
	}
}

// TestPortalEndToEnd drives the binary's portal as a person would, with a
// real SMTP server: submit, read the code from the mail, verify, wait for
// completion, download the export from the emailed link. The binary's logs
// of the whole flow hold neither the email, nor the code, nor the token.
func TestPortalEndToEnd(t *testing.T) {
	r := testenv.RedisServer(t)
	mailbox := testenv.StartSMTP(t, testenv.SMTPOptions{})
	env := append(baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")),
		"DSAR_SMTP_HOST="+mailbox.Host, fmt.Sprintf("DSAR_SMTP_PORT=%d", mailbox.Port), "DSAR_SMTP_TLS=none",
		"DSAR_SMTP_USERNAME="+mailbox.Username, "DSAR_SMTP_PASSWORD="+mailbox.Password, "DSAR_SMTP_FROM=Privacy <privacy@shop.example>")
	p := startDSAR(t, env, "dev", "--demo")

	var c struct {
		ID          string `json:"id"`
		StatusToken string `json:"status_token"`
	}
	req, _ := http.NewRequest("POST", p.base+"/v1/portal/requests", strings.NewReader(`{"type":"access","jurisdiction":"GB","subject":{"email":"ada@example.com"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	text := func(kind string) string {
		m := mailbox.WaitMessage(t, "ada@example.com", func(r testenv.Received) bool {
			return strings.Contains(string(r.Data), "X-DSAR-Kind: "+kind)
		}, time.Minute)
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
		return string(body)
	}
	code := regexp.MustCompile(`\b(\d{6})\b`).FindStringSubmatch(text("verify"))
	if code == nil {
		t.Fatal("no code in the verification email")
	}
	req, _ = http.NewRequest("POST", p.base+"/v1/portal/requests/"+c.ID+"/verify", strings.NewReader(`{"code":"`+code[1]+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.StatusToken)
	if resp, err = p.client.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("verify: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	link := regexp.MustCompile(`http://\S+/export\?\S+`).FindString(text("completed"))
	if link == "" {
		t.Fatal("no download link in the completion email")
	}
	resp, err = p.client.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("download: %d %v", resp.StatusCode, err)
	}
	found := false
	for _, f := range zr.File {
		if f.Name == "shop/orders.json" {
			found = true
		}
	}
	if !found {
		t.Errorf("the export lacks Ada's orders: %v", zr.File)
	}

	p.stop()
	logs := p.stderr.String()
	if !strings.Contains(logs, c.ID) {
		t.Fatal("the logs do not mention the request at all; the check below would prove nothing")
	}
	for _, secret := range []string{"ada@example.com", code[1], c.StatusToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q", secret)
		}
	}
}

// TestRequestsImport files a CSV through the running binary's bulk API: the
// good rows are filed, the bad one is written next to the file with its
// reason, and the exit status says some were refused.
func TestRequestsImport(t *testing.T) {
	r := testenv.RedisServer(t)
	p := startDSAR(t, baseEnv(t, t.TempDir(), r.Addr, testenv.Queue(t, r), testenv.Name("e2e")), "dev")
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	if err := os.WriteFile(csvPath, []byte("type,regulation,email,channel,note\n"+
		"access,gdpr,ada@example.com,letter,scanned letter\n"+
		"opt_out,hipaa,grace@example.com,,\n"+
		"deletion,ccpa,alan@example.com,phone,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "requests", "import", "--url", p.base, csvPath)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DSAR_API_KEY=" + apiKey}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("import: %v, want exit 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "3 rows: 2 filed, 1 refused") {
		t.Errorf("summary:\n%s", out)
	}
	failures, err := os.ReadFile(filepath.Join(dir, "batch.failures.csv"))
	if err != nil || !strings.Contains(string(failures), `3,400,"regulation: must be one of`) {
		t.Errorf("failures file: %v\n%s", err, failures)
	}
	var page struct {
		Items []request `json:"items"`
	}
	if code := p.call("GET", "/v1/requests?source=agent_api", "", &page); code != http.StatusOK || len(page.Items) != 2 {
		t.Errorf("filed: %d, %d requests", code, len(page.Items))
	}
	cmd = exec.Command(binary, "requests", "import", "--url", p.base, filepath.Join(dir, "missing.csv"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "DSAR_API_KEY=" + apiKey}
	if err := cmd.Run(); !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Errorf("a missing file: %v, want exit 2", err)
	}
}

// skipUnderRace skips a long test whose code under test is the dsar
// binary alone, under the race detector: the binary is built without it,
// so the race run would only repeat what `make test` ran (minutes of a
// CI that must stay under 30).
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("the dsar binary is built without the race detector; make test runs this test")
	}
}
