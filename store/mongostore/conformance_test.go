package mongostore_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/storetest"
)

// TestConformance runs the store conformance suite on the MongoDB driver,
// each case on a fresh database of the test store (the package's embedded
// FerretDB, or the MongoDB at DSAR_TEST_MONGO_URI).
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Harness{Open: func(t *testing.T, now func() time.Time) store.Store {
		s := mongostore.New(testenv.Mongo(t), now)
		if err := s.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}})
}
