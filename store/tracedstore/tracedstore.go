// Package tracedstore wraps a store.Store so that each of its calls is an
// OpenTelemetry span (see internal/telemetry): named "store <Method>",
// with db.system.name, db.operation.name and the request or job id the call
// is about when it takes one, never a value of a document. dsar wraps its
// store with it only when traces are on.
package tracedstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/telemetry"
	"github.com/dsar-project/dsar/store"
)

// Store is a store.Store whose calls are spans.
type Store struct {
	inner  store.Store
	system string
}

var _ store.Store = (*Store)(nil)

// New wraps inner; system names its database in db.system.name ("sqlite",
// "mongodb").
func New(inner store.Store, system string) *Store {
	return &Store{inner: inner, system: system}
}

// Inner is the store wrapped.
func (s *Store) Inner() store.Store { return s.inner }

// Close closes the store wrapped (no span: nothing traced follows).
func (s *Store) Close() error { return s.inner.Close() }

func (s *Store) start(ctx context.Context, method string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return telemetry.Tracer().Start(ctx, "store "+method, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs, attribute.String("db.system.name", s.system), attribute.String("db.operation.name", method))...))
}

// The methods of store.Store, each a span around the wrapped store's.

func (s *Store) Prepare(ctx context.Context) (err error) {
	ctx, span := s.start(ctx, "Prepare")
	defer func() { telemetry.End(span, err) }()
	return s.inner.Prepare(ctx)
}

func (s *Store) Ping(ctx context.Context) (err error) {
	ctx, span := s.start(ctx, "Ping")
	defer func() { telemetry.End(span, err) }()
	return s.inner.Ping(ctx)
}

func (s *Store) ProbeWrite(ctx context.Context) (err error) {
	ctx, span := s.start(ctx, "ProbeWrite")
	defer func() { telemetry.End(span, err) }()
	return s.inner.ProbeWrite(ctx)
}

func (s *Store) CreateRequest(ctx context.Context, r *dsr.Request) (err error) {
	ctx, span := s.start(ctx, "CreateRequest", telemetry.RequestID.String(r.ID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.CreateRequest(ctx, r)
}

func (s *Store) CreateRequests(ctx context.Context, reqs []*dsr.Request) (errs []error) {
	ctx, span := s.start(ctx, "CreateRequests", attribute.Int("dsar.requests", len(reqs)))
	defer func() { telemetry.End(span, errors.Join(errs...)) }()
	return s.inner.CreateRequests(ctx, reqs)
}

func (s *Store) Request(ctx context.Context, id string) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "Request", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Request(ctx, id)
}

func (s *Store) ListRequests(ctx context.Context, f dsr.ListFilter) (r0 []dsr.Request, r1 *dsr.Cursor, err error) {
	ctx, span := s.start(ctx, "ListRequests")
	defer func() { telemetry.End(span, err) }()
	return s.inner.ListRequests(ctx, f)
}

func (s *Store) Transition(ctx context.Context, id string, from, to dsr.Status, c dsr.Change) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "Transition", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Transition(ctx, id, from, to, c)
}

func (s *Store) Assign(ctx context.Context, id, agent string) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "Assign", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Assign(ctx, id, agent)
}

func (s *Store) Appeal(ctx context.Context, id string, f dsr.AppealFiling) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "Appeal", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Appeal(ctx, id, f)
}

func (s *Store) Extend(ctx context.Context, id, actor, reason string) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "Extend", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Extend(ctx, id, actor, reason)
}

func (s *Store) PauseClock(ctx context.Context, id, actor, reason string) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "PauseClock", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.PauseClock(ctx, id, actor, reason)
}

func (s *Store) ResumeClock(ctx context.Context, id string) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "ResumeClock", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.ResumeClock(ctx, id)
}

func (s *Store) OpenDuplicates(ctx context.Context, hashes []string, types []dsr.Type, since time.Time) (r0 []dsr.Request, err error) {
	ctx, span := s.start(ctx, "OpenDuplicates")
	defer func() { telemetry.End(span, err) }()
	return s.inner.OpenDuplicates(ctx, hashes, types, since)
}

func (s *Store) OpenIdentical(ctx context.Context, hash string, t dsr.Type, statuses []dsr.Status, limit int) (r0 []dsr.Request, err error) {
	ctx, span := s.start(ctx, "OpenIdentical")
	defer func() { telemetry.End(span, err) }()
	return s.inner.OpenIdentical(ctx, hash, t, statuses, limit)
}

func (s *Store) Unverified(ctx context.Context, hash string, t dsr.Type, limit int) (r0 []dsr.Request, err error) {
	ctx, span := s.start(ctx, "Unverified")
	defer func() { telemetry.End(span, err) }()
	return s.inner.Unverified(ctx, hash, t, limit)
}

func (s *Store) ClaimIdempotencyKey(ctx context.Context, id, requestID, fingerprint string) (r0 string, err error) {
	ctx, span := s.start(ctx, "ClaimIdempotencyKey", telemetry.RequestID.String(requestID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.ClaimIdempotencyKey(ctx, id, requestID, fingerprint)
}

func (s *Store) IssueVerification(ctx context.Context, id, codeHash, tokenHash string, expiresAt time.Time) (err error) {
	ctx, span := s.start(ctx, "IssueVerification", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.IssueVerification(ctx, id, codeHash, tokenHash, expiresAt)
}

func (s *Store) VerificationSent(ctx context.Context, id string) (err error) {
	ctx, span := s.start(ctx, "VerificationSent", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.VerificationSent(ctx, id)
}

func (s *Store) ReserveTry(ctx context.Context, id string, max int) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "ReserveTry", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.ReserveTry(ctx, id, max)
}

func (s *Store) AddNotice(ctx context.Context, id, notice string) (err error) {
	ctx, span := s.start(ctx, "AddNotice", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.AddNotice(ctx, id, notice)
}

func (s *Store) NoticeSent(ctx context.Context, id, notice string) (err error) {
	ctx, span := s.start(ctx, "NoticeSent", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.NoticeSent(ctx, id, notice)
}

func (s *Store) AddStatusToken(ctx context.Context, id, tokenHash string) (err error) {
	ctx, span := s.start(ctx, "AddStatusToken", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.AddStatusToken(ctx, id, tokenHash)
}

func (s *Store) MarkFannedOut(ctx context.Context, id string) (err error) {
	ctx, span := s.start(ctx, "MarkFannedOut", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.MarkFannedOut(ctx, id)
}

func (s *Store) FanoutFailed(ctx context.Context, id, msg string) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "FanoutFailed", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.FanoutFailed(ctx, id, msg)
}

func (s *Store) HoldForHook(ctx context.Context, id string, until time.Time, ids []dsr.Identity, hashes []string) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "HoldForHook", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.HoldForHook(ctx, id, until, ids, hashes)
}

func (s *Store) ResumeHook(ctx context.Context, id, msgID string, ids []dsr.Identity, hashes []string) (r0 *dsr.Request, err error) {
	ctx, span := s.start(ctx, "ResumeHook", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.ResumeHook(ctx, id, msgID, ids, hashes)
}

func (s *Store) FannedOut(ctx context.Context, id string, jobs int, actor string) (r0 dsr.Status, err error) {
	ctx, span := s.start(ctx, "FannedOut", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.FannedOut(ctx, id, jobs, actor)
}

func (s *Store) CreateJobs(ctx context.Context, jobs []dsr.Job) (err error) {
	ctx, span := s.start(ctx, "CreateJobs", attribute.Int("dsar.jobs", len(jobs)))
	defer func() { telemetry.End(span, err) }()
	return s.inner.CreateJobs(ctx, jobs)
}

func (s *Store) Jobs(ctx context.Context, requestID string) (r0 []dsr.Job, err error) {
	ctx, span := s.start(ctx, "Jobs", telemetry.RequestID.String(requestID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Jobs(ctx, requestID)
}

func (s *Store) Job(ctx context.Context, id string) (r0 *dsr.Job, err error) {
	ctx, span := s.start(ctx, "Job", telemetry.JobID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Job(ctx, id)
}

func (s *Store) ClaimJob(ctx context.Context, id string, lease time.Duration) (r0 *dsr.Job, err error) {
	ctx, span := s.start(ctx, "ClaimJob", telemetry.JobID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.ClaimJob(ctx, id, lease)
}

func (s *Store) FinishJob(ctx context.Context, j *dsr.Job, o dsr.Outcome) (err error) {
	ctx, span := s.start(ctx, "FinishJob", telemetry.RequestID.String(j.RequestID), telemetry.JobID.String(j.ID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.FinishJob(ctx, j, o)
}

func (s *Store) AnswerJob(ctx context.Context, jobID, handle string, answer []byte) (err error) {
	ctx, span := s.start(ctx, "AnswerJob", telemetry.JobID.String(jobID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.AnswerJob(ctx, jobID, handle, answer)
}

func (s *Store) JobFinished(ctx context.Context, requestID string, failed bool, actor string) (r0 dsr.Status, err error) {
	ctx, span := s.start(ctx, "JobFinished", telemetry.RequestID.String(requestID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.JobFinished(ctx, requestID, failed, actor)
}

func (s *Store) Settle(ctx context.Context, requestID, actor string) (r0 dsr.Status, err error) {
	ctx, span := s.start(ctx, "Settle", telemetry.RequestID.String(requestID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Settle(ctx, requestID, actor)
}

func (s *Store) RetryFailedJobs(ctx context.Context, requestID string) (r0 []string, err error) {
	ctx, span := s.start(ctx, "RetryFailedJobs", telemetry.RequestID.String(requestID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.RetryFailedJobs(ctx, requestID)
}

func (s *Store) NewExportWriter(ctx context.Context, job *dsr.Job) (r0 dsr.ExportWriter, err error) {
	ctx, span := s.start(ctx, "NewExportWriter", telemetry.RequestID.String(job.RequestID), telemetry.JobID.String(job.ID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.NewExportWriter(ctx, job)
}

func (s *Store) EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) (err error) {
	ctx, span := s.start(ctx, "EachExportRecord", telemetry.JobID.String(jobID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachExportRecord(ctx, jobID, fn)
}

func (s *Store) AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (r0 *dsr.AuditEvent, err error) {
	ctx, span := s.start(ctx, "AppendAudit", telemetry.RequestID.String(requestID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.AppendAudit(ctx, requestID, actor, kind, data)
}

func (s *Store) AuditTrail(ctx context.Context, requestID string) (r0 []dsr.AuditEvent, err error) {
	ctx, span := s.start(ctx, "AuditTrail", telemetry.RequestID.String(requestID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.AuditTrail(ctx, requestID)
}

func (s *Store) EachAuditChain(ctx context.Context, fn func(requestID string, events []dsr.AuditEvent) error) (err error) {
	ctx, span := s.start(ctx, "EachAuditChain")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachAuditChain(ctx, fn)
}

func (s *Store) CatchUpAudit(ctx context.Context, r *dsr.Request) (err error) {
	ctx, span := s.start(ctx, "CatchUpAudit", telemetry.RequestID.String(r.ID))
	defer func() { telemetry.End(span, err) }()
	return s.inner.CatchUpAudit(ctx, r)
}

func (s *Store) EachStaleRequest(ctx context.Context, before time.Time, fn func(*dsr.Request) error) (err error) {
	ctx, span := s.start(ctx, "EachStaleRequest")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachStaleRequest(ctx, before, fn)
}

func (s *Store) EachStaleJob(ctx context.Context, before, now time.Time, fn func(*dsr.Job) error) (err error) {
	ctx, span := s.start(ctx, "EachStaleJob")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachStaleJob(ctx, before, now, fn)
}

func (s *Store) EachUnverifiedPastDue(ctx context.Context, now time.Time, fn func(*dsr.Request) error) (err error) {
	ctx, span := s.start(ctx, "EachUnverifiedPastDue")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachUnverifiedPastDue(ctx, now, fn)
}

func (s *Store) EachPendingNotice(ctx context.Context, before time.Time, fn func(*dsr.Request) error) (err error) {
	ctx, span := s.start(ctx, "EachPendingNotice")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachPendingNotice(ctx, before, fn)
}

func (s *Store) EachAuditDue(ctx context.Context, before time.Time, fn func(*dsr.Request) error) (err error) {
	ctx, span := s.start(ctx, "EachAuditDue")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachAuditDue(ctx, before, fn)
}

func (s *Store) EachToRemind(ctx context.Context, from, to time.Time, n int, fn func(*dsr.Due) error) (err error) {
	ctx, span := s.start(ctx, "EachToRemind")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachToRemind(ctx, from, to, n, fn)
}

func (s *Store) Remind(ctx context.Context, id string, n int, from, to time.Time) (r0 bool, err error) {
	ctx, span := s.start(ctx, "Remind", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Remind(ctx, id, n, from, to)
}

func (s *Store) EachToEscalate(ctx context.Context, now time.Time, fn func(*dsr.Due) error) (err error) {
	ctx, span := s.start(ctx, "EachToEscalate")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachToEscalate(ctx, now, fn)
}

func (s *Store) Escalate(ctx context.Context, id string, now time.Time) (r0 bool, err error) {
	ctx, span := s.start(ctx, "Escalate", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.Escalate(ctx, id, now)
}

func (s *Store) EachExportsToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) (err error) {
	ctx, span := s.start(ctx, "EachExportsToPurge")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachExportsToPurge(ctx, t, fn)
}

func (s *Store) PurgeExports(ctx context.Context, id string) (r0 bool, err error) {
	ctx, span := s.start(ctx, "PurgeExports", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.PurgeExports(ctx, id)
}

func (s *Store) EachIdentitiesToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) (err error) {
	ctx, span := s.start(ctx, "EachIdentitiesToPurge")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachIdentitiesToPurge(ctx, t, fn)
}

func (s *Store) PurgeIdentities(ctx context.Context, id string) (r0 bool, err error) {
	ctx, span := s.start(ctx, "PurgeIdentities", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.PurgeIdentities(ctx, id)
}

func (s *Store) CountRequests(ctx context.Context) (r0 []dsr.RequestCount, err error) {
	ctx, span := s.start(ctx, "CountRequests")
	defer func() { telemetry.End(span, err) }()
	return s.inner.CountRequests(ctx)
}

func (s *Store) CountOverdue(ctx context.Context, now time.Time) (r0 []dsr.RequestCount, err error) {
	ctx, span := s.start(ctx, "CountOverdue")
	defer func() { telemetry.End(span, err) }()
	return s.inner.CountOverdue(ctx, now)
}

func (s *Store) CountWaitingJobs(ctx context.Context) (r0 []dsr.JobCount, err error) {
	ctx, span := s.start(ctx, "CountWaitingJobs")
	defer func() { telemetry.End(span, err) }()
	return s.inner.CountWaitingJobs(ctx)
}

func (s *Store) EachCompletion(ctx context.Context, since time.Time, fn func(*dsr.Completion) error) (err error) {
	ctx, span := s.start(ctx, "EachCompletion")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachCompletion(ctx, since, fn)
}

func (s *Store) EachJobOutcome(ctx context.Context, since time.Time, fn func(*dsr.JobOutcome) error) (err error) {
	ctx, span := s.start(ctx, "EachJobOutcome")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachJobOutcome(ctx, since, fn)
}

func (s *Store) Summary(ctx context.Context, from, to time.Time) (r0 *dsr.Summary, err error) {
	ctx, span := s.start(ctx, "Summary")
	defer func() { telemetry.End(span, err) }()
	return s.inner.Summary(ctx, from, to)
}

func (s *Store) Suppress(ctx context.Context, entries []dsr.Suppression) (r0 int, err error) {
	ctx, span := s.start(ctx, "Suppress")
	defer func() { telemetry.End(span, err) }()
	return s.inner.Suppress(ctx, entries)
}

func (s *Store) LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by, reason string) (r0 int, err error) {
	ctx, span := s.start(ctx, "LiftSuppressions")
	defer func() { telemetry.End(span, err) }()
	return s.inner.LiftSuppressions(ctx, hashes, scope, by, reason)
}

func (s *Store) Suppressions(ctx context.Context, hashes []string) (r0 []dsr.Suppression, err error) {
	ctx, span := s.start(ctx, "Suppressions")
	defer func() { telemetry.End(span, err) }()
	return s.inner.Suppressions(ctx, hashes)
}

func (s *Store) EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) (err error) {
	ctx, span := s.start(ctx, "EachSuppressionChange")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachSuppressionChange(ctx, since, fn)
}

func (s *Store) AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) (err error) {
	ctx, span := s.start(ctx, "AddConsentEvents")
	defer func() { telemetry.End(span, err) }()
	return s.inner.AddConsentEvents(ctx, events)
}

func (s *Store) ConsentHistory(ctx context.Context, hashes []string, limit int) (r0 []dsr.ConsentEvent, err error) {
	ctx, span := s.start(ctx, "ConsentHistory")
	defer func() { telemetry.End(span, err) }()
	return s.inner.ConsentHistory(ctx, hashes, limit)
}

func (s *Store) AddRemovals(ctx context.Context, removals []dsr.Removal) (err error) {
	ctx, span := s.start(ctx, "AddRemovals")
	defer func() { telemetry.End(span, err) }()
	return s.inner.AddRemovals(ctx, removals)
}

func (s *Store) EachRemoval(ctx context.Context, from, to time.Time, fn func(*dsr.Removal) error) (err error) {
	ctx, span := s.start(ctx, "EachRemoval")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachRemoval(ctx, from, to, fn)
}

func (s *Store) EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) (err error) {
	ctx, span := s.start(ctx, "EachWrappedKeys")
	defer func() { telemetry.End(span, err) }()
	return s.inner.EachWrappedKeys(ctx, after, fn)
}

func (s *Store) SwapWrappedKeys(ctx context.Context, id, oldData, newData, oldExport, newExport string) (r0 bool, err error) {
	ctx, span := s.start(ctx, "SwapWrappedKeys", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.SwapWrappedKeys(ctx, id, oldData, newData, oldExport, newExport)
}

func (s *Store) SwapHashes(ctx context.Context, id string, from, to store.Hashes) (r0 bool, err error) {
	ctx, span := s.start(ctx, "SwapHashes", telemetry.RequestID.String(id))
	defer func() { telemetry.End(span, err) }()
	return s.inner.SwapHashes(ctx, id, from, to)
}
