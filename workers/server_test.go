package workers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/workers"
)

// TestControlQueueGoesFirst: with a backlog of work queued, a periodic task
// (the sweep, a check) runs as soon as a worker is free, not behind the
// backlog; the scheduler puts it on the control queue.
func TestControlQueueGoesFirst(t *testing.T) {
	r := testenv.RedisServer(t)
	qname := testenv.Queue(t, r)
	opt := asynq.RedisClientOpt{Addr: r.Addr}
	t.Cleanup(func() {
		insp := asynq.NewInspector(opt)
		defer insp.Close()
		_ = insp.DeleteQueue(workers.ControlQueue(qname), true)
	})
	const backlog = 60
	queueBacklog(t, opt, qname, backlog)
	var (
		mu    sync.Mutex
		order []string
		swept = make(chan struct{})
	)
	mux := asynq.NewServeMux()
	mux.HandleFunc("test:work", func(context.Context, *asynq.Task) error {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		order = append(order, "work")
		mu.Unlock()
		return nil
	})
	mux.HandleFunc(workers.TypeSweep, func(context.Context, *asynq.Task) error {
		mu.Lock()
		order = append(order, "sweep")
		mu.Unlock()
		close(swept)
		return nil
	})
	log := slog.New(slog.DiscardHandler)
	srv := workers.NewServer(opt, workers.ServerOptions{Queue: qname, Concurrency: 1, Log: log})
	if err := srv.Start(mux); err != nil {
		t.Fatalf("start server: %v", err)
	}
	defer srv.Shutdown()
	// Let the backlog start, then the scheduler queue the sweep.
	time.Sleep(100 * time.Millisecond)
	sched, err := workers.NewScheduler(opt, qname, []workers.Schedule{{Spec: "@every 1s", Task: workers.NewSweepTask(), Unique: time.Second}}, log)
	if err != nil {
		t.Fatalf("scheduler: %v", err)
	}
	if err := sched.Start(); err != nil {
		t.Fatalf("start scheduler: %v", err)
	}
	defer sched.Shutdown()
	select {
	case <-swept:
	case <-time.After(30 * time.Second):
		t.Fatal("the sweep never ran")
	}
	mu.Lock()
	defer mu.Unlock()
	before := len(order) - 1
	// The backlog takes 60 x 100 ms, past the scheduler's first tick at 1 s; the sweep must
	// not wait for it: at most the work running when it arrived, and what
	// ran in the second before the scheduler's first tick, goes first.
	if before >= backlog {
		t.Errorf("the sweep ran after all %d queued tasks: it waited behind the backlog", before)
	}
}

// queueBacklog puts n "test:work" tasks on the work queue qname.
func queueBacklog(t *testing.T, opt asynq.RedisClientOpt, qname string, n int) {
	t.Helper()
	client := asynq.NewClient(opt)
	defer client.Close()
	for range n {
		if _, err := client.Enqueue(asynq.NewTask("test:work", nil), asynq.Queue(qname)); err != nil {
			t.Fatalf("enqueue work: %v", err)
		}
	}
}

// TestNoticeQueueGoesBeforeWork: with a backlog of work queued, a notice
// (a verification code) enqueued after it is sent as soon as a worker is
// free, not behind the backlog; Queue puts it on the notice queue.
func TestNoticeQueueGoesBeforeWork(t *testing.T) {
	r := testenv.RedisServer(t)
	qname := testenv.Queue(t, r)
	opt := asynq.RedisClientOpt{Addr: r.Addr}
	queue := workers.NewQueue(opt, workers.QueueOptions{Name: qname, MaxRetry: 3, JobTimeout: time.Minute})
	defer queue.Close()
	queueBacklog(t, opt, qname, 20)
	label := func(task *asynq.Task) string {
		if task.Type() == workers.TypeNotice {
			return "notice"
		}
		return "work"
	}
	before := runUntil(t, opt, qname, []string{"test:work", workers.TypeNotice}, label, "notice", func() {
		if err := queue.EnqueueNotice(context.Background(), "req1", dsr.NoticeVerify); err != nil {
			t.Fatalf("enqueue notice: %v", err)
		}
	})
	// Only the work that was running when the notice arrived goes first.
	if want := []string{"work", "notice"}; !slices.Equal(before, want) {
		t.Errorf("tasks run up to the notice: %v; want %v: the notice waited behind the backlog", before, want)
	}
}

// TestCodeGoesBeforeOtherNotices: with hundreds of receipts queued (a bulk
// filing), a verification code enqueued after them is sent as soon as a
// worker is free: the person waits for it at the portal.
func TestCodeGoesBeforeOtherNotices(t *testing.T) {
	r := testenv.RedisServer(t)
	qname := testenv.Queue(t, r)
	opt := asynq.RedisClientOpt{Addr: r.Addr}
	queue := workers.NewQueue(opt, workers.QueueOptions{Name: qname, MaxRetry: 3, JobTimeout: time.Minute})
	defer queue.Close()
	ctx := context.Background()
	for i := range 20 {
		if err := queue.EnqueueNotice(ctx, fmt.Sprintf("req%d", i), dsr.NoticeReceipt); err != nil {
			t.Fatalf("enqueue receipt: %v", err)
		}
	}
	kind := func(task *asynq.Task) string {
		var p struct {
			Notice string `json:"notice"`
		}
		_ = json.Unmarshal(task.Payload(), &p)
		return p.Notice
	}
	before := runUntil(t, opt, qname, []string{workers.TypeNotice}, kind, dsr.NoticeVerify, func() {
		if err := queue.EnqueueNotice(ctx, "someone", dsr.NoticeVerify); err != nil {
			t.Fatalf("enqueue code: %v", err)
		}
	})
	// Only the receipt being sent when the code arrived goes first.
	if want := []string{dsr.NoticeReceipt, dsr.NoticeVerify}; !slices.Equal(before, want) {
		t.Errorf("notices sent up to the code: %v; want %v: the code waited behind the receipts", before, want)
	}
}

// runUntil runs one worker on the queues of qname, handling the task types
// by recording each task's label. The first task holds the worker until
// enqueue has run; runUntil returns the labels recorded up to the first
// task labelled want, which it waits for.
func runUntil(t *testing.T, opt asynq.RedisClientOpt, qname string, types []string, label func(*asynq.Task) string, want string, enqueue func()) []string {
	t.Helper()
	var (
		mu      sync.Mutex
		order   []string
		started = make(chan struct{})
		release = make(chan struct{})
		done    = make(chan struct{})
	)
	mux := asynq.NewServeMux()
	for _, typ := range types {
		mux.HandleFunc(typ, func(_ context.Context, task *asynq.Task) error {
			l := label(task)
			mu.Lock()
			if slices.Contains(order, want) {
				mu.Unlock()
				return nil
			}
			order = append(order, l)
			first := len(order) == 1
			mu.Unlock()
			switch {
			case first:
				close(started)
				<-release // the one worker stays busy until enqueue has run
			case l == want:
				close(done)
			}
			return nil
		})
	}
	srv := workers.NewServer(opt, workers.ServerOptions{Queue: qname, Concurrency: 1, Log: slog.New(slog.DiscardHandler)})
	if err := srv.Start(mux); err != nil {
		t.Fatalf("start server: %v", err)
	}
	defer srv.Shutdown()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the backlog never started")
	}
	enqueue()
	close(release)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s task ran", want)
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(order)
}

// TestAgentCallbacksGoAfterNotices: status callbacks to authorised agents
// (the Data Rights Protocol) reach third parties' servers, which may hang
// for their whole timeout: a receipt enqueued behind a backlog of them is
// sent as soon as a worker is free, not after them.
func TestAgentCallbacksGoAfterNotices(t *testing.T) {
	r := testenv.RedisServer(t)
	qname := testenv.Queue(t, r)
	opt := asynq.RedisClientOpt{Addr: r.Addr}
	queue := workers.NewQueue(opt, workers.QueueOptions{Name: qname, MaxRetry: 3, JobTimeout: time.Minute})
	defer queue.Close()
	ctx := context.Background()
	for i := range 20 {
		if err := queue.EnqueueNotice(ctx, fmt.Sprintf("req%d", i), dsr.NoticeProtocolStatus); err != nil {
			t.Fatalf("enqueue agent status: %v", err)
		}
	}
	kind := func(task *asynq.Task) string {
		var p struct {
			Notice string `json:"notice"`
		}
		_ = json.Unmarshal(task.Payload(), &p)
		return p.Notice
	}
	before := runUntil(t, opt, qname, []string{workers.TypeNotice}, kind, dsr.NoticeReceipt, func() {
		if err := queue.EnqueueNotice(ctx, "someone", dsr.NoticeReceipt); err != nil {
			t.Fatalf("enqueue receipt: %v", err)
		}
	})
	if want := []string{dsr.NoticeProtocolStatus, dsr.NoticeReceipt}; !slices.Equal(before, want) {
		t.Errorf("notices sent up to the receipt: %v; want %v: the receipt waited behind the agents' callbacks", before, want)
	}
}
