package app_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/teststore"
)

type ctxKey struct{}

// TestBackground: work runs in a goroutine of its own while a slot is
// free, with the caller's values but not its cancellation; beyond the
// limit, and on a nil Background, in the caller; Wait waits for it, or
// says how much still runs when its context ends first.
func TestBackground(t *testing.T) {
	t.Parallel()
	b := app.NewBackground(1)
	release := make(chan struct{})
	started := make(chan context.Context, 1)
	caller, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "trace"))
	b.Go(caller, func(ctx context.Context) {
		started <- ctx
		<-release
	})
	ctx := <-started // Go returned while the work waits: it runs apart
	cancel()         // the caller's request ends
	if ctx.Err() != nil || ctx.Value(ctxKey{}) != "trace" {
		t.Errorf("background context: err %v, value %v; want no error and the caller's value", ctx.Err(), ctx.Value(ctxKey{}))
	}

	// The one slot is taken: the next runs in the caller, before Go returns.
	ranInline := false
	b.Go(context.Background(), func(context.Context) { ranInline = true })
	if !ranInline {
		t.Error("work beyond the limit did not run before Go returned")
	}

	short, stop := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer stop()
	if err := b.Wait(short); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 still running") {
		t.Errorf("Wait with work running: %v; want a deadline error counting 1 still running", err)
	}
	close(release)
	if err := b.Wait(context.Background()); err != nil {
		t.Errorf("Wait once the work ended: %v", err)
	}

	var none *app.Background
	ran := false
	none.Go(context.Background(), func(context.Context) { ran = true })
	if !ran || none.Wait(context.Background()) != nil {
		t.Error("a nil Background did not run the work in the caller")
	}
}

// gatedQueue holds every enqueue until open is closed, and records them.
type gatedQueue struct {
	open chan struct{}
	mu   sync.Mutex
	got  []string
}

func (q *gatedQueue) add(s string) error {
	<-q.open
	q.mu.Lock()
	defer q.mu.Unlock()
	q.got = append(q.got, s)
	return nil
}

func (q *gatedQueue) EnqueueFanout(_ context.Context, id string) error { return q.add("fanout " + id) }
func (q *gatedQueue) EnqueueJob(_ context.Context, id string) error    { return q.add("job " + id) }
func (q *gatedQueue) EnqueueNotice(_ context.Context, id, n string) error {
	return q.add("notice " + n + " " + id)
}

// TestFilingAnswersBeforeDispatch: with a Background, an agent's filing
// returns once its request is stored, while the queue does not answer;
// the dispatch then queues the fan-out and the receipt, and Wait waits for
// it.
func TestFilingAnswersBeforeDispatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	st := teststore.Open(t, func() time.Time { return now })
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	q := &gatedQueue{open: make(chan struct{})}
	bg := app.NewBackground(app.BackgroundLimit)
	svc := app.New(app.Deps{Store: st, Queue: q, Index: idx, Background: bg, Now: func() time.Time { return now }})

	email := "ada@example.com"
	var f app.Filed
	filed := make(chan error, 1)
	go func() {
		f, err = svc.Create(ctx, app.Filing{Request: app.AgentRequest{Type: "deletion", Regulation: "gdpr", Subject: app.Subject{Email: &email}}, By: "desk"})
		filed <- err
	}()
	select {
	case err := <-filed:
		if err != nil {
			t.Fatalf("file with the queue not answering: %v", err)
		}
	case <-time.After(10 * time.Second):
		close(q.open)
		t.Fatal("the filing waited for the queue")
	}
	stored, err := st.Request(ctx, f.Request.ID)
	if err != nil || stored.Status != dsr.StatusVerified {
		t.Fatalf("request once filed: %v, %v; want it stored, verified", stored, err)
	}
	q.mu.Lock()
	early := len(q.got)
	q.mu.Unlock()
	if early != 0 {
		t.Errorf("queued %d before the queue answered", early)
	}
	close(q.open)
	if err := bg.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"fanout " + f.Request.ID, "notice " + dsr.NoticeReceipt + " " + f.Request.ID}
	if strings.Join(q.got, "; ") != strings.Join(want, "; ") {
		t.Errorf("queued %q; want %q", q.got, want)
	}
}
