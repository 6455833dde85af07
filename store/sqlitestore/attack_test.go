package sqlitestore

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// TestWALShrinksAfterALongRead holds a read open (a report, an audit
// verify, an online backup in another process) while requests are filed,
// so the WAL cannot be reset and grows; once the read ends and writes go
// on, the WAL is checkpointed and its file must shrink again rather than
// keep its high-water size on disk for the life of the store (SQLite keeps
// a WAL file at its largest unless journal_size_limit is set).
func TestWALShrinksAfterALongRead(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "")
	s := f.store
	wal := s.Path() + "-wal"
	size := func() int64 {
		st, err := os.Stat(wal)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	fileBatch := func(prefix string, n int) {
		reqs := make([]*dsr.Request, n)
		for i := range reqs {
			reqs[i] = f.value(t, dsr.RegulationGDPR, dsr.TypeAccess, dsr.StatusVerified, fmt.Sprintf("%s%d@example.com", prefix, i))
		}
		for i, err := range s.CreateRequests(ctx, reqs) {
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
	}

	// The long read: a transaction on a reading connection, as another
	// process's report holds one.
	conn, err := s.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM requests`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	for b := range 12 {
		fileBatch(fmt.Sprintf("long%d-", b), 1000)
	}
	grown := size()
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
	if grown < 32<<20 {
		t.Fatalf("the WAL grew to %d bytes only under the long read; the test needs more writes", grown)
	}

	// The read is over: writes go on, checkpoints run, the WAL restarts.
	for b := range 6 {
		fileBatch(fmt.Sprintf("after%d-", b), 200)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		t.Fatal(err)
	}
	fileBatch("last-", 10)
	if got := size(); got > grown/2 {
		t.Errorf("WAL file is %d bytes after the long read ended and writes went on (it grew to %d under the read): its space is never given back", got, grown)
	}
}
