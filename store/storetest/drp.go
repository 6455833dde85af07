package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/dsar-project/dsar/dsr"
)

// testDRPStatusOwed: a request filed through the Data Rights Protocol with a
// status_callback (or passed by OpenDSR with status_callback_urls) owes the
// party its status at filing and after every status change (settling
// included), in the same update; one without a callback, or not filed
// through a protocol, owes nothing; a transition that loses still loses.
func testDRPStatusOwed(t *testing.T, f fixture) {
	ctx := context.Background()
	owed := func(id string) bool {
		t.Helper()
		r, err := f.store.Request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(r.PendingNotices, dsr.NoticeProtocolStatus)
	}
	file := func(link *dsr.DRPLink) *dsr.Request {
		t.Helper()
		r, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeDeletion, Regulation: dsr.RegulationCCPA, Source: dsr.SourceDRP, FiledBy: "drp:A",
			Status: dsr.StatusVerified, ReceivedAt: f.clock.Now(), DRP: link,
			Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "ada@example.com", Source: dsr.SourceSubject}}}, f.index)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.CreateRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	withCallback := file(&dsr.DRPLink{Agent: "A", AgentRequestID: "a-1", Exercise: "deletion", Callback: "https://agent.example/cb"})
	// A controller's OpenDSR request with callbacks owes the same.
	byController, err := dsr.NewRequest(dsr.Intake{Type: dsr.TypeAccess, Regulation: dsr.RegulationGDPR, Source: dsr.SourceOpenDSR, FiledBy: "opendsr:c",
		Status: dsr.StatusVerified, ReceivedAt: f.clock.Now(),
		OpenDSR:    &dsr.OpenDSRLink{Controller: "c", SubjectRequestID: "a7551968-d5d6-44b2-9831-815ac9017798", Type: "access", Callbacks: []string{"https://c.example/1", "https://c.example/2"}},
		Identities: []dsr.Identity{{Kind: dsr.KindEmail, Value: "cy@example.com", Source: dsr.SourceSubject}}}, f.index)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateRequest(ctx, byController); err != nil {
		t.Fatal(err)
	}
	if got, err := f.store.Request(ctx, byController.ID); err != nil || got.OpenDSR == nil || len(got.OpenDSR.Callbacks) != 2 || !got.StatusCallbacks || !owed(byController.ID) {
		t.Fatalf("stored OpenDSR request: %+v, %v; want its link, and its status owed", got, err)
	}
	if err := f.store.NoticeSent(ctx, byController.ID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Transition(ctx, byController.ID, dsr.StatusVerified, dsr.StatusCancelled, dsr.Change{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	if !owed(byController.ID) {
		t.Error("a change of an OpenDSR request with callbacks owes nothing")
	}
	polled := file(&dsr.DRPLink{Agent: "A", Exercise: "deletion"})
	plain := f.newRequest(t, dsr.TypeDeletion, "bob@example.com")

	got, err := f.store.Request(ctx, withCallback.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DRP == nil || *got.DRP != *withCallback.DRP {
		t.Fatalf("stored DRP link %+v; want %+v", got.DRP, withCallback.DRP)
	}
	if !owed(withCallback.ID) || owed(polled.ID) || owed(plain.ID) {
		t.Fatalf("at filing: owed %v, %v, %v; want only the request with a callback", owed(withCallback.ID), owed(polled.ID), owed(plain.ID))
	}
	if err := f.store.NoticeSent(ctx, withCallback.ID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*dsr.Request{withCallback, polled, plain} {
		moved, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if moved.Status != dsr.StatusInProgress || len(moved.History) != 2 {
			t.Errorf("moved: %s with %d history entries", moved.Status, len(moved.History))
		}
		if _, err := f.store.Transition(ctx, r.ID, dsr.StatusVerified, dsr.StatusInProgress, dsr.Change{Actor: "t"}); err == nil {
			t.Errorf("a second transition from verified won")
		}
	}
	if !owed(withCallback.ID) || owed(polled.ID) || owed(plain.ID) {
		t.Errorf("after a transition: owed %v, %v, %v; want only the request with a callback", owed(withCallback.ID), owed(polled.ID), owed(plain.ID))
	}
	if err := f.store.NoticeSent(ctx, withCallback.ID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	// An extension moves the date the party expects: owed too.
	if _, err := f.store.Extend(ctx, withCallback.ID, "t", "archives to search"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Extend(ctx, plain.ID, "t", "archives to search"); err != nil {
		t.Fatal(err)
	}
	if !owed(withCallback.ID) || owed(plain.ID) {
		t.Errorf("after an extension: owed %v, %v; want only the request with a callback", owed(withCallback.ID), owed(plain.ID))
	}
	if err := f.store.NoticeSent(ctx, withCallback.ID, dsr.NoticeProtocolStatus); err != nil {
		t.Fatal(err)
	}
	// A fan-out of no job settles at once.
	if to, err := f.store.FannedOut(ctx, withCallback.ID, 0, "t"); err != nil || to != dsr.StatusCompleted {
		t.Fatalf("fanned out with no job: %q, %v; want completed", to, err)
	}
	if !owed(withCallback.ID) {
		t.Error("settling to completed made no status owed to the agent")
	}
}
