package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dsar-project/dsar/internal/mongocompat"
	"github.com/dsar-project/dsar/store"
)

var _ store.Store = (*Store)(nil)

// Collection names: those of package store, which every driver shares.
const (
	RequestsCollection      = store.Requests
	JobsCollection          = store.Jobs
	ExportRecordsCollection = store.ExportRecords
	// AuditCollection holds one document per audit event.
	AuditCollection = store.Audit
	// IdempotencyCollection maps a client's Idempotency-Key to the request
	// it filed, so a retried POST never files twice. One document per key,
	// keyed by a hash of the caller and the key; inserting it is the
	// atomic step, on MongoDB and FerretDB alike.
	IdempotencyCollection = store.Idempotency
	// HealthCollection holds the one document ProbeWrite rewrites.
	HealthCollection = "health"
)

// Index declares one index a query of the store needs.
type Index struct {
	Name   string
	Keys   bson.D
	Unique bool
}

// Indexes lists, per collection, every index the store's queries need. Each
// query the store issues is served by one of them on MongoDB (a test checks
// every command the store sends against this list). FerretDB v1 accepts the
// declarations but scans anyway.
var Indexes = map[string][]Index{
	RequestsCollection: {
		// Lists, newest first.
		{Name: "status_id", Keys: bson.D{{Key: "status", Value: 1}, {Key: "_id", Value: -1}}},
		{Name: "type_id", Keys: bson.D{{Key: "type", Value: 1}, {Key: "_id", Value: -1}}},
		// Lists by due date, each filter leading: a list with several
		// filters uses one of these and filters the rest as it reads.
		{Name: "due_id", Keys: bson.D{{Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "type_due_id", Keys: bson.D{{Key: "type", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "regulation_due_id", Keys: bson.D{{Key: "regulation", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "source_due_id", Keys: bson.D{{Key: "source", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "assignee_due_id", Keys: bson.D{{Key: "assigned_to", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "status_updated", Keys: bson.D{{Key: "status", Value: 1}, {Key: "updated_at", Value: 1}}},
		// Unverified requests by identity (the portal supersedes them).
		{Name: "identity_type_status", Keys: bson.D{{Key: "identity_hashes", Value: 1}, {Key: "type", Value: 1}, {Key: "status", Value: 1}, {Key: "received_at", Value: -1}}},
		// Merges and duplicates, found by proven identities only.
		{Name: "proven_type_status_appeal", Keys: bson.D{{Key: "proven_hashes", Value: 1}, {Key: "type", Value: 1}, {Key: "status", Value: 1}, {Key: "appeal_of", Value: 1}, {Key: "received_at", Value: -1}}},
		{Name: "status_due_id", Keys: bson.D{{Key: "status", Value: 1}, {Key: "due_at", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "notices_updated", Keys: bson.D{{Key: "pending_notices", Value: 1}, {Key: "updated_at", Value: 1}}},
		{Name: "audit_due_updated", Keys: bson.D{{Key: "audit_due", Value: 1}, {Key: "updated_at", Value: 1}}},
		{Name: "status_closed", Keys: bson.D{{Key: "status", Value: 1}, {Key: "closed_at", Value: 1}}},
		// The deadline checks (checks.go): each leads with the fields a
		// request loses once acted on, so a run with nothing to do
		// examines nothing.
		{Name: "checks_due", Keys: bson.D{{Key: "status", Value: 1}, {Key: "paused_at", Value: 1}, {Key: "overdue_at", Value: 1}, {Key: "due_at", Value: 1}, {Key: "reminded", Value: 1}}},
		{Name: "checks_exports", Keys: bson.D{{Key: "status", Value: 1}, {Key: "type", Value: 1}, {Key: "exports_purged_at", Value: 1}, {Key: "closed_at", Value: 1}}},
		{Name: "checks_identities", Keys: bson.D{{Key: "status", Value: 1}, {Key: "purged_at", Value: 1}, {Key: "closed_at", Value: 1}}},
		// Statistics (stats.go): counts by status, type and regulation,
		// answered from the index alone, and the report's window of receipt.
		{Name: "status_type_regulation", Keys: bson.D{{Key: "status", Value: 1}, {Key: "type", Value: 1}, {Key: "regulation", Value: 1}}},
		{Name: "received_at", Keys: bson.D{{Key: "received_at", Value: 1}}},
	},
	JobsCollection: {
		{Name: "request_id", Keys: bson.D{{Key: "request_id", Value: 1}, {Key: "_id", Value: 1}}},
		{Name: "request_status", Keys: bson.D{{Key: "request_id", Value: 1}, {Key: "status", Value: 1}}},
		{Name: "status_updated", Keys: bson.D{{Key: "status", Value: 1}, {Key: "updated_at", Value: 1}}},
		{Name: "status_lease", Keys: bson.D{{Key: "status", Value: 1}, {Key: "lease_until", Value: 1}}},
		{Name: "status_poll", Keys: bson.D{{Key: "status", Value: 1}, {Key: "poll_at", Value: 1}}},
		// Job outcomes since a time, for the metrics (stats.go).
		{Name: "finished_at", Keys: bson.D{{Key: "finished_at", Value: 1}}},
	},
	ExportRecordsCollection: {
		{Name: "job_seq", Keys: bson.D{{Key: "job_id", Value: 1}, {Key: "seq", Value: 1}}, Unique: true},
		{Name: "request_id", Keys: bson.D{{Key: "request_id", Value: 1}}},
	},
	AuditCollection: {
		{Name: "request_seq", Keys: bson.D{{Key: "request_id", Value: 1}, {Key: "seq", Value: 1}}, Unique: true},
	},
	// The suppression list (suppressions.go): a person's entries, and the
	// change feed checkers keep fresh by.
	SuppressionsCollection: {
		{Name: "hash", Keys: bson.D{{Key: "hash", Value: 1}}},
		{Name: "updated_id", Keys: bson.D{{Key: "updated_at", Value: 1}, {Key: "_id", Value: 1}}},
	},
	// A person's consent history, oldest first (multikey on hashes).
	ConsentEventsCollection: {
		{Name: "hashes_at_id", Keys: bson.D{{Key: "hashes", Value: 1}, {Key: "at", Value: 1}, {Key: "_id", Value: 1}}},
	},
	// The removals of a report's window.
	RemovalsCollection: {
		{Name: "at_id", Keys: bson.D{{Key: "at", Value: 1}, {Key: "_id", Value: 1}}},
	},
}

// Store keeps requests, jobs and exported records in MongoDB (or FerretDB).
// It is safe for concurrent use.
type Store struct {
	db *mongo.Database
	// The collections: every write goes through their lane (see
	// [collection]).
	reqs, jobs, exports, audit, idem, health *collection
	supp, consent, removals                  *collection
	now                                      func() time.Time
	gate                                     mongocompat.Gate
	heads                                    auditHeads
}

// New returns a store on db. now is the clock; nil means time.Now.
func New(db *mongo.Database, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{db: db, now: func() time.Time { return now().UTC().Truncate(time.Millisecond) }}
	s.reqs = newCollection(db, RequestsCollection, &s.gate)
	s.jobs = newCollection(db, JobsCollection, &s.gate)
	s.exports = newCollection(db, ExportRecordsCollection, &s.gate)
	s.audit = newCollection(db, AuditCollection, &s.gate)
	s.idem = newCollection(db, IdempotencyCollection, &s.gate)
	s.health = newCollection(db, HealthCollection, &s.gate)
	s.supp = newCollection(db, SuppressionsCollection, &s.gate)
	s.consent = newCollection(db, ConsentEventsCollection, &s.gate)
	s.removals = newCollection(db, RemovalsCollection, &s.gate)
	return s
}

// Prepare readies the store at start-up: it learns whether the server is
// FerretDB (whose conditional writes are serialized, see
// internal/mongocompat) and creates the indexes of [Indexes]. It is
// idempotent; call it before any other method.
func (s *Store) Prepare(ctx context.Context) error {
	gate, err := mongocompat.Detect(ctx, s.db)
	if err != nil {
		return err
	}
	s.gate = gate
	colls := map[string]*collection{}
	for _, c := range []*collection{s.reqs, s.jobs, s.exports, s.audit, s.idem, s.health, s.supp, s.consent, s.removals} {
		colls[c.Name()] = c
	}
	for name, indexes := range Indexes {
		c := colls[name]
		if c == nil {
			return fmt.Errorf("indexes declared on %s, which the store does not keep", name)
		}
		if err := ensureIndexes(ctx, c, indexes); err != nil {
			return err
		}
	}
	return nil
}

// ensureIndexes creates the indexes coll lacks, one command each. (FerretDB
// v1.24 drops the connection when one createIndexes command names several
// indexes that all exist already, after a restart.)
func ensureIndexes(ctx context.Context, coll *collection, indexes []Index) error {
	specs, err := coll.indexes().ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("list indexes on %s: %w", coll.Name(), err)
	}
	have := map[string]bool{}
	for _, s := range specs {
		have[s.Name] = true
	}
	for _, ix := range indexes {
		if have[ix.Name] {
			continue
		}
		model := mongo.IndexModel{Keys: ix.Keys, Options: options.Index().SetName(ix.Name).SetUnique(ix.Unique)}
		if _, err := coll.indexes().CreateOne(ctx, model); err != nil {
			return fmt.Errorf("create index %s on %s: %w", ix.Name, coll.Name(), err)
		}
	}
	return nil
}

// OnFerretDB reports whether the store is FerretDB, on which dsar must run as
// a single process.
func (s *Store) OnFerretDB() bool { return s.gate.FerretDB() }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// ProbeWrite rewrites one tiny document (by _id, in HealthCollection) and
// reports whether the store can write: ErrStorageFull (see StorageError)
// when its disk is full. Readiness uses it once a write failed for lack of
// space, to learn when space is back.
func (s *Store) ProbeWrite(ctx context.Context) error {
	_, err := s.health.Touch(ctx, "probe", s.now())
	if err != nil {
		return fmt.Errorf("probe write: %w", StorageError(err))
	}
	return nil
}

// each streams the documents matching filter to fn, 100 per round trip.
func each[T any](ctx context.Context, c *collection, filter bson.D, fn func(*T) error) error {
	return stream(ctx, c, filter, options.Find().SetBatchSize(100), fn)
}

// stream finds with opts and hands each document, decoded, to fn.
func stream[T any](ctx context.Context, c *collection, filter bson.D, opts *options.FindOptionsBuilder, fn func(*T) error) error {
	cur, err := c.Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("scan %s: %w", c.Name(), err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var v T
		if err := cur.Decode(&v); err != nil {
			return fmt.Errorf("decode %s: %w", c.Name(), err)
		}
		if err := fn(&v); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("scan %s: %w", c.Name(), err)
	}
	return nil
}

// Close does nothing: the MongoDB client is the caller's, who disconnects it.
func (s *Store) Close() error { return nil }

// DB returns the database the store keeps its collections in.
func (s *Store) DB() *mongo.Database { return s.db }
