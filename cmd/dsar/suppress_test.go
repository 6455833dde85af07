package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// TestSuppressKey prints the suppression key from DSAR_BLIND_INDEX_KEY and
// from dev's key file, as the API serves it, and refuses when there is
// none.
func TestSuppressKey(t *testing.T) {
	t.Parallel()
	const hexKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	raw := []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	idx, err := dsr.NewBlindIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	key := idx.SuppressionKey()
	want := base64.StdEncoding.EncodeToString(key[:])
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blind-index.key"), []byte(hexKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkRuns(t, []cliRun{
		{[]string{"--help"}, nil, 0, "suppress   filter an audience through the suppression list", ""},
		{[]string{"suppress", "--help"}, nil, 0, "key      print the suppression key", ""},
		{[]string{"suppress"}, nil, 2, "", "no subcommand"},
		{[]string{"suppress", "nope"}, nil, 2, "", `unknown subcommand "nope"`},
		{[]string{"suppress", "key", "--help"}, nil, 0, "HMAC-SHA256(key, kind", ""},
		{[]string{"suppress", "key"}, []string{"DSAR_BLIND_INDEX_KEY=" + hexKey}, 0, want + "\n", ""},
		{[]string{"suppress", "key", "--data-dir", dir}, nil, 0, want + "\n", ""},
		{[]string{"suppress", "key", "--data-dir", t.TempDir()}, nil, 2, "", "no DSAR_BLIND_INDEX_KEY and no key file"},
		// While the blind index key changes, and once the key is pinned,
		// pipelines keep the key they hold.
		{[]string{"suppress", "key"}, []string{"DSAR_BLIND_INDEX_KEY=" + strings.Repeat("ab", 32), "DSAR_BLIND_INDEX_PREVIOUS_KEYS=" + hexKey}, 0, want + "\n", ""},
		{[]string{"suppress", "key"}, []string{"DSAR_BLIND_INDEX_KEY=" + strings.Repeat("ab", 32), "DSAR_SUPPRESSION_KEY=" + hex.EncodeToString(key[:])}, 0, want + "\n", ""},
		{[]string{"suppress", "key", "extra"}, nil, 2, "", "unexpected argument"},
	})

	var out, errOut bytes.Buffer
	env := func(k string) (string, bool) {
		if k == "DSAR_BLIND_INDEX_KEY" {
			return hexKey, true
		}
		return "", false
	}
	if err := run(context.Background(), []string{"suppress", "key", "--json"}, &out, &errOut, env); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	var got struct {
		Key     string
		Example struct{ Kind, Value, Hash string }
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Key != want || got.Example.Hash != key.Hash(dsr.KindEmail, got.Example.Value) ||
		!strings.HasPrefix(got.Example.Hash, "email:") {
		t.Errorf("--json: %v\n%s", err, out.String())
	}
}
