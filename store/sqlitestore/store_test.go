package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/dsr"
)

// TestCoreRoundTrip files a request, reads it back, and moves it with
// several goroutines at once: exactly one move wins.
func TestCoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := &dsr.Request{ID: "r1", Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Status: dsr.StatusVerifying, Source: "agent_api",
		IdentityHashes: []string{"email:abc"}, ReceivedAt: now, DueAt: now.Add(time.Hour), UpdatedAt: now,
		History: []dsr.Transition{{To: dsr.StatusVerifying, At: now, Actor: "agent"}}}
	if err := s.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRequest(ctx, r); !errors.Is(err, dsr.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	got, err := s.Request(ctx, "r1")
	if err != nil || got.DueAt != r.DueAt || got.IdentityHashes[0] != "email:abc" {
		t.Fatalf("read back: %+v, %v", got, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Go(func() {
			_, err := s.Transition(ctx, "r1", dsr.StatusVerifying, dsr.StatusVerified, dsr.Change{Actor: "t"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, dsr.ErrConflict):
				t.Errorf("transition: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d moves won, want 1", wins)
	}
	trail, err := s.AuditTrail(ctx, "r1")
	if err != nil || len(trail) != 2 {
		t.Fatalf("audit trail: %d events, %v", len(trail), err)
	}
	if c := dsr.VerifyChain(trail); !c.OK {
		t.Fatalf("audit chain: %+v", c)
	}
}

// TestFileIsPrivate: the store's files, which hold personal data, are
// readable by their owner only.
func TestFileIsPrivate(t *testing.T) {
	s := openTest(t)
	if err := s.ProbeWrite(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		fi, err := os.Stat(s.Path() + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s: mode %v, want no access for group and others", fi.Name(), mode)
		}
	}
}

// TestLockedByAnotherProcess: a write that waits past the busy timeout for
// another process's transaction fails with dsr.ErrStoreUnavailable (a 503
// for the API), and nothing of it is stored.
func TestLockedByAnotherProcess(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "dsar.db"), Options{BusyTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	other, err := sql.Open("sqlite", "file:"+s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	err = s.AddNotice(ctx, "r1", "receipt")
	if !errors.Is(err, dsr.ErrStoreUnavailable) {
		t.Errorf("a write while another process holds the lock: %v, want ErrStoreUnavailable", err)
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if err := s.ProbeWrite(ctx); err != nil {
		t.Errorf("once the lock is released: %v", err)
	}
}
