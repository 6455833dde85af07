package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// runWith runs the dsar binary with stdin, as runOnce does.
func runWith(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DSAR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run dsar %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

// TestSuppressCommands runs `dsar suppress filter|import|export` on the
// embedded store of a data directory, as 'dsar dev' leaves it.
func TestSuppressCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	const hexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	if err := os.WriteFile(filepath.Join(dir, "blind-index.key"), []byte(hexKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	idx, err := dsr.NewBlindIndex([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31})
	if err != nil {
		t.Fatal(err)
	}
	key := idx.SuppressionKey()
	s, err := sqlitestore.Open(ctx, filepath.Join(dir, embeddedStoreFile), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Suppress(ctx, []dsr.Suppression{{Hash: key.Hash(dsr.KindEmail, "gone@example.com"), Scope: dsr.ScopeMarketing, Source: dsr.ConsentPortal, At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()

	audience := "id,email\n1,keep@example.com\n2,gone@example.com\n3,partner@example.com\n4,\n"
	out, errOut, code := runWith(t, audience, "suppress", "filter", "--scope", "marketing", "--data-dir", dir)
	if code != 0 || out != "id,email\n1,keep@example.com\n3,partner@example.com\n" {
		t.Fatalf("filter: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if want := "filter: 4 records read, 2 kept, 1 suppressed, 1 without a valid identity (dropped), 0 malformed skipped\n"; errOut != want {
		t.Errorf("filter's summary %q, want %q", errOut, want)
	}

	list := `{"kind":"email","value":"partner@example.com","scope":"all"}` + "\n"
	if _, errOut, code := runWith(t, list, "suppress", "import", "--partner", "acme", "--data-dir", dir); code != 0 || errOut != "import: 1 entries read, 1 added to the list, 1 consent events\n" {
		t.Fatalf("import: exit %d, stderr %q", code, errOut)
	}
	out, _, code = runWith(t, audience, "suppress", "filter", "--scope", "profiling", "--format", "csv", "--data-dir", dir)
	if code != 0 || out != "id,email\n1,keep@example.com\n2,gone@example.com\n" {
		t.Errorf("filter after the import: exit %d, %q", code, out)
	}
	out, errOut, code = runWith(t, "", "suppress", "export", "--scope", "marketing", "--data-dir", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[1], `"scope":"all","at":`) || !strings.Contains(lines[1], `"source":"import"`) || errOut != "export: 2 entries\n" {
		t.Errorf("export: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	tests := []struct {
		name, stdin string
		args        []string
		code        int
		stderr      string
	}{
		{"a malformed row", "id,email\n1,a@example.com\n2,b@example.com,x\n", []string{"filter", "--scope", "marketing"}, 1,
			"filter: 1 records read, 1 kept, 0 suppressed, 0 without a valid identity (dropped), 0 malformed skipped\ndsar: suppress filter: line 3: wrong number of fields\n"},
		{"no scope", "", []string{"filter"}, 2, "dsar: suppress filter: --scope is required\n"},
		{"a bad scope", "email\n", []string{"filter", "--scope", "ads"}, 2, "dsar: suppress filter: --scope: must be one of sale_share, marketing, profiling, all\n"},
		{"a missing column", "id\n1\n", []string{"filter", "--scope", "all"}, 2, "dsar: suppress filter: --column: the header line has no column \"email\"\n"},
		{"a malformed list", `{"kind":"email","value":"x@example.com"}` + "\n" + `{"hash":"x","scope":"all"}` + "\n", []string{"import", "--partner", "acme"}, 1,
			"line 1: scope is missing\nline 2: hash is not a suppression hash (kind:64 hex digits)\ndsar: suppress import: nothing imported: import: 2 malformed lines, the first line 1: scope is missing\n"},
		{"a bad partner", list, []string{"import", "--partner", "a b"}, 2, "dsar: suppress import: --partner: must be 1 to 64 letters, digits, '.', '_' or '-'\n"},
		{"a bad since", "", []string{"export", "--since", "yesterday"}, 2, "dsar: suppress export: --since: want an RFC 3339 time or YYYY-MM-DD\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := runWith(t, tt.stdin, append(append([]string{"suppress"}, tt.args...), "--data-dir", dir)...)
			if code != tt.code || errOut != tt.stderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, errOut, tt.code, tt.stderr)
			}
		})
	}
	// Without the key, hashes would match nobody: refused, not made up.
	if _, errOut, code := runWith(t, audience, "suppress", "filter", "--scope", "marketing", "--data-dir", t.TempDir()); code != 2 || !strings.Contains(errOut, "no DSAR_BLIND_INDEX_KEY and no key file") {
		t.Errorf("no key: exit %d, %s", code, errOut)
	}
}
