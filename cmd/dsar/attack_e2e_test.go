package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// TestStoreFileDeletedWhileRunning removes the store's file (dsar.db, its
// -wal and -shm) under a running dev, as a clean-up script or an operator
// might. SQLite goes on writing into the unlinked file, so requests are
// answered 202 and then lost at the next start, and a serve or a worker
// started meanwhile makes a new dsar.db beside the one the others write.
// dsar must notice: readiness fails and writes are refused, never
// accepted into a file no one will open again.
func TestStoreFileDeletedWhileRunning(t *testing.T) {
	if testenv.RealMongo() {
		t.Skip("DSAR_TEST_MONGO_URI is set: the store is not in the data dir")
	}
	dir := t.TempDir()
	r := testenv.RedisServer(t)
	p := startDSAR(t, baseEnv(t, dir, r.Addr, testenv.Queue(t, r), testenv.Name("e2e")), "dev")
	const body = `{"type":"access","regulation":"gdpr","subject":{"email":"ada@example.com"}}`
	if code := p.call("POST", "/v1/requests", body, nil); code != http.StatusAccepted {
		t.Fatalf("file: %d", code)
	}
	for _, name := range []string{"dsar.db", "dsar.db-wal", "dsar.db-shm"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	var accepted []string
	for _, email := range []string{"grace@example.com", "alan@example.com"} {
		resp := p.raw("POST", "/v1/requests", strings.Replace(body, "ada@example.com", email, 1))
		switch {
		case resp.status == http.StatusAccepted:
			var got request
			if err := json.Unmarshal([]byte(resp.body), &got); err != nil {
				t.Fatal(err)
			}
			accepted = append(accepted, got.ID)
		case resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" ||
			!strings.Contains(resp.body, `"type":"urn:dsar:problem:store-unavailable"`):
			t.Errorf("POST after the file was removed: %d, Retry-After %q, %s; want 503 store-unavailable", resp.status, resp.header.Get("Retry-After"), resp.body)
		}
	}
	ready := p.call("GET", "/readyz", "", nil)
	p.stop()
	if len(accepted) > 0 || ready == http.StatusOK {
		// What became of the accepted ones: they are gone at the next start.
		s, err := sqlitestore.Open(context.Background(), filepath.Join(dir, "dsar.db"), sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		lost := 0
		for _, id := range accepted {
			if _, err := s.Request(context.Background(), id); err != nil {
				lost++
			}
		}
		t.Errorf("store file deleted under dev: readyz %d, %d requests answered 202 after it, %d of them not in dsar.db at the next start", ready, len(accepted), lost)
	}
}

// TestMigrateDoesNotWriteItsSource migrates from a SQLite file in rollback
// journal mode, as `VACUUM INTO` or a copy made with dsar stopped leaves
// it: the docs promise that migrate never writes its source, so the file
// must be byte for byte as it was and no -wal or -shm must appear beside
// it (a source on read-only media, or owned by another user, cannot be
// opened for writing at all).
func TestMigrateDoesNotWriteItsSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "backup.db")
	s, err := sqlitestore.Open(ctx, src, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := &dsr.Request{ID: "r1", Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerifying, Source: "agent_api",
		IdentityHashes: []string{"email:abc"}, ReceivedAt: now, DueAt: now.Add(time.Hour), UpdatedAt: now,
		History: []dsr.Transition{{To: dsr.StatusVerifying, At: now, Actor: "agent"}}}
	if err := s.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode=DELETE`); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	before, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runOnce(t, nil, "migrate", "--from", "sqlite:"+src, "--to", "sqlite:"+filepath.Join(dir, "copy.db"))
	if code != 0 {
		t.Fatalf("migrate: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	after, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("migrate wrote its source %s (%d bytes before, %d after; header bytes 18-19 %v -> %v: 1 is rollback journal, 2 is WAL)",
			src, len(before), len(after), before[18:20], after[18:20])
	}
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(src + side); err == nil {
			t.Errorf("migrate left %s%s beside its source", src, side)
		}
	}
}
