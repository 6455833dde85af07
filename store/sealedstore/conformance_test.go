package sealedstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/s3exports"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
	"github.com/dsar-project/dsar/store/storetest"
)

// ring returns a keyring of one new master key.
func ring(t testing.TB) *envelope.Keyring {
	t.Helper()
	kr, err := envelope.ParseKeyring(envelope.GenerateMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// bucket returns a bucket of an S3 server of t's own.
func bucket(t testing.TB) *s3exports.Bucket {
	t.Helper()
	s3 := testenv.StartS3(t, "exports")
	b, err := s3exports.Open(context.Background(), s3exports.Config{Endpoint: s3.Endpoint, CAFile: s3.CAFile, Bucket: "exports/dsar", AccessKeyID: "id", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance runs the store conformance suite through the sealing
// store, on the SQLite driver, and on the MongoDB driver when the tests run
// on it (DSAR_TEST_STORE=mongodb or DSAR_TEST_MONGO_URI): sealing changes
// nothing a caller of the store sees.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		exports func(t testing.TB) sealedstore.Objects // nil: in the store
	}{
		{"sqlite", nil},
		{"sqlite, exports in S3", func(t testing.TB) sealedstore.Objects { return bucket(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, storetest.Harness{Open: func(t *testing.T, now func() time.Time) store.Store {
				s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "dsar.db"), sqlitestore.Options{Now: now})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				var opts sealedstore.Options
				if c.exports != nil {
					opts.Exports = c.exports(t)
				}
				return sealedstore.New(s, ring(t), opts)
			}, AuditsInTransaction: true, Sealed: true})
		})
	}
	t.Run("mongodb", func(t *testing.T) {
		if !teststore.OnMongo() {
			t.Skip("runs with DSAR_TEST_STORE=mongodb or DSAR_TEST_MONGO_URI")
		}
		t.Parallel()
		storetest.Run(t, storetest.Harness{Open: func(t *testing.T, now func() time.Time) store.Store {
			s := mongostore.New(testenv.Mongo(t), now)
			if err := s.Prepare(context.Background()); err != nil {
				t.Fatal(err)
			}
			return sealedstore.New(s, ring(t), sealedstore.Options{})
		}, Sealed: true})
	})
}
