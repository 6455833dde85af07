package sqlitestore

import (
	"context"
	"errors"
	"os"
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
