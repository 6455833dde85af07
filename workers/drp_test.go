package workers_test

import (
	"context"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/dsar-project/dsar/dsr"
)

// TestDRPStatusQueuedOnCompletion: a request an agent filed with a
// status_callback owes it "fulfilled" when a worker completes it; the
// worker queues that callback at once, as it queues the person's
// completion notice, instead of leaving it to the next sweep.
func TestDRPStatusQueuedOnCompletion(t *testing.T) {
	t.Parallel()
	e := setup(t, 3)
	ctx := context.Background()
	r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationCCPA, Source: dsr.SourceDRP, FiledBy: "drp:AGENT_A",
		Status: dsr.StatusVerified, ReceivedAt: e.clock.Now(),
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}},
		DRP:        &dsr.DRPLink{Agent: "AGENT_A", Exercise: "deletion", Callback: "https://agent.example/cb"}}, e.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e.store.NoticeSent(ctx, r.ID, dsr.NoticeProtocolStatus); err != nil { // the filing's status went out
		t.Fatal(err)
	}
	if err := e.proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(e.redis)
	defer insp.Close()
	id := "notice:" + dsr.NoticeProtocolStatus + ":" + r.ID
	_ = insp.DeleteTask(e.qname, id) // the fan-out's own, if any: the completion's is the one looked for
	if err := e.proc.RunJob(ctx, dsr.JobID(r.ID, "shop", dsr.ActionErase)); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.Request(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dsr.StatusCompleted {
		t.Fatalf("status %s; want completed", got.Status)
	}
	if _, err := insp.GetTaskInfo(e.qname, id); err != nil {
		t.Errorf("the agent's status is owed (pending %v) but not queued: %v; it waits for the sweep", got.PendingNotices, err)
	}
}
