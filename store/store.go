// Package store says what dsar keeps its requests in, whatever the driver:
// [Store] is every operation the application, the workers and the commands
// perform, and [Copier] is what `dsar migrate` moves between drivers. The
// drivers are its subpackages: mongostore (MongoDB, the production store)
// and sqlitestore (the embedded default, one SQLite file). Both pass one
// conformance suite, storetest.
//
// The consumers declare the small interfaces they use beside their code
// (app.Store, workers.JobStore...); this union is what a driver must
// provide for all of them, and what the commands wire.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/dsr"
)

// Store is a driver's store. Every method is safe for concurrent use and
// every conditional update is atomic: of two actors moving one request
// from the same status, exactly one wins (the other gets dsr.ErrConflict).
type Store interface {
	// Lifecycle.

	// Prepare readies the store at start-up (schema, indexes); it is
	// idempotent and called before any other method.
	Prepare(ctx context.Context) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// ProbeWrite performs one tiny write: dsr.ErrStorageFull while the
	// disk is full.
	ProbeWrite(ctx context.Context) error
	// Close releases what the driver holds (a MongoDB client is the
	// caller's, and stays open).
	Close() error

	// Requests.
	CreateRequest(ctx context.Context, r *dsr.Request) error
	CreateRequests(ctx context.Context, reqs []*dsr.Request) []error
	Request(ctx context.Context, id string) (*dsr.Request, error)
	ListRequests(ctx context.Context, f dsr.ListFilter) ([]dsr.Request, *dsr.Cursor, error)
	Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (*dsr.Request, error)
	Assign(ctx context.Context, id, agent string) (*dsr.Request, error)
	Appeal(ctx context.Context, id string, f dsr.AppealFiling) (*dsr.Request, error)
	Extend(ctx context.Context, id, actor, reason string) (*dsr.Request, error)
	PauseClock(ctx context.Context, id, actor, reason string) (*dsr.Request, error)
	ResumeClock(ctx context.Context, id string) (*dsr.Request, error)
	OpenDuplicates(ctx context.Context, hashes []string, types []dsr.Type, since time.Time) ([]dsr.Request, error)
	OpenIdentical(ctx context.Context, hash string, t dsr.Type, statuses []dsr.Status, limit int) ([]dsr.Request, error)
	Unverified(ctx context.Context, hash string, t dsr.Type, limit int) ([]dsr.Request, error)
	ClaimIdempotencyKey(ctx context.Context, id, requestID, fingerprint string) (string, error)

	// Verification and notices.
	IssueVerification(ctx context.Context, id, codeHash, tokenHash string, expiresAt time.Time) error
	VerificationSent(ctx context.Context, id string) error
	ReserveTry(ctx context.Context, id string, max int) (*dsr.Request, error)
	AddNotice(ctx context.Context, id, notice string) error
	NoticeSent(ctx context.Context, id, notice string) error
	AddStatusToken(ctx context.Context, id, tokenHash string) error

	// Fan-out and jobs.
	MarkFannedOut(ctx context.Context, id string) error
	FanoutFailed(ctx context.Context, id, msg string) (*dsr.Request, error)
	HoldForHook(ctx context.Context, id string, until time.Time, ids []dsr.Identity, hashes []string) (*dsr.Request, error)
	ResumeHook(ctx context.Context, id, msgID string, ids []dsr.Identity, hashes []string) (*dsr.Request, error)
	FannedOut(ctx context.Context, id string, jobs int, actor string) (dsr.Status, error)
	CreateJobs(ctx context.Context, jobs []dsr.Job) error
	Jobs(ctx context.Context, requestID string) ([]dsr.Job, error)
	Job(ctx context.Context, id string) (*dsr.Job, error)
	ClaimJob(ctx context.Context, id string, lease time.Duration) (*dsr.Job, error)
	FinishJob(ctx context.Context, j *dsr.Job, o dsr.Outcome) error
	// AnswerJob stores answer (1 to dsr.MaxStoredAnswer bytes) as the Answer of
	// job jobID, in one conditional update, only while the job waits on
	// exactly handle and holds no answer yet, and makes it due to run at
	// once (PollAt now, so the sweep hands it on if nobody enqueues it).
	// Otherwise it changes nothing and returns dsr.ErrNotFound (no such
	// job), dsr.ErrAlreadyAnswered (an answer waits to be taken up) or
	// dsr.ErrJobNotWaiting; of two concurrent answers exactly one wins.
	AnswerJob(ctx context.Context, jobID, handle string, answer []byte) error
	JobFinished(ctx context.Context, requestID string, failed bool, actor string) (dsr.Status, error)
	Settle(ctx context.Context, requestID, actor string) (dsr.Status, error)
	RetryFailedJobs(ctx context.Context, requestID string) ([]string, error)

	// Exports.
	NewExportWriter(ctx context.Context, job *dsr.Job) (dsr.ExportWriter, error)
	EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error

	// Audit.
	AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error)
	AuditTrail(ctx context.Context, requestID string) ([]dsr.AuditEvent, error)
	EachAuditChain(ctx context.Context, fn func(requestID string, events []dsr.AuditEvent) error) error
	CatchUpAudit(ctx context.Context, r *dsr.Request) error

	// The sweep.
	EachStaleRequest(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error
	EachStaleJob(ctx context.Context, before, now time.Time, fn func(*dsr.Job) error) error
	EachUnverifiedPastDue(ctx context.Context, now time.Time, fn func(*dsr.Request) error) error
	EachPendingNotice(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error
	EachAuditDue(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error

	// The deadline checks.
	EachToRemind(ctx context.Context, from, to time.Time, n int, fn func(*dsr.Due) error) error
	Remind(ctx context.Context, id string, n int, from, to time.Time) (bool, error)
	EachToEscalate(ctx context.Context, now time.Time, fn func(*dsr.Due) error) error
	Escalate(ctx context.Context, id string, now time.Time) (bool, error)
	EachExportsToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error
	PurgeExports(ctx context.Context, id string) (bool, error)
	EachIdentitiesToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error
	PurgeIdentities(ctx context.Context, id string) (bool, error)

	// Statistics.
	CountRequests(ctx context.Context) ([]dsr.RequestCount, error)
	CountOverdue(ctx context.Context, now time.Time) ([]dsr.RequestCount, error)
	CountWaitingJobs(ctx context.Context) ([]dsr.JobCount, error)
	EachCompletion(ctx context.Context, since time.Time, fn func(*dsr.Completion) error) error
	EachJobOutcome(ctx context.Context, since time.Time, fn func(*dsr.JobOutcome) error) error
	Summary(ctx context.Context, from, to time.Time) (*dsr.Summary, error)

	// The suppression list, the consent history, the removals.
	Suppressions

	// The wrapped data keys and the blind-index hashes, for `dsar keys
	// rotate`.
	WrappedKeys
	IndexHashes
}

// Hashes are a request's blind-index hashes as stored
// (Request.IdentityHashes, Request.ProvenHashes).
type Hashes struct {
	Identity, Proven []string
}

// IndexHashes replaces the blind-index hashes of a request as they are
// stored: part of [Store], for re-hashing them under a new blind index key
// while the service runs (`dsar keys rotate --blind-index`).
type IndexHashes interface {
	// SwapHashes replaces request id's hashes with to, atomically, only
	// while they still are from (in order; nil and empty are the same),
	// keeping every lookup by hash in step. It returns false when they
	// are no longer from (changed meanwhile) or there is no such request.
	SwapHashes(ctx context.Context, id string, from, to Hashes) (bool, error)
}

// WrappedKeys reads and replaces the wrapped data keys of the requests
// (Request.DataKey, Request.ExportKey) as they are stored: part of [Store],
// for re-wrapping them under a new master key while the service runs.
type WrappedKeys interface {
	// EachWrappedKeys calls fn with the wrapped keys of every request
	// that holds one ("" for a key it does not hold), in id order, ids
	// after after ("" for all), reading in batches.
	EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) error
	// SwapWrappedKeys replaces request id's wrapped keys with newData and
	// newExport, atomically, only while they still are oldData and
	// oldExport; a key that was "" stays "" (newData or newExport is then
	// ignored). It returns false when they are no longer the old ones
	// (purged or swapped meanwhile) or there is no such request.
	SwapWrappedKeys(ctx context.Context, id, oldData, newData, oldExport, newExport string) (bool, error)
}

// Suppressions is the suppression list, the consent history and the
// removals the segmentation report counts: part of [Store].
type Suppressions interface {
	// Suppress records entries (Hash, Scope, Source, RequestID, Partner,
	// At; ID is set from Hash and Scope). An entry new to the store is
	// created; a lifted one is made active again, its source and At
	// replaced and its lift cleared; an active one is left as it is (the
	// first suppression stands). Every entry it creates or re-activates
	// gets UpdatedAt = the store's now. It is idempotent and returns how
	// many entries it created or re-activated. Entries are written in
	// batches; each entry's write is atomic. It refuses entries that
	// [CheckSuppressions] refuses, writing none.
	Suppress(ctx context.Context, entries []dsr.Suppression) (int, error)
	// LiftSuppressions lifts the active entries of hashes under exactly
	// scope, recording by, reason and the store's now (LiftedAt,
	// UpdatedAt); it returns how many it lifted.
	LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by, reason string) (int, error)
	// Suppressions returns every entry, active or lifted, of hashes (at
	// most a few hundred hashes: one person's), in no set order.
	Suppressions(ctx context.Context, hashes []string) ([]dsr.Suppression, error)
	// EachSuppressionChange calls fn for every entry whose UpdatedAt is at
	// or after since, in UpdatedAt order (ties by ID), reading in batches;
	// since zero: every entry. It is the change feed checkers keep fresh
	// by.
	EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error
	// AddConsentEvents stores events; an event whose ID is stored already
	// is skipped (a retried writer stores it once).
	AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error
	// ConsentHistory returns the events that concern any of hashes,
	// oldest first (At, then ID), at most limit of them.
	ConsentHistory(ctx context.Context, hashes []string, limit int) ([]dsr.ConsentEvent, error)
	// AddRemovals stores removals; one whose ID is stored already is
	// skipped.
	AddRemovals(ctx context.Context, removals []dsr.Removal) error
	// EachRemoval calls fn for every removal with from <= At < to, in At
	// order, reading in batches.
	EachRemoval(ctx context.Context, from, to time.Time, fn func(*dsr.Removal) error) error
}

// CheckSuppressions checks entries as Suppress takes them: each with a
// hash and a valid scope and source (a hash's form is the caller's to
// check: see dsr.ValidSuppressionHash).
func CheckSuppressions(entries []dsr.Suppression) error {
	for i, e := range entries {
		switch {
		case e.Hash == "" || strings.Contains(e.Hash, "|"):
			return fmt.Errorf("suppress: entry %d: a hash empty or holding \"|\"", i)
		case !e.Scope.Valid():
			return fmt.Errorf("suppress: entry %d: unknown scope %q", i, e.Scope)
		case !e.Source.Valid():
			return fmt.Errorf("suppress: entry %d: unknown source %q", i, e.Source)
		}
	}
	return nil
}

// The collections every driver keeps, under these names: a MongoDB
// collection each, a table each in SQLite. A document's form is the same on
// both (the bson-tagged types of package dsr), which is what lets
// [Copier] move them.
const (
	Requests      = "requests"
	Jobs          = "jobs"
	ExportRecords = "export_records"
	Audit         = "audit_events"
	Idempotency   = "idempotency_keys"
	// The suppression list (dsr.Suppression), the consent history
	// (dsr.ConsentEvent) and the removals from segments (dsr.Removal).
	SuppressionList = "suppressions"
	ConsentEvents   = "consent_events"
	Removals        = "segment_removals"
)

// Collections lists the collections in the order `dsar migrate` copies
// them: a request before its jobs, its audit events and its exports. The
// suppression list, the consent history and the removals stand alone.
var Collections = []string{Requests, Jobs, Audit, ExportRecords, Idempotency, SuppressionList, ConsentEvents, Removals}

// Copier reads and writes a store's documents as they are stored, for
// `dsar migrate`.
type Copier interface {
	// Count returns how many documents collection holds.
	Count(ctx context.Context, collection string) (int64, error)
	// EachDocument calls fn for every document of collection whose key
	// sorts after after ("" for all), in key order, reading in batches.
	// key is the document's own key (its _id, or for records without one
	// of their own, the key the driver gives them), stable across drivers.
	EachDocument(ctx context.Context, collection, after string, fn func(key string, doc bson.Raw) error) error
	// PutDocuments stores docs in collection, leaving any whose key is
	// already stored as it is (a resumed copy writes nothing twice). It
	// returns how many it stored.
	PutDocuments(ctx context.Context, collection string, docs []bson.Raw) (int, error)
	// LastKey returns the key of collection's last document in
	// EachDocument's order, "" when it has none: where a copy into this
	// store that stopped goes on.
	LastKey(ctx context.Context, collection string) (string, error)
	// HasKey reports whether collection holds the document with key.
	HasKey(ctx context.Context, collection, key string) (bool, error)
}
