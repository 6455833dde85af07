package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/workers"
)

// remote is a connector whose system accepts work and finishes it later, as
// Salesforce Marketing Cloud's contact deletion (an OperationID to poll) and
// Stripe's redaction jobs do. Its script says what each poll answers.
type remote struct {
	mu     sync.Mutex
	polls  []string // per poll: "pending", "error" or "done"; past the end: "done"
	asked  int
	handle string
}

func (r *remote) Name() string { return "remote" }

func (r *remote) Erase(context.Context, connectors.Subject) (connectors.Result, error) {
	return connectors.Result{Pending: &connectors.Pending{Handle: r.handle, PollAfter: 10 * time.Minute}}, nil
}

func (r *remote) Export(context.Context, connectors.Subject, connectors.RecordWriter) (connectors.Result, error) {
	return connectors.Result{Pending: &connectors.Pending{Handle: r.handle}}, nil
}

func (r *remote) Poll(ctx context.Context, a connectors.Action, handle string, out connectors.RecordWriter) (connectors.Result, error) {
	r.mu.Lock()
	answer := "done"
	if r.asked < len(r.polls) {
		answer = r.polls[r.asked]
	}
	r.asked++
	r.mu.Unlock()
	if handle != r.handle {
		return connectors.Result{}, connectors.Permanent(errors.New("unknown operation"))
	}
	switch answer {
	case "pending":
		return connectors.Result{Pending: &connectors.Pending{Handle: handle, PollAfter: 10 * time.Minute}}, nil
	case "error":
		return connectors.Result{}, errors.New("503 from the remote API")
	}
	var res connectors.Result
	if a == connectors.ActionExport {
		if err := out.WriteRecord(ctx, "contacts", bson.D{{Key: "email", Value: "ada@example.com"}}); err != nil {
			return res, err
		}
		res.Add("contacts", "exported", 1)
		return res, nil
	}
	res.Add("contacts", "deleted", 1)
	return res, nil
}

// notPolling says it finishes later but cannot be polled: a broken connector.
type notPolling struct{}

func (notPolling) Name() string { return "remote" }

func (notPolling) Erase(context.Context, connectors.Subject) (connectors.Result, error) {
	return connectors.Result{Pending: &connectors.Pending{Handle: "op-1"}}, nil
}

// TestJobsWaitOnRemoteSystems runs a job whose system finishes later: it
// waits, is polled on its schedule (not before), and ends done, failed at
// its wait deadline, or retried after a poll error. Time is the test clock.
func TestJobsWaitOnRemoteSystems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		conn      connectors.Connector
		typ       dsr.Type
		waitMax   time.Duration
		pollAfter time.Duration // the first poll_at, from the first attempt
		steps     int           // polls made, each 11 minutes after the one before
		wantJob   dsr.JobStatus
		wantReq   dsr.Status
		wantError string
		wantWaits int
	}{
		{name: "deletion finishes after two polls", conn: &remote{handle: "op-1", polls: []string{"pending", "done"}}, typ: dsr.TypeDeletion,
			pollAfter: 10 * time.Minute, steps: 2, wantJob: dsr.JobSucceeded, wantReq: dsr.StatusCompleted, wantWaits: 2},
		{name: "export finishes at the first poll", conn: &remote{handle: "op-2"}, typ: dsr.TypeAccess,
			pollAfter: 5 * time.Minute, steps: 1, wantJob: dsr.JobSucceeded, wantReq: dsr.StatusCompleted, wantWaits: 1},
		{name: "a poll error is retried", conn: &remote{handle: "op-3", polls: []string{"error", "done"}}, typ: dsr.TypeDeletion,
			pollAfter: 10 * time.Minute, steps: 2, wantJob: dsr.JobSucceeded, wantReq: dsr.StatusCompleted, wantWaits: 1},
		// MaxRetry is 1: two failures in a row end the job, two between
		// which the system answered do not (a wait of weeks polled hourly
		// meets many a passing error).
		{name: "poll errors apart are each retried", conn: &remote{handle: "op-5", polls: []string{"error", "pending", "error", "pending", "error", "done"}}, typ: dsr.TypeDeletion,
			pollAfter: 10 * time.Minute, steps: 6, wantJob: dsr.JobSucceeded, wantReq: dsr.StatusCompleted, wantWaits: 3},
		{name: "poll errors in a row end the job", conn: &remote{handle: "op-6", polls: []string{"pending", "error", "error", "done"}}, typ: dsr.TypeDeletion,
			pollAfter: 10 * time.Minute, steps: 3, wantJob: dsr.JobFailed, wantReq: dsr.StatusNeedsAttention, wantError: "503", wantWaits: 2},
		{name: "unfinished at the wait deadline", conn: &remote{handle: "op-4", polls: []string{"pending", "pending", "pending", "pending"}}, typ: dsr.TypeDeletion,
			waitMax: 30 * time.Minute, pollAfter: 10 * time.Minute, steps: 3, wantJob: dsr.JobFailed, wantReq: dsr.StatusNeedsAttention, wantError: "wait deadline", wantWaits: 3},
		{name: "a connector that cannot be polled", conn: notPolling{}, typ: dsr.TypeDeletion,
			steps: 0, wantJob: dsr.JobFailed, wantReq: dsr.StatusNeedsAttention, wantError: "can neither be polled nor answered", wantWaits: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := setup(t, 1, tt.conn)
			proc := e.waiter(tt.waitMax)
			r := e.file(tt.typ, "ada@example.com")
			if err := proc.Fanout(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			action := dsr.ActionErase
			if tt.typ == dsr.TypeAccess {
				action = dsr.ActionExport
			}
			for _, c := range []string{"shop", "remote"} {
				_ = proc.RunJob(ctx, dsr.JobID(r.ID, c, action)) // an error is a retry, as asynq would
			}
			id := dsr.JobID(r.ID, "remote", action)
			job := e.job(id)
			if tt.steps > 0 {
				if job.Status != dsr.JobWaiting || job.PollAt == nil || job.WaitUntil == nil {
					t.Fatalf("after the first attempt: job %+v, want waiting with poll_at and wait_until", job)
				}
				now := e.clock.Now().Truncate(time.Millisecond)
				if want := now.Add(tt.pollAfter); !job.PollAt.Equal(want) {
					t.Errorf("poll_at %s, want %s (the connector's PollAfter, or PollEvery's 5 minutes)", job.PollAt, want)
				}
				wantUntil := now.Add(14 * 24 * time.Hour) // the default WaitMax
				if tt.waitMax > 0 {
					wantUntil = now.Add(tt.waitMax)
				}
				if !job.WaitUntil.Equal(wantUntil) {
					t.Errorf("wait_until %s, want %s", job.WaitUntil, wantUntil)
				}
				// Not polled before its time: the claim is refused.
				if err := proc.RunJob(ctx, id); err != nil {
					t.Fatal(err)
				}
				if got := e.job(id); got.Attempts != job.Attempts {
					t.Errorf("a waiting job ran before its poll_at: attempts %d, want %d", got.Attempts, job.Attempts)
				}
				if due := e.stale(e.clock.Now()); slices.Contains(due, id) {
					t.Errorf("the sweep would poll the job before its poll_at")
				}
			}
			for range tt.steps {
				e.clock.Add(11 * time.Minute)
				if due := e.stale(e.clock.Now()); !slices.Contains(due, id) && e.job(id).Status == dsr.JobWaiting {
					t.Fatalf("the sweep would not poll the waiting job at its poll_at")
				}
				_ = proc.RunJob(ctx, id)
			}
			job = e.job(id)
			if job.Status != tt.wantJob || !strings.Contains(job.Error, tt.wantError) || job.Waits != tt.wantWaits {
				t.Errorf("job %s (error %q, waits %d), want %s with error containing %q after %d waits",
					job.Status, job.Error, job.Waits, tt.wantJob, tt.wantError, tt.wantWaits)
			}
			if job.Status.Terminal() && job.PollAt != nil {
				t.Errorf("a finished job keeps poll_at %s", job.PollAt)
			}
			got, err := e.store.Request(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantReq {
				t.Errorf("request %s, want %s", got.Status, tt.wantReq)
			}
			kinds := e.kinds(r.ID)
			if tt.steps > 0 && countOf(kinds, "job_waiting") != 1 {
				t.Errorf("audit %v: want one job_waiting event, however many polls", kinds)
			}
			if n := countOf(kinds, "job_started"); n != 2 {
				t.Errorf("audit %v: %d job_started events, want 2 (shop and remote; a poll is not a start)", kinds, n)
			}
			if tt.typ == dsr.TypeAccess && tt.wantJob == dsr.JobSucceeded {
				n := 0
				if err := e.store.EachExportRecord(ctx, id, func(string, json.RawMessage) error { n++; return nil }); err != nil || n != 1 {
					t.Errorf("export records of the polled export: %d, %v; want 1", n, err)
				}
			}
		})
	}
}

// TestRetryForgetsTheRemoteWork shows an agent's retry of a job that failed
// waiting starts the action afresh rather than polling the old handle.
func TestRetryForgetsTheRemoteWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := &remote{handle: "op-5", polls: []string{"pending", "pending"}}
	e := setup(t, 1, conn)
	proc := e.waiter(15 * time.Minute)
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	id := dsr.JobID(r.ID, "remote", dsr.ActionErase)
	_ = proc.RunJob(ctx, dsr.JobID(r.ID, "shop", dsr.ActionErase))
	_ = proc.RunJob(ctx, id)
	e.clock.Add(16 * time.Minute)
	_ = proc.RunJob(ctx, id)
	if job := e.job(id); job.Status != dsr.JobFailed {
		t.Fatalf("job %s, want failed at its wait deadline", job.Status)
	}
	if _, err := e.store.RetryFailedJobs(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	job := e.job(id)
	if job.Handle != "" || job.WaitUntil != nil || job.PollAt != nil || job.Waits != 0 {
		t.Errorf("after a retry the job still holds its remote work: %+v", job)
	}
}

// waiter is a processor over e with one retry and jobs waiting at most
// waitMax (0: the default) on a remote system.
func (e *env) waiter(waitMax time.Duration) *workers.Processor {
	return workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{
		MaxRetry: 1, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: e.clock.Now, WaitMax: waitMax,
	})
}

func (e *env) job(id string) *dsr.Job {
	e.t.Helper()
	j, err := e.store.Job(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// stale lists the jobs the sweep would hand to workers at now.
func (e *env) stale(now time.Time) []string {
	e.t.Helper()
	var ids []string
	err := e.store.EachStaleJob(context.Background(), now.Add(-time.Minute), now, func(j *dsr.Job) error {
		ids = append(ids, j.ID)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

func countOf(list []string, v string) int {
	n := 0
	for _, s := range list {
		if s == v {
			n++
		}
	}
	return n
}

// answered is a connector whose system answers by calling back (an
// Answerer, not a Poller): its answer is a count of contacts, or "bad".
type answered struct{}

func (answered) Name() string { return "remote" }

func (answered) Export(context.Context, connectors.Subject, connectors.RecordWriter) (connectors.Result, error) {
	return connectors.Result{Pending: &connectors.Pending{Handle: "cb-1", PollAfter: connectors.NoPoll}}, nil
}

func (answered) Answer(ctx context.Context, a connectors.Action, handle string, answer []byte, out connectors.RecordWriter) (connectors.Result, error) {
	var res connectors.Result
	if handle != "cb-1" || string(answer) != "1" {
		return res, connectors.Permanent(errors.New("answer not valid"))
	}
	if err := out.WriteRecord(ctx, "contacts", bson.D{{Key: "email", Value: "ada@example.com"}}); err != nil {
		return res, err
	}
	res.Add("contacts", "exported", 1)
	return res, nil
}

// TestJobsTakeAnswers runs a job whose system answers by calling back: it
// waits unpolled until its deadline; an answer stored for its handle runs
// it at once through the connector's Answer, which ends it (the answer
// cleared); an answer the connector refuses fails it; no answer by the
// deadline fails it.
func TestJobsTakeAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		answer    string // "" for none
		wantJob   dsr.JobStatus
		wantReq   dsr.Status
		wantError string
	}{
		{name: "answered", answer: "1", wantJob: dsr.JobSucceeded, wantReq: dsr.StatusCompleted},
		{name: "answered badly", answer: "bad", wantJob: dsr.JobFailed, wantReq: dsr.StatusNeedsAttention, wantError: "answer not valid"},
		{name: "never answered", wantJob: dsr.JobFailed, wantReq: dsr.StatusNeedsAttention, wantError: "wait deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := setup(t, 1, answered{})
			proc := e.waiter(time.Hour)
			r := e.file(dsr.TypeAccess, "ada@example.com")
			if err := proc.Fanout(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			_ = proc.RunJob(ctx, dsr.JobID(r.ID, "shop", dsr.ActionExport))
			id := dsr.JobID(r.ID, "remote", dsr.ActionExport)
			_ = proc.RunJob(ctx, id)
			job := e.job(id)
			if job.Status != dsr.JobWaiting || job.Handle != "cb-1" || job.PollAt == nil || !job.PollAt.Equal(*job.WaitUntil) {
				t.Fatalf("after the first attempt: %s on %q, poll at %v; want waiting on cb-1, not polled before its deadline %v", job.Status, job.Handle, job.PollAt, job.WaitUntil)
			}
			e.clock.Add(10 * time.Minute)
			if tt.answer != "" {
				if err := e.store.AnswerJob(ctx, id, "cb-1", []byte(tt.answer)); err != nil {
					t.Fatal(err)
				}
			} else {
				e.clock.Add(time.Hour)
			}
			_ = proc.RunJob(ctx, id)
			job = e.job(id)
			if job.Status != tt.wantJob || !strings.Contains(job.Error, tt.wantError) || len(job.Answer) != 0 {
				t.Errorf("job %s (error %q, answer %q); want %s with error containing %q, no answer kept", job.Status, job.Error, job.Answer, tt.wantJob, tt.wantError)
			}
			if got, err := e.store.Request(ctx, r.ID); err != nil || got.Status != tt.wantReq {
				t.Errorf("request %v, %v; want %s", got.Status, err, tt.wantReq)
			}
			n := 0
			if err := e.store.EachExportRecord(ctx, id, func(string, json.RawMessage) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.wantJob == dsr.JobSucceeded]; n != want {
				t.Errorf("export records of the answered export: %d; want %d", n, want)
			}
		})
	}
}
