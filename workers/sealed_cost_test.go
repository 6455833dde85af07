package workers_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dsar-project/dsar/dsr"
	"github.com/dsar-project/dsar/store/sealedstore"
	"github.com/dsar-project/dsar/workers"
)

// TestJobRoundTripsColdKeys pins what sealing costs a job run in a worker
// process that has not seen its request yet (its data key not cached): one
// read of the request, for its wrapped key, before the 8 commands of
// TestJobRoundTrips; the next job of that request in the process costs
// none.
func TestJobRoundTripsColdKeys(t *testing.T) {
	t.Parallel()
	e := setup(t, 3, &outage{name: "crm"})
	e.store.NeedMongo(t)
	ctx := context.Background()
	r := e.file(dsr.TypeDeletion, "ada@example.com")
	if err := e.proc.Fanout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	// Another worker process: the same store and keys, nothing cached.
	cold := sealedstore.New(e.store.Sealed.Inner(), e.store.Ring, sealedstore.Options{})
	proc := workers.NewProcessor(workers.Deps{Store: cold, Connectors: e.reg, Queue: e.queue, Index: e.index, Log: slog.New(slog.NewTextHandler(e.logs, nil))}, workers.Options{
		MaxRetry: 3, Lease: time.Minute, JobTimeout: 10 * time.Second, SweepGrace: time.Minute, Now: e.clock.Now,
	})
	e.cmds.Reset()
	if err := proc.RunJob(ctx, dsr.JobID(r.ID, "crm", dsr.ActionErase)); err != nil {
		t.Fatal(err)
	}
	// claim, read the request (its wrapped key), audit "started", record,
	// audit "succeeded", count it finished (one still open)
	want := []string{"findAndModify", "find", "insert", "update", "insert", "findAndModify"}
	if diff := cmp.Diff(want, e.cmds.Names()); diff != "" {
		t.Errorf("store commands of a job, key not cached (-want +got):\n%s", diff)
	}
	e.cmds.Reset()
	if err := proc.RunJob(ctx, dsr.JobID(r.ID, "shop", dsr.ActionErase)); err != nil {
		t.Fatal(err)
	}
	// the same without the read, then settle, audit it, mark it audited
	want = []string{"findAndModify", "insert", "update", "insert", "findAndModify", "findAndModify", "insert", "update"}
	if diff := cmp.Diff(want, e.cmds.Names()); diff != "" {
		t.Errorf("store commands of the next job, key cached (-want +got):\n%s", diff)
	}
}
