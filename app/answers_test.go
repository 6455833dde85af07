package app_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dsar-project/dsar/app"
	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/teststore"
)

// queue records the jobs handed to the workers.
type queue struct {
	mu   sync.Mutex
	jobs []string
}

func (q *queue) EnqueueFanout(context.Context, string) error         { return nil }
func (q *queue) EnqueueNotice(context.Context, string, string) error { return nil }
func (q *queue) EnqueueJob(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, id)
	return nil
}

// TestAnswerJob: an answer for the handle a job waits on is stored,
// audited and the job handed to the workers at once; a refused answer
// changes nothing and enqueues nothing.
func TestAnswerJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	st := teststore.Open(t, func() time.Time { return now })
	idx, err := dsr.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	q := &queue{}
	svc := app.New(app.Deps{Store: st, Queue: q, Index: idx, Now: func() time.Time { return now }})

	r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: "test", FiledBy: "t", Status: dsr.StatusVerified,
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}, ReceivedAt: now}, idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	j := dsr.NewJob(r.ID, "hook", dsr.ActionExport, now)
	if err := st.CreateJobs(ctx, []dsr.Job{j}); err != nil {
		t.Fatal(err)
	}
	claimed, err := st.ClaimJob(ctx, j.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.FinishJob(ctx, claimed, dsr.Outcome{Status: dsr.JobWaiting, Handle: "op-1", PollAt: now.Add(time.Hour), WaitUntil: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	if err := svc.AnswerJob(ctx, j.ID, "op-2", []byte(`{}`), "webhook:hook"); !errors.Is(err, dsr.ErrJobNotWaiting) {
		t.Errorf("answer for another handle: %v; want ErrJobNotWaiting", err)
	}
	if err := svc.AnswerJob(ctx, "nope", "op-1", []byte(`{}`), "webhook:hook"); !errors.Is(err, dsr.ErrNotFound) {
		t.Errorf("answer for no job: %v; want ErrNotFound", err)
	}
	if len(q.jobs) != 0 {
		t.Errorf("refused answers enqueued %v", q.jobs)
	}
	if err := svc.AnswerJob(ctx, j.ID, "op-1", []byte(`{"ok":true}`), "webhook:hook"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q.jobs, []string{j.ID}) {
		t.Errorf("enqueued %v; want the answered job", q.jobs)
	}
	events, err := st.AuditTrail(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Kind != "job_answered" || last.Actor != "webhook:hook" || last.Data["connector"] != "hook" || last.Data["bytes"] != "11" {
		t.Errorf("last audit event %+v; want job_answered by webhook:hook", last)
	}
}
