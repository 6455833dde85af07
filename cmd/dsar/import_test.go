package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeBulk is a bulk endpoint that refuses rows whose regulation is
// "nowhere", records the emails of the rows it was sent, and, on the call
// numbered hangOn (1 first), answers nothing until the client gives up.
type fakeBulk struct {
	mu     sync.Mutex
	calls  int
	hangOn int
	sent   []string
}

func (f *fakeBulk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Requests []struct {
			Regulation string            `json:"regulation"`
			Subject    map[string]string `json:"subject"`
		} `json:"requests"`
	}
	if r.URL.Path != "/v1/requests/bulk" || json.NewDecoder(r.Body).Decode(&body) != nil {
		http.Error(w, "bad call", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls++
	hang := f.calls == f.hangOn
	for _, it := range body.Requests {
		f.sent = append(f.sent, it.Subject["email"])
	}
	f.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	type result struct {
		Index   int            `json:"index"`
		Status  int            `json:"status"`
		Problem map[string]any `json:"problem,omitempty"`
	}
	out := struct {
		Results []result `json:"results"`
	}{}
	for i, it := range body.Requests {
		res := result{Index: i, Status: http.StatusAccepted}
		if it.Regulation == "nowhere" {
			res.Status, res.Problem = http.StatusBadRequest, map[string]any{"errors": []map[string]string{{"field": "regulation", "message": "must be one of gdpr, ccpa"}}}
		}
		out.Results = append(out.Results, res)
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (f *fakeBulk) takeSent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.sent
	f.sent = nil
	return s
}

const importCSV = "type,regulation,email\n" +
	"access,gdpr,r1@example.com\n" +
	"access,nowhere,r2@example.com\n" +
	"access,gdpr,r3@example.com\n" +
	"access,nowhere,r4@example.com\n" +
	"access,gdpr,r5@example.com\n"

func runImport(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	env := func(k string) (string, bool) { return map[string]string{"DSAR_API_KEY": "k"}[k], k == "DSAR_API_KEY" }
	err := runRequests(context.Background(), append([]string{"import", "--url", url}, args...), &out, &out, env)
	return out.String(), err
}

// statusOf is the exit status of a run that returned err.
func statusOf(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

// TestImportFailuresFileExclusive: FILE.failures.csv is never written
// through a link nor over an existing file, and the import says so before
// it files anything.
func TestImportFailuresFileExclusive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		place func(t *testing.T, failures, target string)
	}{
		{"a symlink", func(t *testing.T, failures, target string) {
			if err := os.Symlink(target, failures); err != nil {
				t.Fatal(err)
			}
		}},
		{"a dangling symlink", func(t *testing.T, failures, target string) {
			if err := os.Symlink(target+".absent", failures); err != nil {
				t.Fatal(err)
			}
		}},
		{"an existing file", func(t *testing.T, failures, _ string) {
			if err := os.WriteFile(failures, []byte("keep me\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeBulk{}
			url, dir, csvPath := startImport(t, fake)
			target := filepath.Join(dir, "precious")
			if err := os.WriteFile(target, []byte("precious\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			failures := filepath.Join(dir, "batch.failures.csv")
			tc.place(t, failures, target)
			before, _ := os.ReadFile(failures)

			out, err := runImport(t, url, csvPath)
			if statusOf(err) != exitUsage || !strings.Contains(err.Error(), failures) || !strings.Contains(err.Error(), "never overwrites") {
				t.Fatalf("import: %v (exit %d), want exit 2 naming %s\n%s", err, statusOf(err), failures, out)
			}
			if sent := fake.takeSent(); len(sent) != 0 {
				t.Errorf("filed %d rows before refusing", len(sent))
			}
			if got, _ := os.ReadFile(target); string(got) != "precious\n" {
				t.Errorf("the link's target was written: %q", got)
			}
			if after, _ := os.ReadFile(failures); !bytes.Equal(before, after) {
				t.Errorf("the existing file was changed: %q -> %q", before, after)
			}
			if _, err := os.Lstat(csvPath + ".progress"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a progress file is left behind: %v", err)
			}
		})
	}
}

// startImport serves the bulk API with fake until the test ends and writes
// importCSV to batch.csv in a new temporary folder; it returns the API's
// URL, the folder and the file.
func startImport(t *testing.T, fake *fakeBulk) (url, dir, csvPath string) {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	dir = t.TempDir()
	csvPath = filepath.Join(dir, "batch.csv")
	if err := os.WriteFile(csvPath, []byte(importCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, dir, csvPath
}

// TestImportResume stops an import on a batch the API never answers, then
// resumes it: the rows answered are not sent again, the refused rows of
// both runs end in FILE.failures.csv, and the position is removed at the
// end. Without --resume, or with the file changed, it refuses to start.
func TestImportResume(t *testing.T) {
	t.Parallel()
	fake := &fakeBulk{hangOn: 2}
	url, dir, csvPath := startImport(t, fake)
	progressPath := csvPath + ".progress"

	var out bytes.Buffer
	im := importer{url: url, key: "k", batch: 2, out: &out, client: &http.Client{}, base: 2 * time.Second} // room for a loaded machine (the race detector, other packages) to deliver the hanging batch
	err := im.run(context.Background(), csvPath)
	if statusOf(err) != exitUsage || !strings.Contains(err.Error(), "no answer within") || !strings.Contains(err.Error(), "--resume to go on from line 4") {
		t.Fatalf("first run: %v, want a time-out from line 4\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "lines 2-3 answered: 2/5 rows, 1 filed, 1 refused") {
		t.Errorf("no plain progress line off a terminal:\n%s", out.String())
	}
	if diff := cmp.Diff([]string{"r1@example.com", "r2@example.com", "r3@example.com", "r4@example.com"}, fake.takeSent()); diff != "" {
		t.Errorf("first run sent (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(progressPath); err != nil {
		t.Fatalf("no position left: %v", err)
	}

	// Again without --resume: refused, nothing sent.
	if _, err := runImport(t, url, csvPath); statusOf(err) != exitUsage || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("a second run without --resume: %v", err)
	}
	if sent := fake.takeSent(); len(sent) != 0 {
		t.Errorf("a refused run sent %v", sent)
	}

	// A changed file is not resumed.
	if err := os.WriteFile(csvPath, []byte(importCSV+"access,gdpr,r6@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runImport(t, url, "--resume", csvPath); statusOf(err) != exitUsage || !strings.Contains(err.Error(), "changed") {
		t.Errorf("resuming a changed file: %v", err)
	}
	if err := os.WriteFile(csvPath, []byte(importCSV), 0o600); err != nil {
		t.Fatal(err)
	}

	outText, err := runImport(t, url, "--resume", "--batch", "2", csvPath)
	if statusOf(err) != 1 || !strings.Contains(outText, "resuming after line 3") || !strings.Contains(outText, "5 rows: 3 filed, 2 refused") {
		t.Fatalf("resume: %v\n%s", err, outText)
	}
	if diff := cmp.Diff([]string{"r3@example.com", "r4@example.com", "r5@example.com"}, fake.takeSent()); diff != "" {
		t.Errorf("resume sent (-want +got):\n%s", diff)
	}
	failures, _ := os.ReadFile(filepath.Join(dir, "batch.failures.csv"))
	want := "line,status,reason\n3,400,\"regulation: must be one of gdpr, ccpa\"\n5,400,\"regulation: must be one of gdpr, ccpa\"\n"
	if diff := cmp.Diff(want, string(failures)); diff != "" {
		t.Errorf("failures file (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(progressPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the position is left after a complete import: %v", err)
	}
}

// TestImportDeviceColumns: the advertising_id and device_id columns go to
// the subject, as email, customer_id and phone do.
func TestImportDeviceColumns(t *testing.T) {
	t.Parallel()
	cols := []string{"type", "regulation", "advertising_id", "device_id", "customer_id"}
	got := rowBody(cols, []string{"deletion", "gdpr", " 6D92078A-8246-4BA4-AE5B-76104861E7DC ", "a1b2c3d4e5f60718", ""})
	want := map[string]any{"type": "deletion", "regulation": "gdpr",
		"subject": map[string]any{"advertising_id": "6D92078A-8246-4BA4-AE5B-76104861E7DC", "device_id": "a1b2c3d4e5f60718"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rowBody (-want +got):\n%s", diff)
	}
}
