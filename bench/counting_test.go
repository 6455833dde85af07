package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// counting is a store that counts the calls of each of its methods, reads
// and writes alike: it implements every method of store.Store itself
// (nothing is promoted from the store it wraps, so a method added to
// store.Store does not compile here until it is counted). CreateRequests
// counts one per request.
//
// total and String count the writes of writeMethods only (a conditional
// update counts whether or not its condition held): the store writes of the
// work it serves, as the benchmarks have always counted them. calls has
// every method.
type counting struct {
	Store store.Store
	mu    sync.Mutex
	n     map[string]int
}

var _ store.Store = (*counting)(nil)

// writeMethods are the methods total counts as writes.
var writeMethods = map[string]bool{}

func init() {
	for _, m := range strings.Fields(`Prepare ProbeWrite CreateRequest CreateRequests Transition Assign Appeal
		Extend PauseClock ResumeClock ClaimIdempotencyKey IssueVerification VerificationSent ReserveTry
		AddNotice NoticeSent AddStatusToken MarkFannedOut FanoutFailed FannedOut CreateJobs ClaimJob
		FinishJob JobFinished Settle RetryFailedJobs NewExportWriter AppendAudit CatchUpAudit Remind
		Escalate PurgeExports PurgeIdentities`) {
		writeMethods[m] = true
	}
}

func (c *counting) add(method string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[method] += n
}

// calls is the number of calls counted so far of every method called.
func (c *counting) calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// total is the number of writes counted.
func (c *counting) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for m, v := range c.n {
		if writeMethods[m] {
			n += v
		}
	}
	return n
}

// String lists the writes counted by method, e.g. "ClaimJob=1 CreateJobs=1".
func (c *counting) String() string {
	calls := c.calls()
	maps.DeleteFunc(calls, func(m string, _ int) bool { return !writeMethods[m] })
	return callList(calls)
}

// callList lists calls by method, e.g. "CreateRequest=1 OpenDuplicates=1".
func callList(calls map[string]int) string {
	var parts []string
	for _, m := range slices.Sorted(maps.Keys(calls)) {
		parts = append(parts, fmt.Sprintf("%s=%d", m, calls[m]))
	}
	return strings.Join(parts, " ")
}

// callsSince is the calls of each method made between before and after
// (calls), leaving out the methods not called meanwhile.
func callsSince(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for m, n := range after {
		if d := n - before[m]; d != 0 {
			out[m] = d
		}
	}
	return out
}

// Every method of store.Store (generated from store/store.go's interface,
// in its order).

func (c *counting) Prepare(ctx context.Context) error {
	c.add("Prepare", 1)
	return c.Store.Prepare(ctx)
}

func (c *counting) Ping(ctx context.Context) error {
	c.add("Ping", 1)
	return c.Store.Ping(ctx)
}

func (c *counting) ProbeWrite(ctx context.Context) error {
	c.add("ProbeWrite", 1)
	return c.Store.ProbeWrite(ctx)
}

func (c *counting) Close() error {
	c.add("Close", 1)
	return c.Store.Close()
}

func (c *counting) CreateRequest(ctx context.Context, r *dsr.Request) error {
	c.add("CreateRequest", 1)
	return c.Store.CreateRequest(ctx, r)
}

func (c *counting) CreateRequests(ctx context.Context, reqs []*dsr.Request) []error {
	c.add("CreateRequests", len(reqs))
	return c.Store.CreateRequests(ctx, reqs)
}

func (c *counting) Request(ctx context.Context, id string) (*dsr.Request, error) {
	c.add("Request", 1)
	return c.Store.Request(ctx, id)
}

func (c *counting) ListRequests(ctx context.Context, f dsr.ListFilter) ([]dsr.Request, *dsr.Cursor, error) {
	c.add("ListRequests", 1)
	return c.Store.ListRequests(ctx, f)
}

func (c *counting) Transition(ctx context.Context, id string, from dsr.Status, to dsr.Status, ch dsr.Change) (*dsr.Request, error) {
	c.add("Transition", 1)
	return c.Store.Transition(ctx, id, from, to, ch)
}

func (c *counting) Assign(ctx context.Context, id string, agent string) (*dsr.Request, error) {
	c.add("Assign", 1)
	return c.Store.Assign(ctx, id, agent)
}

func (c *counting) Appeal(ctx context.Context, id string, f dsr.AppealFiling) (*dsr.Request, error) {
	c.add("Appeal", 1)
	return c.Store.Appeal(ctx, id, f)
}

func (c *counting) Extend(ctx context.Context, id string, actor string, reason string) (*dsr.Request, error) {
	c.add("Extend", 1)
	return c.Store.Extend(ctx, id, actor, reason)
}

func (c *counting) PauseClock(ctx context.Context, id string, actor string, reason string) (*dsr.Request, error) {
	c.add("PauseClock", 1)
	return c.Store.PauseClock(ctx, id, actor, reason)
}

func (c *counting) ResumeClock(ctx context.Context, id string) (*dsr.Request, error) {
	c.add("ResumeClock", 1)
	return c.Store.ResumeClock(ctx, id)
}

func (c *counting) OpenDuplicates(ctx context.Context, hashes []string, types []dsr.Type, since time.Time) ([]dsr.Request, error) {
	c.add("OpenDuplicates", 1)
	return c.Store.OpenDuplicates(ctx, hashes, types, since)
}

func (c *counting) OpenIdentical(ctx context.Context, hash string, t dsr.Type, statuses []dsr.Status, limit int) ([]dsr.Request, error) {
	c.add("OpenIdentical", 1)
	return c.Store.OpenIdentical(ctx, hash, t, statuses, limit)
}

func (c *counting) Unverified(ctx context.Context, hash string, t dsr.Type, limit int) ([]dsr.Request, error) {
	c.add("Unverified", 1)
	return c.Store.Unverified(ctx, hash, t, limit)
}

func (c *counting) ClaimIdempotencyKey(ctx context.Context, id string, requestID string, fingerprint string) (string, error) {
	c.add("ClaimIdempotencyKey", 1)
	return c.Store.ClaimIdempotencyKey(ctx, id, requestID, fingerprint)
}

func (c *counting) IssueVerification(ctx context.Context, id string, codeHash string, tokenHash string, expiresAt time.Time) error {
	c.add("IssueVerification", 1)
	return c.Store.IssueVerification(ctx, id, codeHash, tokenHash, expiresAt)
}

func (c *counting) VerificationSent(ctx context.Context, id string) error {
	c.add("VerificationSent", 1)
	return c.Store.VerificationSent(ctx, id)
}

func (c *counting) ReserveTry(ctx context.Context, id string, max int) (*dsr.Request, error) {
	c.add("ReserveTry", 1)
	return c.Store.ReserveTry(ctx, id, max)
}

func (c *counting) AddNotice(ctx context.Context, id string, notice string) error {
	c.add("AddNotice", 1)
	return c.Store.AddNotice(ctx, id, notice)
}

func (c *counting) NoticeSent(ctx context.Context, id string, notice string) error {
	c.add("NoticeSent", 1)
	return c.Store.NoticeSent(ctx, id, notice)
}

func (c *counting) AddStatusToken(ctx context.Context, id string, tokenHash string) error {
	c.add("AddStatusToken", 1)
	return c.Store.AddStatusToken(ctx, id, tokenHash)
}

func (c *counting) MarkFannedOut(ctx context.Context, id string) error {
	c.add("MarkFannedOut", 1)
	return c.Store.MarkFannedOut(ctx, id)
}

func (c *counting) FanoutFailed(ctx context.Context, id string, msg string) (*dsr.Request, error) {
	c.add("FanoutFailed", 1)
	return c.Store.FanoutFailed(ctx, id, msg)
}

func (c *counting) HoldForHook(ctx context.Context, id string, until time.Time, ids []dsr.Identity, hashes []string) (*dsr.Request, error) {
	c.add("HoldForHook", 1)
	return c.Store.HoldForHook(ctx, id, until, ids, hashes)
}

func (c *counting) ResumeHook(ctx context.Context, id string, msgID string, ids []dsr.Identity, hashes []string) (*dsr.Request, error) {
	c.add("ResumeHook", 1)
	return c.Store.ResumeHook(ctx, id, msgID, ids, hashes)
}

func (c *counting) FannedOut(ctx context.Context, id string, jobs int, actor string) (dsr.Status, error) {
	c.add("FannedOut", 1)
	return c.Store.FannedOut(ctx, id, jobs, actor)
}

func (c *counting) CreateJobs(ctx context.Context, jobs []dsr.Job) error {
	c.add("CreateJobs", 1)
	return c.Store.CreateJobs(ctx, jobs)
}

func (c *counting) Jobs(ctx context.Context, requestID string) ([]dsr.Job, error) {
	c.add("Jobs", 1)
	return c.Store.Jobs(ctx, requestID)
}

func (c *counting) Job(ctx context.Context, id string) (*dsr.Job, error) {
	c.add("Job", 1)
	return c.Store.Job(ctx, id)
}

func (c *counting) ClaimJob(ctx context.Context, id string, lease time.Duration) (*dsr.Job, error) {
	c.add("ClaimJob", 1)
	return c.Store.ClaimJob(ctx, id, lease)
}

func (c *counting) FinishJob(ctx context.Context, j *dsr.Job, o dsr.Outcome) error {
	c.add("FinishJob", 1)
	return c.Store.FinishJob(ctx, j, o)
}

func (c *counting) AnswerJob(ctx context.Context, jobID string, handle string, answer []byte) error {
	c.add("AnswerJob", 1)
	return c.Store.AnswerJob(ctx, jobID, handle, answer)
}

func (c *counting) JobFinished(ctx context.Context, requestID string, failed bool, actor string) (dsr.Status, error) {
	c.add("JobFinished", 1)
	return c.Store.JobFinished(ctx, requestID, failed, actor)
}

func (c *counting) Settle(ctx context.Context, requestID string, actor string) (dsr.Status, error) {
	c.add("Settle", 1)
	return c.Store.Settle(ctx, requestID, actor)
}

func (c *counting) RetryFailedJobs(ctx context.Context, requestID string) ([]string, error) {
	c.add("RetryFailedJobs", 1)
	return c.Store.RetryFailedJobs(ctx, requestID)
}

func (c *counting) NewExportWriter(ctx context.Context, job *dsr.Job) (dsr.ExportWriter, error) {
	c.add("NewExportWriter", 1)
	return c.Store.NewExportWriter(ctx, job)
}

func (c *counting) EachExportRecord(ctx context.Context, jobID string, fn func(collection string, data json.RawMessage) error) error {
	c.add("EachExportRecord", 1)
	return c.Store.EachExportRecord(ctx, jobID, fn)
}

func (c *counting) AppendAudit(ctx context.Context, requestID string, actor string, kind string, data map[string]string) (*dsr.AuditEvent, error) {
	c.add("AppendAudit", 1)
	return c.Store.AppendAudit(ctx, requestID, actor, kind, data)
}

func (c *counting) AuditTrail(ctx context.Context, requestID string) ([]dsr.AuditEvent, error) {
	c.add("AuditTrail", 1)
	return c.Store.AuditTrail(ctx, requestID)
}

func (c *counting) EachAuditChain(ctx context.Context, fn func(requestID string, events []dsr.AuditEvent) error) error {
	c.add("EachAuditChain", 1)
	return c.Store.EachAuditChain(ctx, fn)
}

func (c *counting) CatchUpAudit(ctx context.Context, r *dsr.Request) error {
	c.add("CatchUpAudit", 1)
	return c.Store.CatchUpAudit(ctx, r)
}

func (c *counting) EachStaleRequest(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	c.add("EachStaleRequest", 1)
	return c.Store.EachStaleRequest(ctx, before, fn)
}

func (c *counting) EachStaleJob(ctx context.Context, before time.Time, now time.Time, fn func(*dsr.Job) error) error {
	c.add("EachStaleJob", 1)
	return c.Store.EachStaleJob(ctx, before, now, fn)
}

func (c *counting) EachUnverifiedPastDue(ctx context.Context, now time.Time, fn func(*dsr.Request) error) error {
	c.add("EachUnverifiedPastDue", 1)
	return c.Store.EachUnverifiedPastDue(ctx, now, fn)
}

func (c *counting) EachPendingNotice(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	c.add("EachPendingNotice", 1)
	return c.Store.EachPendingNotice(ctx, before, fn)
}

func (c *counting) EachAuditDue(ctx context.Context, before time.Time, fn func(*dsr.Request) error) error {
	c.add("EachAuditDue", 1)
	return c.Store.EachAuditDue(ctx, before, fn)
}

func (c *counting) EachToRemind(ctx context.Context, from time.Time, to time.Time, n int, fn func(*dsr.Due) error) error {
	c.add("EachToRemind", 1)
	return c.Store.EachToRemind(ctx, from, to, n, fn)
}

func (c *counting) Remind(ctx context.Context, id string, n int, from time.Time, to time.Time) (bool, error) {
	c.add("Remind", 1)
	return c.Store.Remind(ctx, id, n, from, to)
}

func (c *counting) EachToEscalate(ctx context.Context, now time.Time, fn func(*dsr.Due) error) error {
	c.add("EachToEscalate", 1)
	return c.Store.EachToEscalate(ctx, now, fn)
}

func (c *counting) Escalate(ctx context.Context, id string, now time.Time) (bool, error) {
	c.add("Escalate", 1)
	return c.Store.Escalate(ctx, id, now)
}

func (c *counting) EachExportsToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error {
	c.add("EachExportsToPurge", 1)
	return c.Store.EachExportsToPurge(ctx, t, fn)
}

func (c *counting) PurgeExports(ctx context.Context, id string) (bool, error) {
	c.add("PurgeExports", 1)
	return c.Store.PurgeExports(ctx, id)
}

func (c *counting) EachIdentitiesToPurge(ctx context.Context, t time.Time, fn func(*dsr.Due) error) error {
	c.add("EachIdentitiesToPurge", 1)
	return c.Store.EachIdentitiesToPurge(ctx, t, fn)
}

func (c *counting) PurgeIdentities(ctx context.Context, id string) (bool, error) {
	c.add("PurgeIdentities", 1)
	return c.Store.PurgeIdentities(ctx, id)
}

func (c *counting) CountRequests(ctx context.Context) ([]dsr.RequestCount, error) {
	c.add("CountRequests", 1)
	return c.Store.CountRequests(ctx)
}

func (c *counting) CountOverdue(ctx context.Context, now time.Time) ([]dsr.RequestCount, error) {
	c.add("CountOverdue", 1)
	return c.Store.CountOverdue(ctx, now)
}

func (c *counting) CountWaitingJobs(ctx context.Context) ([]dsr.JobCount, error) {
	c.add("CountWaitingJobs", 1)
	return c.Store.CountWaitingJobs(ctx)
}

func (c *counting) EachCompletion(ctx context.Context, since time.Time, fn func(*dsr.Completion) error) error {
	c.add("EachCompletion", 1)
	return c.Store.EachCompletion(ctx, since, fn)
}

func (c *counting) EachJobOutcome(ctx context.Context, since time.Time, fn func(*dsr.JobOutcome) error) error {
	c.add("EachJobOutcome", 1)
	return c.Store.EachJobOutcome(ctx, since, fn)
}

func (c *counting) Summary(ctx context.Context, from time.Time, to time.Time) (*dsr.Summary, error) {
	c.add("Summary", 1)
	return c.Store.Summary(ctx, from, to)
}

func (c *counting) Suppress(ctx context.Context, entries []dsr.Suppression) (int, error) {
	c.add("Suppress", 1)
	return c.Store.Suppress(ctx, entries)
}

func (c *counting) LiftSuppressions(ctx context.Context, hashes []string, scope dsr.Scope, by string, reason string) (int, error) {
	c.add("LiftSuppressions", 1)
	return c.Store.LiftSuppressions(ctx, hashes, scope, by, reason)
}

func (c *counting) Suppressions(ctx context.Context, hashes []string) ([]dsr.Suppression, error) {
	c.add("Suppressions", 1)
	return c.Store.Suppressions(ctx, hashes)
}

func (c *counting) EachSuppressionChange(ctx context.Context, since time.Time, fn func(*dsr.Suppression) error) error {
	c.add("EachSuppressionChange", 1)
	return c.Store.EachSuppressionChange(ctx, since, fn)
}

func (c *counting) AddConsentEvents(ctx context.Context, events []dsr.ConsentEvent) error {
	c.add("AddConsentEvents", 1)
	return c.Store.AddConsentEvents(ctx, events)
}

func (c *counting) ConsentHistory(ctx context.Context, hashes []string, limit int) ([]dsr.ConsentEvent, error) {
	c.add("ConsentHistory", 1)
	return c.Store.ConsentHistory(ctx, hashes, limit)
}

func (c *counting) AddRemovals(ctx context.Context, removals []dsr.Removal) error {
	c.add("AddRemovals", 1)
	return c.Store.AddRemovals(ctx, removals)
}

func (c *counting) EachRemoval(ctx context.Context, from time.Time, to time.Time, fn func(*dsr.Removal) error) error {
	c.add("EachRemoval", 1)
	return c.Store.EachRemoval(ctx, from, to, fn)
}

func (c *counting) EachWrappedKeys(ctx context.Context, after string, fn func(id, dataKey, exportKey string) error) error {
	c.add("EachWrappedKeys", 1)
	return c.Store.EachWrappedKeys(ctx, after, fn)
}

func (c *counting) SwapWrappedKeys(ctx context.Context, id string, oldData string, newData string, oldExport string, newExport string) (bool, error) {
	c.add("SwapWrappedKeys", 1)
	return c.Store.SwapWrappedKeys(ctx, id, oldData, newData, oldExport, newExport)
}

func (c *counting) SwapHashes(ctx context.Context, id string, from store.Hashes, to store.Hashes) (bool, error) {
	c.add("SwapHashes", 1)
	return c.Store.SwapHashes(ctx, id, from, to)
}
