package workers_test

import (
	"log/slog"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/workers"
)

// TestNewMuxRoutesEachTask: each task type goes to its own handler, built
// alone with its own dependencies; a handler left out is not routed.
func TestNewMuxRoutesEachTask(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	h := workers.Handlers{
		Fanout:     workers.NewFanoutHandler(workers.FanoutDeps{Log: log}, workers.FanoutOptions{}),
		Job:        workers.NewJobHandler(workers.JobDeps{Log: log}, workers.JobOptions{}),
		Notice:     workers.NewNoticeHandler(workers.NoticeDeps{Log: log}, workers.NoticeOptions{}, nil),
		Sweep:      workers.NewSweepHandler(workers.SweepDeps{Log: log}, workers.SweepOptions{}),
		Reminders:  workers.NewRemindersHandler(workers.RemindersDeps{Log: log}, workers.ChecksOptions{}, nil),
		Escalation: workers.NewEscalationHandler(workers.EscalationDeps{Log: log}, nil),
		Retention:  workers.NewRetentionHandler(workers.RetentionDeps{Log: log}, workers.ChecksOptions{}, nil),
	}
	want := map[string]asynq.Handler{
		workers.TypeFanout: h.Fanout, workers.TypeJob: h.Job, workers.TypeNotice: h.Notice, workers.TypeSweep: h.Sweep,
		workers.TypeReminders: h.Reminders, workers.TypeEscalation: h.Escalation, workers.TypeRetention: h.Retention,
	}
	mux := workers.NewMux(h)
	for typ, handler := range want {
		got, pattern := mux.Handler(asynq.NewTask(typ, nil))
		// Each route runs in its task's span (the mux's middleware).
		u, ok := got.(interface{ Unwrap() asynq.Handler })
		if !ok {
			t.Errorf("%s routed to %T, not traced", typ, got)
			continue
		}
		if got = u.Unwrap(); pattern != typ || got != handler {
			t.Errorf("%s routed to %T (pattern %q); want its own handler", typ, got, pattern)
		}
	}
	partial := workers.NewMux(workers.Handlers{Job: h.Job})
	if _, pattern := partial.Handler(asynq.NewTask(workers.TypeSweep, nil)); pattern != "" {
		t.Errorf("a sweep routed by a mux without a sweep handler (pattern %q)", pattern)
	}
}
