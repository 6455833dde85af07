package manual_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/connectors"
	"github.com/dsar-project/dsar/connectors/manual"
	"github.com/dsar-project/dsar/internal/testenv"
)

// desk records what a connector asks of connectors.Tasks; failMail makes
// mails fail.
type desk struct {
	mu          sync.Mutex
	mails       []connectors.StaffMail
	links       []string
	escalations []connectors.Escalation
	failMail    bool
}

func (d *desk) Link(payload string, exp time.Time) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.links = append(d.links, payload)
	return "https://privacy.example/tasks/TOKEN-" + exp.UTC().Format("20060102")
}

func (d *desk) Mail(_ context.Context, m connectors.StaffMail) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failMail {
		return errors.New("421 try later")
	}
	d.mails = append(d.mails, m)
	return nil
}

func (d *desk) Escalate(_ context.Context, e connectors.Escalation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.escalations = append(d.escalations, e)
	return nil
}

const file = `connectors:
  - name: paper
    type: manual
    owner: archive@example.com
    system: Paper archive
    remind_every: 24h
    escalate_after: 60h
    instructions:
      export: Scan the person's folder and upload it as CSV.
      erase: |
        Shred the person's folder.
        Note the number of pages.
`

func load(t *testing.T, d *desk, clock *testenv.Clock, text string) *connectors.Registry {
	t.Helper()
	reg, err := connectors.Parse(context.Background(), []byte(text),
		connectors.Types{manual.Type: manual.Factory(connectors.Deps{Tasks: d, Now: clock.Now})}, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestSettings(t *testing.T) {
	t.Parallel()
	base := "connectors:\n  - name: paper\n    type: manual\n"
	tests := []struct{ name, text, want string }{
		{"no owner", base + "    system: Paper\n    instructions: {erase: shred}\n", "owner: required"},
		{"owner with a name", base + "    owner: Ada <ada@example.com>\n    system: Paper\n    instructions: {erase: shred}\n", "one plain email address"},
		{"no system", base + "    owner: a@example.com\n    instructions: {erase: shred}\n", "system: required"},
		{"no instructions", base + "    owner: a@example.com\n    system: Paper\n", "instructions: say what"},
		{"unknown action", base + "    owner: a@example.com\n    system: Paper\n    instructions: {shred: yes}\n", `unknown action "shred"`},
		{"remind too often", base + "    owner: a@example.com\n    system: Paper\n    remind_every: 1ms\n    instructions: {erase: shred}\n", "remind_every: want a duration of at least 1s"},
		{"link shorter than reminders", base + "    owner: a@example.com\n    system: Paper\n    link_ttl: 1h\n    instructions: {erase: shred}\n", "link_ttl (1h0m0s) is shorter"},
		{"upload too large", base + "    owner: a@example.com\n    system: Paper\n    max_upload: 50000000\n    instructions: {export: scan}\n", "max_upload: want 1 to 8388608"},
		{"a typo", base + "    owner: a@example.com\n    system: Paper\n    remind: 1h\n    instructions: {erase: shred}\n", `line 6: unknown setting "remind"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := connectors.Parse(context.Background(), []byte(tt.text),
				connectors.Types{manual.Type: manual.Factory(connectors.Deps{Tasks: &desk{}})}, func(string) (string, bool) { return "", false })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("no task mailer", func(t *testing.T) {
		t.Parallel()
		// Built (dsar connectors list and test need no mailer), but it cannot
		// open a task.
		reg, err := connectors.Parse(context.Background(), []byte(file), connectors.Types{manual.Type: manual.Factory(connectors.Deps{})},
			func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		c, _ := reg.Lookup("paper")
		ctx := connectors.WithJob(context.Background(), connectors.JobRef{ID: "r_1:paper:erase", RequestID: "r_1"})
		if _, err := connectors.Run(ctx, c, connectors.ActionErase, connectors.Subject{}, nil); !errors.Is(err, connectors.ErrPermanent) ||
			!strings.Contains(err.Error(), "cannot mail") {
			t.Errorf("run without a task mailer: %v, want a permanent error", err)
		}
	})
}

// TestTaskReminderAndEscalation follows a task nobody answers: one mail at
// the start, a reminder per remind_every (never two in one), one
// escalation at escalate_after, and the job always waiting.
func TestTaskReminderAndEscalation(t *testing.T) {
	t.Parallel()
	d := &desk{}
	clock := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	reg := load(t, d, clock, file)
	c, _ := reg.Lookup("paper")
	if connectors.Supports(c, connectors.ActionOptOut) || !connectors.Supports(c, connectors.ActionErase) {
		t.Fatal("a manual connector handles exactly the actions it has instructions for")
	}
	job := connectors.JobRef{ID: "r_1:paper:erase", RequestID: "r_1", Connector: "paper", Action: connectors.ActionErase}
	ctx := connectors.WithJob(context.Background(), job)
	subject := connectors.Subject{Identities: []connectors.Identity{{Kind: "email", Value: "ada@example.com"}}}

	if _, err := connectors.Run(context.Background(), c, connectors.ActionErase, subject, nil); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("run without a job: %v, want a permanent error", err)
	}
	res, err := connectors.Run(ctx, c, connectors.ActionErase, subject, nil)
	if err != nil || res.Pending == nil {
		t.Fatalf("run: %+v, %v; want pending", res, err)
	}
	if res.Pending.PollAfter != 24*time.Hour || !strings.Contains(res.Pending.Unanswered, "owner archive@example.com did not answer") {
		t.Errorf("pending %+v: want a poll in 24h and an unanswered reason naming the owner", res.Pending)
	}
	if strings.Contains(res.Pending.Handle, "ada") {
		t.Errorf("the handle %q carries personal data", res.Pending.Handle)
	}
	if len(d.mails) != 1 {
		t.Fatalf("%d mails, want the task's", len(d.mails))
	}
	m := d.mails[0]
	if m.To != "archive@example.com" || m.Kind != "manual_task" || m.RequestID != "r_1" ||
		!strings.Contains(m.Text, "https://privacy.example/tasks/TOKEN-20260309") || !strings.Contains(m.Text, "    Note the number of pages.") {
		t.Errorf("task mail %+v", m)
	}
	if strings.Contains(m.Text+m.Subject, "ada") {
		t.Error("the task mail names the subject")
	}
	l, err := manual.ParseLink(d.links[0])
	if err != nil {
		t.Fatal(err)
	}
	task, _ := manual.TaskOf(res.Pending.Handle)
	if diff := cmp.Diff(manual.Link{Job: job.ID, Task: task, Connector: "paper", Action: connectors.ActionErase, System: "Paper archive"}, l); diff != "" {
		t.Errorf("link (-want +got):\n%s", diff)
	}

	handle := res.Pending.Handle
	poll := func(after time.Duration) *connectors.Pending {
		t.Helper()
		clock.Add(after)
		res, err := connectors.Poll(ctx, c, connectors.ActionErase, handle, nil)
		if err != nil || res.Pending == nil {
			t.Fatalf("poll: %+v, %v; want still pending", res, err)
		}
		if got, _ := manual.TaskOf(res.Pending.Handle); got != task {
			t.Fatalf("the task changed at a poll: %s, want %s", got, task)
		}
		handle = res.Pending.Handle
		return res.Pending
	}
	steps := []struct {
		after              time.Duration
		mails, escalations int
		nextPoll           time.Duration
	}{
		{after: time.Hour, mails: 1, nextPoll: 23 * time.Hour},      // early: no reminder
		{after: 23 * time.Hour, mails: 2, nextPoll: 24 * time.Hour}, // day 1: reminded
		{after: 24 * time.Hour, mails: 3, nextPoll: 12 * time.Hour}, // day 2: reminded; escalation due at 60h
		{after: 12 * time.Hour, mails: 3, escalations: 1, nextPoll: 12 * time.Hour},
		{after: 12 * time.Hour, mails: 4, escalations: 1, nextPoll: 24 * time.Hour}, // never escalated twice
	}
	for i, s := range steps {
		p := poll(s.after)
		if len(d.mails) != s.mails || len(d.escalations) != s.escalations || p.PollAfter != s.nextPoll {
			t.Errorf("step %d: %d mails, %d escalations, next poll in %s; want %d, %d, %s",
				i, len(d.mails), len(d.escalations), p.PollAfter, s.mails, s.escalations, s.nextPoll)
		}
	}
	if r := d.mails[1]; r.Kind != "manual_reminder" || !strings.HasPrefix(r.Subject, "Reminder: ") || !strings.Contains(r.Text, "TOKEN-20260310") {
		t.Errorf("reminder %+v: want a fresh link", r)
	}
	if e := d.escalations[0]; e.Job != job || e.Owner != "archive@example.com" || !strings.Contains(e.Text, "Paper archive") {
		t.Errorf("escalation %+v", e)
	}

	d.failMail = true
	if p := poll(24 * time.Hour); p.PollAfter != 10*time.Minute {
		t.Errorf("a reminder that failed is tried again in %s, want 10m", p.PollAfter)
	}
	d.failMail = false
	if p := poll(10 * time.Minute); len(d.mails) != 5 || p.PollAfter != 24*time.Hour {
		t.Errorf("after the mail system is back: %d mails, next poll %s; want 5, 24h", len(d.mails), p.PollAfter)
	}
	if _, err := connectors.Poll(ctx, c, connectors.ActionErase, "op-1", nil); !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("a handle not the connector's: %v, want permanent", err)
	}
	d.failMail = true
	if _, err := connectors.Run(ctx, c, connectors.ActionErase, subject, nil); err == nil || errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("a task whose mail fails: %v, want an error to retry", err)
	}
}

type records struct {
	got []string
}

func (r *records) WriteRecord(_ context.Context, collection string, doc any) error {
	b, err := json.Marshal(doc)
	r.got = append(r.got, collection+" "+string(b))
	return err
}

func TestAnswer(t *testing.T) {
	t.Parallel()
	d := &desk{}
	clock := testenv.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	c, _ := load(t, d, clock, file).Lookup("paper")
	ans := c.(interface {
		Answer(ctx context.Context, a connectors.Action, handle string, answer []byte, out connectors.RecordWriter) (connectors.Result, error)
	})
	ctx := connectors.WithJob(context.Background(), connectors.JobRef{ID: "r_1:paper:erase", RequestID: "r_1"})
	res, err := connectors.Run(ctx, c, connectors.ActionErase, connectors.Subject{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	handle := res.Pending.Handle
	task, _ := manual.TaskOf(handle)
	count := int64(12)
	enc := func(a manual.Answer) []byte {
		b, _ := json.Marshal(a)
		return b
	}
	tests := []struct {
		name    string
		action  connectors.Action
		answer  []byte
		want    []connectors.CollectionResult
		records []string
		wantErr string
	}{
		{name: "erasure confirmed with a count", action: connectors.ActionErase, answer: enc(manual.Answer{Task: task, Kind: manual.AnswerConfirm, Count: &count}),
			want: []connectors.CollectionResult{{Name: "upload", Outcome: "deleted", Records: 12, Note: "confirmed by the owner"}}},
		{name: "erasure confirmed without", action: connectors.ActionErase, answer: enc(manual.Answer{Task: task, Kind: manual.AnswerConfirm}),
			want: []connectors.CollectionResult{{Name: "upload", Outcome: "deleted", Note: "confirmed by the owner; no count given"}}},
		{name: "absent", action: connectors.ActionOptOut, answer: enc(manual.Answer{Task: task, Kind: manual.AnswerAbsent}),
			want: []connectors.CollectionResult{{Name: "upload", Outcome: "opted_out", Note: "the owner reported the person absent from Paper archive"}}},
		{name: "upload", action: connectors.ActionExport,
			answer:  enc(manual.Answer{Task: task, Kind: manual.AnswerUpload, Records: []json.RawMessage{[]byte(`{"page":1}`), []byte(`{"page":2}`)}}),
			want:    []connectors.CollectionResult{{Name: "upload", Outcome: "exported", Records: 2, Note: "uploaded by the owner"}},
			records: []string{`upload {"page":1}`, `upload {"page":2}`}},
		{name: "another task", action: connectors.ActionErase, answer: enc(manual.Answer{Task: strings.Repeat("A", 22), Kind: manual.AnswerConfirm}), wantErr: "another task"},
		{name: "an upload to an erasure", action: connectors.ActionErase, answer: enc(manual.Answer{Task: task, Kind: manual.AnswerUpload}), wantErr: "answered with confirm or absent"},
		{name: "a confirmation of an export", action: connectors.ActionExport, answer: enc(manual.Answer{Task: task, Kind: manual.AnswerConfirm}), wantErr: "answered with upload or absent"},
		{name: "not JSON", action: connectors.ActionErase, answer: []byte("yes"), wantErr: "not a manual task's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := &records{}
			res, err := ans.Answer(ctx, tt.action, handle, tt.answer, out)
			if tt.wantErr != "" {
				if !errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err %v, want a permanent one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, res.Collections); diff != "" {
				t.Errorf("collections (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.records, out.got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDocsExample loads the example of docs/connectors/manual.md.
func TestDocsExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/connectors/manual.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml connectors\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no yaml example in docs/connectors/manual.md")
	}
	clock := testenv.NewClock(time.Now())
	reg := load(t, &desk{}, clock, example)
	c, _ := reg.Lookup("paper_archive")
	for _, a := range []connectors.Action{connectors.ActionExport, connectors.ActionErase, connectors.ActionOptOut} {
		if !connectors.Supports(c, a) {
			t.Errorf("the example does not handle %s", a)
		}
	}
}
