package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dsar-project/dsar/internal/testenv"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends, or skips the test when it cannot (not root, or
// mount refused). CI runs as root.
func mountTmpfs(t *testing.T, size string, opts ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs for the data dir; CI runs as root")
	}
	dir := t.TempDir()
	o := strings.Join(append([]string{"size=" + size}, opts...), ",")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", o, "dsar-test", dir).CombinedOutput(); err != nil {
		t.Skipf("mount -t tmpfs refused (%v: %s); skipped", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return
		}
	}
}

// TestDiskFull fills the file system of a dev data dir: every write answers
// 503 with a storage-full problem and Retry-After, and readiness fails;
// once space is freed both recover.
func TestDiskFull(t *testing.T) {
	if testenv.RealMongo() {
		t.Skip("DSAR_TEST_MONGO_URI is set: the store is not in the data dir")
	}
	dir := mountTmpfs(t, "48m")
	r := testenv.RedisServer(t)
	p := startDSAR(t, baseEnv(t, dir, r.Addr, testenv.Queue(t, r), testenv.Name("e2e")), "dev")

	const body = `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`
	if code := p.call("POST", "/v1/requests", body, nil); code != http.StatusAccepted {
		t.Fatalf("file before the disk is full: %d", code)
	}
	ready := func() int { return p.call("GET", "/readyz", "", nil) }
	if code := ready(); code != http.StatusOK {
		t.Fatalf("readyz before the disk is full: %d", code)
	}

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	writes := []struct{ path, body string }{
		{"/v1/requests", body},
		{"/v1/portal/requests", `{"type":"access","jurisdiction":"GB","subject":{"email":"ada@example.com"}}`},
		{"/v1/requests/bulk", `{"requests":[` + body + `,{"type":"opt_out","regulation":"ccpa","subject":{"email":"grace@example.com"}}]}`},
	}
	for _, w := range writes {
		resp := p.raw("POST", w.path, w.body)
		if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" ||
			!strings.Contains(resp.body, `"type":"urn:dsar:problem:storage-full"`) {
			t.Errorf("POST %s on a full disk: %d, Retry-After %q, body %s", w.path, resp.status, resp.header.Get("Retry-After"), resp.body)
		}
	}
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Errorf("readyz on a full disk: %d, want 503", code)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code := ready(); code != http.StatusOK {
		t.Errorf("readyz once space is freed: %d, want 200", code)
	}
	if code := p.call("POST", "/v1/requests", body, nil); code != http.StatusAccepted {
		t.Errorf("file once space is freed: %d", code)
	}
}

// TestDataDirNotWritable starts dev on data dirs it cannot write: the error
// names the path and the cause.
func TestDataDirNotWritable(t *testing.T) {
	if testenv.RealMongo() {
		t.Skip("DSAR_TEST_MONGO_URI is set: the store is not in the data dir")
	}
	r := testenv.RedisServer(t)
	t.Run("a file where the dir should be", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runOnce(t, baseEnv(t, file, r.Addr, testenv.Queue(t, r), testenv.Name("e2e")), "dev")
		want := fmt.Sprintf("data dir %s: not writable: not a directory", file)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr does not say %q:\n%s", code, want, stderr)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		dir := mountTmpfs(t, "8m")
		if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
			t.Skipf("remount,ro refused (%v: %s); skipped", err, out)
		}
		_, stderr, code := runOnce(t, baseEnv(t, dir, r.Addr, testenv.Queue(t, r), testenv.Name("e2e")), "dev")
		want := fmt.Sprintf("data dir %s: not writable: read-only file system", dir)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr does not say %q:\n%s", code, want, stderr)
		}
	})
}
