package bench_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store"
)

// counting is a store that counts the calls of each of its methods that
// write (a conditional update counts whether or not its condition held;
// CreateRequests counts one per request): the store writes of the work it
// serves.
type counting struct {
	store.Store
	mu    sync.Mutex
	calls map[string]int
}

func (c *counting) add(method string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[method] += n
}

// total is the number of writes counted.
func (c *counting) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// String lists the writes counted by method, e.g. "ClaimJob=1 CreateJobs=1".
func (c *counting) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, m := range slices.Sorted(maps.Keys(c.calls)) {
		parts = append(parts, fmt.Sprintf("%s=%d", m, c.calls[m]))
	}
	return strings.Join(parts, " ")
}

// The methods that write.

func (c *counting) Prepare(ctx context.Context) error {
	c.add("Prepare", 1)
	return c.Store.Prepare(ctx)
}

func (c *counting) ProbeWrite(ctx context.Context) error {
	c.add("ProbeWrite", 1)
	return c.Store.ProbeWrite(ctx)
}

func (c *counting) CreateRequest(ctx context.Context, r *dsr.Request) error {
	c.add("CreateRequest", 1)
	return c.Store.CreateRequest(ctx, r)
}

func (c *counting) CreateRequests(ctx context.Context, reqs []*dsr.Request) []error {
	c.add("CreateRequests", len(reqs))
	return c.Store.CreateRequests(ctx, reqs)
}

func (c *counting) Transition(ctx context.Context, id string, from, to dsr.Status, ch dsr.Change) (*dsr.Request, error) {
	c.add("Transition", 1)
	return c.Store.Transition(ctx, id, from, to, ch)
}

func (c *counting) Assign(ctx context.Context, id, agent string) (*dsr.Request, error) {
	c.add("Assign", 1)
	return c.Store.Assign(ctx, id, agent)
}

func (c *counting) Appeal(ctx context.Context, id string, f dsr.AppealFiling) (*dsr.Request, error) {
	c.add("Appeal", 1)
	return c.Store.Appeal(ctx, id, f)
}

func (c *counting) Extend(ctx context.Context, id, actor, reason string) (*dsr.Request, error) {
	c.add("Extend", 1)
	return c.Store.Extend(ctx, id, actor, reason)
}

func (c *counting) PauseClock(ctx context.Context, id, actor, reason string) (*dsr.Request, error) {
	c.add("PauseClock", 1)
	return c.Store.PauseClock(ctx, id, actor, reason)
}

func (c *counting) ResumeClock(ctx context.Context, id string) (*dsr.Request, error) {
	c.add("ResumeClock", 1)
	return c.Store.ResumeClock(ctx, id)
}

func (c *counting) ClaimIdempotencyKey(ctx context.Context, id, requestID, fingerprint string) (string, error) {
	c.add("ClaimIdempotencyKey", 1)
	return c.Store.ClaimIdempotencyKey(ctx, id, requestID, fingerprint)
}

func (c *counting) IssueVerification(ctx context.Context, id, codeHash, tokenHash string, expiresAt time.Time) error {
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

func (c *counting) AddNotice(ctx context.Context, id, notice string) error {
	c.add("AddNotice", 1)
	return c.Store.AddNotice(ctx, id, notice)
}

func (c *counting) NoticeSent(ctx context.Context, id, notice string) error {
	c.add("NoticeSent", 1)
	return c.Store.NoticeSent(ctx, id, notice)
}

func (c *counting) AddStatusToken(ctx context.Context, id, tokenHash string) error {
	c.add("AddStatusToken", 1)
	return c.Store.AddStatusToken(ctx, id, tokenHash)
}

func (c *counting) MarkFannedOut(ctx context.Context, id string) error {
	c.add("MarkFannedOut", 1)
	return c.Store.MarkFannedOut(ctx, id)
}

func (c *counting) FanoutFailed(ctx context.Context, id, msg string) (*dsr.Request, error) {
	c.add("FanoutFailed", 1)
	return c.Store.FanoutFailed(ctx, id, msg)
}

func (c *counting) FannedOut(ctx context.Context, id string, jobs int, actor string) (dsr.Status, error) {
	c.add("FannedOut", 1)
	return c.Store.FannedOut(ctx, id, jobs, actor)
}

func (c *counting) CreateJobs(ctx context.Context, jobs []dsr.Job) error {
	c.add("CreateJobs", 1)
	return c.Store.CreateJobs(ctx, jobs)
}

func (c *counting) ClaimJob(ctx context.Context, id string, lease time.Duration) (*dsr.Job, error) {
	c.add("ClaimJob", 1)
	return c.Store.ClaimJob(ctx, id, lease)
}

func (c *counting) FinishJob(ctx context.Context, j *dsr.Job, o dsr.Outcome) error {
	c.add("FinishJob", 1)
	return c.Store.FinishJob(ctx, j, o)
}

func (c *counting) JobFinished(ctx context.Context, requestID string, failed bool, actor string) (dsr.Status, error) {
	c.add("JobFinished", 1)
	return c.Store.JobFinished(ctx, requestID, failed, actor)
}

func (c *counting) Settle(ctx context.Context, requestID, actor string) (dsr.Status, error) {
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

func (c *counting) AppendAudit(ctx context.Context, requestID, actor, kind string, data map[string]string) (*dsr.AuditEvent, error) {
	c.add("AppendAudit", 1)
	return c.Store.AppendAudit(ctx, requestID, actor, kind, data)
}

func (c *counting) CatchUpAudit(ctx context.Context, r *dsr.Request) error {
	c.add("CatchUpAudit", 1)
	return c.Store.CatchUpAudit(ctx, r)
}

func (c *counting) Remind(ctx context.Context, id string, n int, from, to time.Time) (bool, error) {
	c.add("Remind", 1)
	return c.Store.Remind(ctx, id, n, from, to)
}

func (c *counting) Escalate(ctx context.Context, id string, now time.Time) (bool, error) {
	c.add("Escalate", 1)
	return c.Store.Escalate(ctx, id, now)
}

func (c *counting) PurgeExports(ctx context.Context, id string) (bool, error) {
	c.add("PurgeExports", 1)
	return c.Store.PurgeExports(ctx, id)
}

func (c *counting) PurgeIdentities(ctx context.Context, id string) (bool, error) {
	c.add("PurgeIdentities", 1)
	return c.Store.PurgeIdentities(ctx, id)
}
