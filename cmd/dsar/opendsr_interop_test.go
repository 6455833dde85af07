package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
)

// freeAddr returns a loopback address no one listens on (a moment ago):
// a process whose public URL must be known before it starts listens on it.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// processorPKI writes, in dir, a certificate authority's certificate
// (ca) and a certificate for domain it issued, with its key (cert, key).
func processorPKI(t *testing.T, dir, domain string) (ca, cert, key string) {
	t.Helper()
	auth := testenv.NewTLS(t)
	certPEM, k := auth.Issue(t, domain)
	keyDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return auth.CAFile, cert, key
}

// TestOpenDSRInterop runs the service as an OpenDSR controller against the
// service as an OpenDSR processor, two processes over HTTP, with a
// certificate authority and the processor's certificate made here. The
// processor is `dsar dev --demo` (its shop holds Ada); the controller's
// only system is the processor, through an opendsr connector. A whole
// access request ends with the processor's answer in the controller's
// export; a whole erasure erases Ada at the processor (approved there, as
// deletions are by default), and its signed callback ends the
// controller's job at once (polling is set to an hour).
func TestOpenDSRInterop(t *testing.T) {
	skipUnderRace(t)
	r := testenv.RedisServer(t)
	dir := t.TempDir()
	ca, cert, key := processorPKI(t, dir, "processor.test")
	const secret = "interop-controller-secret-0123456789"

	procAddr, ctrlAddr := freeAddr(t), freeAddr(t)
	penv := append(baseEnv(t, filepath.Join(dir, "processor"), r.Addr, testenv.Queue(t, r), testenv.Name("odsr-proc")),
		"DSAR_HTTP_ADDR="+procAddr, "DSAR_OPENDSR_DOMAIN=processor.test", "DSAR_OPENDSR_CERT_FILE="+cert, "DSAR_OPENDSR_KEY_FILE="+key,
		"DSAR_OPENDSR_CONTROLLERS=acme:"+secret, "DSAR_ALLOW_INTERNAL_CALLBACKS=true")
	processor := startDSAR(t, penv, "dev", "--demo")

	file := filepath.Join(dir, "connectors.yaml")
	conf := fmt.Sprintf(`connectors:
  - name: vendor
    type: opendsr
    url: http://%s/opendsr/v2
    token: ${VENDOR_TOKEN}
    domain: processor.test
    ca_file: %s
    poll_every: 1h
    allow_insecure: true
    allow_private: true
  - name: mailing_list
    type: manual
    owner: ops@example.com
    system: The printed mailing list
    instructions:
      opt_out: Take the customer off the printed mailing list.
`, procAddr, ca)
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cenv := append(baseEnv(t, filepath.Join(dir, "controller"), r.Addr, testenv.Queue(t, r), testenv.Name("odsr-ctrl")),
		"DSAR_HTTP_ADDR="+ctrlAddr, "DSAR_CONNECTORS_FILE="+file, "VENDOR_TOKEN="+secret)
	ctrl := startDSAR(t, cenv, "dev")

	// until waits for the controller's request id to complete, approving
	// deletions on both sides as an agent of each would.
	until := func(id string) request {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			var c request
			if code := ctrl.call("GET", "/v1/requests/"+id, "", &c); code != http.StatusOK {
				t.Fatalf("controller: get %s: %d", id, code)
			}
			switch c.Status {
			case "completed":
				return c
			case "awaiting_approval":
				if code := ctrl.call("POST", "/v1/requests/"+id+"/approve", "", nil); code != http.StatusOK {
					t.Fatalf("controller: approve: %d", code)
				}
			case "needs_attention", "cancelled", "denied":
				t.Fatalf("controller's request is %s: %+v\ncontroller:\n%s\nprocessor:\n%s", c.Status, c, ctrl.stderr, processor.stderr)
			}
			var waiting struct{ Items []request }
			processor.call("GET", "/v1/requests?status=awaiting_approval", "", &waiting)
			for _, p := range waiting.Items {
				if code := processor.call("POST", "/v1/requests/"+p.ID+"/approve", "", nil); code != http.StatusOK {
					t.Fatalf("processor: approve: %d", code)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("controller's request %s still %s\ncontroller:\n%s\nprocessor:\n%s", id, c.Status, ctrl.stderr, processor.stderr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	fileAt := func(p *proc, typ string) string {
		t.Helper()
		var r request
		body := fmt.Sprintf(`{"type":%q,"regulation":"gdpr","subject":{"email":"ada@example.com"}}`, typ)
		if code := p.call("POST", "/v1/requests", body, &r); code != http.StatusAccepted {
			t.Fatalf("file %s: %d", typ, code)
		}
		return r.ID
	}
	// processorRequests lists the processor's requests filed by OpenDSR.
	processorRequests := func() []request {
		var list struct{ Items []request }
		if code := processor.call("GET", "/v1/requests?source=opendsr", "", &list); code != http.StatusOK {
			t.Fatalf("processor: list: %d", code)
		}
		for i, r := range list.Items {
			if code := processor.call("GET", "/v1/requests/"+r.ID, "", &list.Items[i]); code != http.StatusOK {
				t.Fatalf("processor: get: %d", code)
			}
		}
		return list.Items
	}

	// Access: the controller's export holds the processor's answer and,
	// read from its results_url, the records the processor's shop holds.
	access := until(fileAt(ctrl, "access"))
	procReqs := processorRequests()
	if len(procReqs) != 1 || procReqs[0].Type != "access" || procReqs[0].Status != "completed" || total(procReqs[0]) == 0 {
		t.Fatalf("processor's requests after the access: %+v", procReqs)
	}
	if len(access.Jobs) != 1 || access.Jobs[0].Connector != "vendor" || access.Jobs[0].Status != "succeeded" || access.Jobs[0].Records != 1+total(procReqs[0]) {
		t.Fatalf("controller's access jobs: %+v; want the reference and the processor's %d records", access.Jobs, total(procReqs[0]))
	}
	files := ctrl.export(access.ID)
	refs := records(t, files, "vendor/requests.json")
	if len(refs) != 1 || refs[0]["processor"] != "processor.test" || refs[0]["request_status"] != "completed" ||
		refs[0]["results_count"] != float64(total(procReqs[0])) || !strings.HasPrefix(fmt.Sprint(refs[0]["results_url"]), "http://"+procAddr+"/opendsr/v2/requests/") {
		t.Fatalf("the export's record of the processor: %v (files %v)", refs, keys(files))
	}
	if got := records(t, files, "vendor/shop.customers.json"); len(got) != 1 || got[0]["email"] != "ada@example.com" {
		t.Fatalf("the processor's customers in the controller's export: %v (files %v)", got, keys(files))
	}

	// Erasure: Ada is erased at the processor, and its callback ends the
	// controller's job (polled only every hour).
	erasure := until(fileAt(ctrl, "deletion"))
	if len(erasure.Jobs) != 1 || erasure.Jobs[0].Status != "succeeded" {
		t.Fatalf("controller's erasure jobs: %+v", erasure.Jobs)
	}
	var erased request
	for _, p := range processorRequests() {
		if p.Type == "deletion" {
			erased = p
		}
	}
	if erased.Status != "completed" || total(erased) == 0 {
		t.Fatalf("processor's deletion: %+v; want completed, records erased", erased)
	}
	if erasure.Jobs[0].Records != total(erased) {
		t.Errorf("the controller counts %d records erased; the processor erased %d (its results_count)", erasure.Jobs[0].Records, total(erased))
	}
	// What the processor holds of Ada now: nothing.
	again := processor.file("access", "gdpr", "ada@example.com")
	if n := total(again); n != 0 {
		t.Errorf("the processor still holds %d records of Ada after the erasure", n)
	}
	var callbacks int
	for _, line := range strings.Split(ctrl.stderr.String(), "\n") {
		if strings.Contains(line, `"job answered"`) {
			callbacks++
		}
	}
	if callbacks == 0 {
		t.Error("no job was answered by a callback: the erasure ended by polling")
	}

	ctrl.stop()
	processor.stop()
	for name, logs := range map[string]string{"controller": ctrl.stderr.String(), "processor": processor.stderr.String()} {
		if !strings.Contains(logs, access.ID) && !strings.Contains(logs, procReqs[0].ID) {
			t.Fatalf("the %s's logs name no request; the check below would prove nothing", name)
		}
		for _, s := range []string{"ada@example.com", secret} {
			if strings.Contains(logs, s) {
				t.Errorf("the %s's logs hold %q", name, s)
			}
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
