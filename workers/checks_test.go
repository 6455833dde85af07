package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/internal/testenv"
	"github.com/dsar-project/dsar/internal/teststore"
	"github.com/dsar-project/dsar/internal/webhook"
	"github.com/dsar-project/dsar/workers"
	"github.com/dsar-project/dsar/workers/notify"
)

// checker is a processor over e's store and queue with the scheduled checks
// configured, alerting esc through notifier (nil: no email).
func (e *env) checker(esc workers.EscalationOptions, notifier workers.Notifier) *workers.Processor {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: e.queue, Index: e.index, Log: log,
		Notifier: notifier, Escalation: esc}, workers.Options{
		MaxRetry: 1, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: e.clock.Now,
		Checks: workers.ChecksOptions{ReminderDays: []int{7, 2}, KeepExports: 30 * 24 * time.Hour, KeepIdentities: 90 * 24 * time.Hour},
	})
}

// kinds lists the kinds of a request's audit events.
func (e *env) kinds(id string) []string {
	e.t.Helper()
	return testenv.AuditKinds(e.t, e.store.AuditTrail, id)
}

// until moves the test clock to d before t.
func (e *env) until(t time.Time, d time.Duration) { e.clock.Add(t.Add(-d).Sub(e.clock.Now())) }

func TestRemindersGoOutOncePerThreshold(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	p := e.checker(workers.EscalationOptions{}, nil)
	ctx := context.Background()
	r := e.file(dsr.TypeAccess, "ada@example.com")
	paused := e.fileAs(dsr.TypeAccess, "grace@example.com", dsr.StatusVerifying)
	if _, err := e.store.PauseClock(ctx, paused.ID, "agent", "asked for ID"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		before time.Duration // the clock is set this long before r is due
		want   int
	}{
		{"ten days ahead: nothing", 10 * 24 * time.Hour, 0},
		{"six days ahead: the 7-day reminder", 6 * 24 * time.Hour, 1},
		{"the same day again: nothing", 5 * 24 * time.Hour, 0},
		{"a day ahead: the 2-day reminder", 24 * time.Hour, 1},
		{"an hour ahead: nothing more", time.Hour, 0},
		{"past due: escalation's, not a reminder", -time.Hour, 0},
	}
	for _, s := range steps {
		e.until(r.DueAt, s.before)
		n, err := p.Reminders(ctx)
		if err != nil || n.Reminded != s.want {
			t.Errorf("%s: reminded %d, %v; want %d", s.name, n.Reminded, err, s.want)
		}
	}
	got, err := e.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Reminded, []int{7, 2}) {
		t.Errorf("reminded %v, want [7 2]", got.Reminded)
	}
	if k := e.kinds(r.ID); !slices.Equal(k[len(k)-2:], []string{"reminded", "reminded"}) {
		t.Errorf("audit trail %v, want two reminders at its end", k)
	}
	if p, err := e.store.Request(ctx, paused.ID); err != nil || len(p.Reminded) != 0 {
		t.Errorf("a paused request was reminded: %v, %v", p.Reminded, err)
	}
}

// alertHook records the alerts posted to it, checking their signatures.
type alertHook struct {
	t      *testing.T
	secret webhook.Secret
	now    func() time.Time // the sender's clock
	status int
	mu     sync.Mutex
	got    []map[string]any
}

func (w *alertHook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if _, err := webhook.Verify(r.Header, body, w.now(), 0, w.secret); err != nil || r.Header.Get("Content-Type") != "application/json" {
		w.t.Errorf("webhook: %v, Content-Type %q", err, r.Header.Get("Content-Type"))
	}
	var a map[string]any
	if err := json.Unmarshal(body, &a); err != nil {
		w.t.Errorf("webhook body: %v", err)
	}
	w.mu.Lock()
	w.got = append(w.got, a)
	status := w.status
	w.mu.Unlock()
	rw.WriteHeader(status)
}

func (w *alertHook) alerts() []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

func TestEscalationAlertsOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()
	hook := &alertHook{t: t, now: e.clock.Now, secret: webhook.Secret("s3cret-s3cret-s3cret"), status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	mailbox := testenv.StartSMTP(t, testenv.SMTPOptions{})
	mailer, err := notify.NewSMTP(notify.SMTPConfig{Host: mailbox.Host, Port: mailbox.Port, From: "dsar@shop.example", TLS: notify.TLSNone})
	if err != nil {
		t.Fatal(err)
	}
	p := e.checker(workers.EscalationOptions{Email: "privacy-team@shop.example", WebhookURL: srv.URL, WebhookSecret: hook.secret}, mailer)
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	e.clock.Add(time.Hour)
	e.file(dsr.TypeAccess, "grace@example.com") // filed an hour later: not yet due

	e.until(r.DueAt, -time.Minute)
	for i, want := range []int{1, 0} {
		n, err := p.Escalation(ctx)
		if err != nil || n.Escalated != want {
			t.Errorf("escalation run %d: %d, %v; want %d", i+1, n.Escalated, err, want)
		}
	}
	got, err := e.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.OverdueAt == nil || !slices.Contains(got.PendingNotices, dsr.AlertOverdue) || !slices.Contains(e.kinds(r.ID), "escalated") {
		t.Fatalf("escalated request: overdue %v, pending %v, audit %v", got.OverdueAt, got.PendingNotices, e.kinds(r.ID))
	}

	// The webhook is down: the alert stays pending, to be retried.
	if err := p.SendNotice(ctx, r.ID, dsr.AlertOverdue); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("alert with the webhook down: %v, want an error naming 503", err)
	}
	if got, _ := e.store.Request(ctx, r.ID); !slices.Contains(got.PendingNotices, dsr.AlertOverdue) {
		t.Errorf("a failed alert is no longer pending: %v", got.PendingNotices)
	}
	hook.mu.Lock()
	hook.status = http.StatusNoContent
	hook.mu.Unlock()
	for range 2 {
		if err := p.SendNotice(ctx, r.ID, dsr.AlertOverdue); err != nil {
			t.Fatal(err)
		}
	}
	alerts := hook.alerts()
	if len(alerts) != 2 {
		t.Fatalf("webhook got %d posts, want 2 (one failed, one delivered, none after)", len(alerts))
	}
	last := alerts[1]
	if last["event"] != "overdue" || last["request_id"] != r.ID || last["type"] != "deletion" || last["regulation"] != "gdpr" {
		t.Errorf("webhook alert: %v", last)
	}
	for _, a := range alerts {
		if b, _ := json.Marshal(a); strings.Contains(string(b), "ada@") {
			t.Errorf("webhook alert names the person: %s", b)
		}
	}
	msg := mailbox.WaitMessage(t, "privacy-team@shop.example", func(testenv.Received) bool { return true }, 10*time.Second)
	if body := string(msg.Data); !strings.Contains(body, "is overdue") || !strings.Contains(body, r.ID) || strings.Contains(body, "ada@") {
		t.Errorf("alert email:\n%s", body)
	}
	if got, _ := e.store.Request(ctx, r.ID); slices.Contains(got.PendingNotices, dsr.AlertOverdue) {
		t.Errorf("a delivered alert is still pending: %v", got.PendingNotices)
	}
}

func TestAlertsWithoutAChannelAreDropped(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()
	p := e.checker(workers.EscalationOptions{}, nil)
	r := e.file(dsr.TypeAccess, "ada@example.com")
	e.until(r.DueAt, -time.Minute)
	if n, err := p.Escalation(ctx); err != nil || n.Escalated != 1 {
		t.Fatalf("escalation: %+v, %v", n, err)
	}
	if err := p.SendNotice(ctx, r.ID, dsr.AlertOverdue); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.store.Request(ctx, r.ID); len(got.PendingNotices) != 0 || got.OverdueAt == nil {
		t.Errorf("pending %v, overdue %v", got.PendingNotices, got.OverdueAt)
	}
	if !strings.Contains(e.logs.String(), "no escalation channel configured") {
		t.Errorf("a dropped alert is not logged:\n%s", e.logs)
	}
}

func TestRetentionPurgesClosedRequests(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()
	p := e.checker(workers.EscalationOptions{}, nil)
	access := e.file(dsr.TypeAccess, "ada@example.com")
	deletion := e.file(dsr.TypeDeletion, "grace@example.com")
	open := e.file(dsr.TypeAccess, "alan@example.com")
	for _, r := range []*dsr.Request{access, deletion} {
		if _, err := e.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	closed := e.clock.Now()
	steps := []struct {
		name                string
		after               time.Duration
		exports, identities int
	}{
		{"a day after closing: nothing", 24 * time.Hour, 0, 0},
		{"31 days: the access export", 31 * 24 * time.Hour, 1, 0},
		{"91 days: both identities", 91 * 24 * time.Hour, 0, 2},
		{"again: nothing", 92 * 24 * time.Hour, 0, 0},
	}
	for _, s := range steps {
		e.clock.Add(closed.Add(s.after).Sub(e.clock.Now()))
		n, err := p.Retention(ctx)
		if err != nil || n.ExportsPurged != s.exports || n.IdentitiesPurged != s.identities {
			t.Errorf("%s: %+v, %v; want %d exports, %d identities", s.name, n, err, s.exports, s.identities)
		}
	}
	for _, r := range []*dsr.Request{access, deletion} {
		got, err := e.store.Request(ctx, r.ID)
		if err != nil || len(got.Identities) != 0 || got.PurgedAt == nil {
			t.Errorf("%s after retention: identities %v, purged %v, %v", r.Type, got.Identities, got.PurgedAt, err)
		}
		if !slices.Contains(e.kinds(r.ID), "identities_purged") {
			t.Errorf("%s: no audit event for the purge: %v", r.Type, e.kinds(r.ID))
		}
	}
	if got, err := e.store.Request(ctx, open.ID); err != nil || len(got.Identities) == 0 {
		t.Errorf("an open request lost its identities: %v, %v", got.Identities, err)
	}
}

// TestCheckRoundTrips pins the store commands of the deadline checks: a run
// with nothing to do is one query per reminder window (or one for the
// escalation) that returns nothing, whatever the number of open requests;
// each request acted on adds a fixed number of commands.
func TestCheckRoundTrips(t *testing.T) {
	t.Parallel()
	e := setup(t, 1)
	e.store.NeedMongo(t)
	ctx := context.Background()
	p := e.checker(workers.EscalationOptions{}, nil)
	var due time.Time
	for _, email := range []string{"ada@example.com", "grace@example.com", "alan@example.com"} {
		due = e.file(dsr.TypeAccess, email).DueAt
	}
	e.until(due, 6*24*time.Hour)
	run := func(check func(context.Context) (workers.CheckCounts, error)) []string {
		t.Helper()
		e.cmds.Reset()
		if _, err := check(ctx); err != nil {
			t.Fatal(err)
		}
		return e.cmds.Names()
	}
	// The 2-day window (none), the 7-day window (three), then per request:
	// record the reminder, audit it.
	perReminder := []string{"update", "insert"}
	want := []string{"find", "find"}
	for range 3 {
		want = append(want, perReminder...)
	}
	if diff := cmp.Diff(want, run(p.Reminders)); diff != "" {
		t.Errorf("store commands of reminders for three requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"find", "find"}, run(p.Reminders)); diff != "" {
		t.Errorf("store commands of reminders with nothing to do (-want +got):\n%s", diff)
	}
	e.until(due, -time.Hour)
	want = []string{"find"}
	for range 3 {
		want = append(want, "update", "insert") // mark overdue, audit
	}
	if diff := cmp.Diff(want, run(p.Escalation)); diff != "" {
		t.Errorf("store commands of escalating three requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"find"}, run(p.Escalation)); diff != "" {
		t.Errorf("store commands of escalation with nothing to do (-want +got):\n%s", diff)
	}
}

// TestTwoSchedulersActOnce runs each check from two processors at once, as
// two scheduler replicas whose tasks both got through would: every request
// is reminded and escalated once, with one audit event each.
func TestTwoSchedulersActOnce(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()
	a, b := e.checker(workers.EscalationOptions{}, nil), e.checker(workers.EscalationOptions{}, nil)
	var ids []string
	var due time.Time
	for _, email := range []string{"ada@example.com", "grace@example.com", "alan@example.com", "edsger@example.com"} {
		r := e.file(dsr.TypeAccess, email)
		ids, due = append(ids, r.ID), r.DueAt
	}
	both := func(check func(*workers.Processor) (workers.CheckCounts, error)) workers.CheckCounts {
		t.Helper()
		var wg sync.WaitGroup
		counts := make([]workers.CheckCounts, 2)
		for i, p := range []*workers.Processor{a, b} {
			wg.Go(func() {
				c, err := check(p)
				if err != nil {
					t.Error(err)
				}
				counts[i] = c
			})
		}
		wg.Wait()
		return workers.CheckCounts{Reminded: counts[0].Reminded + counts[1].Reminded, Escalated: counts[0].Escalated + counts[1].Escalated}
	}
	e.until(due, 24*time.Hour)
	if n := both(func(p *workers.Processor) (workers.CheckCounts, error) { return p.Reminders(ctx) }); n.Reminded != len(ids) {
		t.Errorf("two reminder runs at once reminded %d times, want %d", n.Reminded, len(ids))
	}
	e.until(due, -time.Hour)
	if n := both(func(p *workers.Processor) (workers.CheckCounts, error) { return p.Escalation(ctx) }); n.Escalated != len(ids) {
		t.Errorf("two escalation runs at once escalated %d times, want %d", n.Escalated, len(ids))
	}
	for _, id := range ids {
		kinds := e.kinds(id)
		if countOf(kinds, "reminded") != 1 || countOf(kinds, "escalated") != 1 {
			t.Errorf("audit of %s: %v; want one reminder and one escalation", id, kinds)
		}
	}
}

// TestChecksGoOnWhenTheQueueIsDown escalates with Redis unreachable: every
// overdue request is still marked, its alert pending in the store, for the
// sweep to send once the queue is back.
func TestChecksGoOnWhenTheQueueIsDown(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()
	down := workers.NewQueue(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond},
		workers.QueueOptions{Name: e.qname, JobTimeout: time.Minute})
	t.Cleanup(func() { _ = down.Close() })
	p := workers.NewProcessor(workers.Deps{Store: e.store, Connectors: e.reg, Queue: down, Index: e.index,
		Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{Now: e.clock.Now, SweepGrace: time.Minute})
	var ids []string
	var due time.Time
	for _, email := range []string{"ada@example.com", "grace@example.com"} {
		r := e.file(dsr.TypeAccess, email)
		ids, due = append(ids, r.ID), r.DueAt
	}
	e.until(due, -time.Hour)
	if n, err := p.Escalation(ctx); err != nil || n.Escalated != 2 {
		t.Fatalf("escalation with the queue down: %+v, %v; want both escalated", n, err)
	}
	for _, id := range ids {
		r, err := e.store.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.OverdueAt == nil || !slices.Contains(r.PendingNotices, dsr.AlertOverdue) {
			t.Errorf("%s: overdue %v, pending %v; want marked with its alert pending", id, r.OverdueAt, r.PendingNotices)
		}
	}
	// The queue is back: the sweep hands the pending alerts to it.
	e.clock.Add(2 * time.Minute)
	if n, err := e.proc.Sweep(ctx); err != nil || n.Notices != 2 {
		t.Errorf("sweep: %+v, %v; want the two alerts enqueued", n, err)
	}
}

// TestAlertsForClosedRequestsAreDropped: a request answered between the
// check that raised its alert and the alert's sending is not reported.
func TestAlertsForClosedRequestsAreDropped(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()
	hook := &alertHook{t: t, now: e.clock.Now, secret: webhook.Secret("s3cret-s3cret-s3cret"), status: http.StatusNoContent}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	p := e.checker(workers.EscalationOptions{WebhookURL: srv.URL, WebhookSecret: hook.secret}, nil)
	r := e.file(dsr.TypeAccess, "ada@example.com")
	e.until(r.DueAt, -time.Hour)
	if n, err := p.Escalation(ctx); err != nil || n.Escalated != 1 {
		t.Fatalf("escalation: %+v, %v", n, err)
	}
	if _, err := e.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "desk"}); err != nil {
		t.Fatal(err)
	}
	if err := p.SendNotice(ctx, r.ID, dsr.AlertOverdue); err != nil {
		t.Fatal(err)
	}
	if got := hook.alerts(); len(got) != 0 {
		t.Errorf("webhook got %v for a cancelled request, want nothing", got)
	}
	if got, _ := e.store.Request(ctx, r.ID); slices.Contains(got.PendingNotices, dsr.AlertOverdue) {
		t.Errorf("the dropped alert is still pending: %v", got.PendingNotices)
	}
}

// bucketDown is a store whose exports cannot be purged: their bucket does
// not answer.
type bucketDown struct{ *teststore.Store }

func (bucketDown) PurgeExports(context.Context, string) (bool, error) {
	return false, errors.New("purge exports: s3: remove exports/x: connection refused")
}

// TestRetentionExportsPurgeFailing: exports that cannot be purged (their
// S3 bucket down) fail the check, to be tried again, and purge nothing;
// the identities due meanwhile are purged all the same, not kept past
// their retention for as long as the bucket is down.
func TestRetentionExportsPurgeFailing(t *testing.T) {
	t.Parallel()
	e := setup(t, 0)
	ctx := context.Background()
	r := e.file(dsr.TypeAccess, "ada@example.com")
	if _, err := e.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(91 * 24 * time.Hour)
	h := workers.NewRetentionHandler(workers.RetentionDeps{Store: bucketDown{e.store}, Log: slog.New(slog.NewTextHandler(e.logs, nil))},
		workers.ChecksOptions{KeepExports: 30 * 24 * time.Hour, KeepIdentities: 90 * 24 * time.Hour}, e.clock.Now)
	n, err := h.Retention(ctx)
	if err == nil || n.ExportsPurged != 0 {
		t.Errorf("retention with the exports' bucket down: %+v, %v; want an error and no export purged", n, err)
	}
	if n.IdentitiesPurged != 1 {
		t.Errorf("retention with the exports' bucket down purged %d identities; want 1", n.IdentitiesPurged)
	}
	if got, err := e.store.Request(ctx, r.ID); err != nil || len(got.Identities) != 0 {
		t.Errorf("identities after retention: %v, %v; want none", got.Identities, err)
	}
}
