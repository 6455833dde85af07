// Package embedded runs the development stand-ins for the service's backing
// stores inside the process: FerretDB on SQLite for MongoDB, and miniredis
// for Redis. They exist so that `dsar dev` and the tests need nothing
// installed; production uses real MongoDB and Redis.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/alicebob/miniredis/v2"
)

// starting serializes FerretDB's construction.
var starting sync.Mutex

// Mongo is a running embedded FerretDB.
type Mongo struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// StartMongo starts FerretDB v1 with its SQLite backend storing files in dir,
// listening on a free loopback port. log receives FerretDB's own errors only;
// its debug and warning output can quote documents, so it is dropped.
func StartMongo(ctx context.Context, dir string, log *slog.Logger) (*Mongo, error) {
	return StartMongoWith(ctx, dir, log, MongoOptions{})
}

// MongoOptions tune StartMongoWith.
type MongoOptions struct {
	// TLSCertFile and TLSKeyFile (PEM), when set, make FerretDB accept TLS
	// connections only; its URI then carries tls=true, and a client needs
	// tlsCAFile (or the system's roots) to trust the certificate.
	TLSCertFile, TLSKeyFile string
}

// StartMongoWith is StartMongo with options.
func StartMongoWith(ctx context.Context, dir string, log *slog.Logger, o MongoOptions) (*Mongo, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	// ferretdb.New writes a package global (its version's Package): one
	// at a time.
	starting.Lock()
	listener := ferretdb.ListenerConfig{TCP: "127.0.0.1:0"}
	if o.TLSCertFile != "" {
		listener = ferretdb.ListenerConfig{TLS: "127.0.0.1:0", TLSCertFile: o.TLSCertFile, TLSKeyFile: o.TLSKeyFile}
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    slog.New(messageOnly{log.Handler()}),
	})
	starting.Unlock()
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m := &Mongo{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		_ = f.Run(runCtx)
	}()
	// MongoDBURI needs the listener, which Run sets up; wait for it.
	uri := make(chan string, 1)
	go func() { uri <- f.MongoDBURI() }()
	select {
	case m.uri = <-uri:
	case <-time.After(30 * time.Second):
		cancel()
		return nil, errors.New("embedded store: FerretDB did not start listening within 30s")
	}
	return m, nil
}

// CheckWritable creates dir when missing and checks that a file can be
// created in it and that its existing files can be opened for writing:
// SQLite would otherwise fail at the first write with "unable to open
// database file (14)", naming neither the path nor the cause. Its error
// names both, as in "data dir ./data/ferretdb: not writable: read-only
// file system".
func CheckWritable(dir string) error {
	notWritable := func(kind, path string, err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return fmt.Errorf("%s %s: not writable: %w", kind, path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		path := dir
		var pe *fs.PathError
		if errors.As(err, &pe) {
			path = pe.Path // the part of dir that failed, e.g. a file in the way
		}
		return notWritable("data dir", path, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return notWritable("data dir", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	if err := os.Remove(name); err != nil {
		return notWritable("data dir", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return notWritable("data dir", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return notWritable("data file", path, err)
		}
		_ = f.Close()
	}
	return nil
}

// URI is the mongodb:// address of the embedded store.
func (m *Mongo) URI() string { return m.uri }

// Stop stops FerretDB and waits until its files are closed.
func (m *Mongo) Stop() {
	m.cancel()
	<-m.done
}

// Redis is a running in-process Redis stand-in.
type Redis struct {
	*miniredis.Miniredis
}

// StartRedis starts miniredis on a free loopback port. It keeps data in
// memory only: fine for development, never for production.
func StartRedis() (*Redis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("in-process redis: %w", err)
	}
	return &Redis{m}, nil
}

// messageOnly passes on records of level Error and above with their message
// but without attributes, so no document content reaches the logs.
type messageOnly struct{ h slog.Handler }

func (m messageOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError && m.h.Enabled(ctx, l)
}

func (m messageOnly) Handle(ctx context.Context, r slog.Record) error {
	msg := r.Message
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return m.h.Handle(ctx, slog.NewRecord(r.Time, r.Level, "ferretdb: "+msg, 0))
}

func (m messageOnly) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m messageOnly) WithGroup(string) slog.Handler      { return m }
