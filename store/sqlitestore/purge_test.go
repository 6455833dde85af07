package sqlitestore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// TestPurgedIdentitiesLeaveTheFile: once a closed request's identities are
// purged (DSAR_RETENTION_IDENTITIES) and the WAL is checkpointed, the
// database file holds no copy of them: SQLite otherwise leaves a deleted or
// rewritten row's bytes in the page's free space and in free pages, where
// anyone reading the file (a backup, a copied disk) finds them.
func TestPurgedIdentitiesLeaveTheFile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	s := f.store
	const email = "purge-me-7f3k2q@example.com"
	// Neighbours on the same pages, filed before and after it.
	for i := range 20 {
		if err := s.CreateRequest(ctx, f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, fmt.Sprintf("before%d@example.com", i))); err != nil {
			t.Fatal(err)
		}
	}
	r := f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, email)
	// A long note: the row overflows its page, as one with corrections'
	// new values or many identities does.
	r.Note = strings.Repeat("called from "+email+" about their order; ", 200)
	if err := s.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := s.CreateRequest(ctx, f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, fmt.Sprintf("after%d@example.com", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.PurgeIdentities(ctx, r.ID); err != nil || !ok {
		t.Fatalf("PurgeIdentities = %v, %v", ok, err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{s.Path(), s.Path() + "-wal"} {
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(email)) {
			t.Errorf("%s still holds the purged email", name)
		}
	}
}
