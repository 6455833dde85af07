package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/testenv"
)

// TestMasterKeysLost: dev seals what it stores (no identity in clear in the
// store file), and a restart without the master key that sealed it, or
// with other keys, is refused with the key's id, rather than starting a
// service (with a new key) for which every earlier request fails.
func TestMasterKeysLost(t *testing.T) {
	t.Parallel()
	if testenv.RealMongo() {
		t.Skip("the embedded store's file and dev's key file")
	}
	r := testenv.RedisServer(t)
	dir := t.TempDir()
	env := baseEnv(t, dir, r.Addr, testenv.Queue(t, r), testenv.Name("e2e"))
	p := startDSAR(t, env, "dev")
	var filed request
	body := `{"type":"deletion","regulation":"gdpr","subject":{"email":"sealed.ada@example.com","phone":"+1 415 555 0142"},"note":"she called on Tuesday"}`
	if code := p.call("POST", "/v1/requests", body, &filed); code != http.StatusAccepted {
		t.Fatalf("file: status %d", code)
	}
	p.stop()
	for _, name := range []string{"dsar.db", "dsar.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, v := range []string{"sealed.ada", "4155550142", "on Tuesday"} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds %q in clear", name, v)
			}
		}
	}

	keyFile := filepath.Join(dir, envelope.KeyFileName)
	saved, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var entry string
	for _, line := range strings.Split(string(saved), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			entry = line
		}
	}
	id, _, _ := strings.Cut(entry, ":")
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	out, code := exitOf(t, env, "dev")
	if code != 1 || !strings.Contains(out, "master key file") || !strings.Contains(out, id) {
		t.Errorf("dev without its key file: exit %d, want 1 naming the file and key %s\n%s", code, id, out)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("dev made a new key file beside data sealed under another key (%v)", err)
	}

	out, code = exitOf(t, append(env, "DSAR_MASTER_KEYS="+testMasterKeys), "dev")
	if code != 1 || !strings.Contains(out, id) {
		t.Errorf("dev with other master keys: exit %d, want 1 naming key %s\n%s", code, id, out)
	}

	p = startDSAR(t, append(env, "DSAR_MASTER_KEYS="+testMasterKeys+","+entry), "dev")
	var got struct {
		Subject map[string]string `json:"subject"`
	}
	if code := p.call("GET", "/v1/requests/"+filed.ID, "", &got); code != http.StatusOK || got.Subject["email"] != "sealed.ada@example.com" {
		t.Errorf("with the old key after the new one: status %d, subject %v", code, got.Subject)
	}
}
