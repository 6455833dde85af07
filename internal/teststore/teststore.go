// Package teststore opens the store that the tests of the application, the
// API and the workers run on, for one test:
//
//   - the embedded SQLite store, in a file of the test's temporary
//     directory: the default;
//   - MongoDB through store/mongostore when DSAR_TEST_STORE=mongodb, or when
//     DSAR_TEST_MONGO_URI names a real MongoDB (else on the package's
//     embedded FerretDB; see internal/testenv).
//
// The drivers themselves are held to one contract by store/storetest; this
// runs everything above them on either.
package teststore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/internal/envelope"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/store/sqlitestore"
)

// Store is a test's store.
type Store struct {
	store.Store
	// Mongo is the store when it is MongoDB's, else nil.
	Mongo *mongostore.Store
	// Commands records the commands the MongoDB store sends (none on
	// SQLite); tests that count them call NeedMongo first.
	Commands *testenv.Commands
	// Lite is the store when it is SQLite's, else nil.
	Lite *sqlitestore.Store
	// Sealed is the store as the tests use it: Mongo or Lite with the
	// personal fields sealed (store/sealedstore), under Ring.
	Sealed *sealedstore.Store
	Ring   *envelope.Keyring
}

// OnMongo reports whether the tests run on MongoDB's driver.
func OnMongo() bool {
	return os.Getenv("DSAR_TEST_STORE") == "mongodb" || testenv.RealMongo()
}

// Open returns a fresh, prepared store for t on clock now (nil: time.Now),
// removed when t ends. mongo are options of the MongoDB client, applied
// after the tests' own (unused on SQLite).
func Open(t testing.TB, now func() time.Time, mongo ...*options.ClientOptions) *Store {
	t.Helper()
	s := &Store{Commands: &testenv.Commands{}}
	if OnMongo() {
		s.Mongo = mongostore.New(testenv.Mongo(t, append([]*options.ClientOptions{s.Commands.ClientOptions()}, mongo...)...), now)
		s.Store = s.Mongo
	} else {
		lite, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "dsar.db"), sqlitestore.Options{Now: now})
		if err != nil {
			t.Fatalf("teststore: %v", err)
		}
		t.Cleanup(func() { _ = lite.Close() })
		s.Lite = lite
		s.Store = lite
	}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatalf("teststore: prepare: %v", err)
	}
	// Personal fields sealed at rest, as every process of dsar stores
	// them: under a master key of the test's own.
	ring, err := envelope.ParseKeyring(envelope.GenerateMasterKey())
	if err != nil {
		t.Fatalf("teststore: %v", err)
	}
	s.Sealed, s.Ring = sealedstore.New(s.Store, ring, sealedstore.Options{}), ring
	s.Store = s.Sealed
	return s
}

// NeedMongo skips t unless the store is MongoDB's: for tests that count
// the MongoDB commands an operation sends.
func (s *Store) NeedMongo(t testing.TB) {
	t.Helper()
	if s.Mongo == nil {
		t.Skip("counts MongoDB commands: runs with DSAR_TEST_STORE=mongodb (on SQLite an operation is one transaction; see store/sqlitestore)")
	}
}

// Count returns how many documents collection (store.Requests...) holds.
func (s *Store) Count(t testing.TB, collection string) int64 {
	t.Helper()
	if s.Mongo != nil {
		n, err := s.Mongo.DB().Collection(collection).CountDocuments(context.Background(), bson.D{})
		if err != nil {
			t.Fatalf("teststore: count %s: %v", collection, err)
		}
		return n
	}
	c, ok := s.Sealed.Inner().(store.Copier)
	if !ok {
		t.Fatalf("teststore: the store cannot count %s", collection)
	}
	n, err := c.Count(context.Background(), collection)
	if err != nil {
		t.Fatalf("teststore: count %s: %v", collection, err)
	}
	return n
}

// TamperAudit sets field (a dotted path in the event's document, such as
// "data.reason") of the audit event seq of request to value behind the
// store's back, as someone editing the database would. It fails t unless
// exactly one event changed.
func (s *Store) TamperAudit(t testing.TB, request string, seq int, field, value string) {
	t.Helper()
	if s.Mongo != nil {
		res, err := s.Mongo.DB().Collection(store.Audit).UpdateOne(context.Background(),
			bson.D{{Key: "request_id", Value: request}, {Key: "seq", Value: seq}},
			bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: value}}}})
		if err != nil || res.ModifiedCount != 1 {
			t.Fatalf("teststore: tamper with audit event %d: %v (%+v)", seq, err, res)
		}
		return
	}
	s.execLite(t, "UPDATE audit_events SET doc = json_set(doc, ?, ?) WHERE request_id = ? AND seq = ?", "$."+field, value, request, seq)
}

// DeleteAudit deletes the audit event seq of request behind the store's
// back. It fails t unless exactly one event went.
func (s *Store) DeleteAudit(t testing.TB, request string, seq int) {
	t.Helper()
	if s.Mongo != nil {
		res, err := s.Mongo.DB().Collection(store.Audit).DeleteOne(context.Background(),
			bson.D{{Key: "request_id", Value: request}, {Key: "seq", Value: seq}})
		if err != nil || res.DeletedCount != 1 {
			t.Fatalf("teststore: delete audit event %d: %v (%+v)", seq, err, res)
		}
		return
	}
	s.execLite(t, "DELETE FROM audit_events WHERE request_id = ? AND seq = ?", request, seq)
}

// LiteDB opens the SQLite store's file through a pool of its own, closed
// when t ends: to read or change it behind the store's back. It fails t on
// MongoDB.
func (s *Store) LiteDB(t testing.TB) *sql.DB {
	t.Helper()
	if s.Lite == nil {
		t.Fatal("teststore: LiteDB on MongoDB's store")
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", OmitHost: true, Path: s.Lite.Path(),
		RawQuery: "_pragma=busy_timeout(10000)"}).String())
	if err != nil {
		t.Fatalf("teststore: open %s: %v", s.Lite.Path(), err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// execLite runs one statement on the SQLite file through a connection of
// its own, and fails t unless it changed exactly one row.
func (s *Store) execLite(t testing.TB, query string, args ...any) {
	t.Helper()
	res, err := s.LiteDB(t).ExecContext(context.Background(), query, args...)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n != 1 {
			err = fmt.Errorf("%d rows changed, want 1", n)
		}
	}
	if err != nil {
		t.Fatalf("teststore: %s: %v", query, err)
	}
}
