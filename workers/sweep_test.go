package workers_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/store/mongostore"
	"github.com/dsar-project/dsar/workers"
	"github.com/dsar-project/dsar/workers/notify"
)

// outage is an erasing connector that fails while down is set, with an
// error that quotes the subject.
type outage struct {
	name string
	down atomic.Bool
}

func (o *outage) Name() string { return o.name }

func (o *outage) Erase(_ context.Context, s connectors.Subject) (connectors.Result, error) {
	if o.down.Load() {
		return connectors.Result{}, fmt.Errorf("%s unreachable for %s", o.name, s.Values("email")[0])
	}
	var res connectors.Result
	res.Add("contacts", "deleted", 1)
	return res, nil
}

// recorder is a Notifier that keeps what it sends, and fails while down.
type recorder struct {
	down atomic.Bool
	mu   sync.Mutex
	sent map[string][]string // request id -> notice kinds
}

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	if r.down.Load() {
		return errors.New("mail server unreachable")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent == nil {
		r.sent = map[string][]string{}
	}
	r.sent[m.RequestID] = append(r.sent[m.RequestID], m.Kind)
	return nil
}

func (r *recorder) kinds(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.sent[id]...)
	slices.Sort(out)
	return out
}

// TestSweepSurvivesRedisLosingItsData: Redis is flushed while jobs and
// notices are in retry, then taken away for 3 s and started again empty;
// requests filed afterwards have jobs in retry, whose live tasks the
// inspector could not find ("queue not found": asynq's client registers its
// queue once per process). The sweep must still re-drive everything the
// store holds, with no restart: every request completes and every notice is
// sent.
func TestSweepSurvivesRedisLosingItsData(t *testing.T) {
	t.Parallel()
	own := testenv.StartRedisProcess(t)
	crm := &outage{name: "crm"}
	crm.down.Store(true)
	e := setupOn(t, own.Redis(), 50, crm)
	mail := &recorder{}
	mail.down.Store(true)
	e.proc = workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index, Notifier: mail,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{
		MaxRetry: 50, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: e.clock.Now,
	})
	e.startWorkersRetrying(2 * time.Second)
	ctx := context.Background()
	file := func(email string) string {
		t.Helper()
		r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "tester",
			Status: dsr.StatusVerified, ReceivedAt: e.clock.Now(), Notify: true, Notices: []string{dsr.NoticeReceipt},
			Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: email, Source: dsr.SourceSubject}}}, e.index)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		// As intake does: a failed enqueue is left to the sweep.
		_ = e.queue.EnqueueNotice(ctx, r.ID, dsr.NoticeReceipt)
		_ = e.queue.EnqueueFanout(ctx, r.ID)
		return r.ID
	}
	failedOnce := func(ids []string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for _, id := range ids {
			for e.job(dsr.JobID(id, "crm", dsr.ActionErase)).Attempts == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("crm job of %s never ran; logs:\n%s", id, e.logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}

	var ids []string
	for i := range 3 {
		ids = append(ids, file(fmt.Sprintf("before%d@example.com", i)))
	}
	waitJobs(t, e, ids)
	failedOnce(ids) // their jobs and receipts now wait for a retry in Redis
	own.FlushDB()
	own.Stop()
	time.Sleep(3 * time.Second)
	own.Start()
	var after []string
	for i := range 3 {
		after = append(after, file(fmt.Sprintf("after%d@example.com", i)))
	}
	waitJobs(t, e, after)
	failedOnce(after) // tasks in retry the inspector cannot see
	ids = append(ids, after...)
	crm.down.Store(false)
	mail.down.Store(false)

	e.clock.Add(2 * time.Minute)
	counts, err := e.proc.Sweep(ctx)
	if err != nil {
		t.Errorf("first sweep after the loss: %v", err)
	}
	if counts.Jobs < 3 || counts.Notices < 3 {
		t.Errorf("first sweep after the loss re-drove %+v; want at least the 3 lost jobs and the 3 lost receipts", counts)
	}
	want := []string{dsr.NoticeCompleted, dsr.NoticeReceipt}
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := 0
		for _, id := range ids {
			r, err := e.store.Request(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == dsr.StatusCompleted && cmp.Equal(want, mail.kinds(id)) {
				done++
			}
		}
		if done == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			for _, id := range ids {
				r, _ := e.store.Request(ctx, id)
				t.Errorf("request %s: %s, notices sent %v, pending %v", id, r.Status, mail.kinds(id), r.PendingNotices)
			}
			t.Fatalf("not every request completed and notified; logs:\n%s", e.logs.String())
		}
		// The scheduler's sweep, every minute of the test's clock.
		e.clock.Add(2 * time.Minute)
		if _, err := e.proc.Sweep(ctx); err != nil {
			t.Errorf("sweep: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	queues, err := insp.Queues()
	if err != nil || !slices.Contains(queues, e.qname) || !slices.Contains(queues, workers.NoticeQueue(e.qname)) {
		t.Errorf("queues the inspector sees: %v, %v; want %s and %s registered again", queues, err, e.qname, workers.NoticeQueue(e.qname))
	}
	if strings.Contains(e.logs.String(), "queue not found") {
		t.Errorf("logs say queue not found:\n%s", e.logs.String())
	}
}

// waitJobs waits until the requests' jobs exist (their fan-out ran).
func waitJobs(t *testing.T, e *env, ids []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range ids {
		for {
			r, err := e.store.Request(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if r.FannedOutAt != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %s never fanned out; logs:\n%s", id, e.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestSweepGoesOnPastAFailedItem: one item the sweep cannot re-drive (here a
// fan-out whose task key in Redis is not asynq's) is logged with its request id and
// reason and counted, and the sweep still re-drives everything after it.
func TestSweepGoesOnPastAFailedItem(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	ctx := context.Background()
	bad := e.file(dsr.TypeDeletion, "ada@example.com")
	good := e.file(dsr.TypeDeletion, "grace@example.com")
	// Something else holds bad's fan-out task key in Redis: asynq
	// refuses the id, and the inspector cannot read the task.
	c := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	defer c.Close()
	key := "asynq:{" + e.qname + "}:t:fanout:" + bad.ID
	if err := c.Set(ctx, key, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Del(context.Background(), key) })
	e.clock.Add(2 * time.Minute)
	counts, err := e.proc.Sweep(ctx)
	if err == nil || !strings.Contains(err.Error(), bad.ID) {
		t.Errorf("sweep error %v; want one naming request %s", err, bad.ID)
	}
	if counts.Failed != 1 || counts.Fanouts != 1 {
		t.Errorf("sweep: %+v; want 1 failed and the other fan-out enqueued", counts)
	}
	if !strings.Contains(e.logs.String(), "request_id="+bad.ID) {
		t.Errorf("logs do not name the request that failed:\n%s", e.logs.String())
	}
	e.startWorkers()
	e.waitStatus(good.ID, dsr.StatusCompleted)
}

// TestOneSweepAtATime: two sweeps started together (two schedulers, or
// sweep tasks queued up behind a backlog) act once: one scans and
// re-drives, the other does nothing; and one queued right after does
// nothing either.
func TestOneSweepAtATime(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	ctx := context.Background()
	for i := range 20 {
		e.file(dsr.TypeDeletion, fmt.Sprintf("p%d@example.com", i))
	}
	proc := workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{
		MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, SweepEvery: time.Minute, Now: e.clock.Now,
	})
	e.clock.Add(2 * time.Minute)
	e.cmds.Reset()
	var wg sync.WaitGroup
	got := make([]workers.SweepCounts, 3)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if got[i], err = proc.Sweep(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got[2], _ = proc.Sweep(ctx) // queued right after
	if e.store.Mongo != nil {
		scans := 0
		for _, c := range e.cmds.All() {
			if c.Name == "find" && c.Collection == mongostore.RequestsCollection && strings.Contains(c.Body.String(), `"in_progress"`) {
				scans++
			}
		}
		if scans != 1 {
			t.Errorf("the stale requests were scanned %d times, want once", scans)
		}
	}
	fanouts, skipped := 0, 0
	for _, c := range got {
		fanouts += c.Fanouts
		if c.Skipped {
			skipped++
		}
	}
	if fanouts != 20 || skipped != 2 {
		t.Errorf("sweeps: %+v; want 20 fan-outs from one, two skipped", got)
	}
	if n := e.tasks(); n != 20 {
		t.Errorf("%d tasks queued, want 20", n)
	}
}

// TestSweepLeavesFannedOutRequests: the sweep's copy of a request may be
// old (under a backlog, its fan-out ran after the scan read it, and its
// task is gone from Redis); the sweep must not fan it out again.
func TestSweepLeavesFannedOutRequests(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	ctx := context.Background()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	scanned, err := e.store.Request(ctx, r.ID) // what the scan read
	if err != nil {
		t.Fatal(err)
	}
	if err := e.proc.Fanout(ctx, r.ID); err != nil { // ran meanwhile
		t.Fatal(err)
	}
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	if err := insp.DeleteQueue(e.qname, true); err != nil { // its tasks ran and are gone
		t.Fatal(err)
	}
	var n workers.SweepCounts
	if err := workers.Redrive(e.proc.SweepHandler, ctx, scanned, &n); err != nil {
		t.Fatal(err)
	}
	if n.Fanouts != 0 || e.tasks() != 0 {
		t.Errorf("the sweep fanned out a request fanned out already: %+v, %d tasks", n, e.tasks())
	}
}
