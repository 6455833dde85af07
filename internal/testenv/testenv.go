// Package testenv gives tests the real services they run against: a
// MongoDB-compatible store and Redis. Addresses come from the environment
// with local defaults:
//
//   - DSAR_TEST_MONGO_URI: a MongoDB to use; unset, each test package starts
//     its own embedded FerretDB (SQLite) in a temporary directory.
//   - DSAR_TEST_REDIS_ADDR: a Redis server, default 127.0.0.1:6379. When none
//     answers, tests fall back to an in-process miniredis and say so, unless
//     DSAR_TEST_REQUIRE_REDIS=1 (set by CI), which makes that a failure.
//
// Every test gets its own database and its own queue names and removes them
// when it ends, so packages can run in parallel against one server.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.uber.org/goleak"

	"github.com/dsar-project/dsar/internal/embedded"
)

var (
	mongoOnce sync.Once
	mongoURI  string
	mongoErr  error
	ferret    *embedded.Mongo
	ferretDir string
)

// Main runs the tests of a package, stops the services it started, runs
// cleanups, and fails the run if goroutines leak. Call it from TestMain.
func Main(m *testing.M, cleanups ...func()) {
	before := goleak.IgnoreCurrent() // goroutines that predate the tests
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	if ferret != nil {
		ferret.Stop()
		_ = os.RemoveAll(ferretDir)
	}
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// MongoURI returns the address of the test store, starting the package's
// embedded FerretDB on first use.
func MongoURI(t testing.TB) string {
	t.Helper()
	mongoOnce.Do(func() {
		if uri := os.Getenv("DSAR_TEST_MONGO_URI"); uri != "" {
			mongoURI = uri
			return
		}
		ferretDir, mongoErr = os.MkdirTemp("", "dsar-test-ferretdb-")
		if mongoErr != nil {
			return
		}
		ferret, mongoErr = embedded.StartMongo(context.Background(), ferretDir, slog.New(slog.DiscardHandler))
		if mongoErr == nil {
			mongoURI = ferret.URI()
		}
	})
	if mongoErr != nil {
		t.Fatalf("testenv: start embedded FerretDB: %v", mongoErr)
	}
	return mongoURI
}

// RealMongo reports whether tests run against a real MongoDB
// (DSAR_TEST_MONGO_URI) rather than the embedded FerretDB.
func RealMongo() bool { return os.Getenv("DSAR_TEST_MONGO_URI") != "" }

// Client returns a new client to the test store, disconnected when the test
// ends. opts are applied after the URI (e.g. a command monitor).
func Client(t testing.TB, opts ...*options.ClientOptions) *mongo.Client {
	t.Helper()
	all := append([]*options.ClientOptions{options.Client().ApplyURI(MongoURI(t)).SetTimeout(30 * time.Second)}, opts...)
	c, err := mongo.Connect(all...)
	if err != nil {
		t.Fatalf("testenv: connect to store: %v", err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}

// Database returns a fresh, uniquely named database on client, dropped when
// the test ends.
func Database(t testing.TB, c *mongo.Client) *mongo.Database {
	t.Helper()
	db := c.Database(Name("t"))
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	return db
}

// Mongo returns a fresh database on a new client: the common case.
func Mongo(t testing.TB, opts ...*options.ClientOptions) *mongo.Database {
	t.Helper()
	return Database(t, Client(t, opts...))
}

// Name returns prefix followed by a random suffix, for databases and queues.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Redis is a Redis server for one test.
type Redis struct {
	Addr string
	// Real is false when the test runs on the in-process fallback.
	Real bool
	// Mini is the fallback server, nil on a real one.
	Mini *embedded.Redis
}

var redisWarn sync.Once

// RedisServer returns the test Redis: the real server at DSAR_TEST_REDIS_ADDR
// (default 127.0.0.1:6379), or a fresh in-process one when none answers.
func RedisServer(t testing.TB) Redis {
	t.Helper()
	addr := os.Getenv("DSAR_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	d := net.Dialer{Timeout: time.Second}
	if conn, err := d.DialContext(context.Background(), "tcp", addr); err == nil { //nolint:gosec // the address is the test environment's own

		_ = conn.Close()
		return Redis{Addr: addr, Real: true}
	} else if os.Getenv("DSAR_TEST_REQUIRE_REDIS") == "1" {
		t.Fatalf("testenv: no Redis answers at %s and DSAR_TEST_REQUIRE_REDIS=1: %v", addr, err)
	}
	redisWarn.Do(func() {
		fmt.Fprintf(os.Stderr, "testenv: no Redis at %s; falling back to in-process miniredis (set DSAR_TEST_REDIS_ADDR, or DSAR_TEST_REQUIRE_REDIS=1 to fail instead)\n", addr)
	})
	m, err := embedded.StartRedis()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(m.Close)
	return Redis{Addr: m.Addr(), Mini: m}
}

// Queue returns a queue name of the test's own on r, deleted with its tasks
// when the test ends, together with the control and notice queues that go
// with it (workers.ControlQueue, workers.NoticeQueue).
func Queue(t testing.TB, r Redis) string {
	t.Helper()
	q := Name("dsar_test")
	t.Cleanup(func() {
		insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: r.Addr})
		defer insp.Close()
		for _, name := range []string{q, q + "_control", q + "_notices", q + "_codes"} {
			_ = insp.DeleteQueue(name, true)
		}
	})
	return q
}
