package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/config"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// TestBlindIndexRotation changes the blind index key of a running
// deployment as docs/security.md says, through the binary: what was made
// under the old key (a code mailed, a download link, the proven identity
// behind a status token, the suppression key pipelines hold) keeps working
// while the old key is given as previous; `dsar keys rotate --blind-index`
// re-hashes the store while dev runs; after that the new key alone finds
// every request, and the old key's links stop working.
func TestBlindIndexRotation(t *testing.T) {
	r := testenv.RedisServer(t)
	mailbox := testenv.StartSMTP(t, testenv.SMTPOptions{})
	dir := t.TempDir()
	oldKey, newKey := randomHex(32), randomHex(32)
	base := append(baseEnv(t, dir, r.Addr, testenv.Queue(t, r), testenv.Name("bidx")),
		"DSAR_SMTP_HOST="+mailbox.Host, fmt.Sprintf("DSAR_SMTP_PORT=%d", mailbox.Port), "DSAR_SMTP_TLS=none",
		"DSAR_SMTP_USERNAME="+mailbox.Username, "DSAR_SMTP_PASSWORD="+mailbox.Password, "DSAR_SMTP_FROM=Privacy <privacy@shop.example>",
		"DSAR_MASTER_KEYS="+envelope.GenerateMasterKey())
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	store := []string{"--data-dir", dir}
	if testenv.RealMongo() {
		store = nil // DSAR_MONGO_URI in base
	}

	type filed struct{ id, token string }
	file := func(p *proc, email string) filed {
		t.Helper()
		var c struct {
			ID          string `json:"id"`
			StatusToken string `json:"status_token"`
		}
		resp := portalCall(t, p, "POST", "/v1/portal/requests", "", `{"type":"access","jurisdiction":"GB","subject":{"email":"`+email+`"}}`)
		if resp.status != http.StatusAccepted || json.Unmarshal([]byte(resp.body), &c) != nil {
			t.Fatalf("submit for %s: %d %s", email, resp.status, resp.body)
		}
		return filed{c.ID, c.StatusToken}
	}
	mailed := func(to, kind string) string {
		t.Helper()
		m := mailbox.WaitMessage(t, to, func(r testenv.Received) bool {
			return strings.Contains(string(r.Data), "X-DSAR-Kind: "+kind)
		}, time.Minute)
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
		return string(body)
	}
	codeIn := func(text string) string {
		t.Helper()
		m := regexp.MustCompile(`\b(\d{6})\b`).FindStringSubmatch(text)
		if m == nil {
			t.Fatal("no code in the verification email")
		}
		return m[1]
	}
	verify := func(p *proc, f filed, code string) int {
		return portalCall(t, p, "POST", "/v1/portal/requests/"+f.id+"/verify", f.token, `{"code":"`+code+`"}`).status
	}
	preferences := func(p *proc, f filed) rawResponse {
		return portalCall(t, p, "GET", "/v1/portal/requests/"+f.id+"/preferences", f.token, "")
	}
	download := func(p *proc, link string) int {
		// The link names the address of the process that mailed it.
		resp, err := p.client.Get(p.base + link[strings.Index(link, "/v1/"):])
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	suppressionKey := func(p *proc) string {
		var k struct {
			Key string `json:"key"`
		}
		if st := p.call("GET", "/v1/suppressions/key", "", &k); st != http.StatusOK || k.Key == "" {
			t.Fatalf("suppression key: %d", st)
		}
		return k.Key
	}

	// 1. Under the old key: Ada's access is answered with a link; Cy is
	// mailed a code and has not used it yet.
	p := startDSAR(t, with("DSAR_BLIND_INDEX_KEY="+oldKey), "dev", "--demo")
	ada := file(p, "ada@example.com")
	if st := verify(p, ada, codeIn(mailed("ada@example.com", "verify"))); st != http.StatusOK {
		t.Fatalf("verify Ada: %d", st)
	}
	oldLink := regexp.MustCompile(`http://\S+/export\?\S+`).FindString(mailed("ada@example.com", "completed"))
	if oldLink == "" {
		t.Fatal("no download link in Ada's completion email")
	}
	cy := file(p, "cy@example.com")
	cyCode := codeIn(mailed("cy@example.com", "verify"))
	pipelineKey := suppressionKey(p)
	p.stop()

	// 2. The pins, printed from the old settings and from the changing
	// ones alike; without them the change does not start.
	pins, errOut, code := runOnce(t, with("DSAR_BLIND_INDEX_KEY="+oldKey), append([]string{"keys", "pin"}, store...)...)
	if code != 0 || !strings.Contains(pins, "DSAR_SUPPRESSION_KEY=") || !strings.Contains(pins, "DSAR_MASK_KEY=") {
		t.Fatalf("dsar keys pin: exit %d\n%s%s", code, pins, errOut)
	}
	changing := with("DSAR_BLIND_INDEX_KEY="+newKey, "DSAR_BLIND_INDEX_PREVIOUS_KEYS="+oldKey)
	if again, _, _ := runOnce(t, changing, append([]string{"keys", "pin"}, store...)...); again != pins {
		t.Errorf("dsar keys pin during the change printed other keys:\n%s\nthan before it:\n%s", again, pins)
	}
	checkRuns(t, []cliRun{
		{args: []string{"dev"}, env: changing, code: 1, stderr: "set DSAR_SUPPRESSION_KEY and DSAR_MASK_KEY too"},
		{args: append([]string{"keys", "rotate", "--blind-index"}, store...), env: changing, code: 2, stderr: "DSAR_SUPPRESSION_KEY and DSAR_MASK_KEY"},
		{args: append([]string{"keys", "rotate", "--blind-index"}, store...), env: with("DSAR_BLIND_INDEX_KEY=" + newKey), code: 2, stderr: "no DSAR_BLIND_INDEX_PREVIOUS_KEYS"},
	})
	pinned := strings.Fields(pins)
	changing = append(changing, pinned...)

	// 3. During the change, what the old key made still works.
	p = startDSAR(t, changing, "dev", "--demo")
	if st := download(p, oldLink); st != http.StatusOK {
		t.Errorf("Ada's link from before the change: %d; want 200", st)
	}
	if st := verify(p, cy, cyCode); st != http.StatusOK {
		t.Errorf("Cy's code from before the change: %d; want 200", st)
	}
	if resp := preferences(p, ada); resp.status != http.StatusOK {
		t.Errorf("Ada's preferences during the change: %d %s; want 200", resp.status, resp.body)
	}
	if got := suppressionKey(p); got != pipelineKey {
		t.Error("the suppression key changed with the blind index key")
	}
	bob := file(p, "bob@example.com") // filed under the new key
	if st := verify(p, bob, codeIn(mailed("bob@example.com", "verify"))); st != http.StatusOK {
		t.Fatalf("verify Bob: %d", st)
	}

	// 4. The store is re-hashed while dev runs; a second run has nothing
	// left to do.
	checkRuns(t, []cliRun{
		{args: append([]string{"keys", "rotate", "--blind-index"}, store...), env: changing, code: 0, stderr: "every hash is under the current key"},
		{args: append([]string{"keys", "rotate", "--blind-index"}, store...), env: changing, code: 0, stderr: "0 re-hashed"},
	})
	p.stop()
	if t.Failed() {
		return
	}

	// 5. The new key alone (the pins kept) finds every request.
	p = startDSAR(t, with(append([]string{"DSAR_BLIND_INDEX_KEY=" + newKey}, pinned...)...), "dev", "--demo")
	for name, f := range map[string]filed{"Ada": ada, "Bob": bob, "Cy": cy} {
		if resp := preferences(p, f); resp.status != http.StatusOK {
			t.Errorf("%s's preferences under the new key alone: %d %s; want 200", name, resp.status, resp.body)
		}
	}
	if st := download(p, oldLink); st == http.StatusOK {
		t.Error("Ada's link signed under the old key still works without it")
	}
	if got := suppressionKey(p); got != pipelineKey {
		t.Error("the suppression key changed when the old blind index key left")
	}
	logs := p.stderr.String()
	p.stop()
	for _, secret := range []string{oldKey, newKey, "ada@example.com", cyCode} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q", secret)
		}
	}
}

// portalCall sends a portal call with the status token (if any) and body
// (if any) as JSON.
func portalCall(t *testing.T, p *proc, method, path, token, body string) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// hashedDuring is the store of a blind-index rotation during which a
// process still on the old blind index key files a request once the pass
// has read every request.
type hashedDuring struct {
	rehashStore
	scans int
	file  func()
}

func (h *hashedDuring) ListRequests(ctx context.Context, f dsr.ListFilter) ([]dsr.Request, *dsr.Cursor, error) {
	if f.After == nil { // a scan begins: the third, after the pass, finds it
		if h.scans++; h.scans == 3 && h.file != nil {
			h.file()
		}
	}
	return h.rehashStore.ListRequests(ctx, f)
}

// TestRehashFiledDuring: a request filed under the old blind index key
// while the rotation ran, behind its pass, is reported (exit 1, run
// again), not left to be lost with the old key; the next run re-hashes it.
func TestRehashFiledDuring(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), embeddedStoreFile), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	if err := lite.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	ring, err := envelope.ParseKeyring(envelope.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	oldKey, newKey := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	oldIndex, err := dsr.NewBlindIndex(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	index, err := dsr.NewBlindIndex(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed := sealedstore.New(lite, ring, sealedstore.Options{})
	file := func() {
		r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "t",
			Status: dsr.StatusVerified, Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}}, oldIndex)
		if err != nil {
			t.Fatal(err)
		}
		if err := sealed.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	file()
	var out strings.Builder
	r := rehashing{index: index, st: &hashedDuring{rehashStore: sealed, file: file}, out: &out}
	err = r.run(ctx)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitBroken || !strings.Contains(err.Error(), "1 requests hold hashes under a previous key") {
		t.Fatalf("rotation with a request filed under the old key behind it: %v (want exit %d, counting it)\n%s", err, exitBroken, out.String())
	}
	if r.rehashed != 1 {
		t.Errorf("re-hashed %d; want the request there at the start", r.rehashed)
	}
	out.Reset()
	r = rehashing{index: index, st: sealed, out: &out}
	if err := r.run(ctx); err != nil || r.rehashed != 1 || r.current != 1 {
		t.Fatalf("second run: %v, %d re-hashed, %d current; want the one left behind re-hashed\n%s", err, r.rehashed, r.current, out.String())
	}
	dups, err := lite.OpenDuplicates(ctx, []string{index.Hash(dsr.KindEmail, "ada@example.com")}, []dsr.Type{dsr.TypeAccess}, time.Time{})
	if err != nil || len(dups) != 2 {
		t.Fatalf("by the new hash: %d requests, %v; want both", len(dups), err)
	}
}

// TestRehashEveryRequest: the rotation accounts for every request that
// holds identities, not only the sealed ones, and does not call a store
// re-hashed when its hashes are under none of the keys it was given.
func TestRehashEveryRequest(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey, wrongKey := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210"), []byte("not the old key, yet 32 bytes..!")
	ada := []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}
	for _, tc := range []struct {
		name string
		// clear files the request through the driver alone: stored
		// before sealing, its identities in clear and no data key.
		clear bool
		// unreadable opens the store under another master key.
		unreadable bool
		previous   []byte
		// wantCode is the rotation's exit code (0: none), wantErr in its
		// error; found says whether the new key alone then finds it.
		wantCode int
		wantErr  string
		found    bool
		// wantOut is in what it prints, notOut is not.
		wantOut, notOut string
	}{
		{name: "sealed", previous: oldKey, found: true},
		{name: "stored before sealing", clear: true, previous: oldKey, found: true},
		{name: "unreadable", unreadable: true, previous: oldKey, wantOut: "1 unreadable", notOut: "every hash is under the current key"},
		{name: "wrong previous key", previous: wrongKey, wantCode: exitBroken, wantErr: "under none of the keys given"},
		{name: "wrong previous key, stored before sealing", clear: true, previous: wrongKey, wantCode: exitBroken, wantErr: "under none of the keys given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lite, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), embeddedStoreFile), sqlitestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = lite.Close() })
			if err := lite.Prepare(ctx); err != nil {
				t.Fatal(err)
			}
			ring, err := envelope.ParseKeyring(envelope.GenerateMasterKey())
			if err != nil {
				t.Fatal(err)
			}
			oldIndex, err := dsr.NewBlindIndex(oldKey)
			if err != nil {
				t.Fatal(err)
			}
			index, err := dsr.NewBlindIndex(newKey, tc.previous)
			if err != nil {
				t.Fatal(err)
			}
			sealed := sealedstore.New(lite, ring, sealedstore.Options{})
			r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "t",
				Status: dsr.StatusVerified, Identities: ada}, oldIndex)
			if err != nil {
				t.Fatal(err)
			}
			if tc.clear {
				err = lite.CreateRequest(ctx, r)
			} else {
				err = sealed.CreateRequest(ctx, r)
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.unreadable {
				other, err := envelope.ParseKeyring(envelope.GenerateMasterKey())
				if err != nil {
					t.Fatal(err)
				}
				sealed = sealedstore.New(lite, other, sealedstore.Options{})
			}
			var out strings.Builder
			rh := rehashing{index: index, st: sealed, out: &out}
			err = rh.run(ctx)
			var ee exitError
			switch {
			case tc.wantCode == 0 && err != nil:
				t.Fatalf("rotation: %v\n%s", err, out.String())
			case tc.wantCode != 0 && (!errors.As(err, &ee) || ee.code != tc.wantCode || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("rotation: %v; want exit %d saying %q\n%s", err, tc.wantCode, tc.wantErr, out.String())
			}
			if tc.wantOut != "" && !strings.Contains(out.String(), tc.wantOut) || tc.notOut != "" && strings.Contains(out.String(), tc.notOut) {
				t.Errorf("the rotation printed:\n%s\nwant %q in it, and not %q", out.String(), tc.wantOut, tc.notOut)
			}
			newIndex, err := dsr.NewBlindIndex(newKey)
			if err != nil {
				t.Fatal(err)
			}
			dups, err := lite.OpenDuplicates(ctx, newIndex.HashAll(ada), []dsr.Type{dsr.TypeAccess}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if found := len(dups) == 1; found != tc.found {
				t.Errorf("found by the new key alone: %v; want %v\n%s", found, tc.found, out.String())
			}
		})
	}
}

// TestIndexKeysPreviousIsCurrent: a previous blind index key equal to the
// current one is refused wherever the current one comes from: dev's key
// file too, where config, which never sees it, cannot tell.
func TestIndexKeysPreviousIsCurrent(t *testing.T) {
	fileKey, other := randomHex(32), randomHex(32)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "key file, another previous", env: map[string]string{"DSAR_BLIND_INDEX_PREVIOUS_KEYS": other}},
		{name: "key file, previous is it", env: map[string]string{"DSAR_BLIND_INDEX_PREVIOUS_KEYS": fileKey}, wantErr: "is the current blind index key itself"},
		{name: "key file, previous is it, second", env: map[string]string{"DSAR_BLIND_INDEX_PREVIOUS_KEYS": other + "," + fileKey}, wantErr: "is the current blind index key itself"},
		{name: "key set, previous is the file's", env: map[string]string{"DSAR_BLIND_INDEX_KEY": other, "DSAR_BLIND_INDEX_PREVIOUS_KEYS": fileKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, blindIndexKeyFile), []byte(fileKey+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			_, err = loadIndexKeys(cfg, dir, false)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("loadIndexKeys: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("loadIndexKeys: %v; want an error saying %q", err, tc.wantErr)
			}
		})
	}
}
