package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/sqlitestore"
	"github.com/dsar-project/dsar/store/storetest"
)

// TestConformance runs the store conformance suite on the SQLite driver,
// each case on a fresh file in its own temporary directory.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Harness{Open: func(t *testing.T, now func() time.Time) store.Store {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "dsar.db"), sqlitestore.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}, AuditsInTransaction: true})
}
